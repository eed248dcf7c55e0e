//! Virtual keys end to end: created through the management API, used in every credential
//! position through the mock upstream (never forwarded, never listed, never stored), refused
//! when wrong (counted for the lockout), malformed (no store query), revoked on another
//! instance (after one run of the revision job), expired (the test clock), or owned by a
//! disabled user; an update reaches the principal after the same job. The `keys` commands are in
//! `keys_cli.rs`, the store contract in `store.rs`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::{Clock, ManualClock};
use portcullis::config::Config;
use portcullis::identity::virtual_key::FORMAT;
use portcullis::identity::{AuthFailure, CredentialSource, Presented, PresentedValue, Principal};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::Store;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::harness::*;

const START: u64 = 1_800_000_000;
const MGMT: &str = "management-key-for-virtual-keys-0123";

struct Setup {
    mock: Mock,
    gw: Gateway,
    state: AppState,
    store: Arc<dyn Store>,
    clock: ManualClock,
    home: crate::store::StoreHome,
}

fn gateway_config(mock: &Mock) -> Config {
    let mut config = config_for(mock);
    config.auth.disable_auth = false;
    config.management.key = Some(Secret::new(MGMT));
    config
}

/// A gateway with a store (SQLite, or PostgreSQL when `on_postgres`), client authentication and
/// the lockout on, the management API open to the test, and its revision job run once (what
/// the scheduler does at start).
async fn setup(on_postgres: bool) -> Option<Setup> {
    let (store, home) = crate::store::test_store(on_postgres).await?;
    let mock = start_mock().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START));
    let (state, gw) = start_gateway_on_store(gateway_config(&mock), &clock, store.clone()).await;
    sync(&state, &clock).await;
    Some(Setup {
        mock,
        gw,
        state,
        store,
        clock,
        home,
    })
}

/// Another instance on the same store and clock.
async fn second_instance(s: &Setup) -> (AppState, Gateway) {
    let (state, gw) =
        start_gateway_on_store(gateway_config(&s.mock), &s.clock, s.store.clone()).await;
    sync(&state, &s.clock).await;
    (state, gw)
}

/// One run of the revision job (the scheduler runs it every second).
async fn sync(state: &AppState, clock: &ManualClock) {
    assert!(
        state
            .jobs()
            .run_once("tokens.sync_revision", clock.now_millis())
            .await
    );
}

async fn api(s: &Setup, method: M, path: &str, body: Option<Value>) -> (u16, Value) {
    call_with_key(&s.gw.url, MGMT, method, path, body).await
}

