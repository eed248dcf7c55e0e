//! OAuth device-flow logins that add upstream credentials (RFC 8628): a generic client for any
//! authorization server, GitHub Copilot (GitHub's device login, then the Copilot token
//! exchange) and Kiro / AWS Builder ID (AWS SSO-OIDC: client registration, device
//! authorization, token). Every endpoint comes from `auth.device_login.<name>`, with the public
//! endpoints as defaults for `copilot` and `kiro`. Provider JSON stays in this file: callers see
//! [`Started`], [`Poll`] and [`Tokens`].

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connectors::{self, Account};
use crate::secret::Secret;

pub use super::settings::{DeviceLoginConfig, DeviceLoginKind};

/// Why a login step failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The configuration lacks an endpoint or client id.
    #[error("device login `{login}`: {message}")]
    Config {
        /// Login name.
        login: String,
        /// What is missing.
        message: String,
    },
    /// The server could not be reached or answered nonsense.
    #[error("device login `{login}`: {message}")]
    Server {
        /// Login name.
        login: String,
        /// What happened (no secret in it).
        message: String,
    },
    /// The server refused (denied, expired, bad refresh token).
    #[error("device login `{login}`: {message}")]
    Refused {
        /// Login name.
        login: String,
        /// The server's error code and description.
        message: String,
    },
}

/// A started device authorization: what the user must do, and what polling needs.
#[derive(Debug, Clone)]
pub struct Started {
    /// Code the user types at the verification page.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in, when the server offers it.
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes stay valid.
    pub expires_in: u64,
    /// Seconds between polls.
    pub interval: u64,
    device_code: Secret,
    /// Kiro: the client registered for this login.
    client: Option<(String, Secret)>,
    /// Qwen: the PKCE verifier of this login.
    pkce: Option<Secret>,
}

/// One poll of the token endpoint.
#[derive(Debug)]
pub enum Poll {
    /// The user has not finished yet.
    Pending,
    /// Poll less often (RFC 8628 `slow_down`: 5 s more).
    SlowDown,
    /// Done: the credential's tokens.
    Done(Box<Tokens>),
}

/// What a login or refresh yields.
#[derive(Debug)]
pub struct Tokens {
    /// The secret requests carry upstream.
    pub access: Secret,
    /// When it expires (ms), if it does.
    pub expires_at: Option<u64>,
    /// What the next refresh needs (sealed into the store).
    pub state: RefreshState,
}

/// The refresh material of an OAuth credential, kept sealed in the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RefreshState {
    /// The `auth.device_login` entry that made it.
    pub login: String,
    /// OAuth refresh token (generic, Kiro).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Copilot: the GitHub token the Copilot token is exchanged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_token: Option<String>,
    /// Kiro: the registered client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Kiro: the registered client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A connector login's account facts (project, account id, API base).
    #[serde(default, skip_serializing_if = "Account::is_empty")]
    pub account: Account,
}

impl std::fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("backend", &self.backend)
            .finish()
    }
}

/// One configured device-flow login.
pub struct DeviceLogin {
    /// Name (`copilot`, `kiro`, …): the page is `/v0/oauth/<name>`.
    pub name: String,
    /// Protocol.
    pub kind: DeviceLoginKind,
    /// Backend whose pool gets the credential.
    pub backend: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    scope: Option<String>,
    device_url: Option<String>,
    token_url: Option<String>,
    copilot_token_url: String,
    oidc_url: String,
    start_url: String,
    http: reqwest::Client,
    browser: Option<super::browser::BrowserLogin>,
}

