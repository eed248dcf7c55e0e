//! Answers too large to buffer, from the servers the gateway calls on its own (key sets,
//! identity providers, device logins): a raw-socket server sends a 50 MB body (chunked, or with
//! its `Content-Length`) and counts what it managed to write before the gateway hung up. Each
//! fetch must fail with "larger than" after reading about its limit, and close the connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis::config::{DeviceLoginConfig, DeviceLoginKind, SsoProviderConfig, SsoProviderKind};
use portcullis::secret::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the hostile server sends after its headers.
const BODY: u64 = 50 * 1024 * 1024;
/// Bytes a client that stops at its limit (1 MiB at most) may still have let through: the limit
/// plus both sockets' kernel buffers. Far below [`BODY`].
const BOUNDED: u64 = 24 * 1024 * 1024;

/// A server that answers every request with a 50 MB JSON-looking body.
struct Hostile {
    url: String,
    /// Body bytes written over all connections.
    written: Arc<AtomicU64>,
    /// One message per connection the server stopped writing to (closed by the peer, or done).
    closed: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Hostile {
    async fn start(chunked: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let written = Arc::new(AtomicU64::new(0));
        let (tx, closed) = tokio::sync::mpsc::unbounded_channel();
        let count = written.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (count, tx) = (count.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let framing = if chunked {
                        "transfer-encoding: chunked".to_owned()
                    } else {
                        format!("content-length: {BODY}")
                    };
                    let headers = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
                    );
                    if sock.write_all(headers.as_bytes()).await.is_ok() {
                        let piece = vec![b' '; 64 * 1024];
                        let mut sent = 0;
                        while sent < BODY {
                            let ok = if chunked {
                                let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                                c.extend_from_slice(&piece);
                                c.extend_from_slice(b"\r\n");
                                sock.write_all(&c).await.is_ok()
                            } else {
                                sock.write_all(&piece).await.is_ok()
                            };
                            if !ok {
                                break;
                            }
                            sent += piece.len() as u64;
                            count.fetch_add(piece.len() as u64, Ordering::Relaxed);
                        }
                        if chunked && sent >= BODY {
                            let _ = sock.write_all(b"0\r\n\r\n").await;
                        }
                    }
                    let _ = tx.send(());
                });
            }
        });
        Self {
            url,
            written,
            closed,
        }
    }

    /// Waits until the server stopped writing to `n` connections, then checks it wrote far less
    /// than the body.
    async fn assert_cut_short(&mut self, n: usize, what: &str) {
        for _ in 0..n {
            tokio::time::timeout(Duration::from_secs(20), self.closed.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: the connection is still being read"));
        }
        let written = self.written.load(Ordering::Relaxed);
        eprintln!("{what}: the server wrote {written} body bytes before the connection closed");
        assert!(
            written < BOUNDED,
            "{what}: the server wrote {written} bytes before the gateway stopped reading"
        );
    }
}

fn http() -> reqwest::Client {
    portcullis::net::outbound_client(Duration::from_secs(5), Duration::from_secs(60)).unwrap()
}

#[tokio::test]
async fn the_shared_reader_stops_at_its_limit_or_at_the_announced_length() {
    for chunked in [true, false] {
        let mut server = Hostile::start(chunked).await;
        let resp = http().get(&server.url).send().await.unwrap();
        let err = portcullis::net::read_body_limited(resp, 1024 * 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(err, portcullis::net::BodyError::TooLarge(_)),
            "{err}"
        );
        server
            .assert_cut_short(1, &format!("chunked={chunked}"))
            .await;
    }
}

#[tokio::test]
async fn a_key_set_is_not_read_past_one_mib() {
    let mut server = Hostile::start(true).await;
    let jwks = portcullis::jwks::RemoteJwks::new(format!("{}/jwks", server.url), http());
    // An RS256 header naming an unknown key makes the set be fetched.
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5ldyJ9.e30.c2ln";
    let err = jwks
        .decode::<serde_json::Value>(token, jsonwebtoken::Validation::new)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "jwks").await;
}

fn sso_provider(kind: SsoProviderKind, url: &str) -> SsoProviderConfig {
    SsoProviderConfig {
        kind,
        display_name: None,
        issuer: Some(url.to_owned()),
        discovery_url: None,
        client_id: "gw".into(),
        client_secret: Some(Secret::new("s")),
        client_secret_env: None,
        scopes: vec![],
        authorize_url: Some(format!("{url}/authorize")),
        token_url: Some(format!("{url}/token")),
        api_url: Some(url.to_owned()),
        allowed_domains: vec![],
    }
}

#[tokio::test]
async fn identity_provider_answers_are_not_read_past_their_limit() {
    // OIDC discovery (GET).
    let mut server = Hostile::start(true).await;
    let oidc = portcullis::sso::provider::Provider::new(
        "idp",
        &sso_provider(SsoProviderKind::Oidc, &server.url),
        http(),
    );
    let err = oidc
        .authorization_url("http://gw/cb", "state", "nonce", "challenge")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "discovery").await;

    // GitHub's token exchange (POST), with a Content-Length announcing the 50 MB.
    let mut server = Hostile::start(false).await;
    let github = portcullis::sso::provider::Provider::new(
        "gh",
        &sso_provider(SsoProviderKind::Github, &server.url),
        http(),
    );
    let err = github
        .complete(&portcullis::sso::provider::CodeExchange {
            code: "c",
            redirect_uri: "http://gw/cb",
            pkce_verifier: "v",
            nonce: "n",
        })
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "token").await;
}

#[tokio::test]
async fn a_device_login_server_answer_is_not_read_past_its_limit() {
    let mut server = Hostile::start(true).await;
    let cfg = DeviceLoginConfig {
        kind: Some(DeviceLoginKind::Generic),
        client_id: Some("gw".to_owned()),
        device_authorization_url: Some(format!("{}/device", server.url)),
        token_url: Some(format!("{}/token", server.url)),
        ..Default::default()
    };
    let login = portcullis::pool::device::DeviceLogin::from_config("corp", &cfg, http());
    let err = login.start().await.err().unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "device").await;
}

#[tokio::test]
async fn the_authorization_api_answer_is_not_read_past_its_limit() {
    let mut server = Hostile::start(true).await;
    let api = portcullis::sso::authorize::EnterpriseApi::new(
        format!("{}/check", server.url),
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    let user = portcullis::store::User {
        id: "usr_1".into(),
        provider: "idp".into(),
        subject: "s".into(),
        email: None,
        display_name: None,
        created_at: 0,
        disabled: false,
    };
    let err = api
        .authorize(&user, "idp", "127.0.0.1".parse().unwrap(), "now")
        .await
        .unwrap_err();
    assert!(err.contains("larger than"), "{err}");
    server.assert_cut_short(1, "authorization API").await;
}
