//! The store contract: one suite, run against SQLite (a temp dir) and PostgreSQL (the service at
//! 127.0.0.1:5432, a fresh database per test). The PostgreSQL half runs whenever something
//! listens there (and then must work); it is skipped only when nothing does, and under
//! `CI=true` not even then. Also the stores the other tests open (`test_store`).

use std::sync::Arc;

use portcullis::store::{
    AgentTokenRecord, AgentTokenStore, KeyUpdate, LoginFlow, OauthClient, PendingAuthorization,
    SqlStore, Store, StoreError, StoredCredential, VirtualKeyRecord, WebSession,
};

/// `PORTCULLIS_TEST_POSTGRES` overrides the server (default `postgres://postgres@127.0.0.1:5432`).
fn postgres_server() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Whether anything accepts connections at the host and port of `server` (a `postgres://` URL).
async fn listening(server: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(server) else {
        return false;
    };
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    tokio::net::TcpStream::connect((host, port)).await.is_ok()
}

/// A PostgreSQL database made for one test; dropped (its sessions ended) when this is, also
/// when the test fails.
pub(crate) struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    /// Its `postgres://` URL.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = format!("{}/test", self.server);
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // `drop` may run inside the test's runtime, which cannot block on a future: a thread
        // with a runtime of its own does it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(async {
                    let admin = SqlStore::connect(&admin).await?;
                    admin.execute_admin(&statement).await
                })
                .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            // Not a panic: this may run while a failed test unwinds.
            eprintln!(
                "could not drop the test database {}: {dropped:?}",
                self.name
            );
        }
    }
}

/// A fresh PostgreSQL database for one test (made from the server's `test` database), or `None`
/// when no server listens and `CI` is not `true`. A server that listens but refuses is a failure.
pub(crate) async fn fresh_postgres() -> Option<TestDatabase> {
    let server = postgres_server();
    if !listening(&server).await {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL is required under CI: nothing listens at {server}"
        );
        eprintln!("skipping the PostgreSQL half: nothing listens at {server}");
        return None;
    }
    let admin = SqlStore::connect(&format!("{server}/test"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL listens at {server} but cannot be used: {e}"));
    let name = format!(
        "pcl_test_{}",
        hex::encode(portcullis::secret::random_bytes::<6>().unwrap())
    );
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(TestDatabase { server, name })
}

/// What keeps a test store's data alive: its SQLite directory, or its PostgreSQL database
/// (dropped with this).
pub(crate) enum StoreHome {
    Dir(tempfile::TempDir),
    Postgres { _db: TestDatabase },
}

impl StoreHome {
    /// The SQLite store's data directory.
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        match self {
            StoreHome::Dir(dir) => Some(dir.path()),
            StoreHome::Postgres { .. } => None,
        }
    }
}

/// An empty database for one test: SQLite in a temp dir, or a fresh PostgreSQL database (`None`
/// when [`fresh_postgres`] skips); its URL, and the home that keeps it alive.
pub(crate) async fn empty_database(on_postgres: bool) -> Option<(String, StoreHome)> {
    if on_postgres {
        let db = fresh_postgres().await?;
        Some((db.url(), StoreHome::Postgres { _db: db }))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let url = SqlStore::prepare_sqlite(dir.path()).unwrap();
        Some((url, StoreHome::Dir(dir)))
    }
}

/// A store for one test, on an [`empty_database`].
pub(crate) async fn test_store(on_postgres: bool) -> Option<(Arc<dyn Store>, StoreHome)> {
    let (url, home) = empty_database(on_postgres).await?;
    Some((Arc::new(SqlStore::open(&url).await.unwrap()), home))
}

