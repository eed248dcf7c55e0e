//! Access modes (PRODUCT §6): every startup rule, run against the binary with the offending
//! configuration (exit status 2 and the origin system's message), precedence, OAuth connector
//! filtering, and the mode in `/internal/health`.

use std::io::Write;

use portcullis::config::{AccessMode, BackendKind};
use serde_json::{Value, json};

use crate::harness::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = portcullis();
    cmd.arg("check-config").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused(args: &[&str], env: &[(&str, &str)], message: &str) {
    let (code, err) = run(args, env);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(
        err.contains(message),
        "{args:?}: expected {message:?} in {err:?}"
    );
}

const KEYS: (&str, &str) = ("PORTCULLIS_API_KEYS", "mode-test-key-0123456789");

#[test]
fn both_modes_at_once_is_refused() {
    refused(
        &["--single-user-mode", "--multi-user-mode"],
        &[KEYS],
        "Cannot specify both --single-user-mode and --multi-user-mode",
    );
}

#[test]
fn single_user_mode_requires_loopback() {
    refused(
        &["--host", "0.0.0.0"],
        &[KEYS],
        "Single User Mode requires binding to 127.0.0.1 only. Current host: 0.0.0.0. Use --multi-user-mode for remote access.",
    );
    assert_eq!(run(&["--host", "::1"], &[KEYS]).0, 0);
}

#[test]
fn multi_user_mode_requires_auth_off_loopback() {
    refused(
        &["--multi-user-mode", "--host", "0.0.0.0", "--disable-auth"],
        &[],
        "Multi User Mode requires authentication when binding to non-localhost addresses. Current host: 0.0.0.0. Enable authentication via API keys or SSO.",
    );
    // On loopback, multi-user mode may run without auth.
    assert_eq!(
        run(
            &[
                "--multi-user-mode",
                "--disable-auth",
                "--disable-notifications"
            ],
            &[]
        )
        .0,
        0
    );
    assert_eq!(
        run(&["--multi-user-mode", "--host", "0.0.0.0"], &[KEYS]).0,
        0
    );
}

#[test]
fn multi_user_mode_refuses_oauth_debugging_overrides() {
    refused(
        &[
            "--multi-user-mode",
            "--host",
            "0.0.0.0",
            "--enable-copilot-oauth-backend-debugging-override",
        ],
        &[KEYS],
        "OAuth debugging override flags are not allowed in Multi User Mode: --enable-copilot-oauth-backend-debugging-override. OAuth connectors are blocked in production deployments.",
    );
    assert_eq!(
        run(&["--enable-kiro-oauth-backend-debugging-override"], &[KEYS]).0,
        0,
        "fine in single-user mode"
    );
    // The seed's own example, word for word.
    refused(
        &[
            "--multi-user-mode",
            "--enable-gemini-oauth-auto-backend-debugging-override",
        ],
        &[KEYS, ("LLM_PROXY_ENABLE_NOTIFICATIONS", "0")],
        "OAuth debugging override flags are not allowed in Multi User Mode: --enable-gemini-oauth-auto-backend-debugging-override. OAuth connectors are blocked in production deployments.",
    );
}

#[test]
fn multi_user_mode_refuses_oauth_auto_replacement() {
    refused(
        &[
            "--multi-user-mode",
            "--host",
            "0.0.0.0",
            "--allow-oauth-auto-replacement",
        ],
        &[KEYS],
        "OAuth auto-replacement (--allow-oauth-auto-replacement) is not allowed in Multi User Mode. OAuth connectors are blocked in production deployments.",
    );
}

#[test]
fn multi_user_mode_refuses_desktop_notifications_including_the_loopback_default() {
    let msg = "Desktop notifications are not allowed in Multi User Mode. Multi User Mode is for dedicated servers, not desktop computers. Use --disable-notifications or switch to Single User Mode.";
    // Unset on 127.0.0.1: auto-detection turns them on, so multi-user refuses.
    refused(&["--multi-user-mode"], &[KEYS], msg);
    refused(
        &[
            "--multi-user-mode",
            "--host",
            "0.0.0.0",
            "--enable-notifications",
        ],
        &[KEYS],
        msg,
    );
    refused(
        &["--multi-user-mode", "--host", "0.0.0.0"],
        &[KEYS, ("LLM_PROXY_ENABLE_NOTIFICATIONS", "true")],
        msg,
    );
    assert_eq!(
        run(&["--multi-user-mode", "--disable-notifications"], &[KEYS]).0,
        0
    );
    assert_eq!(
        run(
            &["--multi-user-mode"],
            &[KEYS, ("LLM_PROXY_ENABLE_NOTIFICATIONS", "0")]
        )
        .0,
        0
    );
}

