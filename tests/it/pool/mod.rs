//! The upstream credential pool end to end: a real gateway in front of the mock, whose keys are
//! scripted per credential (`key~status=429;retry_after=30` answers 429 to every request made
//! with that key). Strategies, failover per fault class before the first byte, the all-cooling
//! 429, quotas (streams included) with resets on the test clock, the credential directory's hot
//! reload, the management API (auth, masking, CRUD, quota), encryption at rest and rekey.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis::clock::ManualClock;
use portcullis::config::{
    BackendKind, Config, CredentialConfig, QuotaLimit, ResetSchedule, SelectionStrategy,
};
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::{PoolStore, SqlStore};
use serde_json::{Value, json};

use crate::harness::*;

mod admin;
mod routing;

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
    let StoredGateway {
        gw,
        state,
        clock,
        notes,
    } = start_gateway_with_store(config, &dir.path().join("db"), START_MS).await;
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

/// A management API call with the management key: (status, JSON answer or `null`).
async fn mgmt(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_with_key(&gw.url, MGMT, method, path, body).await
}

/// One management call and the status it must get: method, path, body, status, why.
type Expected<'a> = (reqwest::Method, &'a str, Option<Value>, u16, &'a str);

/// Makes each call in turn, checking its status.
async fn expect_statuses(gw: &Gateway, calls: Vec<Expected<'_>>) {
    for (method, path, body, status, why) in calls {
        let (got, v) = mgmt(gw, method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {why}: {v}");
    }
}

/// Adds a credential through the management API (201); returns it as the API shows it.
async fn add(gw: &Gateway, body: Value) -> Value {
    let (s, added) = mgmt(
        gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{added}");
    added
}

/// The pool's listing: all of it, or one provider's.
async fn listing(gw: &Gateway, provider: Option<&str>) -> Value {
    let path = match provider {
        Some(p) => format!("/v0/management/auths/{p}"),
        None => "/v0/management/auths".to_owned(),
    };
    let (s, v) = mgmt(gw, reqwest::Method::GET, &path, None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

async fn auth_of(gw: &Gateway, id: &str) -> Value {
    listing(gw, None).await["auths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}
