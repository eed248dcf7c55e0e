//! Network addresses: CIDR ranges, loopback checks, and the client address of a request — the
//! socket peer, or, when the peer is a trusted proxy, the right-most `X-Forwarded-For` entry that
//! is not itself a trusted proxy (entries further left are client-controlled and ignored) — and
//! the HTTP client the gateway uses for its own calls to identity providers and authorization
//! APIs.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;

/// A client for the gateway's own calls (identity providers, JWKS, authorization APIs, device
/// logins): no redirects followed (a redirect could point anywhere), `connect` and `total`
/// deadlines, and `User-Agent: portcullis/<version>`. These calls are seconds or minutes apart,
/// so an idle connection is dropped after 4 s — before common servers close theirs (Node's
/// default is 5 s): reusing a connection the server is closing fails the request (a device
/// login polling every 5 s hit exactly that).
pub fn outbound_client(
    connect: std::time::Duration,
    total: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(4))
        .connect_timeout(connect)
        .timeout(total)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// An IP network such as `10.0.0.0/8` or `::1/128`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// True when `ip` is inside the network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has an invalid prefix length (0–{max})"))?,
            None => max,
        };
        Ok(Self {
            addr: canonical(addr),
            prefix,
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// True for `localhost` and loopback addresses (127.0.0.0/8, ::1).
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| canonical(ip).is_loopback())
}

/// The client address of a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for part in text.split(',') {
            match parse_forwarded_entry(part) {
                Some(ip) => chain.push(ip),
                // An unparsable entry: nothing left of it can be trusted either.
                None => chain.clear(),
            }
        }
    }
    let mut client = peer;
    for ip in chain.into_iter().rev() {
        client = ip;
        if !trusted.iter().any(|n| n.contains(ip)) {
            break;
        }
    }
    client
}

fn parse_forwarded_entry(part: &str) -> Option<IpAddr> {
    let p = part.trim();
    if let Ok(ip) = p.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // `[v6]:port` or `v4:port`
    let host = if let Some(rest) = p.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        p.rsplit_once(':').map(|(h, _)| h)?
    };
    host.parse::<IpAddr>().ok().map(canonical)
}

/// Why [`read_body_limited`] returned no body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body (or its announced `Content-Length`) exceeds the limit; reading stopped there.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed while reading.
    #[error("reading the answer failed: {0}")]
    Read(String),
}

/// The body of `resp`, read chunk by chunk and abandoned as soon as it would exceed `limit`
/// bytes (at once when `Content-Length` already says so): a hostile or broken server cannot make
/// the gateway buffer an endless answer. Dropping the response closes its connection.
pub async fn read_body_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn cidrs_parse_and_match() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.1".parse().unwrap()));
        let host: IpNet = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // An untrusted peer cannot choose its address.
        assert_eq!(client_ip(stranger, &xff("1.1.1.1"), &trusted), stranger);
        // Through a trusted proxy: the right-most untrusted entry; spoofed entries to its left are ignored.
        assert_eq!(
            client_ip(proxy, &xff("6.6.6.6, 198.51.100.7, 10.0.0.9"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(proxy, &xff("[2001:db8::1]:443"), &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        // With no trusted proxies the header is never read.
        assert_eq!(client_ip(proxy, &xff("1.1.1.1"), &[]), proxy);
        // Garbage right of a valid entry: nothing from the header is used.
        assert_eq!(client_ip(proxy, &xff("1.1.1.1, garbage"), &trusted), proxy);
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["0.0.0.0", "192.168.1.2", "::", "example.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
