//! Typed configuration: what the gateway reads once at startup and passes down.
//!
//! Layering is CLI > environment > YAML file > defaults ([`load`]); the result is checked once
//! ([`validate`]) and never re-read. Every section has serde defaults, so an empty file (or no
//! file at all) is a valid configuration.

mod console;
mod duration;
pub mod env;
#[cfg(test)]
mod input_tests;
mod keys;
mod limits;
pub mod load;
mod oauth;
mod pool;
#[cfg(test)]
mod seed003_tests;
mod sso;
pub mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub use console::{AdminConfig, ConsoleConfig};
pub use duration::HumanDuration;
pub use load::{ConfigError, ConfigSources, load};
pub use oauth::{OauthConfig, OauthConnector};
// The domain types the sections are made of, owned by the modules that use them.
pub use crate::identity::api_keys::ApiKeyConfig;
pub use crate::identity::external::TrustedIssuer;
pub use crate::identity::token_server::TokenSettings;
pub use crate::identity::{AuthSettings, BruteForceConfig};
pub use crate::policy::{AccessMode, LimitsConfig, PolicySettings, Price};
pub use crate::pool::connectors::Tier;
pub use crate::pool::device::{DeviceLoginConfig, DeviceLoginKind};
pub use crate::pool::{ResetSchedule, SelectionStrategy, default_priority, valid_id};
pub use crate::protocol::{BackendKind, ResponsesApi};
pub use crate::redis_conn::RedisSettings;
pub use crate::seal::EncryptionConfig;
pub use pool::{CredentialConfig, QuotaConfig, QuotaLimit, RefreshConfig};
pub use sso::{
    ManagementConfig, SsoAuthorizationConfig, SsoAuthorizationMode, SsoConfig, SsoProviderConfig,
    SsoProviderKind,
};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener and request limits.
    pub server: ServerConfig,
    /// Log format and level.
    pub logging: LoggingConfig,
    /// Client authentication.
    pub auth: AuthConfig,
    /// Single-user or multi-user operation.
    pub access_mode: AccessModeConfig,
    /// Upstream backends by name (`openai`, `anthropic`, `my-vllm`, …).
    pub backends: BTreeMap<String, BackendConfig>,
    /// Model routing: default backend and aliases.
    pub routing: RoutingConfig,
    /// Desktop notifications.
    pub notifications: NotificationsConfig,
    /// Switches of the OAuth (personal-subscription) connectors.
    pub oauth: OauthConfig,
    /// Where durable state (users, agent tokens) lives.
    pub storage: StorageConfig,
    /// Browser login that issues per-device agent tokens.
    pub sso: SsoConfig,
    /// The management API's key and reach.
    pub management: ManagementConfig,
    /// Prometheus `/metrics`.
    pub metrics: MetricsConfig,
    /// The admin console.
    pub admin: AdminConfig,
    /// Rules (allow-lists, rate limits, budgets) per user, and the reservation defaults.
    pub limits: LimitsConfig,
    /// US dollars per million tokens, by model pattern (`gpt-4o`, `anthropic:claude-*`).
    pub prices: BTreeMap<String, Price>,
}

/// `metrics.*`: the Prometheus exposition at `/metrics`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Record metrics and serve `/metrics` (default on; off: nothing recorded, `/metrics` 404).
    pub enabled: bool,
    /// Serve `/metrics` to callers on other machines too, when they present `metrics.key` (or,
    /// without one, the management key) as `Authorization: Bearer …`. Default: loopback
    /// callers only, no key needed.
    pub allow_remote: bool,
    /// The key remote scrapers present (at least 16 characters); wrong ones count toward the
    /// per-address lockout.
    pub key: Option<Secret>,
    /// Environment variable holding the key (or `NAME_FILE`).
    pub key_env: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_remote: false,
            key: None,
            key_env: None,
        }
    }
}