/// GitHub's public client id for Copilot's device login.
const COPILOT_CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
/// The Gemini CLI's public OAuth client (an installed application's: not a secret, RFC 8252
/// §8.5); refreshing the CLI's tokens needs the client that obtained them.
const GEMINI_CLI_CLIENT: (&str, &str) = (
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
    "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",
);
/// The Codex CLI's public OAuth client.
const CODEX_CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Qwen Code's public OAuth client.
const QWEN_CLIENT_ID: &str = "f0304373b74a44d2b584a3fb70ca9e56";
/// Scopes Kiro asks AWS SSO-OIDC for.
const KIRO_SCOPES: &[&str] = &[
    "codewhisperer:completions",
    "codewhisperer:analysis",
    "codewhisperer:conversations",
];
/// Largest answer read from a login server.
const MAX_ANSWER: usize = 64 * 1024;

/// Seconds since the epoch → ms.
fn secs_to_ms(s: u64) -> u64 {
    s.saturating_mul(1000)
}

impl DeviceLogin {
    /// The login `name` of the configuration.
    pub fn from_config(name: &str, cfg: &DeviceLoginConfig, http: reqwest::Client) -> Self {
        let kind = cfg.kind.unwrap_or(match name {
            "copilot" => DeviceLoginKind::Copilot,
            "kiro" => DeviceLoginKind::Kiro,
            _ => DeviceLoginKind::Generic,
        });
        let (device_default, token_default, client_default, scope_default) = match kind {
            DeviceLoginKind::Copilot => (
                Some("https://github.com/login/device/code"),
                Some("https://github.com/login/oauth/access_token"),
                Some(COPILOT_CLIENT_ID),
                Some("read:user"),
            ),
            DeviceLoginKind::GeminiCli => (
                None,
                Some("https://oauth2.googleapis.com/token"),
                Some(GEMINI_CLI_CLIENT.0),
                None,
            ),
            DeviceLoginKind::Codex => (
                None,
                Some("https://auth.openai.com/oauth/token"),
                Some(CODEX_CLIENT_ID),
                Some("openid profile email"),
            ),
            DeviceLoginKind::QwenCode => (
                Some("https://chat.qwen.ai/api/v1/oauth2/device/code"),
                Some("https://chat.qwen.ai/api/v1/oauth2/token"),
                Some(QWEN_CLIENT_ID),
                Some("openid profile email model.completion"),
            ),
            // Kiro: `token_url` is a social login's refresh (Builder ID and Identity Center
            // logins renew at SSO-OIDC, `oidc_url`).
            DeviceLoginKind::Kiro => (
                None,
                Some("https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"),
                None,
                None,
            ),
            DeviceLoginKind::Generic => (None, None, None, None),
        };
        let secret_default =
            (kind == DeviceLoginKind::GeminiCli).then(|| Secret::new(GEMINI_CLI_CLIENT.1));
        let client_id = cfg.client_id.clone().or(client_default.map(str::to_owned));
        let client_secret = cfg.client_secret.clone().or(secret_default);
        let token_url = cfg.token_url.clone().or(token_default.map(str::to_owned));
        let browser = super::browser::BrowserLogin::of(name, kind, cfg, client_id.as_deref());
        let oidc_url = cfg
            .oidc_url
            .clone()
            .unwrap_or_else(|| "https://oidc.us-east-1.amazonaws.com".to_owned())
            .trim_end_matches('/')
            .to_owned();
        Self {
            name: name.to_owned(),
            kind,
            backend: cfg.backend.clone().unwrap_or_else(|| name.to_owned()),
            client_id,
            client_secret,
            scope: cfg.scope.clone().or(scope_default.map(str::to_owned)),
            device_url: cfg
                .device_authorization_url
                .clone()
                .or(device_default.map(str::to_owned)),
            token_url,
            copilot_token_url: cfg
                .copilot_token_url
                .clone()
                .unwrap_or_else(|| "https://api.github.com/copilot_internal/v2/token".to_owned()),
            oidc_url,
            start_url: cfg
                .start_url
                .clone()
                .unwrap_or_else(|| "https://view.awsapps.com/start".to_owned()),
            http,
            browser,
        }
    }

    /// The browser login (Codex, the Gemini CLI), when this login has one.
    pub fn browser(&self) -> Option<&super::browser::BrowserLogin> {
        self.browser.as_ref()
    }