/// Creates a key through the API: (the whole key, its public id `sk-pvk-…`).
async fn create(s: &Setup, body: Value) -> (String, String) {
    let (status, v) = api(s, M::POST, "/v0/management/keys", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    (key, v["id"].as_str().unwrap().to_owned())
}

/// Who `state`'s authenticator says `key` is.
async fn principal(state: &AppState, key: &str) -> Result<Principal, AuthFailure> {
    let presented = Presented {
        value: PresentedValue::new(key),
        source: CredentialSource::Bearer,
    };
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    state.auth().authenticate(ip, None, Some(&presented)).await
}

fn lookups(s: &Setup) -> u64 {
    s.state.auth().virtual_keys().unwrap().lookups()
}

async fn used_in_every_credential_position(on_postgres: bool) {
    let Some(s) = setup(on_postgres).await else {
        return;
    };
    let (key, id) = create(&s, json!({"name": "ci-bot", "rules": {"rpm": 600}})).await;
    assert!(key.starts_with(&format!("{id}_")) && key.len() == FORMAT.token_len());
    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let anthropic = json!({"model": "claude-x", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    let query = format!("/v1beta/models/mock-gemini:generateContent?key={key}");
    for (path, body, header) in [
        (
            "/v1/chat/completions",
            chat("mock-gpt", false),
            "authorization",
        ),
        ("/v1/messages", anthropic, "x-api-key"),
        (
            "/v1beta/models/mock-gemini:generateContent",
            gemini.clone(),
            "x-goog-api-key",
        ),
        (query.as_str(), gemini, ""),
    ] {
        let mut req = client().post(format!("{}{path}", s.gw.url)).json(&body);
        if header == "authorization" {
            req = req.bearer_auth(&key);
        } else if !header.is_empty() {
            req = req.header(header, &key);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} {header}");
    }
    assert_eq!(s.mock.stats.requests_with(&key), 0, "never sent upstream");
    let Ok(Principal::VirtualKey(who)) = principal(&s.state, &key).await else {
        panic!("not a virtual key's principal");
    };
    assert_eq!((&*who.name, who.rules.rpm), ("ci-bot", Some(600)));
    assert_eq!(format!("sk-pvk-{}", who.id), id);

    // Listed and shown by id, never with the key.
    let (_, list) = api(&s, M::GET, "/v0/management/keys", None).await;
    assert_eq!(ids(&list["keys"]), std::slice::from_ref(&id));
    let (status, one) = api(&s, M::GET, &format!("/v0/management/keys/{id}"), None).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("active")));
    let secret = FORMAT.parse(&key).unwrap().secret.to_owned();
    for shown in [list.to_string(), one.to_string()] {
        assert!(!shown.contains(&secret), "{shown}");
    }
    let stored = s.store.get_key(FORMAT.bare_id(&id)).await.unwrap().unwrap();
    assert!(!stored.secret_hash.contains(&secret) && stored.secret_hash.len() == 64);
    if let Some(dir) = s.home.dir() {
        // The database's own bytes (the file and its write-ahead log): the id is there, the
        // secret is not.
        let mut raw = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            raw.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        let has = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(has(FORMAT.bare_id(&id)), "the check reads the rows");
        assert!(!has(&secret), "the secret is not in the database");
    }
}

#[tokio::test]
async fn keys_work_in_every_credential_position_on_sqlite() {
    used_in_every_credential_position(false).await;
}

#[tokio::test]
async fn keys_work_in_every_credential_position_on_postgres() {
    used_in_every_credential_position(true).await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_counted_for_the_lockout() {
    let s = setup(false).await.unwrap();
    let (key, id) = create(&s, json!({"name": "victim"})).await;
    let bare = FORMAT.bare_id(&id);
    // The same wrong value again and again (an agent with a stale key) counts once.
    let stale = FORMAT.assemble(bare, &"s".repeat(43));
    for _ in 0..8 {
        assert_eq!(chat_status(&s.gw.url, stale.expose()).await, 401);
    }
    assert_eq!(chat_status(&s.gw.url, &key).await, 200);
    // Distinct wrong secrets are guesses: the fifth failure blocks the address, the right key
    // included.
    for i in 0..4 {
        let guess = FORMAT.assemble(bare, &format!("{i:0>43}"));
        let resp = client()
            .post(format!("{}/v1/chat/completions", s.gw.url))
            .bearer_auth(guess.expose())
            .json(&chat("mock-gpt", false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(
            openai_error(&resp.json().await.unwrap()),
            "Invalid API key."
        );
    }
    assert_eq!(chat_status(&s.gw.url, &key).await, 429);
}

#[tokio::test]
async fn malformed_keys_cost_no_store_query_and_unknown_ids_one() {
    let s = setup(false).await.unwrap();
    let (key, _) = create(&s, json!({"name": "k"})).await;
    let before = lookups(&s);
    let mut typo = key.clone().into_bytes();
    typo[30] = if typo[30] == b'x' { b'y' } else { b'x' };
    for bad in [String::from_utf8(typo).unwrap(), "sk-pvk-short".to_owned()] {
        assert_eq!(chat_status(&s.gw.url, &bad).await, 401);
    }
    assert_eq!(lookups(&s), before, "refused on its shape alone");
    let unknown = FORMAT.draw().unwrap().token;
    for _ in 0..3 {
        assert_eq!(chat_status(&s.gw.url, unknown.expose()).await, 401);
    }
    assert_eq!(lookups(&s), before + 1, "an unknown id is asked once");
    for _ in 0..5 {
        assert_eq!(chat_status(&s.gw.url, &key).await, 200);
    }
    assert_eq!(
        lookups(&s),
        before + 2,
        "a known key is read once, then cached"
    );
}

async fn revoked_on_one_instance_refused_on_another(on_postgres: bool) {
    let Some(s) = setup(on_postgres).await else {
        return;
    };
    let (other, other_gw) = second_instance(&s).await;
    let (key, id) = create(&s, json!({"name": "shared"})).await;
    assert_eq!(chat_status(&other_gw.url, &key).await, 200);
    let path = format!("/v0/management/keys/{id}");
    let (status, v) = api(&s, M::DELETE, &path, None).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("revoked")));
    assert_eq!(
        chat_status(&s.gw.url, &key).await,
        401,
        "at once where revoked"
    );
    sync(&other, &s.clock).await;
    assert_eq!(
        chat_status(&other_gw.url, &key).await,
        401,
        "after one sync elsewhere"
    );
    let (status, again) = api(&s, M::DELETE, &path, None).await;
    assert_eq!(
        (status, again["revoked_at"].clone()),
        (200, v["revoked_at"].clone())
    );
    let unknown = "/v0/management/keys/sk-pvk-AAAAAAAAAAAA";
    assert_eq!(api(&s, M::DELETE, unknown, None).await.0, 404);
    // A revoked key is genuine, not a guess: refusing it again and again blocks nobody.
    for _ in 0..8 {
        assert_eq!(chat_status(&other_gw.url, &key).await, 401);
    }
    let (fresh, _) = create(&s, json!({"name": "fresh"})).await;
    assert_eq!(chat_status(&other_gw.url, &fresh).await, 200);
}

#[tokio::test]
async fn a_revoke_reaches_every_instance_on_sqlite() {
    revoked_on_one_instance_refused_on_another(false).await;
}

#[tokio::test]
async fn a_revoke_reaches_every_instance_on_postgres() {
    revoked_on_one_instance_refused_on_another(true).await;
}

#[tokio::test]
async fn an_expired_key_is_refused_by_the_gateway_clock() {
    let s = setup(false).await.unwrap();
    let (key, id) = create(&s, json!({"name": "temp", "expires_in_secs": 3600})).await;
    assert_eq!(chat_status(&s.gw.url, &key).await, 200);
    s.clock.advance(Duration::from_secs(3599));
    assert_eq!(chat_status(&s.gw.url, &key).await, 200);
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(chat_status(&s.gw.url, &key).await, 401, "no sync needed");
    let (_, v) = api(&s, M::GET, &format!("/v0/management/keys/{id}"), None).await;
    assert_eq!(v["status"], "expired");
}

#[tokio::test]
async fn a_disabled_owner_stops_the_key() {
    let s = setup(false).await.unwrap();
    let alice = s
        .store
        .upsert_user("local", "alice", None, None, 0)
        .await
        .unwrap();
    let (key, _) = create(&s, json!({"name": "alice-laptop", "owner": alice.id})).await;
    let Ok(Principal::VirtualKey(who)) = principal(&s.state, &key).await else {
        panic!("not a virtual key's principal");
    };
    assert_eq!(who.owner.as_deref(), Some(alice.id.as_str()));
    assert!(s.store.set_user_disabled(&alice.id, true).await.unwrap());
    sync(&s.state, &s.clock).await;
    assert_eq!(chat_status(&s.gw.url, &key).await, 401);
    assert!(s.store.set_user_disabled(&alice.id, false).await.unwrap());
    sync(&s.state, &s.clock).await;
    assert_eq!(chat_status(&s.gw.url, &key).await, 200);
}

#[tokio::test]
async fn an_update_reaches_the_principal_after_the_sync() {
    let s = setup(false).await.unwrap();
    let (other, _gw) = second_instance(&s).await;
    let (key, id) = create(&s, json!({"name": "team", "rules": {"rpm": 60}})).await;
    let rules = |p: Result<Principal, AuthFailure>| match p {
        Ok(Principal::VirtualKey(k)) => (k.name.to_string(), (*k.rules).clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(rules(principal(&other, &key).await).1.rpm, Some(60));
    let patch = json!({"name": "team-b", "rules": {"rpm": 5, "models": ["gpt-4o*"]},
        "expires_at": "2030-01-01T00:00:00Z"});
    let path = format!("/v0/management/keys/{id}");
    let (status, v) = api(&s, M::PATCH, &path, Some(patch)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rules"], json!({"models": ["gpt-4o*"], "rpm": 5}));
    assert_eq!(v["expires_at"], "2030-01-01T00:00:00.000Z");
    assert_eq!(
        rules(principal(&other, &key).await).1.rpm,
        Some(60),
        "cached"
    );
    sync(&other, &s.clock).await;
    let (name, now) = rules(principal(&other, &key).await);
    assert_eq!(
        (name.as_str(), now.rpm, now.models.len()),
        ("team-b", Some(5), 1)
    );
    // Only what is given changes: clearing the expiry keeps the rest.
    let (_, v) = api(&s, M::PATCH, &path, Some(json!({"expires_at": null}))).await;
    assert_eq!(
        (v["expires_at"].clone(), v["name"].clone()),
        (Value::Null, json!("team-b"))
    );
    assert_eq!(v["rules"]["rpm"], 5);
}

#[tokio::test]
async fn bad_input_gets_a_400_naming_the_field() {
    let s = setup(false).await.unwrap();
    let keys = "/v0/management/keys";
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "k", "colour": "red"}), "colour"),
        (json!({"name": "k", "owner": "usr_nobody"}), "owner"),
        (
            json!({"name": "k", "expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "expires_at": "next week"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "expires_in_secs": 0}),
            "expires_in_secs",
        ),
        (
            json!({"name": "k", "expires_in_secs": 5, "expires_at": null}),
            "expires_at",
        ),
        (json!({"name": "k", "rules": {"rpn": 5}}), "rules"),
        (json!({"name": "k", "rules": {"rpm": 0}}), "rules.rpm"),
        (
            json!({"name": "k", "rules": {"cost_budget": {"usd": -1}}}),
            "rules",
        ),
        (json!(["not", "an", "object"]), "body"),
    ] {
        let (status, v) = api(&s, M::POST, keys, Some(body.clone())).await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (400, Some(field)),
            "{body}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{v}"
        );
    }
    let (status, v) = api(&s, M::GET, keys, None).await;
    assert_eq!(
        (status, v["keys"].as_array().map(Vec::len)),
        (200, Some(0)),
        "nothing made"
    );
    let (_, id) = create(&s, json!({"name": "k"})).await;
    let one = format!("{keys}/{id}");
    let (status, v) = api(&s, M::PATCH, &one, Some(json!({"rules": {"tpm": 0}}))).await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("rules.tpm"))
    );
    let (status, v) = api(&s, M::PATCH, &one, Some(json!({"owner": "x"}))).await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("owner")),
        "fixed at creation"
    );
    let missing = format!("{keys}/sk-pvk-AAAAAAAAAAAA");
    assert_eq!(
        api(&s, M::PATCH, &missing, Some(json!({"name": "n"})))
            .await
            .0,
        404
    );
    assert_eq!(api(&s, M::GET, &missing, None).await.0, 404);
    // The served OpenAPI document has the routes.
    let (_, doc) = api(&s, M::GET, "/v0/management/openapi.json", None).await;
    for (path, method) in [
        (keys, "post"),
        (keys, "get"),
        ("/v0/management/keys/{id}", "patch"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["Rules"]["properties"]["token_budget"].is_object());
}

#[tokio::test]
async fn without_a_store_keys_are_refused_and_the_api_says_why() {
    let mock = start_mock().await;
    let mut config = gateway_config(&mock);
    require_key(&mut config, "static-key-0123456789");
    config.management.key = Some(Secret::new(MGMT));
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START));
    let gw = start_gateway_with_clock(config, clock).await;
    let key = FORMAT.draw().unwrap().token;
    assert_eq!(chat_status(&gw.url, key.expose()).await, 401);
    assert_eq!(chat_status(&gw.url, "static-key-0123456789").await, 200);
    let (status, v) = call_with_key(&gw.url, MGMT, M::GET, "/v0/management/keys", None).await;
    assert_eq!(status, 404);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("no store"),
        "{v}"
    );
}