/// `storage.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the embedded SQLite database (`portcullis.db`), default `./portcullis-data`.
    pub data_dir: std::path::PathBuf,
    /// `postgres://…` (or `sqlite://…`) instead of the embedded database.
    pub database_url: Option<Secret>,
    /// `redis://…`: limit counters shared by every instance using this server (else each
    /// instance counts its own).
    pub redis_url: Option<Secret>,
    /// Put before every Redis key (default `portcullis:`): several deployments can share a
    /// server.
    pub redis_prefix: String,
    /// The longest a Redis command may take before the request it serves gets the
    /// `limits.on_redis_error` treatment (default 500ms).
    pub redis_timeout: HumanDuration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: std::path::PathBuf::from("./portcullis-data"),
            database_url: None,
            redis_url: None,
            redis_prefix: "portcullis:".to_owned(),
            redis_timeout: HumanDuration(Duration::from_millis(500)),
        }
    }
}

impl StorageConfig {
    /// The embedded database file.
    pub fn sqlite_file(&self) -> std::path::PathBuf {
        self.data_dir.join("portcullis.db")
    }

    /// True when a store is configured or already exists, i.e. agent tokens can be checked.
    /// (SSO opens, and creates, the store whatever this says.)
    pub fn is_present(&self) -> bool {
        self.database_url.is_some() || self.sqlite_file().exists()
    }

    /// What `redis_conn::RedisConn::new` needs, when a Redis URL is configured.
    pub fn redis_settings(&self) -> Option<RedisSettings> {
        self.redis_url.as_ref().map(|url| RedisSettings {
            url: url.clone(),
            prefix: self.redis_prefix.clone(),
            timeout: self.redis_timeout.0,
        })
    }
}

impl Config {
    /// True when the store must be opened: SSO needs it, and so do users' rules (their budgets
    /// and usage); otherwise only when one exists.
    pub fn needs_store(&self) -> bool {
        self.sso.enabled
            || self.storage.is_present()
            || self.management.key.is_some()
            || self.admin.console.enabled
            || self.limits.has_rules()
    }

    /// The base URL browsers use to reach the gateway (no trailing slash).
    pub fn public_url(&self) -> String {
        match &self.sso.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = &self.server.host;
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else if host == "0.0.0.0" {
                    "127.0.0.1".to_owned()
                } else {
                    host.clone()
                };
                format!("http://{host}:{}", self.server.port)
            }
        }
    }

    /// What `identity::Authenticator::new` needs: `auth.*` (keys, lockout, trusted issuers).
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            disabled: self.auth.disable_auth,
            api_keys: self.auth.api_keys.clone(),
            brute_force: self.auth.brute_force_protection.clone(),
            issuers: self.auth.jwt.issuers.clone(),
        }
    }

    /// What `identity::token_server::TokenServer::new` needs: `auth.jwt` (the issuer defaulting
    /// to the public URL), the lockout and the sealing keys.
    pub fn token_settings(&self) -> TokenSettings {
        let jwt = &self.auth.jwt;
        TokenSettings {
            issuer: jwt.issuer.clone().unwrap_or_else(|| self.public_url()),
            audience: jwt.audience.clone(),
            lifetime: jwt.lifetime.0,
            hs256_secret: jwt.hs256_secret.clone(),
            brute_force: self.auth.brute_force_protection.clone(),
            encryption: self.auth.encryption.clone(),
        }
    }

    /// Every secret the configuration names (client keys, the management key, the JWT and
    /// sealing keys, the database and Redis URLs (and the latter's password), SSO and device-login client secrets) — the fixed part of
    /// what logs and captures must not carry (`masking::LiveSecrets`); the backends add their
    /// URL and header secrets (`upstream::Backend::configured_secrets`).
    pub fn secrets(&self) -> Vec<Secret> {
        let mut out: Vec<Secret> = self
            .auth
            .api_keys
            .iter()
            .filter_map(|k| match k {
                ApiKeyConfig::Plain(s) => Some(s.clone()),
                ApiKeyConfig::Named { key, .. } => key.clone(),
            })
            .collect();
        out.extend(self.management.key.iter().cloned());
        out.extend(self.metrics.key.iter().cloned());
        out.extend(self.auth.jwt.hs256_secret.iter().cloned());
        out.extend(self.auth.encryption.key.iter().cloned());
        out.extend(self.auth.encryption.previous_keys.iter().cloned());
        out.extend(self.storage.database_url.iter().cloned());
        if let Some(url) = &self.storage.redis_url {
            out.push(url.clone());
            out.extend(crate::redis_conn::url_password(url.expose()));
        }
        let sso = &self.sso;
        out.extend(
            sso.providers
                .values()
                .filter_map(|p| p.client_secret.clone()),
        );
        out.extend(sso.authorization.api_secret.iter().cloned());
        let logins = self.auth.device_login.values();
        out.extend(logins.filter_map(|d| d.client_secret.clone()));
        out
    }

    /// Whether desktop notifications are on: as configured, else on for a loopback bind.
    pub fn notifications_enabled(&self) -> bool {
        self.notifications
            .enabled
            .unwrap_or_else(|| crate::net::is_loopback_host(&self.server.host))
    }
}

