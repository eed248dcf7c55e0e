//! `sso.*` and `management.*`: browser login that issues per-device agent tokens (PRODUCT §3), and
//! the administrator's key for the management API. Types here; the rules are in [`validate_sso`]
//! and [`validate_management`]. [`resolve_secrets`] reads every `*_env` secret outside the
//! backends (SSO, management, `auth.jwt`, `auth.encryption`), and [`validate_jwt`] checks the
//! token server's settings, which share these URL rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::secret::Secret;

/// `sso.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsoConfig {
    /// Turns SSO on: unauthenticated agents get a sandbox answer with a login link.
    pub enabled: bool,
    /// The address browsers use to reach the gateway (links and the OAuth redirect URI); default
    /// `http://{server.host}:{server.port}`.
    pub public_url: Option<String>,
    /// How long a login keeps a device's token working (default 24 hours).
    pub session_lifetime_hours: u64,
    /// Identity providers by name (the name appears in the redirect and on the picker page).
    pub providers: BTreeMap<String, SsoProviderConfig>,
    /// Who may finish a login.
    pub authorization: SsoAuthorizationConfig,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            public_url: None,
            session_lifetime_hours: 24,
            providers: BTreeMap::new(),
            authorization: SsoAuthorizationConfig::default(),
        }
    }
}

/// The kind of identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoProviderKind {
    /// Any OpenID Connect issuer, configured by discovery (Google, Entra, Okta, Auth0, Keycloak,
    /// AWS IAM Identity Center).
    Oidc,
    /// GitHub: OAuth 2.0 plus the user and email API.
    Github,
}

/// `sso.providers.<name>.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    /// `oidc` or `github`.
    #[serde(rename = "type")]
    pub kind: SsoProviderKind,
    /// Label on the picker page (default: the provider's name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// OIDC issuer; discovery is read from `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// OIDC discovery document URL, when it is not under the issuer.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// OAuth client id.
    #[serde(default)]
    pub client_id: String,
    /// OAuth client secret (prefer `client_secret_env`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Environment variable holding the client secret (or `NAME_FILE`).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes requested (default: `openid email profile` for OIDC, `read:user user:email` for
    /// GitHub).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// GitHub authorize endpoint (default `https://github.com/login/oauth/authorize`).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// GitHub token endpoint (default `https://github.com/login/oauth/access_token`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// GitHub API base (default `https://api.github.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// Only these email domains may log in (empty: any).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

impl SsoProviderConfig {
    /// The scopes to request.
    pub fn effective_scopes(&self) -> Vec<String> {
        if !self.scopes.is_empty() {
            return self.scopes.clone();
        }
        let defaults: &[&str] = match self.kind {
            SsoProviderKind::Oidc => &["openid", "email", "profile"],
            SsoProviderKind::Github => &["read:user", "user:email"],
        };
        defaults.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// How a login is authorized once the identity provider has vouched for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SsoAuthorizationMode {
    /// The gateway prints a confirmation code on its console; the browser must enter it.
    #[default]
    SingleUser,
    /// An external authorization API decides (fail closed).
    Enterprise,
}

/// `sso.authorization.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsoAuthorizationConfig {
    /// `single_user` (default) or `enterprise`.
    pub mode: SsoAuthorizationMode,
    /// Enterprise: the authorization API.
    pub api_url: Option<String>,
    /// Enterprise: bearer secret sent to the API.
    pub api_secret: Option<Secret>,
    /// Enterprise: environment variable holding the bearer secret.
    pub api_secret_env: Option<String>,
    /// Enterprise: how long to wait for the API (default 5 s); no answer means no.
    pub api_timeout_seconds: u64,
    /// Single-user: how long a confirmation code lives (default 10 minutes).
    pub confirmation_code_expiry_minutes: u64,
    /// Single-user: wrong codes allowed before the login is abandoned (default 3).
    pub max_confirmation_attempts: u32,
}

impl Default for SsoAuthorizationConfig {
    fn default() -> Self {
        Self {
            mode: SsoAuthorizationMode::SingleUser,
            api_url: None,
            api_secret: None,
            api_secret_env: None,
            api_timeout_seconds: 5,
            confirmation_code_expiry_minutes: 10,
            max_confirmation_attempts: 3,
        }
    }
}

/// `management.*`: the management API (`/v0/management/…`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    /// The administrator's key; without one the management API answers 404.
    pub key: Option<Secret>,
    /// Environment variable holding the key (or `NAME_FILE`).
    pub key_env: Option<String>,
    /// Accept management calls from non-loopback addresses (default: loopback only).
    pub allow_remote: bool,
}

