//! The upstream credential pool end to end: a real gateway in front of the mock, whose keys are
//! scripted per credential (`key~status=429;retry_after=30` answers 429 to every request made
//! with that key). Strategies, failover per fault class before the first byte, the all-cooling
//! 429, quotas (streams included) with resets on the test clock, the credential directory's hot
//! reload, the management API (auth, masking, CRUD, quota), encryption at rest and rekey.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::{
    BackendKind, Config, CredentialConfig, QuotaLimit, ResetSchedule, SelectionStrategy,
};
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::{PoolStore, SqlStore, Store};
use serde_json::{Value, json};

use crate::harness::*;

const MGMT: &str = "management-key-0123456789";
/// 2026-11-23T10:00:00Z
const START_MS: u64 = 1_795_428_000_000;

fn cred(id: &str, key: &str, priority: i64, limit: Option<u64>) -> CredentialConfig {
    CredentialConfig {
        id: Some(id.to_owned()),
        api_key: Some(Secret::new(key)),
        api_key_env: None,
        priority,
        quota: limit.map(|limit| QuotaLimit { limit }),
    }
}

/// One OpenAI-type backend `openai` whose pool is `creds` (no `api_key`), cooling on.
fn pool_config(mock: &Mock, strategy: SelectionStrategy, creds: Vec<CredentialConfig>) -> Config {
    let mut c = config_for(mock);
    c.auth.disable_cooling = false;
    c.auth.selection_strategy = strategy;
    let b = c.backends.get_mut("openai").unwrap();
    b.api_key = None;
    b.credentials = creds;
    c.management.key = Some(Secret::new(MGMT));
    c
}

struct Env {
    mock: Mock,
    gw: Gateway,
    clock: ManualClock,
    state: AppState,
    notes: Arc<RecordingNotifier>,
    _dir: tempfile::TempDir,
}

async fn env(config: impl FnOnce(&Mock, &Path) -> Config) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mock = start_mock().await;
    let config = config(&mock, dir.path());
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_sqlite(&dir.path().join("db")).await.unwrap());
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let notes = Arc::new(RecordingNotifier::default());
    let state =
        AppState::with_parts(config, Arc::new(clock.clone()), notes.clone(), Some(store)).unwrap();
    state.pool().reload_store().await.unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    Env {
        mock,
        gw,
        clock,
        state,
        notes,
        _dir: dir,
    }
}

async fn ask(gw: &Gateway, stream: bool) -> reqwest::Response {
    post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("openai:mock-gpt", stream),
    )
    .await
}

async fn mgmt(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(MGMT);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn auth_of(gw: &Gateway, id: &str) -> Value {
    let (s, v) = mgmt(gw, reqwest::Method::GET, "/v0/management/auths", None).await;
    assert_eq!(s, 200);
    v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn each_strategy_distributes_as_it_says() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::RoundRobin,
            vec![
                cred("a", "sk-pool-a-0123456789", 1, None),
                cred("b", "sk-pool-b-0123456789", 2, None),
                cred("c", "sk-pool-c-0123456789", 3, None),
            ],
        )
    })
    .await;
    let asks = (0..30).map(|_| ask(&e.gw, false));
    for r in futures_util::future::join_all(asks).await {
        assert_eq!(r.status(), 200);
    }
    for k in ["a", "b", "c"] {
        assert_eq!(
            e.mock
                .stats
                .requests_with(&format!("sk-pool-{k}-0123456789")),
            10,
            "{k}"
        );
    }

    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("backup", "sk-pool-backup-0123456789", 5, None),
                cred("main", "sk-pool-main-0123456789", 1, None),
            ],
        )
    })
    .await;
    for _ in 0..5 {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
    }
    assert_eq!(e.mock.stats.requests_with("sk-pool-main-0123456789"), 5);
    assert_eq!(e.mock.stats.requests_with("sk-pool-backup-0123456789"), 0);

    // quota_aware: the one with the most remaining first; usage evens them out.
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::QuotaAware,
            vec![
                cred("small", "sk-pool-small-0123456789", 1, Some(1_000)),
                cred("big", "sk-pool-big-0123456789", 1, Some(1_500)),
            ],
        )
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-pool-big-0123456789"), 1);
    let per_request = auth_of(&e.gw, "big").await["quota"]["used"]
        .as_u64()
        .unwrap();
    assert!(
        per_request > 0,
        "usage is deducted from the upstream's report"
    );
    for _ in 0..(600 / per_request + 4) {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
    }
    let small = auth_of(&e.gw, "small").await["quota"]["remaining"]
        .as_u64()
        .unwrap();
    let big = auth_of(&e.gw, "big").await["quota"]["remaining"]
        .as_u64()
        .unwrap();
    assert!(
        small.abs_diff(big) <= per_request,
        "small {small} big {big}"
    );
    assert!(e.mock.stats.requests_with("sk-pool-small-0123456789") > 0);
}