/// `server.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Bind address (default `127.0.0.1`).
    pub host: String,
    /// Bind port (default 8080).
    pub port: u16,
    /// Largest request body accepted, in bytes (default 32 MiB).
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests and streams (default 30 s).
    pub shutdown_grace: HumanDuration,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed; the client address is the right-most
    /// entry that is not one of them. Empty: the socket peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Single-threaded event loops serving requests, one thread each; a new connection goes to
    /// the loop serving the fewest and stays there (default: one per CPU). `0` serves from one
    /// multi-threaded, work-stealing runtime instead, which spreads the work of a few busy
    /// connections over every core at the cost of cross-thread wake-ups on each request.
    pub event_loops: Option<usize>,
    /// Most client connections open at once; beyond it a new connection is closed at once and
    /// counted (default: half the process's open-file limit, between 64 and 16,384).
    pub max_connections: Option<usize>,
    /// How long a client has to send a complete request head, from the moment its connection
    /// opens or the first byte of a following request arrives (default 15 s).
    pub header_read_timeout: HumanDuration,
    /// How long a keep-alive connection may sit idle between requests (default 75 s).
    pub keep_alive_idle: HumanDuration,
    /// How long a request body may stall between two reads before the request fails with 408
    /// (default 30 s).
    pub request_body_timeout: HumanDuration,
    /// Largest request head (request line and headers; HTTP/2: the header list), in bytes
    /// (default 64 KiB).
    pub max_header_bytes: usize,
    /// Most bytes of non-streamed upstream answers held in memory at once, across all requests
    /// (each is read whole to count usage, scrub and translate it); an answer that finds no room
    /// gets 503 with `Retry-After` (default 512 MiB).
    pub max_buffered_answer_bytes: u64,
}

impl ServerConfig {
    /// Most event loops accepted.
    pub const MAX_EVENT_LOOPS: usize = 1024;

    /// The number of event loops to run: the configured number, or one per CPU.
    pub fn event_loops(&self) -> usize {
        self.event_loops.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            max_body_bytes: 32 * 1024 * 1024,
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
            trusted_proxies: Vec::new(),
            event_loops: None,
            max_connections: None,
            header_read_timeout: HumanDuration(Duration::from_secs(15)),
            keep_alive_idle: HumanDuration(Duration::from_secs(75)),
            request_body_timeout: HumanDuration(Duration::from_secs(30)),
            max_header_bytes: 64 * 1024,
            max_buffered_answer_bytes: 512 * 1024 * 1024,
        }
    }
}

