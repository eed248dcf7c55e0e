//! Startup validation: every rule that can be checked before serving, with a message that names
//! the key, where its value came from, and how to fix it.

use std::net::IpAddr;

use super::{Config, ConfigError};

/// Checks `config`; `source_of(key)` names the layer that supplied a dotted key.
pub fn validate(config: &Config, source_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    let fail = |key: &str, message: String| ConfigError::Invalid {
        key: key.to_owned(),
        origin: source_of(key),
        message,
    };

    if config.server.host.trim().is_empty() {
        return Err(fail("server.host", "must not be empty".to_owned()));
    }
    if config.server.host != "localhost" && config.server.host.parse::<IpAddr>().is_err() {
        return Err(fail(
            "server.host",
            format!(
                "`{}` is not an IP address (use e.g. 127.0.0.1, 0.0.0.0, ::1 or localhost)",
                config.server.host
            ),
        ));
    }
    if config.server.max_body_bytes < 1024 {
        return Err(fail(
            "server.max_body_bytes",
            "must be at least 1024".to_owned(),
        ));
    }
    if config
        .logging
        .level
        .parse::<tracing_subscriber::EnvFilter>()
        .is_err()
    {
        return Err(fail(
            "logging.level",
            format!(
                "`{}` is not a log filter (e.g. info, debug, portcullis=debug)",
                config.logging.level
            ),
        ));
    }

    for (name, b) in &config.backends {
        let prefix = format!("backends.{name}");
        if !valid_backend_name(name) {
            return Err(fail(
                &prefix,
                format!("backend name `{name}` may use only a-z, 0-9, `-`, `_` and `.` (no `:`)"),
            ));
        }
        if let Some(url) = &b.base_url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(fail(
                        &format!("{prefix}.base_url"),
                        format!("`{url}` is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        for (h, v) in &b.headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                return Err(fail(
                    &format!("{prefix}.headers"),
                    format!("`{h}` is not a valid header name/value"),
                ));
            }
        }
        if b.timeouts.connect.0.is_zero() {
            return Err(fail(
                &format!("{prefix}.timeouts.connect"),
                "must be more than 0".to_owned(),
            ));
        }
        if b.timeouts.read_idle.0.is_zero() {
            return Err(fail(
                &format!("{prefix}.timeouts.read_idle"),
                "must be more than 0".to_owned(),
            ));
        }
    }

    if let Some(default) = &config.routing.default_backend {
        let backend = default.split_once(':').map_or(default.as_str(), |(b, _)| b);
        if !config.backends.contains_key(backend) {
            return Err(fail(
                "routing.default_backend",
                format!(
                    "`{default}` names backend `{backend}`, which is not configured (configured: {})",
                    backend_list(config)
                ),
            ));
        }
    }
    for (alias, target) in &config.routing.aliases {
        let key = format!("routing.aliases.{alias}");
        match target.split_once(':') {
            Some((b, m)) if config.backends.contains_key(b) && !m.is_empty() => {}
            _ => {
                return Err(fail(
                    &key,
                    format!(
                        "alias target `{target}` must be `backend:model` with a configured backend (configured: {})",
                        backend_list(config)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn valid_backend_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

fn backend_list(config: &Config) -> String {
    if config.backends.is_empty() {
        "none".to_owned()
    } else {
        config
            .backends
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, BackendKind};

    fn backend(kind: BackendKind) -> BackendConfig {
        BackendConfig {
            kind,
            base_url: None,
            api_key: None,
            api_key_env: None,
            headers: Default::default(),
            timeouts: Default::default(),
            http2_prior_knowledge: false,
        }
    }

    fn check(config: &Config) -> Result<(), String> {
        validate(config, &|_| "test".to_owned()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(check(&Config::default()), Ok(()));
    }

    #[test]
    fn each_rule_names_its_key() {
        type Mutation = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "server.host",
                Box::new(|c| c.server.host = "my host".into()),
            ),
            ("logging.level", Box::new(|c| c.logging.level = "[[".into())),
            (
                "backends.Open:AI",
                Box::new(|c| {
                    c.backends
                        .insert("Open:AI".into(), backend(BackendKind::Openai));
                }),
            ),
            (
                "backends.o.base_url",
                Box::new(|c| {
                    let mut b = backend(BackendKind::Openai);
                    b.base_url = Some("ftp://x".into());
                    c.backends.insert("o".into(), b);
                }),
            ),
            (
                "routing.default_backend",
                Box::new(|c| c.routing.default_backend = Some("nope:gpt".into())),
            ),
            (
                "routing.aliases.fast",
                Box::new(|c| {
                    c.backends.insert("o".into(), backend(BackendKind::Openai));
                    c.routing.aliases.insert("fast".into(), "o".into());
                }),
            ),
        ];
        for (key, mutate) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            let err = check(&c).err().unwrap_or_default();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }
}