#[tokio::test]
async fn every_fault_class_fails_over_before_the_first_byte_and_cools_the_credential() {
    for (fault, status) in [
        ("status=429;retry_after=30", "rate_limited"),
        ("status=401", "rejected"),
        ("status=403", "rejected"),
        ("status=500", "cooling_down"),
        ("status=503", "cooling_down"),
        ("header_delay_ms=3000", "cooling_down"),
    ] {
        let bad = format!("sk-pool-bad-0123456789~{fault}");
        let e = env(|m, _| {
            let mut c = pool_config(
                m,
                SelectionStrategy::Priority,
                vec![
                    cred("bad", &bad, 1, None),
                    cred("good", "sk-pool-good-0123456789", 2, None),
                ],
            );
            set_read_idle(&mut c, "openai", 300);
            c
        })
        .await;
        for stream in [false, true] {
            let r = ask(&e.gw, stream).await;
            assert_eq!(r.status(), 200, "{fault}: the next credential answers");
            if stream {
                assert_eq!(
                    openai_text(&sse_events(r).await),
                    portcullis::mock::MOCK_TEXT
                );
            }
        }
        assert_eq!(
            e.mock.stats.requests_with(&bad),
            1,
            "{fault}: tried once, then cooling"
        );
        assert_eq!(e.mock.stats.requests_with("sk-pool-good-0123456789"), 2);
        let a = auth_of(&e.gw, "bad").await;
        assert_eq!(a["status"], status, "{fault}: {a}");
        assert!(a["cooldown_until"].is_string());
        assert_eq!(a["failures"], 1);
        if fault.starts_with("status=429") {
            let until = e.state.pool().status(Some("openai")).unwrap()[0]
                .cooldown_until
                .unwrap();
            assert_eq!(until, START_MS + 30_000, "Retry-After honoured");
        }
    }
}

#[tokio::test]
async fn a_connection_failure_tries_each_credential_once_then_every_one_cools_down() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("a", "sk-pool-a-0123456789", 1, None),
                cred("b", "sk-pool-b-0123456789", 2, None),
            ],
        );
        // Nothing listens there.
        c.backends.get_mut("openai").unwrap().base_url = Some("http://127.0.0.1:9/v1".to_owned());
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 502);
    openai_error(&r.json().await.unwrap());
    for id in ["a", "b"] {
        assert_eq!(auth_of(&e.gw, id).await["last_status"], "transport_error");
    }
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 429, "both cooling down");
    assert_eq!(r.headers()["retry-after"], "2");
}

#[tokio::test]
async fn a_server_error_is_retried_on_one_more_credential_not_on_all() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::RoundRobin,
            (0..4)
                .map(|i| {
                    cred(
                        &format!("k{i}"),
                        &format!("sk-pool-k{i}-0123456789~status=500"),
                        1,
                        None,
                    )
                })
                .collect(),
        )
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 502);
    assert_eq!(
        e.mock.stats.requests(),
        2,
        "a poisoned request cannot cool the whole pool"
    );
    let (_, v) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/auths/openai",
        None,
    )
    .await;
    let cooling = v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "cooling_down")
        .count();
    assert_eq!(cooling, 2);
}

