//! Migrations with many instances: starters on one empty database at once (in process, and three
//! `portcullis serve` processes on PostgreSQL) apply each migration once and all come up; a
//! starter waits while another holds the lock; an applied migration edited since is refused by
//! name; a database of an older binary gets its checksums; `portcullis migrate` on PostgreSQL.
//! Each test's database is dropped after it (`store::TestDatabase`).

use std::future::Future;
use std::time::{Duration, Instant};

use portcullis::store::{AppliedMigration, MIGRATION_LOCK_KEY, SqlStore};
use serde_json::Value;
use sqlx::Connection as _;

use crate::harness::{ChildGuard, get_json, portcullis, serve_json, spawn_served};
use crate::store::{empty_database, fresh_postgres};

/// The migrations this binary embeds, by version.
const VERSIONS: [i64; 7] = [1, 2, 3, 4, 5, 6, 7];

fn versions(applied: &[AppliedMigration]) -> Vec<i64> {
    applied.iter().map(|m| m.version).collect()
}

/// Runs `test` on an empty SQLite database and on an empty PostgreSQL one.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn on_sqlite() {
                super::on(false, super::$test).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                super::on(true, super::$test).await;
            }
        }
    )*};
}

async fn on<F: Future<Output = ()>>(on_postgres: bool, test: impl FnOnce(String) -> F) {
    let Some((url, _home)) = empty_database(on_postgres).await else {
        return;
    };
    test(url).await;
}

on_both_databases!(
    three_starters_at_once_apply_each_migration_once,
    an_edited_migration_is_refused_by_name,
    an_older_binarys_database_gets_checksums,
    a_newer_binarys_database_is_refused,
);

/// Three instances (a pool each) migrate one empty database at once: all succeed, and between
/// them every migration ran exactly once.
async fn three_starters_at_once_apply_each_migration_once(url: String) {
    let starts = (0..3).map(|_| async {
        let store = SqlStore::connect(&url).await?;
        store.migrate().await
    });
    let mut ran: Vec<i64> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .flat_map(|applied| versions(&applied.unwrap()))
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, VERSIONS, "each migration ran once");
    let store = SqlStore::open(&url).await.unwrap();
    let recorded = store.applied_migrations().await.unwrap();
    assert_eq!(versions(&recorded), VERSIONS);
    assert!(
        recorded
            .iter()
            .all(|m| m.checksum.as_ref().is_some_and(|c| c.len() == 64))
    );
}

/// A migration whose SQL changed after it was applied stops the start, naming it.
async fn an_edited_migration_is_refused_by_name(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    store
        .execute_admin("UPDATE portcullis_migrations SET checksum = 'e0e0' WHERE version = 3")
        .await
        .unwrap();
    let err = SqlStore::open(&url).await.unwrap_err().to_string();
    assert!(
        err.contains("store migration 3 (accounts) was edited after it was applied")
            && err.contains("recorded checksum e0e0"),
        "{err}"
    );
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("migration 3 (accounts)"), "{err}");
}

/// A database made by a binary that recorded no checksums: the column is added and filled, and
/// the next start checks against them.
async fn an_older_binarys_database_gets_checksums(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let recorded = store.applied_migrations().await.unwrap();
    store
        .execute_admin("ALTER TABLE portcullis_migrations DROP COLUMN checksum")
        .await
        .unwrap();
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(store.applied_migrations().await.unwrap(), recorded);
    // Rows without one (a column added by hand, say) are filled too.
    store
        .execute_admin("UPDATE portcullis_migrations SET checksum = NULL WHERE version = 2")
        .await
        .unwrap();
    SqlStore::open(&url).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), recorded);
}

async fn a_newer_binarys_database_is_refused(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    store
        .execute_admin(
            "INSERT INTO portcullis_migrations (version, name, applied_at, checksum) VALUES (99, 'future', 0, 'x')",
        )
        .await
        .unwrap();
    let err = SqlStore::open(&url).await.unwrap_err().to_string();
    assert!(
        err.contains("store migration 99") && err.contains("newer portcullis"),
        "{err}"
    );
}

