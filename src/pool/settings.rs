//! What the pool is built from: [`PoolSettings`], the pool's part of the configuration, which
//! `config` assembles from the sections it spans (`auth.*`, `backends.<name>.*`,
//! `access_mode`), and the credential rules the configuration borrows from the pool (the default
//! priority, the id format). The pool never reads `config`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::Spec;
use super::device::DeviceLoginConfig;
use super::health::ResetSchedule;
use super::select::SelectionStrategy;
use crate::seal::EncryptionConfig;

/// Everything [`super::Pool::new`] needs of the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `auth.selection_strategy`: the strategy of a backend that names none.
    pub selection_strategy: SelectionStrategy,
    /// `backends.<name>.selection_strategy`, where one is set.
    pub strategies: BTreeMap<String, SelectionStrategy>,
    /// `auth.quota.reset_schedule`, by backend (absent: never).
    pub reset_schedules: BTreeMap<String, ResetSchedule>,
    /// Upstream failures cool credentials down (`auth.disable_cooling` is off).
    pub cooling: bool,
    /// The credentials the configuration lists: each backend's `api_key`, then its
    /// `credentials[]`.
    pub credentials: Vec<Spec>,
    /// The credential directory (`auth.credentials_dir`, default `auths`).
    pub credentials_dir: PathBuf,
    /// The refresh worker (`auth.refresh.*`).
    pub refresh: RefreshSettings,
    /// Device-flow logins (`auth.device_login.<name>`).
    pub device_logins: BTreeMap<String, DeviceLoginConfig>,
    /// Multi-user mode: OAuth (personal-subscription) credentials are refused (PRODUCT §6).
    pub multi_user: bool,
    /// The sealing keys (`auth.encryption`).
    pub encryption: EncryptionConfig,
    /// The personal-subscription connector backends (`type: gemini_cli | codex | qwen_code`).
    pub connectors: Vec<super::connectors::ConnectorSettings>,
}

/// The refresh worker's settings (`auth.refresh.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// Run the worker.
    pub enabled: bool,
    /// How often expiries are checked.
    pub check_interval: Duration,
    /// Tokens expiring within this are renewed.
    pub lead_time: Duration,
}

/// Priority of a credential that names none: after every credential that does.
pub fn default_priority() -> i64 {
    100
}

/// True for ids usable in URLs and file names.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
