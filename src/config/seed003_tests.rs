//! Seed 003 compatibility (llm-interactive-proxy's access modes): its config file's layout, its
//! example YAML blocks as written in the seed, and its OAuth switches — each debugging override
//! and `--allow-oauth-auto-replacement` accepted in Single User Mode and refused in Multi User
//! Mode with the seed's text, and their layers (command line > environment > YAML).

use super::input_tests::load_file as load;
use super::load::CliOverrides;
use super::{AccessMode, OauthConnector};

const NO_AUTH: &str = "auth: {disable_auth: true}\n";

fn multi_user() -> CliOverrides {
    CliOverrides {
        multi_user_mode: true,
        notifications: Some(false),
        ..Default::default()
    }
}

/// Why the file `NO_AUTH` + `yaml` does not load (as a single-user configuration).
fn refusal(yaml: &str) -> String {
    load(&format!("{NO_AUTH}{yaml}"), CliOverrides::default(), &[])
        .err()
        .unwrap_or_default()
}

fn overrides(connectors: &[OauthConnector]) -> CliOverrides {
    CliOverrides {
        oauth_debugging_overrides: connectors.to_vec(),
        ..Default::default()
    }
}

#[test]
fn top_level_host_and_port_are_read_as_server_host_and_port() {
    let cases = [
        ("host: 127.0.0.1\nport: 8000\n", None, ("127.0.0.1", 8000)),
        // Beside a `server:` section, and agreeing with it.
        (
            "port: 8000\nserver: {host: '::1', port: 8000}\n",
            None,
            ("::1", 8000),
        ),
        // The command line stays above the file.
        ("port: 8000\n", Some(9000), ("127.0.0.1", 9000)),
    ];
    for (yaml, port, bind) in cases {
        let cli = CliOverrides {
            port,
            ..Default::default()
        };
        let c = load(&format!("{NO_AUTH}{yaml}"), cli, &[]).unwrap();
        assert_eq!((c.server.host.as_str(), c.server.port), bind, "{yaml}");
    }
}

#[test]
fn top_level_and_server_values_that_disagree_are_refused_naming_the_portcullis_key() {
    let cases = [
        (
            "host: 0.0.0.0\nserver: {host: 127.0.0.1}\n",
            "host",
            "server.host",
        ),
        ("port: 8000\nserver: {port: 8080}\n", "port", "server.port"),
    ];
    for (yaml, alias, key) in cases {
        let err = refusal(yaml);
        assert!(
            err.contains(&format!("top-level `{alias}:"))
                && err.contains(&format!("portcullis reads `{key}`"))
                && err.contains("YAML file"),
            "{yaml}: {err}"
        );
    }
    let err = refusal("host: my host\n");
    assert!(
        err.contains("`server.host`") && err.contains("YAML file"),
        "{err}"
    );
}

/// The seed's single-user example, as written in its "Configuration File" block.
const SEED_SINGLE_USER: &str = "access_mode:\n  mode: single_user\n\nhost: 127.0.0.1\nport: 8000\n\nauth:\n  disable_auth: true  # Optional for local development\n\nnotifications:\n  enabled: false\n";

/// The seed's multi-user example, without its `sso:` alternative.
const SEED_MULTI_USER: &str = "access_mode:\n  mode: multi_user\n\nhost: 0.0.0.0\nport: 8000\n\nauth:\n  disable_auth: false\n  api_keys:\n    - \"production-key-1\"\n    - \"production-key-2\"\n\nnotifications:\n  enabled: false  # Required in Multi User Mode (or use --disable-notifications)\n";

#[test]
fn the_seeds_example_files_load() {
    let c = load(SEED_SINGLE_USER, CliOverrides::default(), &[]).unwrap();
    assert_eq!(c.access_mode.mode, AccessMode::SingleUser);
    assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 8000));
    assert!(c.auth.disable_auth && !c.notifications_enabled());

    let c = load(SEED_MULTI_USER, CliOverrides::default(), &[]).unwrap();
    assert_eq!(c.access_mode.mode, AccessMode::MultiUser);
    assert_eq!((c.server.host.as_str(), c.server.port), ("0.0.0.0", 8000));
    assert_eq!(c.auth.api_keys.len(), 2);

    // Its "OR use SSO" alternative needs what the seed elides (`# ... SSO configuration ...`).
    let sso = SEED_MULTI_USER.replace("notifications:", "sso:\n  enabled: true\n\nnotifications:");
    let err = load(&sso, CliOverrides::default(), &[]).unwrap_err();
    assert!(err.contains("sso.providers"), "{err}");
}

#[test]
fn every_debugging_override_is_accepted_in_single_user_mode() {
    for connector in OauthConnector::ALL {
        let c = load(NO_AUTH, overrides(&[connector]), &[]).unwrap();
        for other in OauthConnector::ALL {
            assert_eq!(
                c.debugging_override(other),
                other == connector,
                "{connector:?}"
            );
        }
    }
    let c = load(
        &format!(
            "{NO_AUTH}oauth: {{debugging_overrides: [gemini-oauth-auto, qwen-oauth, kiro]}}\n"
        ),
        overrides(&[OauthConnector::QwenOauth, OauthConnector::OpenaiCodex]),
        &[],
    )
    .unwrap();
    let on: Vec<_> = c
        .oauth
        .debugging_overrides
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(
        on,
        ["gemini-oauth-auto", "qwen-oauth", "openai-codex", "kiro"]
    );
}