mod hex {
    pub(crate) fn encode(b: [u8; 6]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

fn token(id: &str, user: &str, created: i64) -> AgentTokenRecord {
    AgentTokenRecord {
        id: id.into(),
        user_id: user.into(),
        name: format!("device {id}"),
        secret_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_at: created,
        last_used_at: None,
        last_ip: None,
        last_user_agent: None,
        session_expires_at: Some(created + 1000),
        revoked_at: None,
    }
}

async fn contract(store: &dyn Store) {
    // Users: upsert is keyed by (provider, subject) and refreshes what it learns.
    let alice = store
        .upsert_user("google", "sub-1", Some("a@example.com"), Some("Alice"), 10)
        .await
        .unwrap();
    assert!(alice.id.starts_with("usr_"));
    let again = store
        .upsert_user("google", "sub-1", Some("alice@example.com"), None, 20)
        .await
        .unwrap();
    assert_eq!(again.id, alice.id);
    assert_eq!(again.email.as_deref(), Some("alice@example.com"));
    assert_eq!(again.display_name.as_deref(), Some("Alice"));
    assert_eq!(again.created_at, 10);
    let bob = store
        .upsert_user("github", "sub-1", None, None, 30)
        .await
        .unwrap();
    assert_ne!(
        bob.id, alice.id,
        "same subject, other provider: another user"
    );
    assert_eq!(store.list_users().await.unwrap().len(), 2);
    assert_eq!(store.get_user(&bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.get_user("usr_nope").await.unwrap(), None);
    let rev0 = store.revision().await.unwrap();
    assert!(store.set_user_disabled(&bob.id, true).await.unwrap());
    assert!(store.get_user(&bob.id).await.unwrap().unwrap().disabled);
    assert!(!store.set_user_disabled("usr_nope", true).await.unwrap());

    // Tokens.
    store
        .insert_token(&token("tok1", &alice.id, 100))
        .await
        .unwrap();
    store
        .insert_token(&token("tok2", &alice.id, 200))
        .await
        .unwrap();
    store
        .insert_token(&token("tok3", &bob.id, 300))
        .await
        .unwrap();
    assert!(
        store
            .insert_token(&token("tok1", &alice.id, 400))
            .await
            .is_err(),
        "ids are unique"
    );
    let mine = store.list_tokens(Some(&alice.id)).await.unwrap();
    assert_eq!(
        mine.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["tok2", "tok1"],
        "newest first"
    );
    assert_eq!(store.list_tokens(None).await.unwrap().len(), 3);
    assert_eq!(
        store.get_token("tok1").await.unwrap(),
        Some(token("tok1", &alice.id, 100))
    );
    assert_eq!(store.get_token("nope").await.unwrap(), None);

    assert!(store.rename_token("tok1", "laptop").await.unwrap());
    assert!(!store.rename_token("nope", "x").await.unwrap());
    store
        .touch_token("tok1", 150, "192.0.2.1", Some("curl/8"))
        .await
        .unwrap();
    let t = store.get_token("tok1").await.unwrap().unwrap();
    assert_eq!(
        (
            t.name.as_str(),
            t.last_used_at,
            t.last_ip.as_deref(),
            t.last_user_agent.as_deref()
        ),
        ("laptop", Some(150), Some("192.0.2.1"), Some("curl/8"))
    );

    assert!(store.set_session_expiry("tok1", Some(9999)).await.unwrap());
    assert_eq!(
        store
            .get_token("tok1")
            .await
            .unwrap()
            .unwrap()
            .session_expires_at,
        Some(9999)
    );

    let rev1 = store.revision().await.unwrap();
    assert!(rev1 > rev0, "changes bump the revision");
    assert!(store.revoke_token("tok2", 500).await.unwrap());
    assert!(
        !store.revoke_token("tok2", 600).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_token("nope", 600).await.unwrap());
    assert_eq!(
        store.get_token("tok2").await.unwrap().unwrap().revoked_at,
        Some(500)
    );
    assert!(
        store.revision().await.unwrap() > rev1,
        "a revocation bumps the revision"
    );
}

/// SSO: shared secrets converge on the first value written (until replaced by compare and
/// swap), login links are single-use.
async fn sso_secrets_converge_and_links_are_single_use(store: &Arc<dyn Store>) {
    let a = store.shared_secret("k", "first", 1).await.unwrap();
    let b = store.shared_secret("k", "second", 2).await.unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
    for (name, expected, replaced) in [("k", "second", false), ("nope", "first", false)] {
        let done = store.replace_shared_secret(name, expected, "x").await;
        assert_eq!(done.unwrap(), replaced, "{name} {expected}");
    }
    assert!(
        store
            .replace_shared_secret("k", "first", "sealed")
            .await
            .unwrap()
    );
    assert_eq!(
        store.shared_secret("k", "third", 3).await.unwrap(),
        "sealed"
    );
    assert_eq!(
        store.list_shared_secrets().await.unwrap(),
        [("k".to_owned(), "sealed".to_owned())]
    );

    assert!(store.consume_login_link("link1", 1_000).await.unwrap());
    assert!(!store.consume_login_link("link1", 1_000).await.unwrap());
}

/// A login flow keyed by `state_hash`, expiring at 1 000.
fn flow(state_hash: &str) -> LoginFlow {
    LoginFlow {
        state_hash: state_hash.into(),
        browser_hash: "b".into(),
        provider: "idp".into(),
        pkce_verifier: "v".into(),
        nonce: "n".into(),
        bound_token_id: Some("tok".into()),
        client_ip: Some("127.0.0.1".into()),
        created_at: 0,
        expires_at: 1_000,
    }
}

/// A confirmation awaiting `user`'s code, with two attempts, expiring at 1 000.
fn pending(id_hash: &str, user: &str) -> PendingAuthorization {
    PendingAuthorization {
        id_hash: id_hash.into(),
        user_id: user.into(),
        provider: "idp".into(),
        bound_token_id: None,
        code_hash: "h".into(),
        attempts_left: 2,
        client_ip: None,
        created_at: 0,
        expires_at: 1_000,
    }
}

/// SSO: login flows and pending confirmations are taken once, attempts are spent one at a time,
/// and expired ones are invisible.
async fn sso_logins_are_single_use_and_expire(store: &Arc<dyn Store>) {
    let user = store
        .upsert_user("idp", "sso-user", None, None, 0)
        .await
        .unwrap();
    store.insert_login_flow(&flow("st")).await.unwrap();
    assert_eq!(
        store.take_login_flow("st", 10).await.unwrap(),
        Some(flow("st"))
    );
    assert_eq!(
        store.take_login_flow("st", 10).await.unwrap(),
        None,
        "single use"
    );
    store.insert_login_flow(&flow("old")).await.unwrap();
    assert_eq!(
        store.take_login_flow("old", 1_000).await.unwrap(),
        None,
        "expired"
    );

    store
        .insert_pending(&pending("p1", &user.id))
        .await
        .unwrap();
    assert_eq!(
        store.get_pending("p1").await.unwrap(),
        Some(pending("p1", &user.id))
    );
    for left in [1, 0] {
        let spent = store.spend_attempt("p1", 10).await.unwrap();
        assert_eq!(spent.unwrap().attempts_left, left);
    }
    assert_eq!(
        store.spend_attempt("p1", 10).await.unwrap(),
        None,
        "out of attempts"
    );
    assert!(store.take_pending("p1").await.unwrap().is_some());
    assert!(
        store.take_pending("p1").await.unwrap().is_none(),
        "single use"
    );
    store
        .insert_pending(&pending("p2", &user.id))
        .await
        .unwrap();
    assert_eq!(
        store.spend_attempt("p2", 1_000).await.unwrap(),
        None,
        "expired"
    );
}

/// SSO: browser sessions end at their expiry, and every expired row (flow, confirmation,
/// session) is purged.
async fn sso_sessions_expire_and_expired_rows_are_purged(store: &Arc<dyn Store>) {
    let user = store
        .upsert_user("idp", "sso-user", None, None, 0)
        .await
        .unwrap();
    store.insert_login_flow(&flow("old")).await.unwrap();
    store
        .insert_pending(&pending("p2", &user.id))
        .await
        .unwrap();
    let session = WebSession {
        id_hash: "w".into(),
        user_id: user.id.clone(),
        created_at: 0,
        expires_at: 1_000,
    };
    store.insert_web_session(&session).await.unwrap();
    assert_eq!(
        store.get_web_session("w", 999).await.unwrap(),
        Some(session)
    );
    assert_eq!(store.get_web_session("w", 1_000).await.unwrap(), None);
    assert!(store.purge_expired_sso(1_000).await.unwrap() >= 3);
    assert_eq!(store.get_pending("p2").await.unwrap(), None, "purged");
    store.delete_web_session("w").await.unwrap();
}

/// Local accounts: passwords replace, clients list and disable, lookups by provider and subject.
async fn accounts_contract(store: &Arc<dyn Store>) {
    let u = store
        .upsert_user("local", "carol", None, None, 5)
        .await
        .unwrap();
    assert_eq!(
        store.find_user("local", "carol").await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(store.find_user("local", "nobody").await.unwrap(), None);
    assert_eq!(store.password_hash(&u.id).await.unwrap(), None);
    store.set_password(&u.id, "h1", 6).await.unwrap();
    store.set_password(&u.id, "h2", 7).await.unwrap();
    assert_eq!(
        store.password_hash(&u.id).await.unwrap().as_deref(),
        Some("h2")
    );
    assert_eq!(
        store
            .find_user_with_password("local", "carol")
            .await
            .unwrap(),
        Some((u.clone(), Some("h2".to_owned())))
    );
    assert_eq!(
        store
            .find_user_with_password("local", "dave")
            .await
            .unwrap(),
        None
    );
    let c = OauthClient {
        id: "pcl_1".into(),
        name: "ci".into(),
        secret_hash: "s".into(),
        created_at: 1,
        disabled: false,
    };
    store.insert_client(&c).await.unwrap();
    assert!(matches!(
        store.insert_client(&c).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_client("pcl_1").await.unwrap(), Some(c.clone()));
    assert!(store.set_client_disabled("pcl_1", true).await.unwrap());
    assert!(!store.set_client_disabled("pcl_x", true).await.unwrap());
    assert!(store.list_clients().await.unwrap()[0].disabled);
}

/// The credential pool's aggregate: stored credentials (with revision bumps), API quota limits,
/// usage per period (concurrent increments all counted).
async fn pool_contract(store: &Arc<dyn Store>) {
    let row = |id: &str, priority: i64| StoredCredential {
        id: id.to_owned(),
        provider: "openai".to_owned(),
        kind: "api_key".to_owned(),
        secret: format!("sealed-or-not-{id}"),
        priority,
        quota_limit: Some(1000),
        label: None,
        oauth: None,
        expires_at: None,
        created_at: 1,
        updated_at: 1,
    };
    let r0 = store.revision().await.unwrap();
    store.insert_credential(&row("api-a", 1)).await.unwrap();
    store.insert_credential(&row("api-b", 2)).await.unwrap();
    assert!(matches!(
        store.insert_credential(&row("api-a", 3)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store.revision().await.unwrap() > r0,
        "changes bump the revision"
    );
    let list = store.list_credentials().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], row("api-a", 1));
    let mut changed = row("api-b", 7);
    changed.label = Some("backup".to_owned());
    changed.expires_at = Some(99);
    assert!(
        !store
            .update_credential(&changed, "stale-secret")
            .await
            .unwrap(),
        "compare and swap: a changed secret is not overwritten"
    );
    assert!(
        store
            .update_credential(&changed, "sealed-or-not-api-b")
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_credential(&row("api-zz", 1), "x")
            .await
            .unwrap()
    );
    assert_eq!(store.list_credentials().await.unwrap()[1], changed);

    store.set_quota_limit("file-x", Some(500)).await.unwrap();
    store.set_quota_limit("api-a", Some(10)).await.unwrap();
    store.set_quota_limit("api-a", Some(20)).await.unwrap();
    let mut limits = store.quota_limits().await.unwrap();
    limits.sort();
    assert_eq!(
        limits,
        [
            ("api-a".to_owned(), Some(20)),
            ("file-x".to_owned(), Some(500))
        ]
    );
    store.set_quota_limit("file-x", None).await.unwrap();
    assert_eq!(store.quota_limits().await.unwrap().len(), 1);

    assert_eq!(store.usage("api-a", "day:2026-11-23").await.unwrap(), 0);
    let adds = (0..20).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.add_usage("api-a", "day:2026-11-23", 5).await.unwrap() })
    });
    for a in adds {
        a.await.unwrap();
    }
    assert_eq!(store.usage("api-a", "day:2026-11-23").await.unwrap(), 100);
    assert_eq!(
        store.add_usage("api-a", "day:2026-11-24", 7).await.unwrap(),
        7,
        "periods are separate"
    );
    store.reset_usage("api-a", "day:2026-11-23").await.unwrap();
    assert_eq!(store.usage("api-a", "day:2026-11-23").await.unwrap(), 0);

    assert!(store.delete_credential("api-a").await.unwrap());
    assert!(!store.delete_credential("api-a").await.unwrap());
    assert_eq!(
        store.usage("api-a", "day:2026-11-24").await.unwrap(),
        0,
        "usage goes with it"
    );
    assert!(store.quota_limits().await.unwrap().is_empty());
    assert_eq!(store.list_credentials().await.unwrap().len(), 1);
}

fn vkey(id: &str, owner: Option<&str>, created: i64) -> VirtualKeyRecord {
    VirtualKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        owner: owner.map(str::to_owned),
        secret_hash: "ab".repeat(32),
        rules: serde_json::from_value(serde_json::json!({
            "models": ["gpt-4o*"], "rpm": 60, "cost_budget": {"usd": 2.5, "period": "daily"}
        }))
        .unwrap(),
        created_at: created,
        updated_at: created,
        expires_at: Some(created + 5000),
        revoked_at: None,
    }
}