    fn config_error(&self, message: &str) -> LoginError {
        LoginError::Config {
            login: self.name.clone(),
            message: message.to_owned(),
        }
    }

    fn server_error(&self, message: String) -> LoginError {
        LoginError::Server {
            login: self.name.clone(),
            message,
        }
    }

    /// What is missing for this login to work (checked at startup).
    pub fn check(&self) -> Result<(), LoginError> {
        if matches!(
            self.kind,
            DeviceLoginKind::GeminiCli | DeviceLoginKind::Codex
        ) {
            if self.client_id.is_none() || self.token_url.is_none() {
                return Err(self.config_error("`client_id` and `token_url` are required"));
            }
        } else if self.kind != DeviceLoginKind::Kiro {
            if self.client_id.is_none() {
                return Err(self.config_error("`client_id` is required"));
            }
            if self.device_url.is_none() || self.token_url.is_none() {
                return Err(
                    self.config_error("`device_authorization_url` and `token_url` are required")
                );
            }
        }
        Ok(())
    }

    /// Sends a form (`json: None`) or JSON body and reads a JSON answer of any status.
    async fn call(
        &self,
        url: &str,
        form: Option<&[(&str, &str)]>,
        json: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<(u16, Value), LoginError> {
        // Bodies are encoded here (the library's reqwest has no form/json features).
        let mut req = match (form, json) {
            (Some(f), _) => {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(f.iter())
                    .finish();
                self.http
                    .post(url)
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            (None, Some(j)) => self
                .http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(j.to_string()),
            (None, None) => self.http.get(url),
        };
        req = req.header(http::header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("token {t}"));
        }
        let resp = req.send().await.map_err(|e| {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            self.server_error(format!("cannot reach {url}: {text}"))
        })?;
        let status = resp.status().as_u16();
        let body = crate::net::read_body_limited(resp, MAX_ANSWER)
            .await
            .map_err(|e| self.server_error(format!("{url}: {e}")))?;
        let value = serde_json::from_slice(&body)
            .map_err(|_| self.server_error(format!("{url} answered HTTP {status} without JSON")))?;
        Ok((status, value))
    }

    fn refused(&self, v: &Value) -> LoginError {
        // OAuth's `{"error": "code"}`, or OpenAI's `{"error": {"code", "message"}}`.
        let code = v["error"]
            .as_str()
            .or(v["error"]["code"].as_str())
            .unwrap_or("error");
        let text = v["error_description"]
            .as_str()
            .or(v["message"].as_str())
            .or(v["error"]["message"].as_str())
            .unwrap_or("");
        LoginError::Refused {
            login: self.name.clone(),
            message: if text.is_empty() {
                code.to_owned()
            } else {
                format!("{code}: {text}")
            },
        }
    }

    /// Starts a device authorization.
    pub async fn start(&self) -> Result<Started, LoginError> {
        match self.kind {
            DeviceLoginKind::Kiro => return self.kiro_start().await,
            DeviceLoginKind::GeminiCli | DeviceLoginKind::Codex => {
                let (cli, command) = match self.kind {
                    DeviceLoginKind::GeminiCli => ("the Gemini CLI", "gemini"),
                    _ => ("the Codex CLI", "codex login"),
                };
                return Err(self.config_error(&format!(
                    "this login is a browser login, not a device flow: run `portcullis auths \
                     login {}` on the gateway's machine, or log in with {cli} (`{command}`) and \
                     the gateway imports its file",
                    self.backend
                )));
            }
            _ => {}
        }
        self.check()?;
        let url = self.device_url.as_deref().unwrap_or_default();
        let client_id = self.client_id.as_deref().unwrap_or_default();
        let mut form = vec![("client_id", client_id)];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        let pkce = match self.kind {
            DeviceLoginKind::QwenCode => {
                let random = crate::secret::random_bytes::<32>()
                    .map_err(|e| self.server_error(format!("no randomness: {e}")))?;
                Some(Secret::new(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random),
                ))
            }
            _ => None,
        };
        let challenge = pkce
            .as_ref()
            .map(|v| crate::secret::pkce_challenge(v.expose()));
        if let Some(c) = &challenge {
            form.push(("code_challenge", c));
            form.push(("code_challenge_method", "S256"));
        }
        let (status, v) = self.call(url, Some(&form), None, None).await?;
        if status >= 400 || v.get("error").is_some() {
            return Err(self.refused(&v));
        }
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let (Some(device_code), Some(user_code)) = (text("device_code"), text("user_code")) else {
            return Err(self.server_error(format!("{url} answered without device_code/user_code")));
        };
        Ok(Started {
            user_code,
            verification_uri: text("verification_uri")
                .or(text("verification_url"))
                .unwrap_or_default(),
            verification_uri_complete: text("verification_uri_complete"),
            expires_in: v["expires_in"].as_u64().unwrap_or(900),
            interval: v["interval"].as_u64().unwrap_or(5).max(1),
            device_code: Secret::new(device_code),
            client: None,
            pkce,
        })
    }