/// Resolves `*_env` secrets of the SSO and management sections.
pub(crate) fn resolve_secrets(
    config: &mut super::Config,
    env: &dyn super::env::EnvSource,
) -> Result<(), ConfigError> {
    // A disabled SSO section may name variables that are not set (the shipped example does).
    let sso_on = config.sso.enabled;
    for (name, p) in config.sso.providers.iter_mut().filter(|_| sso_on) {
        if p.client_secret.is_none()
            && let Some(var) = &p.client_secret_env
        {
            p.client_secret = Some(required_env(
                env,
                var,
                &format!("sso.providers.{name}.client_secret_env"),
            )?);
        }
    }
    let a = &mut config.sso.authorization;
    if sso_on
        && a.api_secret.is_none()
        && let Some(var) = &a.api_secret_env
    {
        a.api_secret = Some(required_env(env, var, "sso.authorization.api_secret_env")?);
    }
    if sso_on && a.api_secret.is_none() {
        a.api_secret = super::env::env_secret(env, "SSO_AUTH_API_SECRET")?;
    }
    let j = &mut config.auth.jwt;
    if j.hs256_secret.is_none()
        && let Some(var) = &j.hs256_secret_env
    {
        j.hs256_secret = Some(required_env(env, var, "auth.jwt.hs256_secret_env")?);
    }
    let e = &mut config.auth.encryption;
    if e.key.is_none()
        && let Some(var) = &e.key_env
    {
        e.key = Some(required_env(env, var, "auth.encryption.key_env")?);
    }
    if e.key.is_none() {
        e.key = super::env::env_secret(env, "PORTCULLIS_ENCRYPTION_KEY")?;
    }
    let m = &mut config.management;
    if m.key.is_none()
        && let Some(var) = &m.key_env
    {
        m.key = Some(required_env(env, var, "management.key_env")?);
    }
    if m.key.is_none() {
        m.key = super::env::env_secret(env, "PORTCULLIS_MANAGEMENT_KEY")?;
    }
    let m = &mut config.metrics;
    if m.key.is_none()
        && let Some(var) = &m.key_env
    {
        m.key = Some(required_env(env, var, "metrics.key_env")?);
    }
    Ok(())
}

fn required_env(
    env: &dyn super::env::EnvSource,
    var: &str,
    key: &str,
) -> Result<Secret, ConfigError> {
    super::env::env_secret(env, var)?.ok_or_else(|| ConfigError::Invalid {
        key: key.to_owned(),
        origin: "configuration".to_owned(),
        message: format!("environment variable {var} (or {var}_FILE) is not set"),
    })
}

pub(super) fn http_url(url: &str) -> bool {
    matches!(reqwest::Url::parse(url), Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Longest `sso.session_lifetime_hours` (365 days).
const MAX_SESSION_HOURS: u64 = 365 * 24;

/// Longest `sso.authorization.confirmation_code_expiry_minutes` (one day).
const MAX_CODE_MINUTES: u64 = 24 * 60;

/// The SSO rules: a usable provider when enabled, well-formed URLs, sane limits.
pub(crate) fn validate_sso(
    config: &super::Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let sso = &config.sso;
    if !sso.enabled {
        return Ok(());
    }
    if sso.providers.is_empty() {
        return Err(fail(
            "sso.providers",
            "SSO is enabled but no identity provider is configured: add one under sso.providers (type oidc with issuer, client_id and client_secret, or type github), or turn SSO off".to_owned(),
        ));
    }
    if let Some(url) = &sso.public_url
        && !http_url(url)
    {
        return Err(fail(
            "sso.public_url",
            format!("`{url}` is not an http:// or https:// URL"),
        ));
    }
    if !(1..=MAX_SESSION_HOURS).contains(&sso.session_lifetime_hours) {
        return Err(fail(
            "sso.session_lifetime_hours",
            format!("must be between 1 and {MAX_SESSION_HOURS} (365 days)"),
        ));
    }
    for (name, p) in &sso.providers {
        let key = |k: &str| format!("sso.providers.{name}.{k}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(fail(
                &format!("sso.providers.{name}"),
                "provider names may use only letters, digits, `-` and `_`".to_owned(),
            ));
        }
        if p.client_id.trim().is_empty() {
            return Err(fail(&key("client_id"), "is required".to_owned()));
        }
        if p.client_secret.is_none() {
            return Err(fail(
                &key("client_secret"),
                "is required (or client_secret_env naming an environment variable)".to_owned(),
            ));
        }
        match p.kind {
            SsoProviderKind::Oidc => {
                if p.issuer.is_none() && p.discovery_url.is_none() {
                    return Err(fail(
                        &key("issuer"),
                        "an OIDC provider needs `issuer` (or `discovery_url`)".to_owned(),
                    ));
                }
                for (k, v) in [("issuer", &p.issuer), ("discovery_url", &p.discovery_url)] {
                    if let Some(v) = v
                        && !http_url(v)
                    {
                        return Err(fail(&key(k), format!("`{v}` is not an http(s) URL")));
                    }
                }
            }
            SsoProviderKind::Github => {
                for (k, v) in [
                    ("authorize_url", &p.authorize_url),
                    ("token_url", &p.token_url),
                    ("api_url", &p.api_url),
                ] {
                    if let Some(v) = v
                        && !http_url(v)
                    {
                        return Err(fail(&key(k), format!("`{v}` is not an http(s) URL")));
                    }
                }
            }
        }
    }
    let a = &sso.authorization;
    match a.mode {
        SsoAuthorizationMode::Enterprise => match &a.api_url {
            None => {
                return Err(fail(
                    "sso.authorization.api_url",
                    "enterprise authorization needs the URL of the authorization API".to_owned(),
                ));
            }
            Some(u) if !http_url(u) => {
                return Err(fail(
                    "sso.authorization.api_url",
                    format!("`{u}` is not an http(s) URL"),
                ));
            }
            Some(_) => {}
        },
        SsoAuthorizationMode::SingleUser => {
            if a.max_confirmation_attempts == 0 {
                return Err(fail(
                    "sso.authorization.max_confirmation_attempts",
                    "must be at least 1".to_owned(),
                ));
            }
            if !(1..=MAX_CODE_MINUTES).contains(&a.confirmation_code_expiry_minutes) {
                return Err(fail(
                    "sso.authorization.confirmation_code_expiry_minutes",
                    format!("must be between 1 and {MAX_CODE_MINUTES} (one day)"),
                ));
            }
        }
    }
    if a.api_timeout_seconds == 0 || a.api_timeout_seconds > 60 {
        return Err(fail(
            "sso.authorization.api_timeout_seconds",
            "must be between 1 and 60".to_owned(),
        ));
    }
    Ok(())
}