#[tokio::test]
async fn a_mid_stream_failure_is_reported_not_retried() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred(
                    "drops",
                    "sk-pool-drops-0123456789~chunks=6;drop_after=2",
                    1,
                    None,
                ),
                cred("good", "sk-pool-good-0123456789", 2, None),
            ],
        )
    })
    .await;
    let r = ask(&e.gw, true).await;
    assert_eq!(r.status(), 200);
    let events = sse_events(r).await;
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert!(openai_error(&last).contains("broke off"), "{last}");
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-good-0123456789"),
        0,
        "no retry after bytes"
    );
    assert_eq!(auth_of(&e.gw, "drops").await["status"], "cooling_down");
    assert_eq!(
        ask(&e.gw, false).await.status(),
        200,
        "the next request fails over"
    );
}

#[tokio::test]
async fn every_credential_cooling_down_is_a_429_in_the_callers_protocol_with_the_soonest_retry() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::RoundRobin,
            vec![
                cred(
                    "slow",
                    "sk-pool-slow-0123456789~status=429;retry_after=40",
                    1,
                    None,
                ),
                cred(
                    "soon",
                    "sk-pool-soon-0123456789~status=429;retry_after=10",
                    1,
                    None,
                ),
            ],
        );
        let a = c.backends.get_mut("anthropic").unwrap();
        a.api_key = Some(Secret::new(
            "sk-ant-pool-0123456789~status=429;retry_after=25",
        ));
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(
        r.status(),
        429,
        "both tried; the last upstream 429 is passed on"
    );
    assert_eq!(e.mock.stats.requests(), 2);
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "10", "the soonest recovery");
    let v: Value = r.json().await.unwrap();
    assert!(
        openai_error(&v).contains("every upstream credential of backend `openai`"),
        "{v}"
    );
    assert_eq!(v["error"]["code"], "all_credentials_unavailable");
    assert_eq!(e.mock.stats.requests(), 2, "nothing sent upstream");

    let messages = format!("{}/v1/messages", e.gw.url);
    let anth = || {
        post_json(
            &messages,
            json!({"model": "anthropic:m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
    };
    assert_eq!(anth().await.status(), 429);
    let r = anth().await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "25");
    anthropic_error(&r.json().await.unwrap());

    e.clock.advance(Duration::from_secs(10));
    ask(&e.gw, false).await;
    assert_eq!(
        e.mock
            .stats
            .requests_with("sk-pool-soon-0123456789~status=429;retry_after=10"),
        2,
        "back after its Retry-After"
    );
}

#[tokio::test]
async fn quotas_are_deducted_from_reported_usage_streams_included_and_reset_daily() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("capped", "sk-pool-capped-0123456789", 1, Some(60)),
                cred("spare", "sk-pool-spare-0123456789", 2, None),
            ],
        );
        c.auth
            .quota
            .reset_schedule
            .insert("openai".to_owned(), ResetSchedule::Daily);
        c
    })
    .await;
    // A stream with usage (OpenAI reports it when asked).
    let r = post_json(
        &format!("{}/v1/chat/completions", e.gw.url),
        json!({"model": "openai:mock-gpt", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let _ = sse_events(r).await;
    let used = auth_of(&e.gw, "capped").await["quota"]["used"]
        .as_u64()
        .unwrap();
    assert!(used > 0, "the stream's usage was deducted");
    let mut n = 0;
    while auth_of(&e.gw, "capped").await["status"] != "exhausted" {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
        n += 1;
        assert!(n < 60, "the quota runs out");
    }
    let before = e.mock.stats.requests_with("sk-pool-spare-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-spare-0123456789"),
        before + 1,
        "exhausted is skipped"
    );
    let (s, q) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/auths/openai/quota?id=capped",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(q["credentials"][0]["remaining"], 0);
    assert_eq!(q["credentials"][0]["period"], "day:2026-11-23");
    assert_eq!(q["credentials"][0]["resets_at"], "2026-11-24T00:00:00.000Z");

    // Written to the store, where every instance reads it; the operator is told once.
    e.state.pool().flush_usage(true).await;
    e.state.pool().flush_usage(true).await;
    let told: Vec<_> = e
        .notes
        .events()
        .into_iter()
        .filter(|ev| {
            matches!(ev, OperatorEvent::QuotaExhausted { credential, resets_at, .. }
            if credential == "capped" && resets_at.as_deref() == Some("2026-11-24T00:00:00.000Z"))
        })
        .collect();
    assert_eq!(told.len(), 1, "{:?}", e.notes.events());
    let store = e.state.store().unwrap();
    assert!(store.usage("capped", "day:2026-11-23").await.unwrap() >= 60);

    e.clock.advance(Duration::from_secs(14 * 3600));
    let spare = e.mock.stats.requests_with("sk-pool-spare-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-spare-0123456789"),
        spare,
        "a new day: the capped key again"
    );
    assert_eq!(
        auth_of(&e.gw, "capped").await["quota"]["period"],
        "day:2026-11-24"
    );

    // Settable through the API: a higher limit, and usage reset.
    let (s, q) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai/quota?id=capped",
        Some(json!({"limit": 5000, "reset_usage": true})),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["credentials"][0]["limit"], 5000);
    assert_eq!(q["credentials"][0]["used"], 0);
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai/quota",
        Some(json!({"limit": "lots"})),
    )
    .await;
    assert_eq!(s, 400);
}