/// `logging.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `portcullis=debug` (default `info`).
    pub level: String,
    /// Wire capture: JSONL records of every request, upstream call, response and stream chunk,
    /// credentials masked.
    pub capture_file: Option<std::path::PathBuf>,
    /// Rotate the capture file when it reaches this size (default 100 MB).
    pub capture_max_bytes: u64,
    /// Rotated capture files kept (default 5).
    pub capture_max_files: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
            capture_file: None,
            capture_max_bytes: 100 * 1000 * 1000,
            capture_max_files: 5,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `auth.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Turns client authentication off (allowed only on a loopback bind).
    pub disable_auth: bool,
    /// Client API keys. After loading, this also holds the keys from the command line and the
    /// environment, each with a name for the logs.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Model API routes served without a client credential (`api::groups` moves them to the
    /// public group): a route's exact path, or a prefix ending in `*` that covers whole routes.
    /// `/health` and `/internal/health` are always public; the browser pages, the management
    /// API and the token server have their own guards. Entries that cover no whole route are
    /// ignored with a warning at startup.
    pub bypass_paths: Vec<String>,
    /// Lockout of addresses that keep presenting wrong credentials.
    pub brute_force_protection: BruteForceConfig,
    /// The OAuth2 token server's JWTs.
    pub jwt: JwtConfig,
    /// Sealing of secrets the gateway stores.
    pub encryption: EncryptionConfig,
    /// Default credential selection for every provider (`backends.<name>.selection_strategy`
    /// overrides it).
    pub selection_strategy: SelectionStrategy,
    /// Directory of credential files, watched for changes (default `auths`, relative to the
    /// working directory).
    pub credentials_dir: Option<std::path::PathBuf>,
    /// Quota reset schedules per provider.
    pub quota: QuotaConfig,
    /// Never cool a credential down after an upstream failure (failover within a request still
    /// happens). For single-key setups whose operator prefers every request to reach the
    /// upstream.
    pub disable_cooling: bool,
    /// The worker that renews OAuth credentials.
    pub refresh: RefreshConfig,
    /// Device-flow logins that add OAuth credentials (`copilot`, `kiro`, or any RFC 8628
    /// server), started from `/v0/oauth/<name>` or `portcullis auths login <name>`.
    pub device_login: BTreeMap<String, DeviceLoginConfig>,
}

/// `auth.jwt.*`: tokens issued by `/oauth/token` (PRODUCT §4).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Lifetime of an issued access token (default 1 h).
    pub lifetime: HumanDuration,
    /// `iss` of issued tokens (default: the public URL).
    pub issuer: Option<String>,
    /// `aud` of issued tokens, required of presented ones (default `portcullis`).
    pub audience: String,
    /// Compatibility with HS256 consumers (seed 004): sign issued tokens with HS256 under this
    /// shared secret (≥ 32 characters) instead of the Ed25519 key. Tokens are then verified with
    /// it too; the algorithm never comes from the token.
    pub hs256_secret: Option<Secret>,
    /// Environment variable holding `hs256_secret` (or `NAME_FILE`).
    pub hs256_secret_env: Option<String>,
    /// Issuers whose JWTs are accepted as client credentials (a company IdP's access tokens).
    pub issuers: Vec<TrustedIssuer>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            lifetime: HumanDuration(Duration::from_secs(3600)),
            issuer: None,
            audience: "portcullis".to_owned(),
            hs256_secret: None,
            hs256_secret_env: None,
            issuers: Vec::new(),
        }
    }
}

/// `notifications.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Desktop notifications for operator events; unset means on for a loopback bind, off
    /// otherwise.
    pub enabled: Option<bool>,
}

/// `access_mode.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessModeConfig {
    /// `single_user` (default) or `multi_user`.
    pub mode: AccessMode,
}

