//! Typed configuration: what the gateway reads once at startup and passes down.
//!
//! Layering is CLI > environment > YAML file > defaults ([`load`]); the result is checked once
//! ([`validate`]) and never re-read. Every section has serde defaults, so an empty file (or no
//! file at all) is a valid configuration.

mod duration;
pub mod load;
pub mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub use duration::HumanDuration;
pub use load::{ConfigError, ConfigSources, load};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            max_body_bytes: 32 * 1024 * 1024,
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
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
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
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
}

/// `access_mode.*`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessModeConfig {
    /// `single_user` (default) or `multi_user`.
    pub mode: AccessMode,
}

/// Operating mode, fixed at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// One developer on one machine (the default).
    #[default]
    SingleUser,
    /// A shared deployment.
    MultiUser,
}

impl AccessMode {
    /// The name used in config, logs and `/internal/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::SingleUser => "single_user",
            AccessMode::MultiUser => "multi_user",
        }
    }
}

/// The wire protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Any OpenAI-compatible server (OpenAI, OpenRouter, Groq, DeepSeek, Mistral, vLLM, Ollama).
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini `v1beta` API.
    Gemini,
}

impl BackendKind {
    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            BackendKind::Openai => "https://api.openai.com/v1",
            BackendKind::Anthropic => "https://api.anthropic.com",
            BackendKind::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// Lower-case name, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Openai => "openai",
            BackendKind::Anthropic => "anthropic",
            BackendKind::Gemini => "gemini",
        }
    }
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
    /// Speak HTTP/2 without TLS negotiation (h2c prior knowledge); HTTPS upstreams negotiate
    /// HTTP/2 through ALPN on their own.
    #[serde(default)]
    pub http2_prior_knowledge: bool,
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