    async fn kiro_start(&self) -> Result<Started, LoginError> {
        let register = format!("{}/client/register", self.oidc_url);
        let (status, v) = self
            .call(
                &register,
                None,
                Some(&json!({"clientName": "portcullis", "clientType": "public", "scopes": KIRO_SCOPES})),
                None,
            )
            .await?;
        if status >= 400 {
            return Err(self.refused(&v));
        }
        let (Some(id), Some(secret)) = (v["clientId"].as_str(), v["clientSecret"].as_str()) else {
            return Err(
                self.server_error("client registration without clientId/clientSecret".to_owned())
            );
        };
        let (id, secret) = (id.to_owned(), Secret::new(secret));
        let url = format!("{}/device_authorization", self.oidc_url);
        let (status, v) = self
            .call(
                &url,
                None,
                Some(&json!({"clientId": id, "clientSecret": secret.expose(), "startUrl": self.start_url})),
                None,
            )
            .await?;
        if status >= 400 {
            return Err(self.refused(&v));
        }
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let (Some(device_code), Some(user_code)) = (text("deviceCode"), text("userCode")) else {
            return Err(
                self.server_error("device authorization without deviceCode/userCode".to_owned())
            );
        };
        Ok(Started {
            user_code,
            verification_uri: text("verificationUri").unwrap_or_default(),
            verification_uri_complete: text("verificationUriComplete"),
            expires_in: v["expiresIn"].as_u64().unwrap_or(600),
            interval: v["interval"].as_u64().unwrap_or(5).max(1),
            device_code: Secret::new(device_code),
            client: Some((id, secret)),
            pkce: None,
        })
    }

    /// Polls the token endpoint once; `now` (ms) dates the tokens.
    pub async fn poll(&self, started: &Started, now: u64) -> Result<Poll, LoginError> {
        const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
        let (status, v) = match (&self.kind, &started.client) {
            (DeviceLoginKind::Kiro, Some((id, secret))) => {
                let url = format!("{}/token", self.oidc_url);
                self.call(
                    &url,
                    None,
                    Some(&json!({"clientId": id, "clientSecret": secret.expose(),
                                 "deviceCode": started.device_code.expose(), "grantType": GRANT})),
                    None,
                )
                .await?
            }
            _ => {
                let url = self.token_url.as_deref().unwrap_or_default();
                let mut form = self.client_form(&[
                    ("grant_type", GRANT),
                    ("device_code", started.device_code.expose()),
                ]);
                if let Some(v) = &started.pkce {
                    form.push(("code_verifier", v.expose()));
                }
                self.call(url, Some(&form), None, None).await?
            }
        };
        // GitHub answers pending with HTTP 200 and an `error` field; others with 400.
        match v["error"].as_str() {
            Some("authorization_pending") => return Ok(Poll::Pending),
            Some("slow_down") => return Ok(Poll::SlowDown),
            Some(_) => return Err(self.refused(&v)),
            None if status >= 400 => return Err(self.refused(&v)),
            None => {}
        }
        let mut tokens = self.tokens_of(&v, now)?;
        if let Some((id, secret)) = &started.client {
            tokens.state.client_id = Some(id.clone());
            tokens.state.client_secret = Some(secret.expose().to_owned());
        }
        if self.kind == DeviceLoginKind::Copilot {
            let github = tokens.access;
            return Ok(Poll::Done(Box::new(
                self.copilot_exchange(github.expose()).await?,
            )));
        }
        Ok(Poll::Done(Box::new(tokens)))
    }

