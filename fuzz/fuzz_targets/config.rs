//! The configuration loader (`config/load.rs`): YAML text and environment variables.
//!
//! Input: YAML text, then optionally a line `#env` followed by `NAME=value` lines. The YAML is
//! written to a file and given as `--config`; the variables are the loader's environment (and,
//! for the names figment reads from the process — `PORTCULLIS_<A>__<B>` and the seeds' aliases —
//! the process environment, set for the call and removed after). A `NAME_FILE` variable's value
//! is the content of the file it names (the target writes it), so no input can name
//! `/dev/stdin` or `/dev/zero`. Properties:
//! - `load_with_env` returns a configuration or a `ConfigError`, never panics, and the error's
//!   message renders.
//! - A loaded configuration answers everything startup asks of it (`secrets`, `token_settings`,
//!   `auth_settings`, `redis_settings`, `public_url`, `needs_store`, `notifications_enabled`,
//!   `event_loops`) without panicking, and serialises (what `check-config` prints).
//! - No secret the configuration names (`Config::secrets`, at least 12 characters, given once
//!   in the input) appears in the printed configuration or in an error message.

#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::config::env::EnvSource;
use portcullis::config::load::{ConfigSources, load_with_env};

/// The seeds' variable names figment reads from the process (`config/load.rs` `ENV_ALIASES`).
const PROCESS_ALIASES: &[&str] = &[
    "LLM_PROXY_ACCESS_MODE",
    "PORTCULLIS_ACCESS_MODE",
    "WIRE_CAPTURE_FILE",
    "PORTCULLIS_DATABASE_URL",
    "PORTCULLIS_REDIS_URL",
    "PORTCULLIS_DATA_DIR",
    "SSO_PUBLIC_URL",
    "PUBLIC_URL",
    "SSO_SESSION_LIFETIME_HOURS",
    "SSO_AUTH_MODE",
    "SSO_AUTH_API_URL",
    "SSO_AUTH_API_TIMEOUT",
    "SSO_CONFIRMATION_CODE_EXPIRY_MINUTES",
    "SSO_MAX_CONFIRMATION_ATTEMPTS",
    "BRUTE_FORCE_MAX_FAILED_ATTEMPTS",
    "BRUTE_FORCE_TTL_SECONDS",
    "BRUTE_FORCE_INITIAL_BLOCK_SECONDS",
    "BRUTE_FORCE_BLOCK_MULTIPLIER",
    "BRUTE_FORCE_MAX_BLOCK_SECONDS",
];

/// Shortest secret checked for: shorter ones occur in ordinary settings by chance.
const MIN_SECRET: usize = 12;

struct MapEnv(HashMap<String, String>);

impl EnvSource for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A directory of this process for the YAML file and the `_FILE` contents.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("portcullis-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// True for a name the process environment may be given (figment's layers read these).
fn process_name(name: &str) -> bool {
    (name.starts_with("PORTCULLIS_") && name.contains("__")) || PROCESS_ALIASES.contains(&name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (yaml, env_text) = text.split_once("\n#env\n").unwrap_or((&text, ""));
    let dir = scratch();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, yaml).expect("write the YAML file");
    let mut env = HashMap::new();
    for (i, line) in env_text.lines().enumerate() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !valid_name(name) || value.contains('\0') {
            continue;
        }
        let value = if name.ends_with("_FILE") {
            let file = dir.join(format!("file-{i}"));
            std::fs::write(&file, value).expect("write a _FILE");
            file.to_string_lossy().into_owned()
        } else {
            value.to_owned()
        };
        env.insert(name.to_owned(), value);
    }
    let in_process: Vec<&String> = env.keys().filter(|n| process_name(n)).collect();
    for name in &in_process {
        // SAFETY: libFuzzer runs the target on one thread and this target starts no other.
        unsafe { std::env::set_var(name, &env[*name]) };
    }
    let sources = ConfigSources {
        config_path: Some(config_path),
        ..Default::default()
    };
    let env = MapEnv(env.clone());
    let loaded = load_with_env(&sources, &env);
    for name in &in_process {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    let secret_given_once = |s: &str| {
        s.len() >= MIN_SECRET
            && text.matches(s).count() + env.0.values().filter(|v| v.contains(s)).count() <= 1
    };
    match loaded {
        Err(e) => {
            let message = e.to_string();
            for value in env.0.values() {
                let value = value.trim();
                let named_secret = env
                    .0
                    .iter()
                    .any(|(n, v)| v.trim() == value && is_secret_name(n));
                if named_secret && secret_given_once(value) {
                    assert!(!message.contains(value), "a secret in the error: {message}");
                }
            }
        }
        Ok(config) => {
            let secrets = config.secrets();
            let _ = (config.token_settings(), config.auth_settings());
            let _ = (config.storage.redis_settings(), config.public_url());
            let _ = (config.needs_store(), config.notifications_enabled());
            let _ = config.server.event_loops();
            let printed = serde_json::to_string(&config).expect("the configuration serialises");
            for s in &secrets {
                let s = s.expose();
                if secret_given_once(s) {
                    assert!(
                        !printed.contains(s),
                        "a secret in the printed configuration"
                    );
                }
            }
        }
    }
});

/// Variables that hold a secret by their name.
fn is_secret_name(name: &str) -> bool {
    ["KEY", "SECRET", "TOKEN", "PASSWORD"]
        .iter()
        .any(|w| name.contains(w))
        && !name.ends_with("_FILE")
        && !name.ends_with("_ENV")
}
