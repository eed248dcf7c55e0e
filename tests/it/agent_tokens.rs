//! Agent tokens end to end on both stores: a valid token authenticates (one Argon2 run, then the
//! cache), unknown well-formed tokens cost no hashing, malformed and wrong ones are refused and
//! counted, revocation takes effect on the next request, a lapsed session gets its own answer,
//! a disabled user is refused.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::{Clock, ManualClock};
use portcullis::identity::agent_token::{self, TOKEN_LEN};
use portcullis::state::AppState;
use portcullis::store::{AgentTokenRecord, Store};
use serde_json::Value;

use crate::harness::*;

const START: u64 = 1_800_000_000;

struct Setup {
    _mock: Mock,
    gw: Gateway,
    state: AppState,
    store: Arc<dyn Store>,
    clock: ManualClock,
    user_id: String,
    _home: crate::store::StoreHome,
}

async fn setup(on_postgres: bool, brute_force: bool) -> Option<Setup> {
    let (store, home) = crate::store::test_store(on_postgres).await?;
    let user = store
        .upsert_user("google", "alice", Some("alice@example.com"), None, 0)
        .await
        .unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    config.auth.brute_force_protection.enabled = brute_force;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START));
    let (state, gw) = start_gateway_on_store(config, &clock, store.clone()).await;
    // What `serve`'s scheduler does at start: the revocation watch learns the store's revision,
    // so the next change to it clears the token cache.
    let now = START * 1000;
    let jobs = state.jobs();
    assert_eq!(
        jobs.names(),
        [
            "pool.rescan",
            "pool.sync_store",
            "pool.flush_usage",
            "pool.refresh",
            "tokens.sync_revision",
            "usage.flush",
            "telemetry.upkeep"
        ],
        "with a store, the refresh worker, the revocation watch and the usage flush too"
    );
    assert!(jobs.run_once("tokens.sync_revision", now).await);
    Some(Setup {
        _mock: mock,
        gw,
        state,
        store,
        clock,
        user_id: user.id,
        _home: home,
    })
}

/// Runs the revocation watch once (the scheduler does every second).
async fn sync_revision(s: &Setup) {
    let now = s.clock.now_millis();
    assert!(s.state.jobs().run_once("tokens.sync_revision", now).await);
}

/// Mints and stores a token for the setup's user.
async fn issue(s: &Setup, session_hours: Option<i64>) -> (String, String) {
    let m = tokio::task::spawn_blocking(agent_token::mint)
        .await
        .unwrap()
        .unwrap();
    let now = (START * 1000) as i64;
    s.store
        .insert_token(&AgentTokenRecord {
            session_expires_at: session_hours.map(|h| now + h * 3_600_000),
            ..token_record(&m.id, &s.user_id, &m.secret_hash, now)
        })
        .await
        .unwrap();
    (m.token.expose().to_owned(), m.id)
}

async fn call(s: &Setup, token: &str) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", s.gw.url))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "agent-test/2")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap()
}

fn verifications(s: &Setup) -> u64 {
    s.state.auth().tokens().unwrap().verifications()
}

async fn the_flow(on_postgres: bool) {
    let Some(s) = setup(on_postgres, false).await else {
        return;
    };
    let (token, id) = issue(&s, Some(24)).await;
    assert_eq!(token.len(), TOKEN_LEN);
    assert!(token.starts_with("sk-pcl-"));

    // Valid: one Argon2 verification, then the cache.
    for _ in 0..5 {
        assert_eq!(call(&s, &token).await.status(), 200);
    }
    assert_eq!(
        verifications(&s),
        1,
        "verified once, then served from the cache"
    );

    // A flood of unknown but well-formed tokens: refused, and no hashing at all.
    for _ in 0..50 {
        let other = tokio::task::spawn_blocking(agent_token::mint)
            .await
            .unwrap()
            .unwrap();
        let resp = call(&s, other.token.expose()).await;
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(verifications(&s), 1, "unknown ids cost no Argon2 work");

    // Malformed (bad checksum) and a right id with a wrong secret.
    let mut bad = token.clone().into_bytes();
    bad[20] = if bad[20] == b'x' { b'y' } else { b'x' };
    assert_eq!(
        call(&s, &String::from_utf8(bad).unwrap()).await.status(),
        401
    );
    assert_eq!(
        verifications(&s),
        1,
        "malformed tokens are refused before any work"
    );
    let wrong = agent_token::assemble(&id, &"A".repeat(43));
    let resp = call(&s, wrong.expose()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        openai_error(&resp.json().await.unwrap()),
        "Invalid API key."
    );
    assert_eq!(verifications(&s), 2);

    // The store records the use (a write the request hands to a task of its own, on the store's
    // worker thread): give it turns until it lands. A fixed number of turns raced that thread.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut used = None;
    while used.is_none() && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        used = s.store.get_token(&id).await.unwrap().unwrap().last_used_at;
    }
    assert!(used.is_some());

    // Revocation: effective on the next request once the revision is seen.
    assert!(
        s.store
            .revoke_token(&id, (START * 1000) as i64)
            .await
            .unwrap()
    );
    sync_revision(&s).await;
    assert_eq!(call(&s, &token).await.status(), 401);
}

#[tokio::test]
async fn agent_tokens_on_sqlite() {
    the_flow(false).await;
}

#[tokio::test]
async fn agent_tokens_on_postgres() {
    the_flow(true).await;
}

