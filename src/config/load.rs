//! Loading: defaults → YAML file → environment → command line, into one typed [`Config`].
//!
//! Environment forms: every YAML key as `PORTCULLIS_<SECTION>__<KEY>` (double underscore nests),
//! the seeds' own names as aliases (`DISABLE_AUTH`, `LLM_PROXY_ACCESS_MODE`, …), and — when no
//! backend is configured anywhere — the ecosystem's provider variables (`OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`, `GEMINI_API_KEY` with their `*_BASE_URL`s). Secrets may come from
//! `NAME_FILE` instead of `NAME`. Errors name the source and the key.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};

use super::{BackendConfig, BackendKind, Config, LogFormat, TimeoutConfig};
use crate::secret::Secret;

/// Values given on the command line; `None` leaves the lower layers in charge.
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

/// Reads environment variables; a trait so that tests can supply their own.
pub trait EnvSource {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Reads a secret from `NAME` or, failing that, from the file named by `NAME_FILE`.
pub fn env_secret(env: &dyn EnvSource, name: &str) -> Result<Option<Secret>, ConfigError> {
    if let Some(v) = env.var(name).filter(|v| !v.trim().is_empty()) {
        return Ok(Some(Secret::new(v)));
    }
    let file_var = format!("{name}_FILE");
    match env.var(&file_var) {
        Some(path) if !path.trim().is_empty() => match std::fs::read_to_string(path.trim()) {
            Ok(text) => Ok(Some(Secret::new(text)).filter(|s| !s.is_empty())),
            Err(e) => Err(ConfigError::Invalid {
                key: name.to_owned(),
                origin: format!("environment variable {file_var}"),
                message: format!("cannot read `{}`: {e}", path.trim()),
            }),
        },
        _ => Ok(None),
    }
}

/// Environment variables of the origin systems, mapped onto config keys.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("DISABLE_AUTH", "auth.disable_auth"),
    ("LLM_PROXY_ACCESS_MODE", "access_mode.mode"),
    ("PORTCULLIS_ACCESS_MODE", "access_mode.mode"),
];

/// Loads and validates the configuration from the process environment.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
    load_with_env(sources, &ProcessEnv)
}

/// Loads with an explicit environment for everything except the `PORTCULLIS_*__*` layer, which
/// figment reads from the process.
pub fn load_with_env(sources: &ConfigSources, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &sources.config_path {
        check_file(path)?;
        figment = figment.merge(Yaml::file_exact(path));
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
        .map_err(|e| ConfigError::Parse(describe_figment_error(&e)))?;

    apply_cli(&mut config, &sources.cli);
    resolve_backend_keys(&mut config, env, &figment)?;
    if config.backends.is_empty() {
        config.backends = backends_from_standard_env(env)?;
    }
    super::validate::validate(&config, &|key| source_of(&figment, &sources.cli, key))?;
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

fn apply_cli(config: &mut Config, cli: &CliOverrides) {
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
}

fn resolve_backend_keys(
    config: &mut Config,
    env: &dyn EnvSource,
    figment: &Figment,
) -> Result<(), ConfigError> {
    for (name, backend) in &mut config.backends {
        let Some(var) = backend.api_key_env.clone() else {
            continue;
        };
        let key = format!("backends.{name}.api_key_env");
        if backend.api_key.is_some() {
            return Err(ConfigError::Invalid {
                origin: source_of(figment, &CliOverrides::default(), &key),
                key,
                message: "set either `api_key` or `api_key_env`, not both".to_owned(),
            });
        }
        match env_secret(env, &var)? {
            Some(secret) => backend.api_key = Some(secret),
            None => {
                return Err(ConfigError::Invalid {
                    origin: source_of(figment, &CliOverrides::default(), &key),
                    key,
                    message: format!("environment variable `{var}` (or `{var}_FILE`) is not set"),
                });
            }
        }
    }
    Ok(())
}

/// Backends from `OPENAI_API_KEY`/`OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`/`ANTHROPIC_BASE_URL` and
/// `GEMINI_API_KEY`/`GEMINI_BASE_URL`. A base URL without a key still makes a backend (Ollama,
/// vLLM and other local servers need no key).
pub fn backends_from_standard_env(
    env: &dyn EnvSource,
) -> Result<std::collections::BTreeMap<String, BackendConfig>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, key_var, url_var) in [
        (BackendKind::Openai, "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        (
            BackendKind::Anthropic,
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
        ),
        (BackendKind::Gemini, "GEMINI_API_KEY", "GEMINI_BASE_URL"),
    ] {
        let key = env_secret(env, key_var)?;
        let url = env.var(url_var).filter(|u| !u.trim().is_empty());
        if key.is_none() && url.is_none() {
            continue;
        }
        out.insert(
            kind.as_str().to_owned(),
            BackendConfig {
                kind,
                base_url: url.map(|u| u.trim().to_owned()),
                api_key: key,
                api_key_env: Some(key_var.to_owned()),
                headers: Default::default(),
                timeouts: TimeoutConfig::default(),
                http2_prior_knowledge: false,
            },
        );
    }
    Ok(out)
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
        _ if meta.name.contains("Serialized") => "built-in default".to_owned(),
        _ => meta.name.to_string(),
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

fn describe_figment_error(e: &figment::Error) -> String {
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
                    _ => line.push_str(&format!(" in {}", meta.name)),
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ")
}
