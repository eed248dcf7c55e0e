//! Where a backend's in-task clients ([`super::h1`], [`super::h2`]) connect and how: the base
//! URL's host and port (an address as it is, a name resolved at each connect), TCP with
//! `TCP_NODELAY`, and for `https://` TLS with the backend's client configuration, the
//! certificate checked against the URL's host (also sent as SNI unless it is an address). The
//! connect timeout covers the TLS handshake too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::UpstreamError;
use super::tls::Stream;

/// The host and port to connect to.
#[derive(Debug)]
pub(super) enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

/// TLS to an `https://` backend: the backend's shared client configuration and the name its
/// certificate must carry.
pub(super) struct Tls {
    connector: TlsConnector,
    pub(super) name: ServerName<'static>,
}

/// How one backend's connections are opened.
pub(super) struct Dial {
    pub(super) backend: Arc<str>,
    pub(super) target: Target,
    /// Set for `https://` backends.
    pub(super) tls: Option<Tls>,
    /// The base URL's authority (`host[:port]`): HTTP/1.1's `Host`, HTTP/2's `:authority`.
    pub(super) authority: HeaderValue,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial")
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Dial {
    /// How to reach `base` when it is an `http://` URL, or an `https://` one and `tls` is
    /// given, without credentials in it (reqwest turns those into Basic auth); `None` for
    /// anything else.
    pub(super) fn new(
        backend: Arc<str>,
        base: &reqwest::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
    ) -> Option<Self> {
        if !base.username().is_empty() || base.password().is_some() {
            return None;
        }
        let host = base.host_str()?;
        let port = base.port_or_known_default()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tls = match (base.scheme(), tls) {
            ("http", _) => None,
            ("https", Some(config)) => Some(Tls {
                connector: TlsConnector::from(config),
                name: ServerName::try_from(bare.to_owned()).ok()?,
            }),
            _ => return None,
        };
        let target = match bare.parse::<IpAddr>() {
            Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
            Err(_) => Target::Name(bare.to_owned(), port),
        };
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Some(Self {
            backend,
            target,
            tls,
            authority: HeaderValue::from_str(&authority).ok()?,
            connect_timeout,
        })
    }

    /// A new connection's byte stream, TLS handshake done.
    pub(super) async fn open(&self) -> Result<Stream, UpstreamError> {
        let connecting = async {
            let tcp = match &self.target {
                Target::Addr(addr) => TcpStream::connect(*addr).await?,
                Target::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await?,
            };
            tcp.set_nodelay(true)?;
            Ok::<_, std::io::Error>(match &self.tls {
                None => Stream::Plain(tcp),
                Some(tls) => Stream::Tls(tls.connector.connect(tls.name.clone(), tcp).await?),
            })
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(UpstreamError::Connect {
                backend: self.backend.clone(),
                source: e.into(),
            }),
            Err(_) => Err(UpstreamError::Timeout {
                backend: self.backend.clone(),
            }),
        }
    }
}
