//! The credential pool's configuration (PRODUCT §5): the selection strategy, the credential
//! directory, quota reset schedules, and the extra credentials a backend block may list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::env::{EnvSource, resolve_api_key};
use crate::secret::Secret;

/// How a provider's credential is chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionStrategy {
    /// Lowest `priority` number first; equal priorities take turns.
    #[default]
    Priority,
    /// Every available credential in turn.
    RoundRobin,
    /// Most remaining quota first (unlimited counts as most); ties take turns.
    QuotaAware,
}

impl SelectionStrategy {
    /// Name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectionStrategy::Priority => "priority",
            SelectionStrategy::RoundRobin => "round_robin",
            SelectionStrategy::QuotaAware => "quota_aware",
        }
    }
}

/// When a credential's token quota starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetSchedule {
    /// Never: the limit is for the credential's lifetime.
    #[default]
    Never,
    /// At 00:00 UTC.
    Daily,
    /// On the 1st of the month, 00:00 UTC.
    Monthly,
}

/// `auth.quota.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// `provider -> daily|monthly|never` (default never).
    pub reset_schedule: BTreeMap<String, ResetSchedule>,
}

/// `quota: {limit: N}` of a credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimit {
    /// Tokens per quota period.
    pub limit: u64,
}

/// `backends.<name>.credentials[]`: one more upstream key for the backend's pool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Stable id (default `yaml-<backend>-<n>`), used by the management API and in usage records.
    #[serde(default)]
    pub id: Option<String>,
    /// The key itself (prefer `api_key_env`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Environment variable holding the key (or `NAME_FILE`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Lower number = tried first (default 100).
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Token quota per period.
    #[serde(default)]
    pub quota: Option<QuotaLimit>,
}

/// Priority of a credential that names none: after every credential that does.
pub fn default_priority() -> i64 {
    100
}

/// Replaces each `credentials[].api_key_env` by the key it names.
pub(crate) fn resolve_credential_keys(
    config: &mut super::Config,
    env: &dyn EnvSource,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (name, backend) in &mut config.backends {
        for (i, c) in backend.credentials.iter_mut().enumerate() {
            let key = format!("backends.{name}.credentials[{i}]");
            let invalid = |message: String| ConfigError::Invalid {
                origin: source_of(&format!("backends.{name}.credentials")),
                key: key.clone(),
                message,
            };
            if c.api_key.is_none() && c.api_key_env.is_none() {
                return Err(invalid("set `api_key` or `api_key_env`".to_owned()));
            }
            resolve_api_key(&mut c.api_key, c.api_key_env.as_deref(), env, &invalid)?;
            if let Some(id) = &c.id
                && !valid_id(id)
            {
                return Err(invalid(format!(
                    "id `{id}` may only use letters, digits, `-`, `_` and `.` (1 to 64)"
                )));
            }
        }
    }
    Ok(())
}

/// True for ids usable in URLs and file names.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `auth.refresh.*`: the worker that renews OAuth credentials before they expire.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefreshConfig {
    /// Run the worker (default true).
    pub enabled: bool,
    /// How often expiries are checked (default 5 min).
    pub check_interval: super::HumanDuration,
    /// Tokens expiring within this are renewed (default 10 min).
    pub refresh_lead_time: super::HumanDuration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_interval: super::HumanDuration(std::time::Duration::from_secs(300)),
            refresh_lead_time: super::HumanDuration(std::time::Duration::from_secs(600)),
        }
    }
}

/// Which login protocol a device-flow provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceLoginKind {
    /// Plain RFC 8628 against any authorization server; the access token is the credential.
    Generic,
    /// GitHub's device login, then the Copilot token exchange; the Copilot token is the credential.
    Copilot,
    /// AWS SSO-OIDC (Builder ID / Identity Center): client registration, device authorization,
    /// token; the access token is the credential.
    Kiro,
}

/// `auth.device_login.<name>`: an OAuth device-flow login that adds credentials to a backend's
/// pool. `copilot` and `kiro` have built-in defaults (the public endpoints); every endpoint can
/// be changed (tests point them at local servers).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceLoginConfig {
    /// Protocol (default: `copilot` / `kiro` for those names, else `generic`).
    #[serde(default)]
    pub kind: Option<DeviceLoginKind>,
    /// The backend whose pool gets the credential (default: the login's name).
    #[serde(default)]
    pub backend: Option<String>,
    /// OAuth client id (Copilot: GitHub's; generic: yours; Kiro: registered at login).
    #[serde(default)]
    pub client_id: Option<String>,
    /// OAuth client secret, for generic servers that want one.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Requested scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// RFC 8628 device authorization endpoint (Kiro: the SSO-OIDC base URL's
    /// `/device_authorization`).
    #[serde(default)]
    pub device_authorization_url: Option<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Copilot: the token exchange endpoint.
    #[serde(default)]
    pub copilot_token_url: Option<String>,
    /// Kiro: the SSO-OIDC base URL (`https://oidc.<region>.amazonaws.com`).
    #[serde(default)]
    pub oidc_url: Option<String>,
    /// Kiro: the AWS start URL (Builder ID: `https://view.awsapps.com/start`).
    #[serde(default)]
    pub start_url: Option<String>,
}