async fn keys_contract(store: &Arc<dyn Store>) {
    let alice = store
        .upsert_user("local", "alice", None, None, 1)
        .await
        .unwrap();
    let k1 = vkey("key1", Some(&alice.id), 100);
    store.insert_key(&k1).await.unwrap();
    store.insert_key(&vkey("key2", None, 200)).await.unwrap();
    store
        .insert_key(&vkey("key3", Some(&alice.id), 300))
        .await
        .unwrap();
    assert!(store.insert_key(&k1).await.is_err(), "ids are unique");
    assert!(
        store
            .insert_key(&vkey("key4", Some("usr_nope"), 400))
            .await
            .is_err(),
        "the owner must exist"
    );
    assert_eq!(store.get_key("key1").await.unwrap(), Some(k1.clone()));
    assert_eq!(store.get_key("nope").await.unwrap(), None);
    let ids = |keys: Vec<VirtualKeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_keys(None).await.unwrap()),
        ["key3", "key2", "key1"],
        "newest first"
    );
    assert_eq!(
        ids(store.list_keys(Some(&alice.id)).await.unwrap()),
        ["key3", "key1"]
    );

    // Updates change only what they name, stamp updated_at, and bump the revision.
    let rev = store.revision().await.unwrap();
    let rename = KeyUpdate {
        name: Some("renamed".into()),
        ..KeyUpdate::default()
    };
    assert!(store.update_key("key1", &rename, 700).await.unwrap());
    let k = store.get_key("key1").await.unwrap().unwrap();
    assert_eq!((k.name.as_str(), k.updated_at), ("renamed", 700));
    assert_eq!((k.rules, k.expires_at), (k1.rules.clone(), k1.expires_at));
    assert!(
        store.revision().await.unwrap() > rev,
        "an update bumps the revision"
    );
    let clear = KeyUpdate {
        expires_at: Some(None),
        rules: Some(Default::default()),
        ..KeyUpdate::default()
    };
    assert!(store.update_key("key1", &clear, 800).await.unwrap());
    let k = store.get_key("key1").await.unwrap().unwrap();
    assert_eq!((k.name.as_str(), k.expires_at), ("renamed", None));
    assert!(k.rules.is_open());
    let later = KeyUpdate {
        expires_at: Some(Some(9000)),
        ..KeyUpdate::default()
    };
    assert!(store.update_key("key1", &later, 900).await.unwrap());
    assert_eq!(
        store.get_key("key1").await.unwrap().unwrap().expires_at,
        Some(9000)
    );
    assert!(!store.update_key("nope", &later, 900).await.unwrap());

    let rev = store.revision().await.unwrap();
    assert!(store.revoke_key("key2", 1000).await.unwrap());
    assert!(
        !store.revoke_key("key2", 1100).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_key("nope", 1100).await.unwrap());
    assert_eq!(
        store.get_key("key2").await.unwrap().unwrap().revoked_at,
        Some(1000)
    );
    assert!(
        store.revision().await.unwrap() > rev,
        "a revocation bumps the revision"
    );
}

