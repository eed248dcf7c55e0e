//! Identity providers: OpenID Connect issuers (by discovery) and GitHub. Each builds the
//! authorization URL of a login and, on the callback, turns the code into a verified
//! [`Identity`].
//!
//! OIDC ID tokens are verified against the issuer's JWKS — signature with an asymmetric
//! algorithm only (HS* and `none` are refused), issuer, audience (and `azp` when there are several
//! audiences), expiry and the login's nonce — never accepted unverified. Discovery and JWKS are
//! cached (for an hour of the gateway's clock); an unknown `kid` refetches the JWKS (at most every 10 s). ID-token expiry is checked
//! against the wall clock by `jsonwebtoken`: it is the identity provider's clock that set it, so
//! the gateway's (injectable) clock does not apply. The HTTP client follows no redirects.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Validation;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::clock::SharedClock;
use crate::config::{SsoProviderConfig, SsoProviderKind};
use crate::identity::jwks::{JwksError, RemoteJwks};
use crate::secret::Secret;

/// The largest answer read from a provider (discovery document, token response, user info,
/// GitHub API); reading stops there.
const MAX_ANSWER: usize = 1024 * 1024;

/// Who the identity provider says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Provider name (as configured).
    pub provider: String,
    /// The provider's stable subject id.
    pub subject: String,
    /// Email, unless the provider says it is unverified.
    pub email: Option<String>,
    /// The provider said explicitly that the email is verified.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
}

/// Why a login could not be completed with the provider. Messages are for logs; the browser gets
/// a generic page naming the step.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered garbage.
    #[error("identity provider request failed: {0}")]
    Http(String),
    /// The provider refused the code exchange.
    #[error("the identity provider refused the login: {0}")]
    Refused(String),
    /// The ID token did not verify.
    #[error("the ID token is not valid: {0}")]
    BadIdToken(String),
    /// The account is not allowed (email domain).
    #[error("this account is not allowed: {0}")]
    NotAllowed(String),
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// One configured identity provider.
pub struct Provider {
    /// Configured name.
    pub name: String,
    /// Label for the picker.
    pub display_name: String,
    kind: SsoProviderKind,
    client_id: String,
    client_secret: Secret,
    scopes: String,
    allowed_domains: Vec<String>,
    discovery_url: String,
    issuer: Option<String>,
    github: GithubEndpoints,
    /// The discovery document and the clock time (ms) it was fetched.
    discovery: Mutex<Option<(Arc<Discovery>, u64)>>,
    /// Decides when the discovery document and the key set expire.
    clock: SharedClock,
    /// The issuer's keys (its URL comes from discovery).
    jwks: tokio::sync::OnceCell<RemoteJwks>,
    http: reqwest::Client,
}

struct GithubEndpoints {
    authorize: String,
    token: String,
    api: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

/// What the callback must send back to the token endpoint.
pub struct CodeExchange<'a> {
    /// The authorization code.
    pub code: &'a str,
    /// The redirect URI used in the authorization request.
    pub redirect_uri: &'a str,
    /// The PKCE verifier.
    pub pkce_verifier: &'a str,
    /// The nonce the ID token must carry.
    pub nonce: &'a str,
}

impl Provider {
    /// Builds a provider from its (validated) configuration.
    pub fn new(
        name: &str,
        c: &SsoProviderConfig,
        http: reqwest::Client,
        clock: SharedClock,
    ) -> Self {
        let trim = |s: &str| s.trim_end_matches('/').to_owned();
        let discovery_url = match (&c.discovery_url, &c.issuer) {
            (Some(d), _) => d.clone(),
            (None, Some(i)) => format!("{}/.well-known/openid-configuration", trim(i)),
            (None, None) => String::new(),
        };
        Self {
            name: name.to_owned(),
            display_name: c.display_name.clone().unwrap_or_else(|| name.to_owned()),
            kind: c.kind,
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone().unwrap_or_else(|| Secret::new("")),
            scopes: c.effective_scopes().join(" "),
            allowed_domains: c
                .allowed_domains
                .iter()
                .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                .collect(),
            discovery_url,
            issuer: c.issuer.as_deref().map(trim),
            github: GithubEndpoints {
                authorize: c
                    .authorize_url
                    .clone()
                    .unwrap_or_else(|| "https://github.com/login/oauth/authorize".to_owned()),
                token: c
                    .token_url
                    .clone()
                    .unwrap_or_else(|| "https://github.com/login/oauth/access_token".to_owned()),
                api: trim(c.api_url.as_deref().unwrap_or("https://api.github.com")),
            },
            discovery: Mutex::new(None),
            clock,
            jwks: tokio::sync::OnceCell::new(),
            http,
        }
    }

