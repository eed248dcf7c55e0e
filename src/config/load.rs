//! Loading: defaults → YAML file → environment → command line, into one typed [`Config`].
//!
//! Environment forms: every YAML key as `PORTCULLIS_<SECTION>__<KEY>` (double underscore nests),
//! the seeds' own names as aliases (`DISABLE_AUTH`, `LLM_PROXY_ACCESS_MODE`, `BRUTE_FORCE_*`,
//! `WIRE_CAPTURE_FILE`, …), client keys from `PORTCULLIS_API_KEYS` and the seed's variables, and —
//! when no backend is configured anywhere — the ecosystem's provider variables (`OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `GEMINI_API_KEY` with their `*_BASE_URL`s). Secrets may come from
//! `NAME_FILE` instead of `NAME`. Errors name the source and the key.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized};

use super::env::{EnvSource, ProcessEnv, env_bool};
use super::yaml::Yaml;
use super::{AccessMode, Config, LogFormat, OauthConnector};
use crate::secret::Secret;

/// Values given on the command line; `None`/empty leaves the lower layers in charge.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--host`
    pub host: Option<String>,
    /// `--port`
    pub port: Option<u16>,
    /// `--default-backend`
    pub default_backend: Option<String>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--disable-auth` (true only when the flag is present)
    pub disable_auth: bool,
    /// `--api-keys k1,k2`
    pub api_keys: Vec<Secret>,
    /// `--single-user-mode`
    pub single_user_mode: bool,
    /// `--multi-user-mode`
    pub multi_user_mode: bool,
    /// `--enable-notifications` (true) / `--disable-notifications` (false)
    pub notifications: Option<bool>,
    /// `--enable-brute-force-protection` / `--disable-brute-force-protection`
    pub brute_force_enabled: Option<bool>,
    /// `--auth-max-failed-attempts`
    pub max_failed_attempts: Option<u32>,
    /// `--auth-brute-force-ttl` (seconds)
    pub brute_force_ttl: Option<u64>,
    /// `--auth-brute-force-initial-block` (seconds)
    pub brute_force_initial_block: Option<u64>,
    /// `--auth-brute-force-multiplier`
    pub brute_force_multiplier: Option<f64>,
    /// `--auth-brute-force-max-block` (seconds)
    pub brute_force_max_block: Option<u64>,
    /// `--trusted-proxy CIDR` (repeatable; replaces the configured list)
    pub trusted_proxies: Vec<String>,
    /// `--capture-file PATH`
    pub capture_file: Option<PathBuf>,
    /// `--allow-oauth-auto-replacement`
    pub allow_oauth_auto_replacement: bool,
    /// The connectors whose `--enable-…-backend-debugging-override` flag was given (added to
    /// `oauth.debugging_overrides`).
    pub oauth_debugging_overrides: Vec<OauthConnector>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    pub database_url: Option<Secret>,
    /// `--redis-url`
    pub redis_url: Option<Secret>,
    /// `--sso-enabled`
    pub sso_enabled: bool,
    /// `--sso-config PATH`: a YAML file with the `sso:` section, merged over `--config`.
    pub sso_config: Option<PathBuf>,
    /// `--management-key`
    pub management_key: Option<Secret>,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The YAML file (`--config` / `PORTCULLIS_CONFIG`), if any.
    pub config_path: Option<PathBuf>,
    /// Command-line values.
    pub cli: CliOverrides,
}

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` cannot be used.
    #[error("config file {path}: {message}")]
    File {
        /// The path as given.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the wrong type or an unknown key was given.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A startup rule is broken; the message is the whole explanation (what failed, the current
    /// value, how to fix it, the alternative).
    #[error("{0}")]
    Rule(String),
    /// A value parsed but is not acceptable.
    #[error("invalid configuration: `{key}` (from {origin}): {message}")]
    Invalid {
        /// Dotted key, e.g. `backends.openai.base_url`.
        key: String,
        /// Where the value came from, e.g. `YAML file config.yaml`.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Environment variables of the origin systems, mapped onto config keys (numbers and text;
/// the boolean ones are read by `apply_env_bools`, which accepts `1`/`yes`/`on` too).
pub(crate) const ENV_ALIASES: &[(&str, &str)] = &[
    ("LLM_PROXY_ACCESS_MODE", "access_mode.mode"),
    ("PORTCULLIS_ACCESS_MODE", "access_mode.mode"),
    ("WIRE_CAPTURE_FILE", "logging.capture_file"),
    ("PORTCULLIS_DATABASE_URL", "storage.database_url"),
    ("PORTCULLIS_REDIS_URL", "storage.redis_url"),
    ("PORTCULLIS_DATA_DIR", "storage.data_dir"),
    ("SSO_PUBLIC_URL", "sso.public_url"),
    ("PUBLIC_URL", "sso.public_url"),
    ("SSO_SESSION_LIFETIME_HOURS", "sso.session_lifetime_hours"),
    ("SSO_AUTH_MODE", "sso.authorization.mode"),
    ("SSO_AUTH_API_URL", "sso.authorization.api_url"),
    (
        "SSO_AUTH_API_TIMEOUT",
        "sso.authorization.api_timeout_seconds",
    ),
    (
        "SSO_CONFIRMATION_CODE_EXPIRY_MINUTES",
        "sso.authorization.confirmation_code_expiry_minutes",
    ),
    (
        "SSO_MAX_CONFIRMATION_ATTEMPTS",
        "sso.authorization.max_confirmation_attempts",
    ),
    (
        "BRUTE_FORCE_MAX_FAILED_ATTEMPTS",
        "auth.brute_force_protection.max_failed_attempts",
    ),
    (
        "BRUTE_FORCE_TTL_SECONDS",
        "auth.brute_force_protection.ttl_seconds",
    ),
    (
        "BRUTE_FORCE_INITIAL_BLOCK_SECONDS",
        "auth.brute_force_protection.initial_block_seconds",
    ),
    (
        "BRUTE_FORCE_BLOCK_MULTIPLIER",
        "auth.brute_force_protection.block_multiplier",
    ),
    (
        "BRUTE_FORCE_MAX_BLOCK_SECONDS",
        "auth.brute_force_protection.max_block_seconds",
    ),
];

/// Boolean environment variables of the origin systems and the keys they set.
pub(crate) const ENV_BOOL_ALIASES: &[(&str, &str)] = &[
    ("DISABLE_AUTH", "auth.disable_auth"),
    (
        "BRUTE_FORCE_PROTECTION_ENABLED",
        "auth.brute_force_protection.enabled",
    ),
    ("LLM_PROXY_ENABLE_NOTIFICATIONS", "notifications.enabled"),
    (
        "ALLOW_OAUTH_AUTO_REPLACEMENT",
        "oauth.allow_auto_replacement",
    ),
    ("SSO_ENABLED", "sso.enabled"),
    (
        "PORTCULLIS_MANAGEMENT_ALLOW_REMOTE",
        "management.allow_remote",
    ),
];

/// Loads and validates the configuration from the process environment.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
    load_with_env(sources, &ProcessEnv)
}

/// Loads with an explicit environment for everything except the `PORTCULLIS_*__*` and alias
/// layers, which figment reads from the process.
pub fn load_with_env(sources: &ConfigSources, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &sources.config_path {
        check_file(path)?;
        figment = figment.merge(Yaml::file_exact(path));
    }
    if let Some(path) = &sources.cli.sso_config {
        figment = merge_sso_file(figment, path)?;
    }
    figment = figment
        .merge(
            Env::prefixed("PORTCULLIS_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        )
        .merge(alias_env());
    let mut config: Config = figment
        .extract()
        .map_err(|e| ConfigError::Parse(describe_figment_error(&e, &sources.cli)))?;

    apply_env_bools(&mut config, env)?;
    apply_cli(&mut config, &sources.cli)?;
    // Without configured backends, they come from the ecosystem's variables (below).
    let standard_backends = config.backends.is_empty();
    let source = |key: &str| {
        if standard_backends && let Some(name) = super::env::standard_variable(key) {
            return format!("environment variable {name}");
        }
        let from_env_bool = ENV_BOOL_ALIASES
            .iter()
            .find(|(name, k)| *k == key && env.var(name).is_some_and(|v| !v.trim().is_empty()));
        match from_env_bool {
            // Read after the YAML file and `PORTCULLIS_*`, the boolean aliases yield only to
            // the command line.
            Some((name, _)) => match source_of(&figment, &sources.cli, key) {
                cli if cli.starts_with("command line") => cli,
                _ => format!("environment variable {name}"),
            },
            None => source_of(&figment, &sources.cli, key),
        }
    };
    super::env::resolve_backend_keys(&mut config, env, &source)?;
    super::pool::resolve_credential_keys(&mut config, env, &source)?;
    super::sso::resolve_secrets(&mut config, env)?;
    if config.backends.is_empty() {
        config.backends = super::env::backends_from_standard_env(env)?;
    }
    config.add_named_connectors();
    super::keys::merge_api_keys(&mut config, &sources.cli.api_keys, env)?;
    super::validate::validate(&config, &source)?;
    Ok(config)
}

fn check_file(path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(ConfigError::File {
            path: shown,
            message: "is not a regular file".to_owned(),
        }),
        Err(e) => Err(ConfigError::File {
            path: shown,
            message: e.to_string(),
        }),
    }
}

/// Merges the `--sso-config` file: a YAML file whose top level is either `sso:` (and possibly
/// `management:`) or the `sso` section itself.
fn merge_sso_file(figment: Figment, path: &Path) -> Result<Figment, ConfigError> {
    check_file(path)?;
    let file_error = |message: String| ConfigError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let value = super::yaml::value(&text).map_err(|e| file_error(e.to_string()))?;
    let wrapped = value.as_mapping().is_some_and(|m| m.contains_key("sso"));
    Ok(if wrapped {
        figment.merge(Yaml::file_exact(path))
    } else {
        figment.merge(Serialized::default("sso", value))
    })
}

fn alias_env() -> Env {
    Env::raw()
        .only(&ENV_ALIASES.iter().map(|(k, _)| *k).collect::<Vec<_>>())
        .map(|k| {
            ENV_ALIASES
                .iter()
                .find(|(name, _)| k == *name)
                .map(|(_, key)| (*key).into())
                .unwrap_or_else(|| k.into())
        })
}

fn apply_env_bools(config: &mut Config, env: &dyn EnvSource) -> Result<(), ConfigError> {
    for (name, key) in ENV_BOOL_ALIASES {
        let Some(value) = env_bool(env, name)? else {
            continue;
        };
        match *key {
            "auth.disable_auth" => config.auth.disable_auth = value,
            "auth.brute_force_protection.enabled" => {
                config.auth.brute_force_protection.enabled = value
            }
            "notifications.enabled" => config.notifications.enabled = Some(value),
            "oauth.allow_auto_replacement" => config.oauth.allow_auto_replacement = value,
            "sso.enabled" => config.sso.enabled = value,
            "management.allow_remote" => config.management.allow_remote = value,
            _ => {}
        }
    }
    Ok(())
}

fn apply_cli(config: &mut Config, cli: &CliOverrides) -> Result<(), ConfigError> {
    if cli.single_user_mode && cli.multi_user_mode {
        return Err(ConfigError::Rule(
            "Cannot specify both --single-user-mode and --multi-user-mode".to_owned(),
        ));
    }
    if cli.single_user_mode {
        config.access_mode.mode = AccessMode::SingleUser;
    }
    if cli.multi_user_mode {
        config.access_mode.mode = AccessMode::MultiUser;
    }
    if let Some(h) = &cli.host {
        config.server.host = h.clone();
    }
    if let Some(p) = cli.port {
        config.server.port = p;
    }
    if let Some(b) = &cli.default_backend {
        config.routing.default_backend = Some(b.clone());
    }
    if let Some(f) = cli.log_format {
        config.logging.format = f;
    }
    if let Some(l) = &cli.log_level {
        config.logging.level = l.clone();
    }
    if cli.disable_auth {
        config.auth.disable_auth = true;
    }
    if let Some(n) = cli.notifications {
        config.notifications.enabled = Some(n);
    }
    let bf = &mut config.auth.brute_force_protection;
    if let Some(v) = cli.brute_force_enabled {
        bf.enabled = v;
    }
    if let Some(v) = cli.max_failed_attempts {
        bf.max_failed_attempts = v;
    }
    if let Some(v) = cli.brute_force_ttl {
        bf.ttl_seconds = v;
    }
    if let Some(v) = cli.brute_force_initial_block {
        bf.initial_block_seconds = v;
    }
    if let Some(v) = cli.brute_force_multiplier {
        bf.block_multiplier = v;
    }
    if let Some(v) = cli.brute_force_max_block {
        bf.max_block_seconds = v;
    }
    if !cli.trusted_proxies.is_empty() {
        config.server.trusted_proxies = cli.trusted_proxies.clone();
    }
    if let Some(p) = &cli.capture_file {
        config.logging.capture_file = Some(p.clone());
    }
    if cli.allow_oauth_auto_replacement {
        config.oauth.allow_auto_replacement = true;
    }
    if let Some(d) = &cli.data_dir {
        config.storage.data_dir = d.clone();
    }
    if let Some(u) = &cli.database_url {
        config.storage.database_url = Some(u.clone());
    }
    if let Some(u) = &cli.redis_url {
        config.storage.redis_url = Some(u.clone());
    }
    if cli.sso_enabled {
        config.sso.enabled = true;
    }
    if let Some(k) = &cli.management_key {
        config.management.key = Some(k.clone());
    }
    config
        .oauth
        .debugging_overrides
        .extend(cli.oauth_debugging_overrides.iter().copied());
    Ok(())
}

/// Names the layer that supplied `key` (dotted), for error messages.
pub(crate) fn source_of(figment: &Figment, cli: &CliOverrides, key: &str) -> String {
    let from_cli = match key {
        "server.host" => cli.host.as_ref().map(|_| "--host"),
        "server.port" => cli.port.map(|_| "--port"),
        "routing.default_backend" => cli.default_backend.as_ref().map(|_| "--default-backend"),
        "logging.format" => cli.log_format.map(|_| "--log-format"),
        "logging.level" => cli.log_level.as_ref().map(|_| "--log-level"),
        "auth.disable_auth" => cli.disable_auth.then_some("--disable-auth"),
        "access_mode.mode" => {
            if cli.multi_user_mode {
                Some("--multi-user-mode")
            } else if cli.single_user_mode {
                Some("--single-user-mode")
            } else {
                None
            }
        }
        "notifications.enabled" => cli.notifications.map(|on| {
            if on {
                "--enable-notifications"
            } else {
                "--disable-notifications"
            }
        }),
        "server.trusted_proxies" => (!cli.trusted_proxies.is_empty()).then_some("--trusted-proxy"),
        "logging.capture_file" => cli.capture_file.as_ref().map(|_| "--capture-file"),
        "oauth.allow_auto_replacement" => cli
            .allow_oauth_auto_replacement
            .then_some("--allow-oauth-auto-replacement"),
        "sso.enabled" => cli.sso_enabled.then_some("--sso-enabled"),
        "management.key" => cli.management_key.as_ref().map(|_| "--management-key"),
        "storage.database_url" => cli.database_url.as_ref().map(|_| "--database-url"),
        "storage.redis_url" => cli.redis_url.as_ref().map(|_| "--redis-url"),
        "storage.data_dir" => cli.data_dir.as_ref().map(|_| "--data-dir"),
        "auth.brute_force_protection.enabled" => cli.brute_force_enabled.map(|on| {
            if on {
                "--enable-brute-force-protection"
            } else {
                "--disable-brute-force-protection"
            }
        }),
        "auth.brute_force_protection.max_failed_attempts" => cli
            .max_failed_attempts
            .map(|_| "--auth-max-failed-attempts"),
        "auth.brute_force_protection.ttl_seconds" => {
            cli.brute_force_ttl.map(|_| "--auth-brute-force-ttl")
        }
        "auth.brute_force_protection.initial_block_seconds" => cli
            .brute_force_initial_block
            .map(|_| "--auth-brute-force-initial-block"),
        "auth.brute_force_protection.block_multiplier" => cli
            .brute_force_multiplier
            .map(|_| "--auth-brute-force-multiplier"),
        "auth.brute_force_protection.max_block_seconds" => cli
            .brute_force_max_block
            .map(|_| "--auth-brute-force-max-block"),
        _ => None,
    };
    if let Some(flag) = from_cli {
        return format!("command line {flag}");
    }
    let Some(meta) = figment.find_metadata(key) else {
        return "environment".to_owned();
    };
    let path: Vec<&str> = key.split('.').collect();
    match &meta.source {
        Some(figment::Source::File(p)) => format!("YAML file {}", p.display()),
        _ if meta.name.contains("environment") => {
            format!("environment variable {}", env_var_name(&meta.name, &path))
        }
        _ => code_source(&meta.name, cli),
    }
}

/// Names a layer made in code (figment names it by the value's type): the defaults, or the
/// `--sso-config` file merged as a value.
fn code_source(provider: &str, cli: &CliOverrides) -> String {
    match &cli.sso_config {
        Some(path) if provider != std::any::type_name::<Config>() => {
            format!("YAML file {} (--sso-config)", path.display())
        }
        _ => "built-in default".to_owned(),
    }
}

/// The environment variable that supplies `path`: `PORTCULLIS_A__B` for the generic layer, the
/// seed alias for the alias layer.
fn env_var_name(provider: &str, path: &[&str]) -> String {
    let dotted = path.join(".");
    if !provider.contains("PORTCULLIS_") {
        let aliases: Vec<&str> = ENV_ALIASES
            .iter()
            .filter(|(_, key)| *key == dotted)
            .map(|(name, _)| *name)
            .collect();
        if !aliases.is_empty() {
            return aliases.join(" or ");
        }
    }
    format!("PORTCULLIS_{}", path.join("__").to_uppercase())
}

fn describe_figment_error(e: &figment::Error, cli: &CliOverrides) -> String {
    e.clone()
        .into_iter()
        .map(|err| {
            let mut line = err.kind.to_string();
            if !err.path.is_empty() {
                line.push_str(&format!(" for key `{}`", err.path.join(".")));
            }
            if let Some(meta) = &err.metadata {
                match &meta.source {
                    Some(figment::Source::File(p)) => {
                        line.push_str(&format!(" in YAML file {}", p.display()))
                    }
                    _ if meta.name.contains("environment") => {
                        let path: Vec<&str> = err.path.iter().map(String::as_str).collect();
                        line.push_str(&format!(
                            " in environment variable {}",
                            env_var_name(&meta.name, &path)
                        ));
                    }
                    _ => line.push_str(&format!(" in {}", code_source(&meta.name, cli))),
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ")
}