/// While another session holds the migration lock, a starter waits and touches nothing; once it
/// is released, the starter migrates.
#[tokio::test]
async fn a_starter_waits_while_another_holds_the_lock() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let mut holder = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    let url = db.url();
    let starter = tokio::spawn(async move { SqlStore::connect(&url).await?.migrate().await });
    let mut watcher = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    // Poll (a condition, not a sleep) until the starter waits for the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the starter never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('portcullis_migrations')::text")
            .fetch_one(&mut watcher)
            .await
            .unwrap();
    assert_eq!(table, None, "nothing ran before the lock was free");
    assert!(!starter.is_finished());
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    let applied = starter.await.unwrap().unwrap();
    assert_eq!(versions(&applied), VERSIONS);
}

/// Three `portcullis serve` processes started at once on one empty PostgreSQL database: all come
/// up healthy, the migrations ran once between them, and their first signing key is one key.
#[tokio::test]
async fn three_served_instances_start_together_on_one_empty_database() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let homes: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let starting: Vec<_> = homes
        .iter()
        .map(|home| {
            let mut cmd = serve_json();
            cmd.args(["--disable-notifications", "--data-dir"])
                .arg(home.path())
                .args(["--database-url", &db.url()])
                .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
            std::thread::spawn(move || spawn_served(cmd))
        })
        .collect();
    let served: Vec<_> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    for s in &served {
        let health = get_json(format!("{}/internal/health", s.url)).await;
        assert_eq!(health["status"], "ok", "{health}");
        let store = &health["store"];
        assert_eq!(store["kind"], "postgres", "{store}");
        assert_eq!(store["reachable"], true, "{store}");
        assert_eq!(store["migrations"]["current"], true, "{store}");
        assert_eq!(
            store["migrations"]["applied"]["count"],
            VERSIONS.len(),
            "{store}"
        );
    }
    let logged = |message: &str| {
        served
            .iter()
            .flat_map(|s| s.seen.lines())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"] == message)
            .count()
    };
    assert_eq!(
        logged("store migration applied"),
        VERSIONS.len(),
        "each migration applied by one instance"
    );
    let store = SqlStore::connect(&db.url()).await.unwrap();
    assert_eq!(
        versions(&store.applied_migrations().await.unwrap()),
        VERSIONS
    );

    // Their first token-server keys, asked for at once: one key, the same for all.
    let jwks = futures_util::future::join_all(
        served
            .iter()
            .map(|s| get_json(format!("{}/.well-known/jwks.json", s.url))),
    )
    .await;
    for set in &jwks {
        assert_eq!(set["keys"].as_array().map(Vec::len), Some(1), "{set}");
        assert_eq!(set["keys"][0]["kid"], jwks[0]["keys"][0]["kid"]);
    }
    drop(served);
}

/// `portcullis migrate --database-url postgres://…`, a separate step: it says what it applied,
/// and a second run applies nothing. A `serve` on a database with an edited migration refuses.
#[tokio::test]
async fn migrate_on_postgres_reports_and_is_idempotent() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let run = |command: &str| {
        let out = portcullis()
            .args([command, "--data-dir"])
            .arg(home.path())
            .args(["--database-url", &db.url()])
            .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run("migrate");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("applied 7 migration(s) to the PostgreSQL database (postgres)"),
        "{out}"
    );
    assert!(
        out.contains("0001_users_and_agent_tokens") && out.contains("0006_usage"),
        "{out}"
    );
    let (code, out, _) = run("migrate");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("applied 0 migration(s)"), "{out}");

    let store = SqlStore::connect(&db.url()).await.unwrap();
    store
        .execute_admin("UPDATE portcullis_migrations SET checksum = 'e0e0' WHERE version = 5")
        .await
        .unwrap();
    let mut serve = serve_json();
    serve
        .args(["--data-dir"])
        .arg(home.path())
        .args(["--database-url", &db.url()])
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .stderr(std::process::Stdio::piped());
    let mut serve = ChildGuard(serve.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve started on an edited migration"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut serve.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("store migration 5 (virtual_keys) was edited after it was applied"),
        "{err}"
    );
}
