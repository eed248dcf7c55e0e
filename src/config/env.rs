//! Reading the environment: secrets from `NAME` or `NAME_FILE`, truthy/falsy switches, backend
//! keys named by `api_key_env`, and the ecosystem's provider variables (`OPENAI_API_KEY`, …).

use std::collections::BTreeMap;

use super::{BackendConfig, BackendKind, Config, ConfigError};
use crate::secret::Secret;

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

/// Reads a switch: `true/false`, `1/0`, `yes/no`, `on/off` (any case); unset or empty is `None`.
pub fn env_bool(env: &dyn EnvSource, name: &str) -> Result<Option<bool>, ConfigError> {
    let Some(raw) = env.var(name) else {
        return Ok(None);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "1" | "true" | "yes" | "on" => Ok(Some(true)),
        "0" | "false" | "no" | "off" => Ok(Some(false)),
        other => Err(ConfigError::Invalid {
            key: name.to_owned(),
            origin: format!("environment variable {name}"),
            message: format!("`{other}` is not true or false"),
        }),
    }
}

/// Fills `api_key` from the variable `api_key_env` names: one or the other, not both, and the
/// variable must be set. `invalid` makes the error for the entry's key.
pub(crate) fn resolve_api_key(
    api_key: &mut Option<Secret>,
    api_key_env: Option<&str>,
    env: &dyn EnvSource,
    invalid: &dyn Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    let Some(var) = api_key_env else {
        return Ok(());
    };
    if api_key.is_some() {
        return Err(invalid(
            "set either `api_key` or `api_key_env`, not both".to_owned(),
        ));
    }
    match env_secret(env, var)? {
        Some(secret) => {
            *api_key = Some(secret);
            Ok(())
        }
        None => Err(invalid(format!(
            "environment variable `{var}` (or `{var}_FILE`) is not set"
        ))),
    }
}

/// Replaces each backend's `api_key_env` by the key it names.
pub(crate) fn resolve_backend_keys(
    config: &mut Config,
    env: &dyn EnvSource,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (name, backend) in &mut config.backends {
        let key = format!("backends.{name}.api_key_env");
        resolve_api_key(
            &mut backend.api_key,
            backend.api_key_env.as_deref(),
            env,
            &|message| ConfigError::Invalid {
                origin: source_of(&key),
                key: key.clone(),
                message,
            },
        )?;
    }
    Ok(())
}

/// The ecosystem's variables and the backend keys they set.
const STANDARD_VARIABLES: [(BackendKind, &str, &str); 3] = [
    (BackendKind::Openai, "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    (
        BackendKind::Anthropic,
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ),
    (BackendKind::Gemini, "GEMINI_API_KEY", "GEMINI_BASE_URL"),
];

/// The variable that sets `key` (dotted) of a backend made by [`backends_from_standard_env`].
pub(crate) fn standard_variable(key: &str) -> Option<&'static str> {
    let (kind, field) = key.strip_prefix("backends.")?.split_once('.')?;
    let (_, key_var, url_var) = STANDARD_VARIABLES
        .iter()
        .find(|(k, _, _)| k.as_str() == kind)?;
    match field {
        "base_url" => Some(url_var),
        "api_key" | "api_key_env" => Some(key_var),
        "forward_headers" => Some("PORTCULLIS_FORWARD_HEADERS"),
        _ => None,
    }
}

/// Backends from `OPENAI_API_KEY`/`OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`/`ANTHROPIC_BASE_URL` and
/// `GEMINI_API_KEY`/`GEMINI_BASE_URL`. A base URL without a key still makes a backend (Ollama,
/// vLLM and other local servers need no key). `PORTCULLIS_FORWARD_HEADERS` (comma-separated
/// header names) is their `forward_headers`.
pub fn backends_from_standard_env(
    env: &dyn EnvSource,
) -> Result<BTreeMap<String, BackendConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    let forward_headers: Vec<String> = env
        .var("PORTCULLIS_FORWARD_HEADERS")
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    for (kind, key_var, url_var) in STANDARD_VARIABLES {
        let key = env_secret(env, key_var)?;
        let url = env.var(url_var).filter(|u| !u.trim().is_empty());
        if key.is_none() && url.is_none() {
            continue;
        }
        out.insert(
            kind.as_str().to_owned(),
            BackendConfig {
                base_url: url.map(|u| u.trim().to_owned()),
                api_key: key,
                api_key_env: Some(key_var.to_owned()),
                forward_headers: forward_headers.clone(),
                ..BackendConfig::of_kind(kind)
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment made of a map.
    pub(crate) struct MapEnv(pub(crate) HashMap<String, String>);

    impl EnvSource for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    pub(crate) fn env(pairs: &[(&str, &str)]) -> MapEnv {
        MapEnv(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn switches_accept_the_usual_spellings() {
        let e = env(&[("A", "YES"), ("B", "0"), ("C", "maybe"), ("D", "")]);
        assert_eq!(env_bool(&e, "A").ok(), Some(Some(true)));
        assert_eq!(env_bool(&e, "B").ok(), Some(Some(false)));
        assert!(env_bool(&e, "C").is_err());
        assert_eq!(env_bool(&e, "D").ok(), Some(None));
        assert_eq!(env_bool(&e, "E").ok(), Some(None));
    }

    #[test]
    fn secrets_come_from_the_variable_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "from-file\n").unwrap();
        let e = env(&[
            ("K_FILE", path.to_str().unwrap()),
            ("J", "direct"),
            ("J_FILE", "/nope"),
        ]);
        assert_eq!(env_secret(&e, "K").unwrap().unwrap().expose(), "from-file");
        assert_eq!(env_secret(&e, "J").unwrap().unwrap().expose(), "direct");
        assert!(env_secret(&env(&[("X_FILE", "/nonexistent/x")]), "X").is_err());
    }

    #[test]
    fn standard_variables_make_backends() {
        let e = env(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
        ]);
        let b = backends_from_standard_env(&e).unwrap();
        assert_eq!(b.len(), 2);
        assert!(b["openai"].api_key.is_none());
        assert_eq!(b["anthropic"].kind, BackendKind::Anthropic);
        assert_eq!(
            standard_variable("backends.gemini.base_url"),
            Some("GEMINI_BASE_URL")
        );
        assert_eq!(standard_variable("backends.my-vllm.base_url"), None);
    }
}
