//! The store at rest, through the binary: a fresh data directory is private to the gateway's
//! user (`0700`, files `0600`) and seals new secrets under a generated key; an existing store
//! readable by others is narrowed, and one written in clear keeps working until `rekey`.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;

use portcullis::store::{PoolStore, SigningKeyStore, SqlStore, StoredCredential};
use serde_json::json;

use crate::harness::*;

const MGMT: &str = "management-key-0123456789";
const POOL_SECRET: &str = "sk-at-rest-SECRET-0123456789abcdef";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file of the data directory, with its mode (the store's `-wal`/`-shm` included).
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    all.sort();
    all
}

/// The bytes of the database and its write-ahead log.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("portcullis.db")).unwrap();
    bytes.extend(std::fs::read(dir.join("portcullis.db-wal")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = portcullis()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("OPENAI_API_KEY", "sk-upstream-0123456789")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn serve(dir: &Path) -> Served {
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(dir)
        .args(["--management-key", MGMT])
        .env("OPENAI_API_KEY", "sk-upstream-0123456789");
    spawn_served(cmd)
}

async fn jwks_kids(url: &str) -> Vec<String> {
    let v: serde_json::Value = get_json(format!("{url}/.well-known/jwks.json")).await;
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_fresh_data_dir_is_private_and_its_secrets_are_sealed_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A signing key made by the command line, a pool credential added through the API.
    let (code, _, err) = cli(&dir, &["signing-keys", "rotate"]);
    assert_eq!(code, 0, "{err}");
    let served = serve(&dir);
    let r = client()
        .post(format!("{}/v0/management/auths", served.url))
        .bearer_auth(MGMT)
        .json(&json!({"provider": "openai", "token": POOL_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let kids = jwks_kids(&served.url).await;
    assert_eq!(kids.len(), 1, "the sealed signing key opens");

    assert_eq!(mode(&dir), 0o700);
    let files = modes(&dir);
    for name in ["portcullis.db", "encryption.key"] {
        assert!(files.iter().any(|(n, _)| n == name), "{files:?}");
    }
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "{name} is {m:o}: {files:?}");
    }

    // Neither secret is in the database's bytes; the rows hold sealed values.
    let bytes = db_bytes(&dir);
    assert!(!contains(&bytes, POOL_SECRET), "the pool secret in clear");
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    let cred = &store.list_credentials().await.unwrap()[0];
    assert!(keys[0].private_key.starts_with("sealed.v1."));
    assert!(cred.secret.starts_with("sealed.v1."), "{}", cred.secret);
    drop(served);

    // The same data directory opens again with the same key.
    let served = serve(&dir);
    assert_eq!(jwks_kids(&served.url).await, kids);
}

#[tokio::test]
async fn an_old_store_readable_by_others_is_narrowed_and_its_clear_secrets_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A store as earlier versions left it: secrets in clear, files 0644, the directory 0755.
    {
        let store = SqlStore::open_sqlite(&dir).await.unwrap();
        let key = portcullis::identity::token_server::keys::generate(1, None).unwrap();
        store.insert_signing_key(&key).await.unwrap();
        store
            .insert_credential(&StoredCredential {
                id: "api-0123456789ab".to_owned(),
                provider: "openai".to_owned(),
                kind: "api_key".to_owned(),
                secret: POOL_SECRET.to_owned(),
                priority: 1,
                quota_limit: None,
                label: None,
                oauth: None,
                expires_at: None,
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
        drop(store);
    }
    assert!(
        contains(&db_bytes(&dir), POOL_SECRET),
        "the setup is in clear"
    );
    for (name, _) in modes(&dir) {
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let served = serve(&dir);
    assert_eq!(jwks_kids(&served.url).await.len(), 1, "the clear key opens");
    let listed = client()
        .get(format!("{}/v0/management/auths/openai", served.url))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("api-0123456789ab"), "{listed}");
    assert!(
        served.seen.contains("its mode is narrowed"),
        "{}",
        served.seen
    );
    assert_eq!(mode(&dir), 0o700);
    for (name, m) in modes(&dir) {
        assert_eq!(m, 0o600, "{name} is {m:o}");
    }
    drop(served);

    // `rekey` seals what was in clear, under the generated key.
    let (code, out, err) = cli(&dir, &["auths", "rekey"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 stored credential(s), 1 signing key(s)"),
        "{out}"
    );
    let store = SqlStore::open_sqlite(&dir).await.unwrap();
    assert!(
        store.list_signing_keys().await.unwrap()[0]
            .private_key
            .starts_with("sealed.v1.")
    );
    assert!(
        store.list_credentials().await.unwrap()[0]
            .secret
            .starts_with("sealed.v1.")
    );
    drop(store);
    let served = serve(&dir);
    assert_eq!(
        jwks_kids(&served.url).await.len(),
        1,
        "the sealed key opens"
    );
}

#[tokio::test]
async fn sso_keys_are_sealed_under_the_key_and_clear_ones_keep_opening_until_rekey() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use portcullis::store::Store;
    let tmp = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(SqlStore::open_sqlite(tmp.path()).await.unwrap());
    // An old store: the login-link key in clear.
    let clear_link_key = URL_SAFE_NO_PAD.encode([5u8; 32]);
    store
        .shared_secret("sso_link_key", &clear_link_key, 1)
        .await
        .unwrap();
    let mut config = portcullis::config::Config::default();
    config.sso.enabled = true;
    config.auth.encryption.key = Some(portcullis::secret::Secret::new(STANDARD.encode([3u8; 32])));
    let clock = portcullis::clock::ManualClock::new(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
    );
    let sso = |store: std::sync::Arc<dyn Store>| {
        portcullis::sso::Sso::new(
            &config.sso,
            config.public_url(),
            &config.auth.encryption,
            store,
            std::sync::Arc::new(clock.clone()),
            std::sync::Arc::new(portcullis::notify::NoNotifier),
            None,
        )
        .unwrap()
    };
    let first = sso(store.clone());
    let url = first.login_url(None).await.unwrap();
    let t = url.split("t=").nth(1).unwrap().to_owned();
    first.check_link(&t).await.unwrap();
    let secrets = store.list_shared_secrets().await.unwrap();
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    for (name, value) in &secrets {
        match name.as_str() {
            "sso_link_key" => assert_eq!(value, &clear_link_key, "kept as it was"),
            _ => assert!(value.starts_with("sealed.v1."), "{name} = {value}"),
        }
    }
    // `rekey` seals the clear one; the keys themselves do not change (the link still checks).
    let sealer = portcullis::seal::Sealer::from_config(&config.auth.encryption).unwrap();
    let n = portcullis::sso::reseal_shared_secrets(store.as_ref(), sealer.as_ref())
        .await
        .unwrap();
    assert_eq!(n, 1);
    for (name, value) in store.list_shared_secrets().await.unwrap() {
        assert!(value.starts_with("sealed.v1."), "{name} = {value}");
    }
    sso(store.clone()).check_link(&t).await.unwrap();
}

#[tokio::test]
async fn a_shared_database_without_a_key_is_a_loud_warning_and_no_key_file() {
    let Some(db) = crate::store::fresh_postgres().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = portcullis()
        .args(["signing-keys", "rotate", "--data-dir"])
        .arg(&dir)
        .env("PORTCULLIS_DATABASE_URL", db.url())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stored IN CLEAR"), "{err}");
    assert!(!dir.join("encryption.key").exists(), "no per-instance key");
}
