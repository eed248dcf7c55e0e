//! `/internal/health`'s store (kind, URL without password, reachable, migrations applied
//! against those shipped), credential pool summary per backend, and overall `status`:
//! `degraded`, with reasons, when the store does not answer or records other migrations, or a
//! backend with credentials has none usable — HTTP 200 either way. On SQLite, and on
//! PostgreSQL when a server listens (the URL's password never shown). Times of the answer are
//! measured here.

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use portcullis::clock::{ManualClock, iso8601};
use portcullis::config::{CredentialConfig, SelectionStrategy};
use portcullis::secret::Secret;
use portcullis::store::{SqlStore, Store, shipped_migrations};
use serde_json::Value;

use crate::harness::*;

/// 2026-11-23T10:00:00Z
const START_MS: u64 = 1_795_428_000_000;

/// The full answer (asked from loopback), which is a 200 whatever it says.
async fn health(gw: &Gateway) -> Value {
    let r = reqwest::get(format!("{}/internal/health", gw.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn reasons(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// A gateway on a SQLite store of the test's own (kept, to act on it behind the gateway).
async fn on_store(dir: &std::path::Path) -> (SqlStore, Gateway, Mock) {
    let mock = start_mock().await;
    let store = SqlStore::open_sqlite(dir).await.unwrap();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let (_, gw) = start_gateway_on_store(config_for(&mock), &clock, shared).await;
    (store, gw, mock)
}

#[tokio::test]
async fn the_store_answers_with_the_migrations_this_binary_ships_and_fast() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, gw, _mock) = on_store(dir.path()).await;
    let v = health(&gw).await;
    assert_eq!(v["status"], "ok", "{v}");
    assert!(reasons(&v).is_empty(), "{v}");
    let s = &v["store"];
    assert_eq!(s["configured"], true);
    assert_eq!(s["kind"], "sqlite");
    let url = s["url"].as_str().unwrap();
    assert!(
        url.starts_with("sqlite://") && url.ends_with("/portcullis.db"),
        "no query: {url}"
    );
    assert_eq!(s["reachable"], true, "{s}");
    let shipped: Vec<(i64, &str)> = shipped_migrations().collect();
    let (version, name) = *shipped.last().unwrap();
    let m = &s["migrations"];
    assert_eq!(m["current"], true, "{m}");
    for part in ["applied", "shipped"] {
        assert_eq!(m[part]["count"], shipped.len(), "{m}");
        assert_eq!(m[part]["latest"]["version"], version, "{m}");
        assert_eq!(m[part]["latest"]["name"], name, "{m}");
    }
    assert!(s["check_ms"].as_f64().unwrap() < 1000.0, "{s}");

    // The whole answer, store check included, is quick.
    let http = client();
    let url = format!("{}/internal/health", gw.url);
    let started = Instant::now();
    for _ in 0..20 {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let each = started.elapsed() / 20;
    eprintln!(
        "/internal/health with a SQLite store: {each:?} per answer, store check {} ms",
        s["check_ms"]
    );
    assert!(each < Duration::from_millis(500), "{each:?}");
}

#[tokio::test]
async fn a_database_migrated_by_another_binary_is_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gw, _mock) = on_store(dir.path()).await;
    store
        .execute_admin(
            "INSERT INTO portcullis_migrations (version, name, applied_at) VALUES (999, 'from_the_future', 0)",
        )
        .await
        .unwrap();
    let v = health(&gw).await;
    assert_eq!(v["status"], "degraded", "{v}");
    let m = &v["store"]["migrations"];
    assert_eq!(m["current"], false, "{m}");
    assert_eq!(m["applied"]["latest"]["version"], 999, "{m}");
    assert_eq!(m["applied"]["count"], shipped_migrations().len() + 1);
    let r = reasons(&v);
    assert!(
        r.iter()
            .any(|r| r.contains("migrations, this binary ships")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_store_that_went_away_is_degraded_and_the_answer_does_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gw, _mock) = on_store(dir.path()).await;
    store.close().await;
    let started = Instant::now();
    let v = health(&gw).await;
    let took = started.elapsed();
    eprintln!("/internal/health with a closed store: {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(v["status"], "degraded", "{v}");
    let s = &v["store"];
    assert_eq!(s["reachable"], false, "{s}");
    assert!(!s["error"].as_str().unwrap().is_empty(), "{s}");
    assert!(s["migrations"]["applied"].is_null(), "{s}");
    assert_eq!(
        s["migrations"]["shipped"]["count"],
        shipped_migrations().len()
    );
    let r = reasons(&v);
    assert!(
        r.iter().any(|r| r.starts_with("the store does not answer")),
        "{r:?}"
    );
    // Without a store at all there is nothing to degrade.
    let mock = start_mock().await;
    let plain = start_gateway(config_for(&mock)).await;
    let v = health(&plain).await;
    assert_eq!(v["store"], serde_json::json!({ "configured": false }));
    assert_eq!(v["status"], "ok", "{v}");
}

fn cred(id: &str, key: &str) -> CredentialConfig {
    CredentialConfig {
        id: Some(id.to_owned()),
        api_key: Some(Secret::new(key)),
        api_key_env: None,
        priority: 1,
        quota: None,
    }
}

/// `backend`'s entry of the pool summary.
fn pool_of<'a>(v: &'a Value, backend: &str) -> &'a Value {
    v["pool"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["backend"] == backend)
        .unwrap_or_else(|| panic!("no {backend} in {v}"))
}

#[tokio::test]
async fn the_pool_summary_counts_cooldowns_and_a_backend_with_none_usable_degrades() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_cooling = false;
    config.auth.selection_strategy = SelectionStrategy::Priority;
    let openai = config.backends.get_mut("openai").unwrap();
    openai.api_key = None;
    openai.credentials = vec![
        cred(
            "late",
            "sk-health-late-0123456789~status=429;retry_after=30",
        ),
        cred(
            "soon",
            "sk-health-soon-0123456789~status=429;retry_after=10",
        ),
    ];
    // A backend without any credential sends requests without a key: not a fault.
    config.backends.get_mut("anthropic").unwrap().api_key = None;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let gw = start_gateway_with_clock(config, clock.clone()).await;

    let v = health(&gw).await;
    assert_eq!(v["status"], "ok", "{v}");
    let p = pool_of(&v, "openai");
    assert_eq!(
        (p["total"].clone(), p["usable"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(p["next_cooldown_end"], Value::Null);
    let keyless = pool_of(&v, "anthropic");
    assert_eq!(keyless["total"], 0, "{keyless}");
    assert_eq!(keyless["usable"], 0, "{keyless}");

    let r = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("openai:mock-gpt", false),
    )
    .await;
    assert_eq!(r.status(), 429, "both credentials tried and cooling");
    let v = health(&gw).await;
    let text = v.to_string();
    assert!(!text.contains("sk-health"), "no secret: {text}");
    let p = pool_of(&v, "openai");
    assert_eq!(p["total"], 2, "{p}");
    assert_eq!(p["usable"], 0, "{p}");
    assert_eq!(p["cooling_down"], 2, "{p}");
    assert_eq!(p["needs_login"], 0, "{p}");
    assert_eq!(p["quota_exhausted"], 0, "{p}");
    assert_eq!(p["next_cooldown_end"], iso8601(START_MS + 10_000), "{p}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(
        reasons(&v),
        ["backend `openai` has no usable credential"],
        "only the backend with credentials, none usable"
    );

    clock.advance(Duration::from_secs(10));
    let v = health(&gw).await;
    let p = pool_of(&v, "openai");
    assert_eq!(p["usable"], 1, "{p}");
    assert_eq!(p["cooling_down"], 1, "{p}");
    assert_eq!(p["next_cooldown_end"], iso8601(START_MS + 30_000), "{p}");
    assert_eq!(v["status"], "ok", "{v}");
}

#[tokio::test]
async fn a_postgres_store_is_shown_without_its_password() {
    let Some(db) = crate::store::fresh_postgres().await else {
        return;
    };
    let mut url = reqwest::Url::parse(&db.url()).unwrap();
    if url.password().is_none() {
        // A server that trusts the test user ignores it; it must not be shown either way.
        url.set_password(Some("pw-never-shown-0123")).unwrap();
    }
    let password = url.password().unwrap().to_owned();
    let store = SqlStore::open(url.as_str()).await.unwrap();
    let mock = start_mock().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let (_, gw) = start_gateway_on_store(config_for(&mock), &clock, Arc::new(store)).await;
    let v = health(&gw).await;
    assert!(!v.to_string().contains(&password), "{v}");
    let s = &v["store"];
    assert_eq!(s["kind"], "postgres", "{s}");
    assert_eq!(s["reachable"], true, "{s}");
    assert_eq!(s["migrations"]["current"], true, "{s}");
    assert!(s["url"].as_str().unwrap().starts_with("postgres://"), "{s}");
    assert_eq!(v["status"], "ok", "{v}");
}