#[tokio::test]
async fn a_token_shaped_key_with_a_multibyte_character_is_a_401_not_a_panic() {
    // Found by reading, confirmed by the `credentials` fuzz target: `?key=` carries any UTF-8,
    // and a character across a token's id or secret end panicked in the format's parse.
    let s = setup(false, true).await.unwrap();
    for prefix in ["sk-pcl-", "sk-pvk-"] {
        let mut key = format!("{prefix}{}", "a".repeat(agent_token::TOKEN_LEN - 8));
        key.replace_range(prefix.len() + 11..prefix.len() + 12, "é");
        assert_eq!(key.len(), agent_token::TOKEN_LEN);
        let key = key.replace('é', "%C3%A9");
        let path = "/v1beta/models/mock-gemini:generateContent";
        let resp = client()
            .post(format!("{}{path}?key={key}", s.gw.url))
            .json(&serde_json::json!({"contents": [{"parts": [{"text": "hi"}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{prefix}");
        google_error(&resp.json().await.unwrap());
    }
}

#[tokio::test]
async fn a_lapsed_session_is_told_apart_and_not_counted() {
    let s = setup(false, true).await.unwrap();
    let (token, id) = issue(&s, Some(1)).await;
    assert_eq!(call(&s, &token).await.status(), 200);
    s.clock.advance(Duration::from_secs(2 * 3600));
    for _ in 0..7 {
        let resp = call(&s, &token).await;
        assert_eq!(resp.status(), 401);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "session_expired");
        assert!(openai_error(&v).contains(&format!("sk-pcl-{id}")));
    }
    // Seven refusals of a valid token did not lock the address out; re-authentication (moving the
    // session end) makes the same token work again.
    assert!(
        s.store
            .set_session_expiry(&id, Some(((START + 10 * 3600) * 1000) as i64))
            .await
            .unwrap()
    );
    sync_revision(&s).await;
    assert_eq!(call(&s, &token).await.status(), 200);

    // A revoked token is refused but not counted either: an agent that still holds one must not
    // lock its owner's address out.
    assert!(
        s.store
            .revoke_token(&id, (START * 1000) as i64)
            .await
            .unwrap()
    );
    s.state.auth().tokens().unwrap().clear_cache();
    for _ in 0..7 {
        assert_eq!(call(&s, &token).await.status(), 401);
    }
    // A wrong credential still counts: five distinct ones block.
    for i in 0..5 {
        assert_eq!(call(&s, &format!("wrong-key-{i}")).await.status(), 401);
    }
    assert_eq!(call(&s, "wrong-key-5").await.status(), 429);
}

#[tokio::test]
async fn a_disabled_user_cannot_use_their_tokens() {
    let s = setup(false, false).await.unwrap();
    let (token, _) = issue(&s, None).await;
    assert!(s.store.set_user_disabled(&s.user_id, true).await.unwrap());
    assert_eq!(call(&s, &token).await.status(), 401);
}

#[tokio::test]
async fn argon2_runs_once_per_token_even_under_concurrency_and_never_for_a_repeated_wrong_one() {
    let s = setup(false, false).await.unwrap();
    let (token, _) = issue(&s, None).await;
    // Sixteen concurrent first uses of the same token: one Argon2id run, sixteen successes.
    let calls: Vec<_> = (0..16).map(|_| call(&s, &token)).collect();
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(verifications(&s), 1);
    // The same token with a wrong secret (well-formed, known id): one run, then remembered.
    let (_, id) = issue(&s, None).await;
    let wrong = agent_token::assemble(&id, &"x".repeat(43))
        .expose()
        .to_owned();
    assert!(agent_token::parse(&wrong).is_some(), "well-formed");
    let before = verifications(&s);
    for _ in 0..10 {
        assert_eq!(call(&s, &wrong).await.status(), 401);
    }
    assert_eq!(verifications(&s), before + 1);
}

/// Security review, first pass #4: the lockout was check-then-count, so a parallel burst of wrong
/// secrets for a known token id all passed the check before the first failure was counted (100
/// requests → 100 Argon2id runs, 100 × 401). Counted in advance, the burst gets exactly the
/// allowed number of evaluations and 429 for the rest.
#[tokio::test]
async fn a_parallel_burst_of_wrong_secrets_for_a_known_id_is_limited_like_a_sequential_one() {
    let s = setup(false, true).await.unwrap();
    let (token, id) = issue(&s, None).await;
    let before = verifications(&s);
    let wrong: Vec<String> = (0..100)
        .map(|i| {
            agent_token::assemble(&id, &format!("{i:0>43}"))
                .expose()
                .to_owned()
        })
        .collect();
    let answers = futures_util::future::join_all(wrong.iter().map(|t| call(&s, t))).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for r in answers {
        *statuses.entry(r.status().as_u16()).or_default() += 1;
    }
    let runs = verifications(&s) - before;
    assert_eq!(
        statuses,
        [(401, 5), (429, 95)].into(),
        "{runs} Argon2id runs"
    );
    assert_eq!(runs, 5, "one Argon2id run per counted attempt");
    // The address is blocked: even the right token waits.
    assert_eq!(call(&s, &token).await.status(), 429);
}

/// A burst of the right token's first uses is not mistaken for guessing: the attempts counted in
/// advance are taken back, one address's slow checks take turns, and every request succeeds.
#[tokio::test]
async fn a_parallel_burst_of_valid_first_uses_is_never_refused() {
    let s = setup(false, true).await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(issue(&s, None).await.0);
    }
    let calls = tokens.iter().cycle().take(40).map(|t| call(&s, t));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(verifications(&s), 8, "one Argon2id run per token");
}
