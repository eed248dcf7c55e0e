//! Startup validation: every rule that can be checked before serving, with a message that names
//! the key, where its value came from, and how to fix it.

use std::net::IpAddr;
use std::time::Duration;

use super::{AccessMode, Config, ConfigError};

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
        .server
        .event_loops
        .is_some_and(|n| n > crate::config::ServerConfig::MAX_EVENT_LOOPS)
    {
        return Err(fail(
            "server.event_loops",
            format!(
                "must be at most {} (0 = one work-stealing runtime; unset = one loop per CPU)",
                crate::config::ServerConfig::MAX_EVENT_LOOPS
            ),
        ));
    }
    connection_limits(&config.server, &fail)?;
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
        if b.responses_api != crate::protocol::ResponsesApi::Native
            && b.kind != crate::protocol::BackendKind::Openai
        {
            return Err(fail(
                &format!("{prefix}.responses_api"),
                format!(
                    "only OpenAI-type backends have a Responses API setting (backend `{name}` is of type {}; its Responses requests are always translated)",
                    b.kind.as_str()
                ),
            ));
        }
        let connector_only = [
            ("credentials_file", b.credentials_file.is_some()),
            ("project", b.project.is_some()),
            ("tier", b.tier.is_some()),
        ];
        for (key, set) in connector_only {
            if set && !b.kind.is_connector() {
                return Err(fail(
                    &format!("{prefix}.{key}"),
                    format!(
                        "only subscription connectors (type gemini_cli, codex, qwen_code, kiro) have `{key}` (backend `{name}` is of type {})",
                        b.kind.as_str()
                    ),
                ));
            }
        }
        if (b.project.is_some() || b.tier.is_some())
            && b.kind != crate::protocol::BackendKind::GeminiCli
        {
            return Err(fail(
                &format!(
                    "{prefix}.{}",
                    if b.project.is_some() {
                        "project"
                    } else {
                        "tier"
                    }
                ),
                format!(
                    "only gemini_cli backends choose a Code Assist project (backend `{name}` is of type {})",
                    b.kind.as_str()
                ),
            ));
        }
        if b.kind.is_connector() && !b.credentials.is_empty() {
            return Err(fail(
                &format!("{prefix}.credentials"),
                format!(
                    "a {} connector's credentials are its CLI's login (imported from credentials_file, or `portcullis auths import {name}`), not API keys",
                    b.kind.as_str()
                ),
            ));
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
        if let Some(path) = &b.tls_ca_file {
            crate::net::read_ca_file(path).map_err(|e| {
                fail(
                    &format!("{prefix}.tls_ca_file"),
                    format!("backend `{name}`: {e}"),
                )
            })?;
        }
        for h in &b.forward_headers {
            let lower = h.trim().to_ascii_lowercase();
            if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                return Err(fail(
                    &format!("{prefix}.forward_headers"),
                    format!("`{h}` is not a valid header name"),
                ));
            }
            if crate::net::never_forwarded(&lower) {
                return Err(fail(
                    &format!("{prefix}.forward_headers"),
                    format!(
                        "`{h}` is never forwarded: it carries the client's credential or belongs to the client's connection"
                    ),
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

    validate_auth(config, &fail, source_of)?;
    super::sso::validate_sso(config, &fail)?;
    super::sso::validate_management(config, &fail)?;
    super::console::validate_console(config, &fail)?;
    super::sso::validate_jwt(config, &fail)?;
    super::limits::validate_limits(config, &fail)?;
    super::pool::validate_device_logins(config, &fail)?;
    if let Some(url) = &config.storage.database_url
        && !(url.expose().starts_with("postgres://")
            || url.expose().starts_with("postgresql://")
            || url.expose().starts_with("sqlite:"))
    {
        return Err(fail(
            "storage.database_url",
            "must start with postgres:// (or sqlite://)".to_owned(),
        ));
    }

    validate_redis(&config.storage, &fail)?;

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

/// Longest lockout window or block (365 days): the limiter adds these to clock readings.
const MAX_LOCKOUT_SECONDS: u64 = 365 * 86_400;

/// Most rotated capture files (each rotation renames every one of them).
const MAX_CAPTURE_FILES: u32 = 1000;

fn validate_auth(
    config: &Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (i, cidr) in config.server.trusted_proxies.iter().enumerate() {
        if let Err(e) = cidr.parse::<crate::net::IpNet>() {
            return Err(fail(&format!("server.trusted_proxies[{i}]"), e));
        }
    }
    for (i, path) in config.auth.bypass_paths.iter().enumerate() {
        if !path.starts_with('/') {
            return Err(fail(
                &format!("auth.bypass_paths[{i}]"),
                format!("`{path}` must start with `/`"),
            ));
        }
    }
    let bf = &config.auth.brute_force_protection;
    let key = "auth.brute_force_protection";
    if bf.max_failed_attempts == 0 {
        return Err(fail(
            &format!("{key}.max_failed_attempts"),
            "must be at least 1".to_owned(),
        ));
    }
    for (name, secs) in [
        ("ttl_seconds", bf.ttl_seconds),
        ("initial_block_seconds", bf.initial_block_seconds),
        ("max_block_seconds", bf.max_block_seconds),
    ] {
        if !(1..=MAX_LOCKOUT_SECONDS).contains(&secs) {
            return Err(fail(
                &format!("{key}.{name}"),
                format!("{secs} must be between 1 and {MAX_LOCKOUT_SECONDS} seconds (365 days)"),
            ));
        }
    }
    if !(bf.block_multiplier.is_finite() && (1.0..=1000.0).contains(&bf.block_multiplier)) {
        return Err(fail(
            &format!("{key}.block_multiplier"),
            format!("{} must be a number from 1.0 to 1000", bf.block_multiplier),
        ));
    }
    if bf.max_block_seconds < bf.initial_block_seconds {
        return Err(fail(
            &format!("{key}.max_block_seconds"),
            "must not be less than initial_block_seconds".to_owned(),
        ));
    }
    if bf.max_tracked_ips < 64 {
        return Err(fail(
            &format!("{key}.max_tracked_ips"),
            "must be at least 64".to_owned(),
        ));
    }
    if !(1..=128).contains(&bf.ipv6_prefix) {
        return Err(fail(
            &format!("{key}.ipv6_prefix"),
            format!(
                "{} is not an IPv6 prefix length (1–128; 64 counts each /64 as one client)",
                bf.ipv6_prefix
            ),
        ));
    }
    if config.logging.capture_max_bytes < 1024 {
        return Err(fail(
            "logging.capture_max_bytes",
            "must be at least 1024".to_owned(),
        ));
    }
    if !(1..=MAX_CAPTURE_FILES).contains(&config.logging.capture_max_files) {
        return Err(fail(
            "logging.capture_max_files",
            format!("must be between 1 and {MAX_CAPTURE_FILES}"),
        ));
    }
    validate_access_mode(config, source_of)?;
    if !config.auth.disable_auth
        && config.auth.api_keys.is_empty()
        && !config.sso.enabled
        && config.auth.jwt.issuers.is_empty()
        && !config.storage.is_present()
    {
        return Err(ConfigError::Rule(
            "API key not configured: set PORTCULLIS_API_KEYS (or LLM_INTERACTIVE_PROXY_API_KEY), enable SSO, or pass --disable-auth for local development.".to_owned(),
        ));
    }
    Ok(())
}

/// The access-mode rules of PRODUCT §6, with the origin system's messages.
fn validate_access_mode(
    config: &Config,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let host = &config.server.host;
    let loopback = crate::net::is_loopback_host(host);
    let rule = |m: String| Err(ConfigError::Rule(m));
    match config.access_mode.mode {
        AccessMode::SingleUser => {
            if !loopback {
                return rule(format!(
                    "Single User Mode requires binding to 127.0.0.1 only. Current host: {host}. Use --multi-user-mode for remote access."
                ));
            }
        }
        AccessMode::MultiUser => {
            if !loopback && config.auth.disable_auth {
                return rule(format!(
                    "Multi User Mode requires authentication when binding to non-localhost addresses. Current host: {host}. Enable authentication via API keys or SSO."
                ));
            }
            super::oauth::refuse_in_multi_user(config, source_of)?;
            if config.notifications_enabled() {
                return rule(
                    "Desktop notifications are not allowed in Multi User Mode. Multi User Mode is for dedicated servers, not desktop computers. Use --disable-notifications or switch to Single User Mode.".to_owned(),
                );
            }
        }
    }
    Ok(())
}

/// Longest `storage.redis_timeout`: a request waits at most this long on Redis.
const MAX_REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `storage.redis_*`: a URL the Redis client reads, a prefix that keys can start with, a timeout.
fn validate_redis(
    storage: &super::StorageConfig,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if let Some(url) = &storage.redis_url
        && let Err(e) = crate::redis_conn::check_url(url.expose())
    {
        return Err(fail(
            "storage.redis_url",
            format!(
                "not a Redis URL ({e}); use redis://[user:password@]host[:port][/db], rediss://… for TLS, or redis+unix:///path/to/socket"
            ),
        ));
    }
    let prefix = &storage.redis_prefix;
    if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail(
            "storage.redis_prefix",
            format!("`{prefix}` must be non-empty text without spaces (e.g. `portcullis:`)"),
        ));
    }
    let timeout = storage.redis_timeout.0;
    if timeout.is_zero() || timeout > MAX_REDIS_TIMEOUT {
        return Err(fail(
            "storage.redis_timeout",
            "must be more than 0 and at most 30s (e.g. 500ms)".to_owned(),
        ));
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

/// `server.max_connections`, the connection timeouts and `server.max_header_bytes`.
fn connection_limits(
    server: &crate::config::ServerConfig,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    const HOUR: Duration = Duration::from_secs(3600);
    if server.max_connections == Some(0) {
        return Err(fail(
            "server.max_connections",
            "must be at least 1 (unset: half the open-file limit)".to_owned(),
        ));
    }
    for (key, value, most) in [
        (
            "server.header_read_timeout",
            server.header_read_timeout,
            HOUR,
        ),
        ("server.keep_alive_idle", server.keep_alive_idle, 24 * HOUR),
        (
            "server.request_body_timeout",
            server.request_body_timeout,
            HOUR,
        ),
    ] {
        if value.0 < Duration::from_millis(10) || value.0 > most {
            return Err(fail(
                key,
                format!(
                    "`{value}` is out of range (from 10ms to {})",
                    crate::config::HumanDuration(most)
                ),
            ));
        }
    }
    if !(8 * 1024..=16 * 1024 * 1024).contains(&server.max_header_bytes) {
        return Err(fail(
            "server.max_header_bytes",
            "must be between 8192 and 16777216".to_owned(),
        ));
    }
    if server.max_buffered_answer_bytes < 1024 * 1024 {
        return Err(fail(
            "server.max_buffered_answer_bytes",
            "must be at least 1048576 (1 MiB)".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{BackendConfig, BackendKind, HumanDuration};
    use crate::secret::Secret;

    fn backend(kind: BackendKind) -> BackendConfig {
        BackendConfig::of_kind(kind)
    }

    fn check(config: &Config) -> Result<(), String> {
        validate(config, &|_| "test".to_owned()).map_err(|e| e.to_string())
    }

    fn base() -> Config {
        let mut c = Config::default();
        c.auth.disable_auth = true;
        c
    }

    #[test]
    fn defaults_need_a_credential_source() {
        let err = check(&Config::default()).unwrap_err();
        assert!(
            err.starts_with("API key not configured: set PORTCULLIS_API_KEYS"),
            "{err}"
        );
        assert_eq!(check(&base()), Ok(()));
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
                "auth.brute_force_protection.ipv6_prefix",
                Box::new(|c| c.auth.brute_force_protection.ipv6_prefix = 129),
            ),
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
                "backends.a.responses_api",
                Box::new(|c| {
                    let mut b = backend(BackendKind::Anthropic);
                    b.responses_api = crate::protocol::ResponsesApi::ChatCompletions;
                    c.backends.insert("a".into(), b);
                }),
            ),
            (
                "routing.default_backend",
                Box::new(|c| c.routing.default_backend = Some("nope:gpt".into())),
            ),
            (
                "storage.redis_url",
                Box::new(|c| c.storage.redis_url = Some(Secret::new("cache:6379"))),
            ),
            (
                "storage.redis_prefix",
                Box::new(|c| c.storage.redis_prefix = "my prefix".into()),
            ),
            (
                "storage.redis_timeout",
                Box::new(|c| c.storage.redis_timeout = HumanDuration(Duration::ZERO)),
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
            let mut c = base();
            mutate(&mut c);
            let err = check(&c).err().unwrap_or_default();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }

    #[test]
    fn the_redis_url_and_its_password_are_masked_secrets() {
        let mut c = base();
        c.storage.redis_url = Some(Secret::new("redis://:s3cret-pass@cache:6379/0"));
        assert_eq!(check(&c), Ok(()));
        let secrets = c.secrets();
        assert!(secrets.iter().any(|s| s.expose() == "s3cret-pass"));
        assert!(secrets.iter().any(|s| s.expose().starts_with("redis://")));
        let settings = c.storage.redis_settings().unwrap();
        assert_eq!(settings.prefix, "portcullis:");
        assert_eq!(settings.timeout, Duration::from_millis(500));
    }
}
