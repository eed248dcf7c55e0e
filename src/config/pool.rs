//! The credential pool's configuration (PRODUCT §5): the selection strategy, the credential
//! directory, quota reset schedules, and the extra credentials a backend block may list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::env::{EnvSource, env_secret};
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
            match (&c.api_key, &c.api_key_env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "set either `api_key` or `api_key_env`, not both".to_owned(),
                    ));
                }
                (None, None) => {
                    return Err(invalid("set `api_key` or `api_key_env`".to_owned()));
                }
                (None, Some(var)) => match env_secret(env, var)? {
                    Some(s) => c.api_key = Some(s),
                    None => {
                        return Err(invalid(format!(
                            "environment variable `{var}` (or `{var}_FILE`) is not set"
                        )));
                    }
                },
                (Some(_), None) => {}
            }
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
