//! Browser logins with a loopback redirect — how the Codex CLI and the Gemini CLI log in
//! (OAuth 2.0 authorization code with PKCE for native apps, RFC 8252): the gateway listens on
//! the loopback address, prints the provider's authorization link, the user approves in a
//! browser on the same machine, the provider redirects the browser to the listener with a code
//! (and the `state` the link carried): the [`Approval`], which the backend's login exchanges
//! for its tokens (`DeviceLogin::exchange_code`, at its token endpoint). Used by `portcullis auths login <backend>` for `codex` and `gemini_cli`
//! backends (`Pool::browser_login`).
//!
//! The redirect is what each CLI registered: the Codex CLI's client accepts only
//! `http://localhost:1455/auth/callback`; the Gemini CLI's, as an installed application, any
//! loopback port (`http://127.0.0.1:<port>/oauth2callback`). `redirect_port` changes the port
//! (tests use a free one).

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::device::{DeviceLoginConfig, DeviceLoginKind, LoginError};
use crate::secret::Secret;

/// Longest request head read from the browser's redirect.
const MAX_HEAD: usize = 16 * 1024;
/// The page the browser shows once the code has arrived.
const DONE_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Logged in</title>\
<p>The login reached portcullis. You can close this tab.</p>";

/// One backend's browser login.
#[derive(Debug)]
pub struct BrowserLogin {
    /// The login's (and its backend's) name.
    pub name: String,
    authorize_url: String,
    client_id: String,
    scope: String,
    /// `localhost` (Codex's registered redirect) or `127.0.0.1`.
    host: &'static str,
    port: u16,
    path: &'static str,
    /// Parameters the CLI adds to its authorization link.
    extra: &'static [(&'static str, &'static str)],
}

/// What the browser brought back: the code, with what its exchange needs.
#[derive(Debug)]
pub struct Approval {
    /// The authorization code.
    pub(super) code: Secret,
    /// The PKCE verifier of the link's challenge.
    pub(super) verifier: Secret,
    /// The redirect the link named (the exchange repeats it).
    pub(super) redirect_uri: String,
}

/// A started login: the link to open, and the listener waiting for the browser.
#[derive(Debug)]
pub struct Waiting {
    /// The provider's authorization link (print it; the user opens it).
    pub url: String,
    listener: TcpListener,
    state: String,
    verifier: Secret,
    redirect_uri: String,
}

fn random_text() -> Result<String, LoginError> {
    let bytes = crate::secret::random_bytes::<32>().map_err(|e| LoginError::Server {
        login: "browser".to_owned(),
        message: format!("no randomness: {e}"),
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl BrowserLogin {
    /// The browser login of a `kind` login named `name` whose client is `client_id` (`None`:
    /// that kind logs in otherwise).
    pub fn of(
        name: &str,
        kind: DeviceLoginKind,
        cfg: &DeviceLoginConfig,
        client_id: Option<&str>,
    ) -> Option<Self> {
        let (authorize, host, port, path, scope, extra): (_, _, _, _, _, &'static [_]) = match kind
        {
            DeviceLoginKind::Codex => (
                "https://auth.openai.com/oauth/authorize",
                "localhost",
                1455,
                "/auth/callback",
                "openid profile email offline_access",
                &[
                    ("id_token_add_organizations", "true"),
                    ("codex_cli_simplified_flow", "true"),
                    ("originator", "codex_cli_rs"),
                ],
            ),
            DeviceLoginKind::GeminiCli => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "127.0.0.1",
                0,
                "/oauth2callback",
                "https://www.googleapis.com/auth/cloud-platform \
                 https://www.googleapis.com/auth/userinfo.email \
                 https://www.googleapis.com/auth/userinfo.profile",
                &[("access_type", "offline"), ("prompt", "consent")],
            ),
            _ => return None,
        };
        Some(Self {
            name: name.to_owned(),
            authorize_url: cfg
                .authorize_url
                .clone()
                .unwrap_or_else(|| authorize.to_owned()),
            client_id: client_id?.to_owned(),
            scope: scope.to_owned(),
            host,
            port: cfg.redirect_port.unwrap_or(port),
            path,
            extra,
        })
    }

    fn error(&self, message: String) -> LoginError {
        LoginError::Server {
            login: self.name.clone(),
            message,
        }
    }

    /// Listens for the redirect and makes the authorization link.
    pub async fn start(&self) -> Result<Waiting, LoginError> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                self.error(format!(
                    "cannot listen on 127.0.0.1:{} for the login's redirect: {e} (is the CLI's own login running?)",
                    self.port
                ))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| self.error(e.to_string()))?
            .port();
        let redirect_uri = format!("http://{}:{port}{}", self.host, self.path);
        let (state, verifier) = (random_text()?, Secret::new(random_text()?));
        let challenge = crate::secret::pkce_challenge(verifier.expose());
        let mut url = reqwest::Url::parse(&self.authorize_url)
            .map_err(|e| self.error(format!("authorize_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state)
            .extend_pairs(self.extra.iter().copied());
        Ok(Waiting {
            url: url.to_string(),
            listener,
            state,
            verifier,
            redirect_uri,
        })
    }

    /// Waits (at most `timeout`) for the browser's redirect carrying the login's `state`.
    pub async fn approval(
        &self,
        waiting: Waiting,
        timeout: Duration,
    ) -> Result<Approval, LoginError> {
        let code = tokio::time::timeout(timeout, self.code(&waiting))
            .await
            .map_err(|_| LoginError::Refused {
                login: self.name.clone(),
                message: "no approval arrived in time; start again".to_owned(),
            })??;
        Ok(Approval {
            code,
            verifier: waiting.verifier,
            redirect_uri: waiting.redirect_uri,
        })
    }

    /// The code of the first redirect to the login's path carrying its `state`; other requests
    /// get a 404 or 400 and are otherwise ignored (a browser also asks for `/favicon.ico`).
    async fn code(&self, waiting: &Waiting) -> Result<Secret, LoginError> {
        loop {
            let (mut conn, _) = waiting
                .listener
                .accept()
                .await
                .map_err(|e| self.error(format!("the redirect listener failed: {e}")))?;
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let target = text.split_whitespace().nth(1).unwrap_or_default();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let answer = |status: &str, body: &str| {
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            if path != self.path {
                let _ = conn.write_all(answer("404 Not Found", "").as_bytes()).await;
                continue;
            }
            let state_ok = get("state").is_some_and(|s| {
                subtle::ConstantTimeEq::ct_eq(s.as_bytes(), waiting.state.as_bytes()).into()
            });
            if !state_ok {
                let _ = conn
                    .write_all(
                        answer("400 Bad Request", "<p>Not this login's redirect.</p>").as_bytes(),
                    )
                    .await;
                continue;
            }
            if let Some(error) = get("error") {
                let _ = conn
                    .write_all(answer("200 OK", "<p>The login was refused.</p>").as_bytes())
                    .await;
                return Err(LoginError::Refused {
                    login: self.name.clone(),
                    message: format!("the provider refused the login: {error}"),
                });
            }
            let Some(code) = get("code").filter(|c| !c.is_empty()) else {
                let _ = conn
                    .write_all(answer("400 Bad Request", "<p>No code.</p>").as_bytes())
                    .await;
                continue;
            };
            let _ = conn.write_all(answer("200 OK", DONE_PAGE).as_bytes()).await;
            return Ok(Secret::new(code));
        }
    }
}
