//! Configuration is input too: every out-of-range value, from the YAML file or the command line,
//! is refused at load with the key and its source named — never a panic, never a value that
//! wraps or saturates into another meaning. (The environment's forms are exercised on the real
//! binary in `tests/it/config_input.rs`, since figment reads the process environment.)

use std::io::Write;

use super::env::tests::env;
use super::load::{CliOverrides, ConfigSources, load_with_env};

/// Loads `yaml` as the whole file, with `cli` and the environment `vars` (the layers read
/// through `EnvSource`; figment's own read the process); the error text, if any.
pub(super) fn load_file(
    yaml: &str,
    cli: CliOverrides,
    vars: &[(&str, &str)],
) -> Result<super::Config, String> {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| e.to_string())?;
    file.write_all(yaml.as_bytes()).map_err(|e| e.to_string())?;
    let sources = ConfigSources {
        config_path: Some(file.path().to_path_buf()),
        cli,
    };
    load_with_env(&sources, &env(vars)).map_err(|e| e.to_string())
}

/// Loads `yaml` (with auth off, so no key is needed) and `cli`; the error text, if any.
fn load_yaml(yaml: &str, cli: CliOverrides) -> Result<super::Config, String> {
    load_file(&format!("auth: {{disable_auth: true}}\n{yaml}\n"), cli, &[])
}

#[test]
fn out_of_range_yaml_values_name_their_key_and_file() {
    let cases = [
        (
            "auth: {disable_auth: true, refresh: {check_interval: 1e30}}",
            "auth.refresh.check_interval",
        ),
        (
            "auth: {disable_auth: true, refresh: {refresh_lead_time: 18446744073709551615}}",
            "auth.refresh.refresh_lead_time",
        ),
        (
            "server: {shutdown_grace: 99999999999999999999d}",
            "server.shutdown_grace",
        ),
        (
            "backends: {o: {type: openai, timeouts: {read_idle: 36501d}}}",
            "backends.o.timeouts.read_idle",
        ),
        ("server: {port: 65536}", "server.port"),
        (
            "admin: {console: {enabled: true, admins: [\" \"]}}",
            "admin.console.admins",
        ),
        (
            "admin: {console: {enabled: true, admins: [alice], session_lifetime: 30s}}",
            "admin.console.session_lifetime",
        ),
        (
            "admin: {console: {enabled: true, admins: [alice], session_lifetime: 8d}}",
            "admin.console.session_lifetime",
        ),
        ("server: {port: -1}", "server.port"),
        ("server: {max_body_bytes: -1}", "server.max_body_bytes"),
        (
            "logging: {capture_max_files: 4000000000}",
            "logging.capture_max_files",
        ),
        (
            "auth: {disable_auth: true, brute_force_protection: {max_block_seconds: 18446744073709551615}}",
            "auth.brute_force_protection.max_block_seconds",
        ),
        (
            "auth: {disable_auth: true, brute_force_protection: {ttl_seconds: 31536001}}",
            "auth.brute_force_protection.ttl_seconds",
        ),
        (
            "auth: {disable_auth: true, brute_force_protection: {initial_block_seconds: 0}}",
            "auth.brute_force_protection.initial_block_seconds",
        ),
        (
            "auth: {disable_auth: true, brute_force_protection: {block_multiplier: 1.0e300}}",
            "auth.brute_force_protection.block_multiplier",
        ),
        (
            "auth: {disable_auth: true, brute_force_protection: {max_failed_attempts: 4294967296}}",
            "auth.brute_force_protection.max_failed_attempts",
        ),
        (
            "auth: {disable_auth: true, device_login: {gh: {token_url: 'not a url'}}}",
            "auth.device_login.gh.token_url",
        ),
        (
            "sso: {enabled: true, session_lifetime_hours: 18446744073709551615, providers: {x: {type: github, client_id: c, client_secret: s}}}",
            "sso.session_lifetime_hours",
        ),
        (
            "sso: {enabled: true, authorization: {confirmation_code_expiry_minutes: 9223372036854775808}, providers: {x: {type: github, client_id: c, client_secret: s}}}",
            "sso.authorization.confirmation_code_expiry_minutes",
        ),
    ];
    for (yaml, key) in cases {
        // A later `auth:` mapping would be a duplicate key: the cases that set auth say so
        // themselves, without the helper's line.
        let err = match yaml.starts_with("auth:") {
            true => load_whole(yaml),
            false => load_yaml(yaml, CliOverrides::default()).map(|_| ()),
        }
        .err()
        .unwrap_or_default();
        assert!(err.contains(key), "{yaml}: {err}");
        assert!(err.contains("YAML file"), "{yaml}: {err}");
    }
}