/// The token server's rules: a long enough HS256 secret, usable issuer entries.
pub(crate) fn validate_jwt(
    config: &super::Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let j = &config.auth.jwt;
    if j.lifetime.0.as_secs() < 60 || j.lifetime.0.as_secs() > 30 * 86_400 {
        return Err(fail(
            "auth.jwt.lifetime",
            "must be between 1 minute and 30 days".to_owned(),
        ));
    }
    // The key rule of `seal::Sealer::from_config`, checked here without building a sealer (so
    // config does not depend on seal).
    let enc = &config.auth.encryption;
    let missing = enc.key.is_none() && enc.enabled == Some(true);
    if missing
        || enc
            .key
            .iter()
            .chain(&enc.previous_keys)
            .any(|k| k.key_bytes().is_none())
    {
        return Err(fail(
            "auth.encryption.key",
            "auth.encryption.key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
                .to_owned(),
        ));
    }
    if j.audience.trim().is_empty() {
        return Err(fail("auth.jwt.audience", "must not be empty".to_owned()));
    }
    if let Some(s) = &j.hs256_secret
        && s.expose().len() < 32
    {
        return Err(fail(
            "auth.jwt.hs256_secret",
            "must be at least 32 characters".to_owned(),
        ));
    }
    for (i, t) in j.issuers.iter().enumerate() {
        let key = format!("auth.jwt.issuers[{i}]");
        if t.issuer.trim().is_empty() || t.audience.trim().is_empty() {
            return Err(fail(&key, "issuer and audience are required".to_owned()));
        }
        let loopback = reqwest::Url::parse(&t.jwks_url)
            .ok()
            .and_then(|u| u.host_str().map(crate::net::is_loopback_host))
            .unwrap_or(false);
        let acceptable = t.jwks_url.starts_with("https://") || (loopback && http_url(&t.jwks_url));
        if !acceptable {
            return Err(fail(
                &format!("{key}.jwks_url"),
                format!(
                    "`{}` must be an https:// URL (plain http only on loopback: keys fetched in the clear could be swapped)",
                    t.jwks_url
                ),
            ));
        }
        let own = j.issuer.clone().unwrap_or_else(|| config.public_url());
        if t.issuer.trim_end_matches('/') == own.trim_end_matches('/') {
            return Err(fail(
                &format!("{key}.issuer"),
                "is the gateway's own issuer".to_owned(),
            ));
        }
    }
    Ok(())
}

/// The management key must be long enough to resist guessing.
pub(crate) fn validate_management(
    config: &super::Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, value) in [
        ("management.key", &config.management.key),
        ("metrics.key", &config.metrics.key),
    ] {
        if let Some(k) = value
            && k.expose().len() < 16
        {
            return Err(fail(key, "must be at least 16 characters".to_owned()));
        }
    }
    let m = &config.metrics;
    if m.enabled && m.allow_remote && m.key.is_none() && config.management.key.is_none() {
        return Err(fail(
            "metrics.allow_remote",
            "needs a key remote scrapers present: set metrics.key (or management.key)".to_owned(),
        ));
    }
    Ok(())
}