#[test]
fn every_debugging_override_is_refused_in_multi_user_mode_with_the_seeds_text() {
    for connector in OauthConnector::ALL {
        let cli = CliOverrides {
            oauth_debugging_overrides: vec![connector],
            ..multi_user()
        };
        let err = load(NO_AUTH, cli, &[]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "OAuth debugging override flags are not allowed in Multi User Mode: {}. OAuth connectors are blocked in production deployments.",
                connector.flag()
            )
        );
    }
    // Several: each named once, in the origin system's order.
    let cli = CliOverrides {
        oauth_debugging_overrides: vec![
            OauthConnector::OpenaiCodex,
            OauthConnector::GeminiOauthAuto,
            OauthConnector::OpenaiCodex,
        ],
        ..multi_user()
    };
    let err = load(NO_AUTH, cli, &[]).unwrap_err();
    assert!(
        err.contains(": --enable-gemini-oauth-auto-backend-debugging-override, --enable-openai-codex-backend-debugging-override. OAuth"),
        "{err}"
    );
}

#[test]
fn the_seeds_flag_names_are_the_connectors() {
    let flags: Vec<String> = OauthConnector::ALL.iter().map(|c| c.flag()).collect();
    for seed in [
        "gemini-oauth-auto",
        "gemini-oauth-free",
        "gemini-oauth-plan",
        "qwen-oauth",
        "opencode-zen",
        "kiro-oauth-auto",
        "openai-codex",
    ] {
        let flag = format!("--enable-{seed}-backend-debugging-override");
        assert!(flags.contains(&flag), "{flag}");
    }
    assert!(flags.contains(&"--enable-copilot-oauth-backend-debugging-override".to_owned()));
    assert!(flags.contains(&"--enable-kiro-oauth-backend-debugging-override".to_owned()));
}

#[test]
fn switches_from_the_file_or_environment_are_refused_in_multi_user_mode_naming_it() {
    const OVERRIDES: &str = "OAuth debugging override flags are not allowed in Multi User Mode: --enable-opencode-zen-backend-debugging-override. OAuth connectors are blocked in production deployments.";
    const REPLACEMENT: &str = "OAuth auto-replacement (--allow-oauth-auto-replacement) is not allowed in Multi User Mode. OAuth connectors are blocked in production deployments.";
    let overrides_yaml = format!("{NO_AUTH}oauth: {{debugging_overrides: [opencode-zen]}}\n");
    let replacement_yaml = format!("{NO_AUTH}oauth: {{allow_auto_replacement: true}}\n");
    // The environment variable's value, if set.
    let cases = [
        (
            overrides_yaml.as_str(),
            None,
            OVERRIDES,
            " (`oauth.debugging_overrides` set in YAML file",
        ),
        (
            replacement_yaml.as_str(),
            None,
            REPLACEMENT,
            " (`oauth.allow_auto_replacement` set in YAML file",
        ),
        (
            NO_AUTH,
            Some("1"),
            REPLACEMENT,
            " (`oauth.allow_auto_replacement` set in environment variable ALLOW_OAUTH_AUTO_REPLACEMENT)",
        ),
    ];
    for (yaml, value, seed_text, origin) in cases {
        let vars: Vec<_> = value
            .map(|v| ("ALLOW_OAUTH_AUTO_REPLACEMENT", v))
            .into_iter()
            .collect();
        let err = load(yaml, multi_user(), &vars).unwrap_err();
        assert!(err.starts_with(&format!("{seed_text}{origin}")), "{err}");
    }
    // From the command line: the seed's text alone.
    let cli = CliOverrides {
        allow_oauth_auto_replacement: true,
        ..multi_user()
    };
    assert_eq!(load(NO_AUTH, cli, &[]).unwrap_err(), REPLACEMENT);
}

#[test]
fn auto_replacement_layers_command_line_over_environment_over_file() {
    let file = format!("{NO_AUTH}oauth: {{allow_auto_replacement: true}}\n");
    let on = |yaml: &str, cli: bool, vars: &[(&str, &str)]| {
        let cli = CliOverrides {
            allow_oauth_auto_replacement: cli,
            ..Default::default()
        };
        load(yaml, cli, vars).map(|c| c.oauth.allow_auto_replacement)
    };
    assert_eq!(on(&file, false, &[]), Ok(true));
    assert_eq!(
        on(&file, false, &[("ALLOW_OAUTH_AUTO_REPLACEMENT", "0")]),
        Ok(false)
    );
    assert_eq!(
        on(NO_AUTH, false, &[("ALLOW_OAUTH_AUTO_REPLACEMENT", "yes")]),
        Ok(true)
    );
    assert_eq!(
        on(NO_AUTH, true, &[("ALLOW_OAUTH_AUTO_REPLACEMENT", "no")]),
        Ok(true)
    );
    assert_eq!(on(NO_AUTH, false, &[]), Ok(false));
}

#[test]
fn an_unknown_connector_name_is_refused_with_the_known_ones() {
    let err = refusal("oauth: {debugging_overrides: [gemini-oauth]}\n");
    assert!(
        err.contains("gemini-oauth")
            && err.contains("gemini-oauth-auto")
            && err.contains("oauth.debugging_overrides")
            && err.contains("YAML file"),
        "{err}"
    );
}