async fn eventually(gw: &Gateway, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = mgmt(gw, reqwest::Method::GET, "/v0/management/auths", None).await;
        if check(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Ids of the credentials that come from files.
fn file_ids(v: &Value) -> Vec<String> {
    v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["source"] == "file")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_credential_directory_is_reloaded_on_change_and_a_bad_file_is_skipped() {
    let auths = tempfile::tempdir().unwrap();
    let dir = auths.path().to_path_buf();
    let e = env(|m, _| {
        let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
        c.auth.credentials_dir = Some(dir.clone());
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 200, "a backend without credentials sends none");
    std::fs::write(
        dir.join("openai.json"),
        r#"{"type":"api_key","token":"sk-file-one-0123456789","priority":1,"quota":{"limit":1000000,"used":50000}}"#,
    )
    .unwrap();
    eventually(&e.gw, "added", |v| file_ids(v) == ["file-openai"]).await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-file-one-0123456789"), 1);

    std::fs::write(
        dir.join("openai.json"),
        r#"{"provider":"openai","token":"sk-file-two-0123456789","priority":3}"#,
    )
    .unwrap();
    eventually(&e.gw, "changed", |v| {
        v["auths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "file-openai" && a["priority"] == 3)
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-file-two-0123456789"), 1);

    std::fs::write(
        dir.join("claude.json"),
        r#"{"type":"api_key","token":"sk-ant-file-0123456789"}"#,
    )
    .unwrap();
    std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
    let v = eventually(&e.gw, "corrupt skipped", |v| {
        v["errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    assert_eq!(v["errors"][0]["source"], "broken.json");
    let mut got = file_ids(&v);
    got.sort();
    assert_eq!(
        got,
        ["file-claude", "file-openai"],
        "the other files keep working"
    );
    let claude = v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "file-claude")
        .unwrap();
    assert_eq!(
        claude["provider"], "anthropic",
        "the seed's `claude` is `anthropic`"
    );
    assert_eq!(ask(&e.gw, false).await.status(), 200);

    std::fs::remove_file(dir.join("openai.json")).unwrap();
    eventually(&e.gw, "deleted", |v| file_ids(v) == ["file-claude"]).await;
    let before = e.mock.stats.requests_with("sk-file-two-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-file-two-0123456789"),
        before,
        "the deleted key is gone"
    );
}

#[tokio::test]
async fn the_management_api_adds_changes_and_deletes_credentials_and_never_shows_a_secret() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![cred("yaml1", "sk-yaml-key-0123456789", 50, None)],
        )
    })
    .await;
    let url = format!("{}/v0/management/auths", e.gw.url);
    // Auth: none, wrong, remote (relayed by a local proxy).
    let no_key = client().get(&url).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    let wrong = client()
        .get(&url)
        .bearer_auth("not-the-management-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let remote = client()
        .get(&url)
        .bearer_auth(MGMT)
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(remote.status(), 403);

    let secret = "sk-added-through-api-0123456789x9f2";
    let (s, added) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(json!({"provider": "openai", "type": "api_key", "token": secret, "priority": 1, "quota": {"limit": 1000000}})),
    )
    .await;
    assert_eq!(s, 201, "{added}");
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("api-"));
    assert_eq!(added["token_hint"], "sk-adde…x9f2");
    assert_eq!(added["source"], "api");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with(secret),
        1,
        "priority 1 beats the YAML key's 50"
    );

    let (s, all) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/auths/openai",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let text = all.to_string();
    assert!(
        !text.contains(secret) && !text.contains("sk-yaml-key-0123456789"),
        "{text}"
    );
    assert_eq!(ids(&all).len(), 2);

    let (s, one) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        &format!("/v0/management/auths/openai?id={id}"),
        None,
    )
    .await;
    assert_eq!((s, one["id"].as_str()), (200, Some(id.as_str())));
    let (s, err) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai",
        Some(json!({"priority": 2})),
    )
    .await;
    assert_eq!(s, 400, "two credentials: name one: {err}");
    let (s, changed) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        &format!("/v0/management/auths/openai?id={id}"),
        Some(json!({"token": "sk-replaced-0123456789abcd", "priority": 60, "label": "rotated"})),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["priority"], 60);
    assert_eq!(changed["token_hint"], "sk-repl…abcd");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-yaml-key-0123456789"),
        1,
        "now the YAML key leads"
    );
    let (s, ro) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai?id=yaml1",
        Some(json!({"priority": 1})),
    )
    .await;
    assert_eq!(s, 409, "config credentials are changed in the file: {ro}");
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(json!({"provider": "nope", "token": "sk-x-0123456789"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(json!({"provider": "openai"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::DELETE,
        &format!("/v0/management/auths/openai?id={id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::DELETE,
        &format!("/v0/management/auths/openai?id={id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, doc) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/openapi.json",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v0/management/auths/{provider}/quota"]["put"].is_object());
}

#[tokio::test]
async fn a_rejected_credential_is_back_after_an_operator_refresh() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![cred("k", "sk-pool-k-0123456789~status=401", 1, None)],
        )
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 502);
    assert_eq!(
        ask(&e.gw, false).await.status(),
        429,
        "rejected: cooling down"
    );
    let (s, v) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths/openai/refresh",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["auths"][0]["status"], "active", "{v}");
    assert_eq!(ask(&e.gw, false).await.status(), 502, "sent upstream again");
}

#[tokio::test]
async fn multi_user_mode_refuses_oauth_credentials() {
    let auths = tempfile::tempdir().unwrap();
    std::fs::write(
        auths.path().join("copilot.json"),
        r#"{"provider":"openai","type":"oauth","token":"gho_personal_0123456789"}"#,
    )
    .unwrap();
    std::fs::write(
        auths.path().join("team.json"),
        r#"{"provider":"openai","type":"api_key","token":"sk-team-0123456789"}"#,
    )
    .unwrap();
    let dir = auths.path().to_path_buf();
    let e = env(|m, _| {
        let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
        c.auth.credentials_dir = Some(dir);
        c.access_mode.mode = portcullis::config::AccessMode::MultiUser;
        c
    })
    .await;
    let (_, v) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/auths/openai",
        None,
    )
    .await;
    assert_eq!(ids(&v), ["file-team"], "the OAuth file is filtered out");
    let (s, err) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(json!({"provider": "openai", "type": "oauth", "token": "gho_other_0123456789"})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(err.to_string().contains("multi-user mode"), "{err}");
}

fn b64(bytes: [u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_survive_a_key_rotation() {
    let old_key = b64([7; 32]);
    let new_key = b64([9; 32]);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().to_path_buf();
    let mock = start_mock().await;
    let make = |keys: &[&str]| {
        let mut c = pool_config(&mock, SelectionStrategy::Priority, vec![]);
        c.storage.data_dir = db.clone();
        c.auth.encryption.key = keys.first().map(|k| Secret::new(*k));
        c.auth.encryption.previous_keys = keys.iter().skip(1).map(|k| Secret::new(*k)).collect();
        c
    };
    let secret = "sk-sealed-secret-0123456789";
    {
        let state = AppState::open(make(&[&old_key])).await.unwrap();
        let gw = start_gateway_with_state(state).await;
        let (s, _) = mgmt(
            &gw,
            reqwest::Method::POST,
            "/v0/management/auths",
            Some(json!({"provider": "openai", "token": secret})),
        )
        .await;
        assert_eq!(s, 201);
        assert_eq!(ask(&gw, false).await.status(), 200);
        assert_eq!(
            mock.stats.requests_with(secret),
            1,
            "opened for the upstream"
        );
    }
    let raw = |dir: &Path| -> Vec<u8> {
        let mut all = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        all
    };
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !contains(&raw(&db), secret),
        "no plaintext secret in the database files"
    );
    let store = SqlStore::open_sqlite(&db).await.unwrap();
    let row = &store.list_credentials().await.unwrap()[0];
    assert!(row.secret.starts_with("sealed.v1."), "{}", row.secret);

    // The new key alone cannot open it: a clear startup error, never garbage upstream.
    let err = AppState::open(make(&[&new_key]))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("sealed with key"), "{err}");
    // Rotation: new key + the old one as previous, rekey, then the new key alone.
    let out = portcullis::admin::auths::auths(
        &make(&[&new_key, &old_key]),
        &portcullis::clock::SystemClock,
        &portcullis::cli::AuthsCommand::Rekey,
        &mut std::io::empty(),
    )
    .await
    .unwrap();
    assert!(out.contains("1 stored credential(s)"), "{out}");
    let state = AppState::open(make(&[&new_key])).await.unwrap();
    let gw = start_gateway_with_state(state).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(mock.stats.requests_with(secret), 2);
    assert!(!contains(&raw(&db), secret));
}

#[test]
fn backend_kinds_get_their_own_credential_header() {
    // Checked end to end in `every_credential_cooling_down…` (Anthropic) and the tests above
    // (OpenAI); here the Gemini header through the mock's credential counter.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = env(|m, _| {
            let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
            let g = c.backends.get_mut("gemini").unwrap();
            g.api_key = None;
            g.credentials = vec![cred("g1", "AIza-pool-gemini-0123456789", 1, None)];
            assert_eq!(g.kind, BackendKind::Gemini);
            c
        })
        .await;
        let r = post_json(
            &format!("{}/v1beta/models/mock-gemini:generateContent", e.gw.url),
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(e.mock.stats.requests_with("AIza-pool-gemini-0123456789"), 1);
        let seen = e.mock.stats.last_request().unwrap();
        assert_eq!(
            seen.header("x-goog-api-key"),
            Some("AIza-pool-gemini-0123456789")
        );
    });
}