/// `backends.<name>.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Which protocol the backend speaks.
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// Base URL; OpenAI-type URLs include the version (`https://api.openai.com/v1`), Anthropic and
    /// Gemini ones do not. Defaults to the provider's public API.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The upstream key itself (prefer `api_key_env`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Name of an environment variable holding the upstream key (or `NAME_FILE` with its path).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra headers sent on every upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Connect and idle-read timeouts.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Speak HTTP/2 only: h2c (prior knowledge) to an `http://` URL, HTTP/2 by ALPN to an
    /// `https://` one (both through reqwest). Otherwise the gateway speaks HTTP/1.1 with
    /// keep-alive from the request's own task, over TLS for `https://`.
    #[serde(default)]
    pub http2_prior_knowledge: bool,
    /// A PEM file of CA certificates trusted for this backend's TLS in addition to the
    /// system's roots (a private CA, a test CA). Checked when the configuration loads.
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Client headers forwarded to this backend besides the built-in allow-list (e.g.
    /// `openai-organization`, `x-goog-user-project`: headers that choose who is billed are
    /// dropped unless named here). Credential headers are never forwarded.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// More upstream keys for this backend's credential pool (besides `api_key`).
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// Overrides `auth.selection_strategy` for this backend.
    #[serde(default)]
    pub selection_strategy: Option<SelectionStrategy>,
    /// Priority of `api_key` in the pool (default 100).
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Token quota per period of `api_key`.
    #[serde(default)]
    pub quota: Option<QuotaLimit>,
    /// OpenAI-type backends: whether `/responses` exists upstream (`native`, the default) or
    /// the gateway serves Responses requests through `/chat/completions`
    /// (`chat_completions`: DeepSeek, Groq, Ollama, most OpenAI-compatible servers).
    #[serde(default)]
    pub responses_api: ResponsesApi,
    /// Connectors (`gemini_cli`, `codex`, `qwen_code`, `kiro`): the CLI's login file, imported
    /// at start and whenever it changes. Default: where the CLI keeps it
    /// (`~/.gemini/oauth_creds.json`, `$CODEX_HOME/auth.json` or `~/.codex/auth.json`,
    /// `~/.qwen/oauth_creds.json`, `~/.aws/sso/cache/kiro-auth-token.json`); `""` turns importing
    /// off.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// `gemini_cli`: the Google Cloud project of a paid Code Assist plan (default: the
    /// environment's `GOOGLE_CLOUD_PROJECT`).
    #[serde(default)]
    pub project: Option<String>,
    /// `gemini_cli`: which Code Assist project pays — `free`, `plan` (the `project`) or `auto`
    /// (free first, the plan once the free quota is spent). Default: from the backend's name
    /// (`…-free`, `…-plan`), else `auto`.
    #[serde(default)]
    pub tier: Option<Tier>,
}

impl BackendConfig {
    /// A backend of `kind` with every other key at its default.
    pub fn of_kind(kind: BackendKind) -> Self {
        Self {
            kind,
            base_url: None,
            api_key: None,
            api_key_env: None,
            headers: BTreeMap::new(),
            timeouts: TimeoutConfig::default(),
            http2_prior_knowledge: false,
            tls_ca_file: None,
            forward_headers: Vec::new(),
            credentials: Vec::new(),
            selection_strategy: None,
            priority: default_priority(),
            quota: None,
            responses_api: ResponsesApi::default(),
            credentials_file: None,
            project: None,
            tier: None,
        }
    }
}

/// The seed's connector names (seed 003) and their backend types: a routing entry naming one
/// that is not configured gets it with its defaults (`--default-backend openai-codex:gpt-5`
/// works with nothing else).
pub const SEED_CONNECTORS: &[(&str, BackendKind)] = &[
    ("gemini-oauth-auto", BackendKind::GeminiCli),
    ("gemini-oauth-free", BackendKind::GeminiCli),
    ("gemini-oauth-plan", BackendKind::GeminiCli),
    ("openai-codex", BackendKind::Codex),
    ("qwen-oauth", BackendKind::QwenCode),
    ("kiro-oauth-auto", BackendKind::Kiro),
];

impl Config {
    /// Adds the seed connectors `routing` names (its default backend, its aliases' targets)
    /// that `backends` does not configure.
    pub fn add_named_connectors(&mut self) {
        let routing = &self.routing;
        let named: Vec<String> = routing
            .default_backend
            .iter()
            .chain(routing.aliases.values())
            .filter_map(|target| target.split(':').next())
            .map(str::to_owned)
            .collect();
        for name in named {
            if let Some((_, kind)) = SEED_CONNECTORS.iter().find(|(n, _)| *n == name) {
                self.backends
                    .entry(name)
                    .or_insert_with(|| BackendConfig::of_kind(*kind));
            }
        }
    }
}

/// `backends.<name>.timeouts.*`. There is deliberately no total deadline: a long stream that keeps
/// sending is never cut.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// TCP + TLS connect timeout (default 10 s).
    pub connect: HumanDuration,
    /// Longest silence while waiting for response headers or the next body chunk (default 300 s).
    pub read_idle: HumanDuration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: HumanDuration(Duration::from_secs(10)),
            read_idle: HumanDuration(Duration::from_secs(300)),
        }
    }
}

/// `routing.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// `backend` or `backend:model`: where plain model names go (the model part is used when a
    /// request names no model).
    pub default_backend: Option<String>,
    /// `alias -> backend:model`.
    pub aliases: BTreeMap<String, String>,
}
