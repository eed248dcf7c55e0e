//! Network addresses: CIDR ranges, loopback checks, and the client address of a request — the
//! socket peer, or, when the peer is a trusted proxy, the right-most `X-Forwarded-For` entry that
//! is not itself a trusted proxy (entries further left are client-controlled and ignored; an
//! unreadable entry in that place is an error, never the proxy's address) — and
//! the HTTP client the gateway uses for its own calls to identity providers and authorization
//! APIs, the client headers that never go to another server ([`never_forwarded`]), and the PEM
//! CA files a backend trusts besides the system's roots ([`read_ca_file`]).

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

/// A connection's own headers (hop-by-hop, framing, proxy bookkeeping): never relayed to another
/// server, whatever the configuration says.
const CONNECTION_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "expect",
    "via",
    "max-forwards",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// True for a (lower-case) client header that never goes to another server, even when a
/// backend's `forward_headers` names it (`config` refuses such a name, `upstream` drops the
/// header): a client credential ([`crate::secret::is_credential_header`]) or a connection's own
/// header.
pub fn never_forwarded(name: &str) -> bool {
    crate::secret::is_credential_header(name) || CONNECTION_HEADERS.contains(&name)
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

/// A trusted proxy relayed a request whose `X-Forwarded-For` does not name a readable client
/// address where the client should be (the right-most entry that is not a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the X-Forwarded-For header from a trusted proxy does not name a readable client address")]
pub struct UnreadableForwardedFor;

/// Where failures of a client whose address cannot be read are counted, should anything count
/// them (the authentication layer refuses such requests first): never the proxy's own address,
/// which every other client behind it shares.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The client address of a request from `peer` with `headers` ([`forwarded_client`]), or
/// [`UNKNOWN_CLIENT`] when a trusted proxy relayed an unreadable one.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    forwarded_client(peer, headers, trusted).unwrap_or(UNKNOWN_CLIENT)
}

/// The client address of a request from `peer` with `headers`: the peer, unless it is a trusted
/// proxy; then the `X-Forwarded-For` entries (every such header, in order, split at commas) are
/// walked from the right, skipping trusted proxies, and the first other entry is the client.
/// Entries are read as bytes, each on its own: one the walk never reaches (further left,
/// client-controlled) does not matter, but if the entry the walk stops at is not an address, the
/// answer is an error — never the proxy's own address, which would let one client's failures
/// lock out everyone behind the proxy. A chain of trusted proxies only gives its left-most entry;
/// no header at all gives the peer (a request the proxy made itself).
pub fn forwarded_client(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Result<IpAddr, UnreadableForwardedFor> {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(peer) {
        return Ok(peer);
    }
    let values: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let mut client = peer;
    for value in values.iter().rev() {
        for part in value.rsplit(|b| *b == b',') {
            let ip = std::str::from_utf8(part)
                .ok()
                .and_then(parse_forwarded_entry)
                .ok_or(UnreadableForwardedFor)?;
            client = ip;
            if !is_trusted(ip) {
                return Ok(ip);
            }
        }
    }
    Ok(client)
}

/// One `X-Forwarded-For` entry: `addr`, `v4:port` or `[v6]:port`.
fn parse_forwarded_entry(part: &str) -> Option<IpAddr> {
    let p = part.trim();
    if let Ok(ip) = p.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
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

/// `url` without its password and query (where a Redis unix socket URL may carry one): how
/// health answers and logs show a Redis or database URL.
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// The certificates of a `tls_ca_file`: PEM, one or more `CERTIFICATE` blocks (other blocks
/// are skipped). The error names the path and what is wrong.
pub fn read_ca_file(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
            path.display()
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            format!(
                "certificate {} in {} cannot be used as a root: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(certs)
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
    }

    /// Security review, first pass #7: an unreadable header made the client the proxy itself,
    /// so one client's failures locked out everyone behind it.
    #[test]
    fn an_unreadable_client_entry_is_an_error_never_the_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let raw = |bytes: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(bytes).unwrap(),
            );
            h
        };
        for bad in [
            &b"\xff"[..],
            b"\xff, 10.0.0.9",
            b"1.1.1.1, garbage",
            b"8.8.4.4, ",
            b"1.1.1.1, \xfe\xff:80",
        ] {
            assert_eq!(
                forwarded_client(proxy, &raw(bad), &trusted),
                Err(UnreadableForwardedFor),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(client_ip(proxy, &raw(bad), &trusted), UNKNOWN_CLIENT);
        }
        // Bytes left of the client's entry are the client's own business.
        assert_eq!(
            forwarded_client(proxy, &raw(b"\xff, 8.8.4.4"), &trusted),
            Ok("8.8.4.4".parse().unwrap())
        );
        assert_eq!(
            forwarded_client(proxy, &raw(b"garbage, 8.8.4.4, 10.0.0.7"), &trusted),
            Ok("8.8.4.4".parse().unwrap())
        );
        // Several headers read as one list, in order.
        let mut h = raw(b"\xff");
        h.append("x-forwarded-for", "9.9.9.9".parse().unwrap());
        assert_eq!(
            forwarded_client(proxy, &h, &trusted),
            Ok("9.9.9.9".parse().unwrap())
        );
        // From an untrusted peer the header is not read at all.
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            forwarded_client(stranger, &raw(b"\xff"), &trusted),
            Ok(stranger)
        );
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

    #[test]
    fn a_ca_file_holds_one_or_more_usable_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let cert = |name: &str| {
            rcgen::generate_simple_self_signed([name.to_owned()])
                .unwrap()
                .cert
        };
        let (a, b) = (cert("a.example"), cert("b.example"));
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("{}\n{}", a.pem(), b.pem())).unwrap();
        assert_eq!(
            super::read_ca_file(&bundle).unwrap(),
            vec![a.der().clone(), b.der().clone()]
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = super::read_ca_file(&junk).unwrap_err();
        assert!(
            err.contains("certificate 1 in") && err.contains("junk.pem"),
            "{err}"
        );
    }
}