    /// Tokens from a token-endpoint answer (snake_case, or AWS's camelCase).
    fn tokens_of(&self, v: &Value, now: u64) -> Result<Tokens, LoginError> {
        let access = v["access_token"]
            .as_str()
            .or(v["accessToken"].as_str())
            .ok_or_else(|| self.server_error("the token answer has no access token".to_owned()))?;
        let refresh = v["refresh_token"]
            .as_str()
            .or(v["refreshToken"].as_str())
            .map(str::to_owned);
        let expires_in = v["expires_in"].as_u64().or(v["expiresIn"].as_u64());
        // Codex: no `expires_in`; the access token is a JWT with its expiry.
        let jwt_exp = || {
            connectors::jwt_claims(access)
                .and_then(|c| c["exp"].as_u64())
                .map(secs_to_ms)
        };
        let account = Account {
            base_url: v["resource_url"]
                .as_str()
                .and_then(connectors::qwen_base_url),
            account_id: v["id_token"]
                .as_str()
                .and_then(connectors::chatgpt_account_id),
            profile_arn: v["profileArn"].as_str().map(str::to_owned),
            email: v["id_token"]
                .as_str()
                .and_then(connectors::jwt_claims)
                .and_then(|c| c["email"].as_str().map(str::to_owned)),
            ..Account::default()
        };
        Ok(Tokens {
            access: Secret::new(access),
            expires_at: expires_in
                .map(|s| now.saturating_add(secs_to_ms(s)))
                .or_else(jwt_exp),
            state: RefreshState {
                login: self.name.clone(),
                refresh_token: refresh,
                account,
                ..RefreshState::default()
            },
        })
    }