/// Loads `yaml` as the whole file.
fn load_whole(yaml: &str) -> Result<(), String> {
    load_file(yaml, CliOverrides::default(), &[]).map(|_| ())
}

#[test]
fn out_of_range_flags_name_the_flag() {
    let cases: [(CliOverrides, &str, &str); 4] = [
        (
            CliOverrides {
                brute_force_ttl: Some(u64::MAX),
                ..Default::default()
            },
            "auth.brute_force_protection.ttl_seconds",
            "--auth-brute-force-ttl",
        ),
        (
            CliOverrides {
                brute_force_multiplier: Some(f64::INFINITY),
                ..Default::default()
            },
            "auth.brute_force_protection.block_multiplier",
            "--auth-brute-force-multiplier",
        ),
        (
            CliOverrides {
                max_failed_attempts: Some(0),
                ..Default::default()
            },
            "auth.brute_force_protection.max_failed_attempts",
            "--auth-max-failed-attempts",
        ),
        (
            CliOverrides {
                brute_force_initial_block: Some(7200),
                ..Default::default()
            },
            "auth.brute_force_protection.max_block_seconds",
            "built-in default",
        ),
    ];
    for (cli, key, source) in cases {
        let err = load_yaml("", cli).err().unwrap_or_default();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(source),
            "{key}: {err}"
        );
    }
}

#[test]
fn the_largest_accepted_values_load_and_stay_what_was_written() {
    let c = load_whole(
        "auth:\n  disable_auth: true\n  refresh: {check_interval: 36500d}\n  brute_force_protection: {ttl_seconds: 31536000, max_block_seconds: 31536000, block_multiplier: 1000}\nlogging: {capture_max_files: 1000}\n",
    );
    assert_eq!(c, Ok(()));
    let c = load_yaml("server: {shutdown_grace: 36500d}", CliOverrides::default()).unwrap();
    assert_eq!(c.server.shutdown_grace.0, super::HumanDuration::MAX);
}

#[test]
fn a_seed_connector_named_by_routing_is_added_with_its_type() {
    let c = load_yaml(
        "routing: {default_backend: 'openai-codex:gpt-5-codex', aliases: {fast: 'qwen-oauth:qwen3-coder-flash', g: 'gemini-oauth-free:gemini-2.5-pro'}}",
        CliOverrides::default(),
    )
    .unwrap();
    let kind = |n: &str| c.backends.get(n).map(|b| b.kind);
    assert_eq!(kind("openai-codex"), Some(super::BackendKind::Codex));
    assert_eq!(kind("qwen-oauth"), Some(super::BackendKind::QwenCode));
    assert_eq!(
        kind("gemini-oauth-free"),
        Some(super::BackendKind::GeminiCli)
    );
    assert_eq!(kind("kiro-oauth-auto"), None, "only what routing names");
    // A configured backend of that name stays as configured.
    let c = load_yaml(
        "backends: {openai-codex: {type: openai, api_key: sk-x}}\nrouting: {default_backend: 'openai-codex:gpt-5'}",
        CliOverrides::default(),
    )
    .unwrap();
    assert_eq!(c.backends["openai-codex"].kind, super::BackendKind::Openai);
    // Connector keys on an API backend are refused, naming the key.
    let e = load_yaml(
        "backends: {o: {type: openai, project: p}}",
        CliOverrides::default(),
    )
    .unwrap_err();
    assert!(e.contains("backends.o.project"), "{e}");
    let e = load_yaml(
        "backends: {c: {type: codex, tier: free}}",
        CliOverrides::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("backends.c.tier") && e.contains("gemini_cli"),
        "{e}"
    );
}
