//! `portcullis users …` and `portcullis clients …` against a data dir: passwords from stdin or
//! generated and shown once, only hashes stored, disable/enable, listings without secrets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use portcullis::store::{AccountStore, SqlStore, UserStore};
use serde_json::Value;

use crate::harness::*;

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = portcullis()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A data dir in a temp dir (kept alive by the returned guard).
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// Adds `name` with the password `password` through stdin.
fn add_user(dir: &Path, name: &str, extra: &[&str], password: &str) {
    let args = [&["users", "add", name, "--password-stdin"], extra].concat();
    let (code, out, err) = run(dir, &args, Some(&format!("{password}\n")));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("added user {name}")) && !out.contains("password:"),
        "{out}"
    );
}

#[tokio::test]
async fn a_users_password_comes_from_stdin_or_is_generated_and_only_its_hash_is_stored() {
    let (_tmp, dir) = data_dir();
    // Too short is refused.
    let (code, _, err) = run(
        &dir,
        &["users", "add", "alice", "--password-stdin"],
        Some("short\n"),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at least 12"), "{err}");
    add_user(
        &dir,
        "alice",
        &["--email", "alice@example.com"],
        "correct horse battery staple",
    );
    // Adding again is refused; a generated password is shown once.
    let (code, _, err) = run(
        &dir,
        &["users", "add", "alice", "--password-stdin"],
        Some("another long password\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, out, _) = run(&dir, &["users", "add", "bob"], None);
    assert_eq!(code, 0);
    assert_eq!(word_after(&out, "password: ").len(), 43, "{out}");

    // Only Argon2id hashes are stored.
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    let alice = store.find_user("local", "alice").await.unwrap().unwrap();
    let hash = store.password_hash(&alice.id).await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[tokio::test]
async fn users_are_given_new_passwords_disabled_enabled_and_listed_without_hashes() {
    let (_tmp, dir) = data_dir();
    add_user(
        &dir,
        "alice",
        &["--email", "alice@example.com"],
        "correct horse battery staple",
    );
    add_user(&dir, "bob", &[], "bob's long passphrase");
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    let alice = store.find_user("local", "alice").await.unwrap().unwrap();
    let hash = store.password_hash(&alice.id).await.unwrap().unwrap();
    let (code, _, err) = run(
        &dir,
        &["users", "passwd", "alice", "--password-stdin"],
        Some("a brand new passphrase\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(store.password_hash(&alice.id).await.unwrap().unwrap(), hash);
    let (code, _, _) = run(&dir, &["users", "disable", "alice@example.com"], None);
    assert_eq!(code, 0);
    assert!(store.get_user(&alice.id).await.unwrap().unwrap().disabled);
    let (code, _, err) = run(&dir, &["users", "disable", "nobody"], None);
    assert_eq!(code, 1);
    assert!(err.contains("nobody"), "{err}");
    let (_, out, _) = run(&dir, &["users", "list", "--json"], None);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["subject"], "alice");
    assert_eq!(
        (
            lines[0]["disabled"].as_bool(),
            lines[0]["has_password"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(!out.contains("argon2"));
    run(&dir, &["users", "enable", "alice"], None);
    assert!(!store.get_user(&alice.id).await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn a_clients_id_and_secret_are_shown_once_and_only_a_hash_is_stored() {
    let (_tmp, dir) = data_dir();
    let (code, out, err) = run(&dir, &["clients", "add", "ci-pipeline"], None);
    assert_eq!(code, 0, "{err}");
    let id = word_after(&out, "client_id:");
    let secret = word_after(&out, "client_secret:");
    assert!(id.starts_with("pcl_") && secret.len() == 43, "{out}");
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    let c = store.get_client(id).await.unwrap().unwrap();
    assert!(c.secret_hash.starts_with("$argon2id$") && !c.disabled);
    let (_, listed, _) = run(&dir, &["clients", "list"], None);
    assert!(listed.contains(id) && listed.contains("ci-pipeline") && !listed.contains(secret));
    assert_eq!(run(&dir, &["clients", "disable", id], None).0, 0);
    assert!(store.get_client(id).await.unwrap().unwrap().disabled);
    assert_eq!(run(&dir, &["clients", "disable", "pcl_nope"], None).0, 1);
}

#[test]
fn signing_keys_are_made_on_demand_rotated_and_never_printed() {
    let (_tmp, dir) = data_dir();
    let (_, out, _) = run(&dir, &["signing-keys", "list"], None);
    assert!(out.contains("no signing key yet"), "{out}");
    for _ in 0..2 {
        assert_eq!(run(&dir, &["signing-keys", "rotate"], None).0, 0);
    }
    let (_, out, _) = run(&dir, &["signing-keys", "list"], None);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(out.matches("signing").count(), 1, "{out}");
    assert_eq!(out.matches("retired").count(), 1, "{out}");
}

#[tokio::test]
async fn signing_keys_are_sealed_and_a_wrong_key_stops_startup() {
    use base64::Engine as _;
    let (_tmp, dir) = data_dir();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let wrong = base64::engine::general_purpose::STANDARD.encode([8u8; 32]);
    let with_key = |k: &str, args: &[&str]| {
        let out = portcullis()
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env("PORTCULLIS_ENCRYPTION_KEY", k)
            .env("OPENAI_API_KEY", "sk-upstream")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(with_key(&key, &["signing-keys", "rotate"]).0, Some(0));
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    let keys = portcullis::store::SigningKeyStore::list_signing_keys(&store)
        .await
        .unwrap();
    assert!(
        keys[0].private_key.starts_with("sealed.v1."),
        "{}",
        keys[0].private_key
    );
    // A wrong key, or none, is a clear startup error.
    let (code, err) = with_key(&wrong, &["serve", "--port", "0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("sealed with key") && err.contains("configured key"),
        "{err}"
    );
    let out = portcullis()
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(&dir)
        .env("OPENAI_API_KEY", "sk-upstream")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no auth.encryption.key"), "{err}");
    let (code, err) = with_key("c2hvcnQ=", &["check-config"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("auth.encryption.key"), "{err}");
    // The right key starts and signs with the sealed key.
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(&dir)
        .env("PORTCULLIS_ENCRYPTION_KEY", &key)
        .env("OPENAI_API_KEY", "sk-upstream");
    let served = spawn_served(cmd);
    let r = client()
        .post(format!("{}/oauth/token", served.url))
        .form(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the token server runs");
    let jwks: serde_json::Value = get_json(format!("{}/.well-known/jwks.json", served.url)).await;
    assert_eq!(jwks["keys"][0]["kid"], keys[0].kid.as_str());
}
