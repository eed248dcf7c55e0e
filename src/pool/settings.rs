//! What the pool is built from: [`PoolSettings`], the pool's part of the configuration, which
//! `config` assembles from the sections it spans (`auth.*`, `backends.<name>.*`,
//! `access_mode`), and the credential rules the configuration borrows from the pool (the default
//! priority, the id format), and the device logins' section (`auth.device_login.<name>`). The pool
//! never reads `config`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Spec;
use super::health::ResetSchedule;
use super::select::SelectionStrategy;
use crate::seal::EncryptionConfig;
use crate::secret::Secret;

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
    /// The Gemini CLI's Google login (a `gemini_cli` backend's): imported from the CLI's file,
    /// renewed at Google's token endpoint with the CLI's public client. No device flow.
    GeminiCli,
    /// The Codex CLI's ChatGPT login (a `codex` backend's): imported from `auth.json`, renewed
    /// at OpenAI's token endpoint with the CLI's public client. No device flow.
    Codex,
    /// Qwen Code's Qwen login (a `qwen_code` backend's): RFC 8628 with PKCE at chat.qwen.ai, or
    /// imported from the CLI's file; the token answer names the account's API (`resource_url`).
    QwenCode,
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
    /// Codex and the Gemini CLI (browser logins): the provider's authorization page.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Codex and the Gemini CLI: the loopback port the browser is redirected to (Codex's
    /// registered one is 1455; the Gemini CLI's any, by default a free one).
    #[serde(default)]
    pub redirect_port: Option<u16>,
}
