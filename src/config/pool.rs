//! The credential pool's configuration (PRODUCT §5): quota reset schedules, the refresh worker,
//! and the extra credentials a backend block may list — and [`Config::pool_settings`], the
//! pool's part of every section, handed to `pool::Pool::new`. The values it is made of
//! (selection strategies, reset schedules, device logins, the id rule) belong to `pool`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::env::{EnvSource, resolve_api_key};
use super::{Config, ConfigError, DeviceLoginConfig, DeviceLoginKind, Tier};
use crate::pool::connectors::{self, ConnectorSettings};
use crate::pool::{
    CredentialKind, PoolSettings, RefreshSettings, ResetSchedule, Source, Spec, default_priority,
    valid_id,
};
use crate::protocol::BackendKind;
use crate::secret::Secret;

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

/// The device-flow logins' endpoints are http(s) URLs (a typo fails at startup, naming the key,
/// not at the first login).
pub(super) fn validate_device_logins(
    config: &Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (name, d) in &config.auth.device_login {
        for (field, url) in [
            ("device_authorization_url", &d.device_authorization_url),
            ("token_url", &d.token_url),
            ("copilot_token_url", &d.copilot_token_url),
            ("oidc_url", &d.oidc_url),
            ("start_url", &d.start_url),
        ] {
            if let Some(url) = url
                && !super::sso::http_url(url)
            {
                return Err(fail(
                    &format!("auth.device_login.{name}.{field}"),
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
        }
    }
    Ok(())
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

impl Config {
    /// What `pool::Pool::new` needs: the pool's part of `auth.*`, `backends.<name>.*` and
    /// `access_mode`.
    pub fn pool_settings(&self) -> PoolSettings {
        let auth = &self.auth;
        PoolSettings {
            selection_strategy: auth.selection_strategy,
            strategies: self
                .backends
                .iter()
                .filter_map(|(name, b)| Some((name.clone(), b.selection_strategy?)))
                .collect(),
            reset_schedules: auth.quota.reset_schedule.clone(),
            cooling: !auth.disable_cooling,
            credentials: self.configured_credentials(),
            credentials_dir: auth
                .credentials_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("auths")),
            refresh: RefreshSettings {
                enabled: auth.refresh.enabled,
                check_interval: auth.refresh.check_interval.0,
                lead_time: auth.refresh.refresh_lead_time.0,
            },
            device_logins: self.device_logins(),
            multi_user: !self.access_mode.mode.allows_personal_oauth(),
            encryption: auth.encryption.clone(),
            connectors: self.connector_settings(),
        }
    }

    /// `auth.device_login`, with one login per connector backend its entries do not name (the
    /// connector's own: it renews the imported login, and Qwen's also logs in).
    fn device_logins(&self) -> BTreeMap<String, DeviceLoginConfig> {
        let mut logins = self.auth.device_login.clone();
        for (name, b) in &self.backends {
            let kind = match b.kind {
                BackendKind::GeminiCli => DeviceLoginKind::GeminiCli,
                BackendKind::Codex => DeviceLoginKind::Codex,
                BackendKind::QwenCode => DeviceLoginKind::QwenCode,
                BackendKind::Kiro => DeviceLoginKind::Kiro,
                _ => continue,
            };
            logins
                .entry(name.clone())
                .or_insert_with(|| DeviceLoginConfig {
                    kind: Some(kind),
                    backend: Some(name.clone()),
                    ..DeviceLoginConfig::default()
                });
        }
        logins
    }

    /// The connector backends, their CLI files found from the environment (`HOME`,
    /// `CODEX_HOME`) unless configured.
    fn connector_settings(&self) -> Vec<ConnectorSettings> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let codex_home = std::env::var_os("CODEX_HOME").map(PathBuf::from);
        self.backends
            .iter()
            .filter(|(_, b)| b.kind.is_connector())
            .map(|(name, b)| ConnectorSettings {
                backend: name.clone(),
                kind: b.kind,
                file: match b.credentials_file.as_deref() {
                    Some("") => None,
                    Some(f) => Some(expand_home(f, home.as_deref())),
                    None => {
                        connectors::default_file(b.kind, home.as_deref(), codex_home.as_deref())
                    }
                },
                api_base: b
                    .base_url
                    .clone()
                    .unwrap_or_else(|| b.kind.default_base_url().to_owned()),
                project: b
                    .project
                    .clone()
                    .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok())
                    .filter(|p| !p.trim().is_empty()),
                tier: b.tier.unwrap_or_else(|| Tier::of_name(name)),
            })
            .collect()
    }

    /// The credentials `backends.<name>` configures: `api_key`, then `credentials[]`.
    fn configured_credentials(&self) -> Vec<Spec> {
        let mut out = Vec::new();
        for (name, b) in &self.backends {
            if let Some(key) = b.api_key.as_ref().filter(|k| !k.is_empty()) {
                out.push(Spec {
                    id: format!("yaml-{name}"),
                    provider: name.clone(),
                    kind: CredentialKind::ApiKey,
                    source: Source::Config,
                    label: b.api_key_env.clone(),
                    secret: key.clone(),
                    priority: b.priority,
                    quota_limit: b.quota.map(|q| q.limit),
                    expires_at: None,
                    account: None,
                });
            }
            for (i, c) in b.credentials.iter().enumerate() {
                let Some(key) = c.api_key.as_ref().filter(|k| !k.is_empty()) else {
                    continue;
                };
                out.push(Spec {
                    id: c
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("yaml-{name}-{}", i + 1)),
                    provider: name.clone(),
                    kind: CredentialKind::ApiKey,
                    source: Source::Config,
                    label: c.api_key_env.clone(),
                    secret: key.clone(),
                    priority: c.priority,
                    quota_limit: c.quota.map(|q| q.limit),
                    expires_at: None,
                    account: None,
                });
            }
        }
        out
    }
}

/// `~/…` as a path under `home`.
fn expand_home(path: &str, home: Option<&std::path::Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(path),
    }
}