    /// GitHub token → Copilot token (`GET copilot_internal/v2/token`).
    async fn copilot_exchange(&self, github_token: &str) -> Result<Tokens, LoginError> {
        let (status, v) = self
            .call(&self.copilot_token_url, None, None, Some(github_token))
            .await?;
        if status >= 400 {
            return Err(LoginError::Refused {
                login: self.name.clone(),
                message: format!(
                    "the Copilot token exchange answered HTTP {status}{}",
                    v["message"]
                        .as_str()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
        let token = v["token"]
            .as_str()
            .ok_or_else(|| self.server_error("the Copilot token answer has no token".to_owned()))?;
        Ok(Tokens {
            access: Secret::new(token),
            expires_at: v["expires_at"].as_u64().map(secs_to_ms),
            state: RefreshState {
                login: self.name.clone(),
                github_token: Some(github_token.to_owned()),
                ..RefreshState::default()
            },
        })
    }

    /// Renews a credential from its refresh state (a connector's account facts kept, updated
    /// by what the answer says).
    pub async fn refresh(&self, state: &RefreshState, now: u64) -> Result<Tokens, LoginError> {
        let mut tokens = self.renew(state, now).await?;
        tokens.state.account = std::mem::take(&mut tokens.state.account).or(&state.account);
        Ok(tokens)
    }

    async fn renew(&self, state: &RefreshState, now: u64) -> Result<Tokens, LoginError> {
        if self.kind == DeviceLoginKind::Copilot {
            let gh = state.github_token.as_deref().ok_or_else(|| {
                self.config_error("the credential has no GitHub token: log in again")
            })?;
            return self.copilot_exchange(gh).await;
        }
        let no_login = || self.config_error("the credential has no refresh token: log in again");
        let rt = state.refresh_token.as_deref().ok_or_else(no_login)?;
        let token_url = || {
            self.token_url
                .as_deref()
                .ok_or_else(|| self.config_error("`token_url` is required"))
        };
        match self.kind {
            // A social login (Google, GitHub) of the Kiro IDE: Kiro's own refresh.
            DeviceLoginKind::Kiro if state.client_id.is_none() => {
                let body = json!({"refreshToken": rt});
                self.grant(token_url()?, Body::Json(&body), Some(rt), now)
                    .await
            }
            // Builder ID and Identity Center: SSO-OIDC, with the registered client.
            DeviceLoginKind::Kiro => {
                let (Some(id), Some(secret)) = (&state.client_id, &state.client_secret) else {
                    return Err(no_login());
                };
                let body = json!({"clientId": id, "clientSecret": secret,
                                  "refreshToken": rt, "grantType": "refresh_token"});
                let url = format!("{}/token", self.oidc_url);
                let mut t = self.grant(&url, Body::Json(&body), Some(rt), now).await?;
                t.state.client_id = Some(id.clone());
                t.state.client_secret = Some(secret.clone());
                Ok(t)
            }
            DeviceLoginKind::Codex => {
                let body = json!({"client_id": self.client_id, "grant_type": "refresh_token",
                                  "refresh_token": rt, "scope": self.scope});
                self.grant(token_url()?, Body::Json(&body), Some(rt), now)
                    .await
            }
            _ => {
                let form =
                    self.client_form(&[("grant_type", "refresh_token"), ("refresh_token", rt)]);
                self.grant(token_url()?, Body::Form(&form), Some(rt), now)
                    .await
            }
        }
    }

    /// `pairs` with the login's client (`client_id`, and `client_secret` when it has one).
    fn client_form<'a>(&'a self, pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut form = pairs.to_vec();
        form.push(("client_id", self.client_id.as_deref().unwrap_or_default()));
        if let Some(s) = &self.client_secret {
            form.push(("client_secret", s.expose()));
        }
        form
    }

    /// One token-endpoint grant: its answer's tokens, keeping `refresh` (the grant's refresh
    /// token) when the answer brings no new one — a server that does not rotate refresh tokens
    /// keeps the old one valid.
    async fn grant(
        &self,
        url: &str,
        body: Body<'_>,
        refresh: Option<&str>,
        now: u64,
    ) -> Result<Tokens, LoginError> {
        let (form, json) = match body {
            Body::Form(f) => (Some(f), None),
            Body::Json(j) => (None, Some(j)),
        };
        let (status, v) = self.call(url, form, json, None).await?;
        if status >= 400 || v.get("error").is_some() {
            return Err(self.refused(&v));
        }
        let mut t = self.tokens_of(&v, now)?;
        t.state.refresh_token = t.state.refresh_token.or(refresh.map(str::to_owned));
        Ok(t)
    }

    /// Exchanges a browser login's approval (Codex, the Gemini CLI) for its tokens: the
    /// authorization-code grant with the PKCE verifier.
    pub async fn exchange_code(
        &self,
        approval: &super::browser::Approval,
        now: u64,
    ) -> Result<Tokens, LoginError> {
        let url = self
            .token_url
            .as_deref()
            .ok_or_else(|| self.config_error("`token_url` is required"))?;
        let form = self.client_form(&[
            ("grant_type", "authorization_code"),
            ("code", approval.code.expose()),
            ("redirect_uri", &approval.redirect_uri),
            ("code_verifier", approval.verifier.expose()),
        ]);
        self.grant(url, Body::Form(&form), None, now).await
    }
}

/// A token-endpoint request's body: a form, or JSON.
enum Body<'a> {
    Form(&'a [(&'a str, &'a str)]),
    Json(&'a Value),
}

/// How long to wait between polls.
pub fn poll_interval(started: &Started, slowed: u64) -> Duration {
    Duration::from_secs(started.interval + slowed)
}
