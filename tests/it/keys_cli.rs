//! `portcullis keys create|list|show|update|revoke` against a data directory, with a gateway on
//! the same store accepting the key the command printed (and refusing it once revoked, after one
//! run of the revision job). Only `create` ever prints the key.

use std::sync::Arc;

use portcullis::clock::{Clock, ManualClock, SystemClock};
use portcullis::store::{SqlStore, Store};
use serde_json::Value;

use crate::harness::*;

fn keys(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run_on_data_dir(dir, &[&["keys"], args].concat())
}

/// Runs `keys args…`, which must succeed; its output.
fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (code, out, err) = keys(dir, args);
    assert_eq!(code, 0, "keys {args:?}: {err}");
    out
}

/// The key and its public id in `keys create`'s output.
fn created(out: &str) -> (String, String) {
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("sk-pvk-") && w.len() > 40)
        .unwrap_or_else(|| panic!("no key in {out}"));
    (key.to_owned(), word_after(out, "created ").to_owned())
}

#[tokio::test]
async fn create_use_list_show_update_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = run_on_data_dir(&data, &["users", "add", "alice"]);
    assert_eq!(code, 0, "{err}");
    let out = ok(
        &data,
        &[
            "create",
            "--name",
            "ci-bot",
            "--owner",
            "alice",
            "--expires-in",
            "30d",
            "--model",
            "mock-*",
            "--rpm",
            "60",
            "--token-budget",
            "1000000",
            "--budget-period",
            "weekly",
        ],
    );
    let (key, id) = created(&out);
    assert!(key.starts_with(&format!("{id}_")), "{out}");
    assert!(out.contains("only time the key is shown"), "{out}");
    assert!(
        out.contains("models=mock-* rpm=60 tokens=1000000/weekly"),
        "{out}"
    );
    let secret = &key[id.len() + 1..];

    // A gateway on that store accepts it.
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(&data).await.unwrap());
    let clock = ManualClock::new(SystemClock.now());
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    let (state, gw) = start_gateway_on_store(config, &clock, store).await;
    let jobs = state.jobs();
    let sync = || jobs.run_once("tokens.sync_revision", clock.now_millis());
    assert!(sync().await);
    assert_eq!(chat_status(&gw.url, &key).await, 200);

    // Listed and shown, never with the key.
    let table = ok(&data, &["list"]);
    for shown in [id.as_str(), "ci-bot", "alice", "active", "rpm=60"] {
        assert!(table.contains(shown), "{shown}: {table}");
    }
    let line: Value = serde_json::from_str(ok(&data, &["list", "--json"]).trim()).unwrap();
    assert_eq!(
        (line["id"].as_str(), line["status"].as_str()),
        (Some(id.as_str()), Some("active"))
    );
    assert_eq!(line["rules"]["token_budget"]["period"], "weekly");
    let shown = ok(&data, &["show", &key]);
    assert!(
        shown.contains("name:    ci-bot") && shown.contains("expires:"),
        "{shown}"
    );
    let by_owner = ok(&data, &["list", "--owner", "alice", "--json"]);
    assert_eq!(by_owner.lines().count(), 1);
    for out in [table, line.to_string(), shown, by_owner] {
        assert!(!out.contains(secret), "{out}");
    }
    let (code, _, err) = keys(&data, &["list", "--owner", "nobody"]);
    assert!(code != 0 && err.contains("no user nobody"), "{err}");

    // Update: only what is given changes.
    let out = ok(
        &data,
        &[
            "update", &id, "--rpm", "5", "--unset", "models", "--name", "ci-2",
        ],
    );
    assert!(
        out.contains("rules:   rpm=5 tokens=1000000/weekly"),
        "{out}"
    );
    let v: Value = serde_json::from_str(&ok(&data, &["show", &id, "--json"])).unwrap();
    assert_eq!(v["name"], "ci-2");
    assert!(
        v["expires_at"].is_string() && v["rules"]["models"].is_null(),
        "{v}"
    );
    let (code, _, err) = keys(&data, &["update", &id]);
    assert!(code != 0 && err.contains("nothing to change"), "{err}");
    let (code, _, err) = keys(&data, &["update", &id, "--rpm", "1", "--unset", "rpm"]);
    assert!(code != 0 && err.contains("--unset rpm"), "{err}");
    let (code, _, err) = keys(&data, &["update", &id, "--rpm", "0"]);
    assert!(code != 0 && err.contains("rules.rpm"), "{err}");

    // Revoke: the gateway refuses the key after one run of its revision job.
    assert!(ok(&data, &["revoke", &id]).starts_with(&format!("revoked {id}")));
    assert!(ok(&data, &["revoke", &id]).contains("already revoked"));
    assert!(sync().await);
    assert_eq!(chat_status(&gw.url, &key).await, 401);
    let (code, _, err) = keys(&data, &["revoke", "sk-pvk-AAAAAAAAAAAA"]);
    assert!(
        code != 0 && err.contains("no virtual key sk-pvk-AAAAAAAAAAAA"),
        "{err}"
    );
    let other = if key.ends_with('0') { '1' } else { '0' };
    let typo = format!("{}{other}", &key[..key.len() - 1]);
    let (code, _, err) = keys(&data, &["revoke", &typo]);
    assert!(
        code != 0 && err.contains("keys list") && !err.contains(secret),
        "{err}"
    );
}

#[test]
fn create_prints_json_with_the_key_once_and_refuses_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(
        &data,
        &[
            "create",
            "--name",
            "j",
            "--rules-json",
            r#"{"tpm": 900}"#,
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["key"].as_str().unwrap().starts_with("sk-pvk-"));
    assert_eq!(
        (v["rules"]["tpm"].as_u64(), v["owner"].is_null()),
        (Some(900), true)
    );
    for (args, said) in [
        (
            &["create", "--name", "x", "--owner", "nobody"][..],
            "no user nobody",
        ),
        (
            &["create", "--name", "x", "--expires-in", "soon"],
            "--expires-in",
        ),
        (
            &["create", "--name", "x", "--budget-period", "daily"],
            "--budget-period needs",
        ),
        (
            &["create", "--name", "x", "--rules-json", "{\"rpn\":1}"],
            "rpn",
        ),
        (&["create", "--name", "   "], "name"),
    ] {
        let (code, _, err) = keys(&data, args);
        assert!(code != 0 && err.contains(said), "{args:?}: {err}");
    }
    let (code, _, err) = keys(
        &data,
        &["create", "--name", "x", "--rpm", "1", "--rules-json", "{}"],
    );
    assert_eq!(
        code, 2,
        "clap refuses flags and --rules-json together: {err}"
    );
    assert_eq!(
        ok(&data, &["list", "--json"]).lines().count(),
        1,
        "nothing else was made"
    );
}

#[tokio::test]
async fn serve_accepts_a_created_key_with_no_other_credential_and_logs_only_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(&data, &["create", "--name", "only-key"]);
    let (key, id) = created(&out);
    let mock = start_mock().await;
    let mut cmd = serve_json();
    cmd.arg("--data-dir")
        .arg(&data)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr));
    let mut served = spawn_served(cmd);
    assert_eq!(chat_status(&served.url, &key).await, 200);
    let access = served.next_access();
    assert_eq!(access["principal"], format!("vkey={id} (only-key)"));
    let (_, log) = served.stop();
    assert!(
        !log.contains(&key[id.len()..]),
        "the secret is never logged"
    );
}