    /// The URL the browser is sent to.
    pub async fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce_challenge: &str,
    ) -> Result<String, ProviderError> {
        let endpoint = match self.kind {
            SsoProviderKind::Oidc => self.discovery().await?.authorization_endpoint.clone(),
            SsoProviderKind::Github => self.github.authorize.clone(),
        };
        let mut url = reqwest::Url::parse(&endpoint)
            .map_err(|e| ProviderError::Http(format!("bad authorization endpoint: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &self.scopes)
                .append_pair("state", state)
                .append_pair("code_challenge", pkce_challenge)
                .append_pair("code_challenge_method", "S256");
            if self.kind == SsoProviderKind::Oidc {
                q.append_pair("nonce", nonce);
            }
        }
        Ok(url.into())
    }

    /// Exchanges the code and returns the verified identity.
    pub async fn complete(&self, x: &CodeExchange<'_>) -> Result<Identity, ProviderError> {
        let identity = match self.kind {
            SsoProviderKind::Oidc => self.complete_oidc(x).await?,
            SsoProviderKind::Github => self.complete_github(x).await?,
        };
        if !self.allowed_domains.is_empty() {
            // Only an email the provider says it verified can pass a domain rule.
            let domain = identity
                .email
                .as_deref()
                .filter(|_| identity.email_verified)
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.to_ascii_lowercase());
            if !domain.is_some_and(|d| self.allowed_domains.contains(&d)) {
                return Err(ProviderError::NotAllowed(format!(
                    "email domain not in sso.providers.{}.allowed_domains",
                    self.name
                )));
            }
        }
        Ok(identity)
    }

    async fn discovery(&self) -> Result<Arc<Discovery>, ProviderError> {
        let mut cache = self.discovery.lock().await;
        let now = self.clock.now_millis();
        if let Some((d, at)) = cache.as_ref()
            && u128::from(now.saturating_sub(*at)) < DISCOVERY_TTL.as_millis()
        {
            return Ok(d.clone());
        }
        let d: Discovery = self.get_json(&self.discovery_url, None).await?;
        if let Some(expected) = &self.issuer
            && d.issuer.trim_end_matches('/') != expected
        {
            return Err(ProviderError::Http(format!(
                "discovery document names issuer `{}`, configured issuer is `{expected}`",
                d.issuer
            )));
        }
        let d = Arc::new(d);
        *cache = Some((d.clone(), now));
        Ok(d)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, ProviderError> {
        let mut req = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json");
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ProviderError::Http(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = crate::net::read_body_limited(resp, MAX_ANSWER)
            .await
            .map_err(|e| ProviderError::Http(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            return Err(ProviderError::Http(format!("GET {url}: HTTP {status}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Http(format!("GET {url}: unexpected answer: {e}")))
    }

    /// POSTs the token request; `basic` chooses HTTP Basic client authentication.
    async fn token_request(
        &self,
        url: &str,
        x: &CodeExchange<'_>,
        basic: bool,
    ) -> Result<TokenResponse, ProviderError> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", x.code)
                .append_pair("redirect_uri", x.redirect_uri)
                .append_pair("code_verifier", x.pkce_verifier);
            if !basic {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", self.client_secret.expose());
            }
            form.finish()
        };
        let mut req = self
            .http
            .post(url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if basic {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&self.client_id), Some(enc(self.client_secret.expose())));
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::Http(format!("POST {url}: {e}")))?;
        let status = resp.status();
        let body = crate::net::read_body_limited(resp, MAX_ANSWER)
            .await
            .map_err(|e| ProviderError::Http(format!("POST {url}: {e}")))?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            ProviderError::Http(format!("POST {url}: HTTP {status}, not a token response"))
        })?;
        if let Some(err) = &parsed.error {
            return Err(ProviderError::Refused(format!(
                "{err}{}",
                parsed
                    .error_description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )));
        }
        if !status.is_success() || parsed.access_token.is_none() {
            return Err(ProviderError::Refused(format!(
                "token endpoint answered HTTP {status}"
            )));
        }
        Ok(parsed)
    }

    async fn complete_oidc(&self, x: &CodeExchange<'_>) -> Result<Identity, ProviderError> {
        let d = self.discovery().await?;
        let basic = d.token_endpoint_auth_methods_supported.is_empty()
            || d.token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic");
        let tokens = self.token_request(&d.token_endpoint, x, basic).await?;
        let id_token = tokens.id_token.as_deref().ok_or_else(|| {
            ProviderError::BadIdToken("the token response has no id_token".into())
        })?;
        let claims = self.verify_id_token(&d, id_token, x.nonce).await?;
        let mut email_verified = claims.says_verified();
        let mut email = claims.verified_email();
        let mut name = claims.name.clone().or(claims.preferred_username.clone());
        if (email.is_none() || name.is_none())
            && let (Some(userinfo), Some(access)) = (&d.userinfo_endpoint, &tokens.access_token)
        {
            match self.get_json::<IdClaims>(userinfo, Some(access)).await {
                Ok(info) if info.sub == claims.sub => {
                    if email.is_none() {
                        email_verified = info.says_verified();
                    }
                    email = email.or(info.verified_email());
                    name = name.or(info.name).or(info.preferred_username);
                }
                Ok(_) => {
                    tracing::warn!(provider = %self.name, "userinfo subject differs from the ID token's; ignored")
                }
                Err(e) => {
                    tracing::warn!(provider = %self.name, error = %e, "userinfo request failed; continuing with the ID token's claims")
                }
            }
        }
        Ok(Identity {
            provider: self.name.clone(),
            subject: claims.sub,
            email,
            email_verified,
            name,
        })
    }

    async fn verify_id_token(
        &self,
        d: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<IdClaims, ProviderError> {
        let bad = |m: String| ProviderError::BadIdToken(m);
        let jwks = self
            .jwks
            .get_or_init(|| async {
                RemoteJwks::new(d.jwks_uri.clone(), self.http.clone(), self.clock.clone())
            })
            .await;
        let claims: IdClaims = jwks
            .decode(token, |alg| {
                let mut v = Validation::new(alg);
                v.set_issuer(&[d.issuer.as_str()]);
                v.set_audience(&[self.client_id.as_str()]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.validate_nbf = true;
                v.leeway = 60;
                v
            })
            .await
            .map_err(|e| match e {
                JwksError::Fetch(m) => ProviderError::Http(m),
                JwksError::Invalid(m) => bad(m),
            })?;
        let nonce_ok = claims.nonce.as_deref().is_some_and(|n| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                n.as_bytes(),
                nonce.as_bytes(),
            ))
        });
        if !nonce_ok {
            return Err(bad("the nonce does not match this login".into()));
        }
        if let serde_json::Value::Array(auds) = &claims.aud
            && auds.len() > 1
            && claims.azp.as_deref() != Some(self.client_id.as_str())
        {
            return Err(bad("several audiences and azp is not this client".into()));
        }
        Ok(claims)
    }

    async fn complete_github(&self, x: &CodeExchange<'_>) -> Result<Identity, ProviderError> {
        let tokens = self.token_request(&self.github.token, x, false).await?;
        let access = tokens.access_token.unwrap_or_default();
        let user: GithubUser = self
            .get_json(&format!("{}/user", self.github.api), Some(&access))
            .await?;
        let emails: Vec<GithubEmail> = self
            .get_json(&format!("{}/user/emails", self.github.api), Some(&access))
            .await
            .unwrap_or_default();
        let email = emails
            .iter()
            .find(|e| e.primary && e.verified)
            .or_else(|| emails.iter().find(|e| e.verified))
            .map(|e| e.email.clone());
        Ok(Identity {
            provider: self.name.clone(),
            subject: user.id.to_string(),
            email_verified: email.is_some(),
            email,
            name: user.name.or(Some(user.login)),
        })
    }
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

impl IdClaims {
    /// `email_verified` is present and true (`true` or `"true"`).
    fn says_verified(&self) -> bool {
        matches!(&self.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(&self.email_verified, Some(serde_json::Value::String(s)) if s == "true")
    }

    /// The email unless the provider says it is unverified.
    fn verified_email(&self) -> Option<String> {
        let unverified = matches!(&self.email_verified, Some(serde_json::Value::Bool(false)))
            || matches!(&self.email_verified, Some(serde_json::Value::String(s)) if s == "false");
        if unverified { None } else { self.email.clone() }
    }
}

#[derive(Debug, Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}