#[test]
fn no_credential_source_is_refused_with_the_seed_message() {
    refused(
        &[],
        &[],
        "API key not configured: set PORTCULLIS_API_KEYS (or LLM_INTERACTIVE_PROXY_API_KEY), enable SSO, or pass --disable-auth for local development.",
    );
    for env in [
        ("LLM_INTERACTIVE_PROXY_API_KEY", "k-0123456789"),
        ("API_KEYS", "a,b"),
        ("DISABLE_AUTH", "true"),
    ] {
        assert_eq!(run(&[], &[env]).0, 0, "{env:?}");
    }
}

#[test]
fn mode_precedence_is_cli_then_env_then_yaml() {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(b"access_mode:\n  mode: multi_user\nnotifications:\n  enabled: false\n")
        .unwrap();
    let path = f.path().to_str().unwrap();
    let mode = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = portcullis();
        cmd.arg("check-config").args(args).env(KEYS.0, KEYS.1);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let doc: serde_norway::Value = serde_norway::from_slice(&out.stdout).unwrap_or_default();
        doc["access_mode"]["mode"]
            .as_str()
            .unwrap_or("error")
            .to_owned()
    };
    assert_eq!(mode(&["--config", path], &[]), "multi_user");
    assert_eq!(
        mode(
            &["--config", path],
            &[("LLM_PROXY_ACCESS_MODE", "single_user")]
        ),
        "single_user"
    );
    assert_eq!(
        mode(
            &["--config", path],
            &[("PORTCULLIS_ACCESS_MODE", "single_user")]
        ),
        "single_user"
    );
    assert_eq!(
        mode(
            &["--config", path, "--multi-user-mode"],
            &[("LLM_PROXY_ACCESS_MODE", "single_user")]
        ),
        "multi_user"
    );
    assert_eq!(mode(&[], &[]), "single_user");
}

/// A gateway with an OAuth connector (`gemini-oauth-auto`) in `mode`, notifications off, and
/// its answer to a request for that connector.
async fn oauth_connector_in(mock: &Mock, mode: AccessMode) -> (Gateway, reqwest::Response) {
    let mut config = config_for(mock);
    config.access_mode.mode = mode;
    config.notifications.enabled = Some(false);
    let connector = backend(BackendKind::Gemini, format!("http://{}", mock.addr), None);
    config
        .backends
        .insert("gemini-oauth-auto".into(), connector);
    let gw = start_gateway(config).await;
    let path = "/v1beta/models/gemini-oauth-auto:mock-gemini:generateContent";
    let resp = post_json(&format!("{}{path}", gw.url), json!({"contents": []})).await;
    (gw, resp)
}

#[tokio::test]
async fn oauth_connectors_are_filtered_in_multi_user_mode() {
    let mock = start_mock().await;
    let (gw, resp) = oauth_connector_in(&mock, AccessMode::MultiUser).await;
    assert_eq!(resp.status(), 403);
    assert!(google_error(&resp.json().await.unwrap()).contains("not available in multi-user mode"));
    let v = get_json(format!("{}/internal/health", gw.url)).await;
    assert_eq!(v["access_mode"], "multi_user");
    assert!(!v.to_string().contains("gemini-oauth-auto"));
    assert_eq!(mock.stats.requests(), 0);

    // In single-user mode the same connector is served.
    let (_gw, resp) = oauth_connector_in(&mock, AccessMode::SingleUser).await;
    assert_eq!(resp.status(), 200);
}

#[test]
fn the_binary_logs_the_skipped_oauth_connectors() {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(b"backends:\n  qwen-oauth:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n  openai:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n").unwrap();
    let mut cmd = serve_json();
    cmd.args(["--multi-user-mode", "--disable-notifications"])
        .args(["--config", f.path().to_str().unwrap()])
        .env(KEYS.0, KEYS.1);
    let served = spawn_served(cmd);
    assert_eq!(served.listening["access_mode"], "multi_user");
    let skipped = served
        .seen
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Skipped OAuth connectors in Multi User Mode"))
        });
    assert_eq!(skipped.unwrap()["connectors"], "qwen-oauth");
}
