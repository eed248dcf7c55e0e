//! `portcullis migrate` and `portcullis tokens issue|list|rename|revoke` against a data dir, and
//! `serve` authenticating an issued token with no static key configured.

use serde_json::Value;

use crate::harness::*;

fn admin(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run_on_data_dir(dir, args)
}

#[tokio::test]
async fn issue_use_list_rename_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = admin(&data, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let shipped = portcullis::store::shipped_migrations().len();
    assert!(
        out.contains(&format!("applied {shipped} migration(s)")),
        "{out}"
    );
    assert!(
        admin(&data, &["migrate"])
            .1
            .contains("applied 0 migration(s)")
    );

    let (code, out, err) = admin(
        &data,
        &[
            "tokens",
            "issue",
            "--user",
            "ci@example.com",
            "--name",
            "ci-runner",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("sk-pcl-") && w.len() > 40)
        .unwrap()
        .to_owned();
    let public = out
        .split_whitespace()
        .find(|w| w.starts_with("sk-pcl-") && w.len() < 30)
        .unwrap()
        .to_owned();
    assert!(out.contains("only time the token is shown"));

    // serve: no static key anywhere; the store makes agent tokens a credential source.
    let mock = start_mock().await;
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(&data)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr));
    let mut served = spawn_served(cmd);
    assert_eq!(served.listening["store"], "open");
    // `serve` runs the state's background jobs on its scheduler.
    assert_eq!(
        served.listening["jobs"],
        "pool.rescan,pool.sync_store,pool.flush_usage,pool.refresh,tokens.sync_revision,usage.flush,telemetry.upkeep"
    );
    let url = served.url.clone();
    let resp = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "ci-agent/1.0")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let access = served.next_access();
    let principal = access["principal"].as_str().unwrap();
    assert!(
        principal.starts_with("user=usr_") && principal.ends_with(&format!("token={public}")),
        "{principal}"
    );
    assert!(!access.to_string().contains(&token));

    // The use is recorded; list shows it (JSON and table).
    let mut line = Value::Null;
    for _ in 0..50 {
        let (_, out, _) = admin(&data, &["tokens", "list", "--json"]);
        line = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        if line["last_ip"] == "127.0.0.1" {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(line["id"], public.as_str());
    assert_eq!(line["user"], "ci@example.com");
    assert_eq!(line["name"], "ci-runner");
    assert_eq!(line["last_user_agent"], "ci-agent/1.0");
    assert_eq!(line["status"], "active");
    let (_, table, _) = admin(&data, &["tokens", "list", "--user", "ci@example.com"]);
    assert!(
        table.contains("DEVICE") && table.contains("ci-runner") && !table.contains(&token),
        "{table}"
    );

    assert_eq!(
        admin(&data, &["tokens", "rename", &public, "build-box"]).0,
        0
    );
    let (code, out, _) = admin(&data, &["tokens", "revoke", &public]);
    assert_eq!(code, 0);
    assert!(out.contains("revoked"));
    assert!(
        admin(&data, &["tokens", "revoke", &public])
            .1
            .contains("already revoked")
    );
    let (code, _, err) = admin(&data, &["tokens", "revoke", "sk-pcl-doesnotexist"]);
    assert_ne!(code, 0);
    assert!(err.contains("no agent token"), "{err}");
    let (_, out, _) = admin(&data, &["tokens", "list", "--json"]);
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        (line["name"].as_str(), line["status"].as_str()),
        (Some("build-box"), Some("revoked"))
    );
}

#[test]
fn a_session_of_more_than_a_century_is_refused() {
    // Found while probing beside the schemathesis run: `--session-hours 9999999999999`
    // overflowed (a panic in debug builds, a wrapped session end in release), and lifetimes of
    // millennia ended sessions after the year 9999, which no RFC 3339 time the management API
    // answers with can show.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let issue = |hours| {
        let args = [
            "tokens",
            "issue",
            "--user",
            "ci@example.com",
            "--session-hours",
            hours,
        ];
        admin(&data, &args)
    };
    for hours in ["0", "8761", "9999999999999"] {
        let (code, _, err) = issue(hours);
        assert_eq!(code, 2, "{hours}: {err}");
        assert!(err.contains("--session-hours"), "{hours}: {err}");
    }
    let (code, out, err) = issue("8760");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("only time the token is shown"), "{out}");
}