/// Instances loading the token server's keys at once from an empty store: one key is stored,
/// and every one of them signs with it.
async fn first_signing_key_is_one_for_all(store: &Arc<dyn Store>) {
    use portcullis::identity::token_server::keys;
    // Connections open first, so the loads meet at the database rather than in the pool.
    futures_util::future::join_all((0..8).map(|_| store.revision())).await;
    let loads = (0..8).map(|_| keys::load(store.as_ref(), 1_000, None, 3_600_000));
    let kids: Vec<String> = futures_util::future::join_all(loads)
        .await
        .into_iter()
        .map(|set| set.unwrap().signing.0)
        .collect();
    let stored = store.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1, "one key stored: {stored:?}");
    assert!(kids.iter().all(|k| *k == stored[0].kid), "{kids:?}");
    // A key exists now: a later load stores none.
    let again = keys::load(store.as_ref(), 2_000, None, 3_600_000).await;
    assert_eq!(again.unwrap().signing.0, stored[0].kid);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);
}

/// For each suite, a module with the test on SQLite and the test on PostgreSQL.
macro_rules! on_both_stores {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            #[tokio::test]
            async fn on_sqlite() {
                let (store, _dir) = super::test_store(false).await.unwrap();
                super::$suite(&store).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some((store, _home)) = super::test_store(true).await else {
                    return;
                };
                super::$suite(&store).await;
            }
        }
    )*};
}

on_both_stores!(
    pool_contract,
    keys_contract,
    accounts_contract,
    sso_secrets_converge_and_links_are_single_use,
    sso_logins_are_single_use_and_expire,
    sso_sessions_expire_and_expired_rows_are_purged,
    first_signing_key_is_one_for_all,
);

#[tokio::test]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    assert_eq!(store.dialect_name(), "sqlite");
    contract(&store).await;
    // Reopening runs no migration twice and keeps the data.
    let reopened = SqlStore::open_sqlite(dir.path()).await.unwrap();
    assert!(reopened.migrate().await.unwrap().is_empty());
    assert_eq!(reopened.list_tokens(None).await.unwrap().len(), 3);
}

#[tokio::test]
async fn contract_on_postgres() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let store = SqlStore::open(&db.url()).await.unwrap();
    assert_eq!(store.dialect_name(), "postgres");
    contract(&store).await;
    assert!(store.migrate().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let err = SqlStore::open("mysql://x").await.unwrap_err().to_string();
    assert!(err.contains("sqlite:// or postgres://"), "{err}");
    let err = SqlStore::open("postgres://user:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}
