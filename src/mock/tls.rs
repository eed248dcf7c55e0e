//! HTTPS for the mock (`portcullis-mock --tls DIR`): a fresh test CA and a leaf certificate for
//! `localhost`, `127.0.0.1` and `::1` signed by it (rcgen, ECDSA P-256), the CA written as PEM
//! for clients to trust, and an accept loop that serves [`super::router`] over tokio-rustls with
//! the ALPN protocols chosen ([`Alpn`]).
//!
//! Each run makes a new CA: nothing is reused between runs, and the CA's private key never
//! leaves the process.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use super::MockStats;

/// The names the leaf certificate is valid for.
pub const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Which application protocols the mock offers in the TLS handshake (ALPN).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` only.
    H2,
    /// `http/1.1` only.
    Http1,
    /// `h2` and `http/1.1` (the client's preference order decides).
    #[default]
    Both,
}

impl FromStr for Alpn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "h2" => Ok(Alpn::H2),
            "http1" => Ok(Alpn::Http1),
            "both" => Ok(Alpn::Both),
            other => Err(format!("unknown ALPN choice {other:?} (h2, http1 or both)")),
        }
    }
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::H2 => vec![b"h2".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }
}

/// Why the mock's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rcgen failed to make a key or a certificate.
    #[error("cannot generate the test certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the generated certificate or key.
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
    /// The CA certificate could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// A test CA and the leaf certificate it signed for [`LEAF_NAMES`].
pub struct TestCerts {
    /// The CA certificate, PEM (what `ca.pem` holds).
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
    /// The leaf certificate, DER.
    pub leaf_der: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for TestCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCerts").finish_non_exhaustive()
    }
}

impl TestCerts {
    /// A fresh CA and a leaf signed by it.
    pub fn generate() -> Result<Self, TlsSetupError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "portcullis-mock test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut leaf = CertificateParams::new(LEAF_NAMES.map(str::to_owned).to_vec())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "portcullis-mock");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        })
    }

    /// Writes the CA certificate to `dir/ca.pem` (creating `dir`) and returns that path.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, TlsSetupError> {
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsSetupError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).map_err(write_err(&path))?;
        Ok(path)
    }

    /// The server configuration presenting the leaf (and the CA) and offering `alpn`.
    pub fn server_config(&self, alpn: Alpn) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone(), self.ca_der.clone()],
                PrivateKeyDer::Pkcs8(self.leaf_key.clone_key()),
            )?;
        config.alpn_protocols = alpn.protocols();
        Ok(Arc::new(config))
    }
}

/// Serves [`super::router`] over TLS on `listener` (`TCP_NODELAY` on every socket; HTTP/2 when
/// ALPN chose `h2`, else HTTP/1.1) until `shutdown` resolves; then stops accepting and asks
/// open connections to finish gracefully. Failed handshakes are logged at debug level.
pub async fn serve_tls(
    listener: TcpListener,
    stats: Arc<MockStats>,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let service = TowerToHyperService::new(super::router(stats.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::debug!("mock: accept failed: {e}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        stats.connection_accepted();
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("mock: set_nodelay failed: {e}");
        }
        let (acceptor, service, stats) = (acceptor.clone(), service.clone(), stats.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!("mock: TLS handshake failed: {e}");
                    return;
                }
            };
            let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            stats.tls_handshake(resumed);
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if h2 {
                auto::Builder::new(TokioExecutor::new()).http2_only()
            } else {
                auto::Builder::new(TokioExecutor::new()).http1_only()
            };
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    Ok(())
}
