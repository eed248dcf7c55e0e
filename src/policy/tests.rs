//! Unit tests of the policy: which rule sets a principal gets, and how admission reserves,
//! refuses and settles (time moved with a `ManualClock`, never slept).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::identity::KeyIdentity;
use crate::identity::agent_token::TokenIdentity;
use crate::store::{SqlStore, UsageFilter, UsageGrouping, UsageSubject};

/// 2026-12-04T15:30:10Z, ten seconds into a minute.
const NOW: u64 = 20_791 * 86_400_000 + 55_810_000;

fn rules(v: serde_json::Value) -> Rules {
    serde_json::from_value(v).unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_millis(NOW))
}

fn settings(users: serde_json::Value, default_user: Option<serde_json::Value>) -> PolicySettings {
    let users: BTreeMap<String, Rules> = serde_json::from_value(users).unwrap();
    PolicySettings {
        limits: LimitsConfig {
            users,
            default_user: default_user.map(rules),
            default_max_tokens: 100,
            ..LimitsConfig::default()
        },
        prices: PriceTable::new([(
            crate::rules::Glob::new("gpt-4o").unwrap(),
            serde_json::from_value(json!({"input": 1.0, "output": 2.0, "cached_input": 0.5}))
                .unwrap(),
        )]),
    }
}

/// A policy where user `alice` has rules `r` (and no one else has any).
fn for_alice(r: serde_json::Value) -> (ManualClock, Policy) {
    let c = clock();
    let p = policy(settings(json!({ "alice": r }), None), &c);
    (c, p)
}

fn policy(s: PolicySettings, clock: &ManualClock) -> Policy {
    let counters: Arc<dyn Counters> = Arc::new(counters::LocalCounters::new());
    Policy::new(s, counters, None, Arc::new(clock.clone()))
}

fn token(user: &str) -> Principal {
    Principal::AgentToken(TokenIdentity {
        token_id: "tok1".into(),
        user_id: user.into(),
    })
}

fn vkey(owner: Option<&str>, r: serde_json::Value) -> Principal {
    Principal::VirtualKey(KeyIdentity {
        id: "k1".into(),
        name: "ci-bot".into(),
        owner: owner.map(Arc::from),
        rules: Arc::new(rules(r)),
    })
}

/// A chat request to `gpt-4o` on `openai` of 40 estimated input tokens.
fn demand(max_output: Option<u64>) -> Demand<'static> {
    Demand {
        backend: "openai",
        model: "gpt-4o",
        input_tokens: 40,
        max_output_tokens: max_output,
        spends: true,
    }
}

async fn admit(p: &Policy, who: &Principal, d: Demand<'_>) -> Result<Option<Admission>, Refusal> {
    p.admit(&p.grant(who), &d).await
}

#[test]
fn each_principal_gets_the_rule_sets_that_concern_it() {
    let c = clock();
    let p = policy(
        settings(
            json!({"alice": {"models": ["gpt-4o*", "claude-*"]}}),
            Some(json!({"backends": ["openai"]})),
        ),
        &c,
    );
    for open in [Principal::Anonymous, Principal::ApiKey { name: "k".into() }] {
        assert_eq!(p.grant(&open), Grant::ALL);
    }
    // A user with an entry, a user without (the default), a JWT subject.
    let alice = p.grant(&token("alice"));
    assert!(alice.allows("anthropic", "claude-sonnet-4-5") && !alice.allows("openai", "o3"));
    let bob = p.grant(&token("bob"));
    assert!(bob.allows("openai", "o3") && !bob.allows_backend("anthropic"));
    let jwt = p.grant(&Principal::Jwt {
        subject: "alice".into(),
        kind: "user".into(),
        groups: Arc::from(Vec::new()),
    });
    assert_eq!(jwt, alice);
    // A virtual key: its own rules AND its owner's.
    let k = p.grant(&vkey(
        Some("alice"),
        json!({"models": ["gpt-4o", "claude-*"]}),
    ));
    assert!(k.allows("openai", "gpt-4o"));
    assert!(
        !k.allows("openai", "gpt-4o-mini"),
        "the key does not list it"
    );
    assert!(!k.allows("openai", "o3"), "neither lists it");
    assert_eq!(k.key_id().map(|s| &**s), Some("k1"));
    assert_eq!(k.user_id().map(|s| &**s), Some("alice"));
    // Without an owner, the key's rules alone.
    let lone = p.grant(&vkey(None, json!({"models": ["o3"]})));
    assert!(lone.allows("groq", "o3") && lone.user_id().is_none());
    // No user rules configured at all: agent tokens are open (nothing allocated).
    let none = policy(PolicySettings::default(), &c);
    assert_eq!(none.grant(&token("alice")), Grant::ALL);
    assert!(!none.meters(&Grant::ALL));
    // Allow-lists alone are not metered without a store; a limit is.
    assert!(!p.meters(&alice));
    assert!(p.meters(&p.grant(&vkey(None, json!({"rpm": 1})))));
}

#[tokio::test]
async fn requests_per_minute_hold_in_fixed_windows() {
    let (c, p) = for_alice(json!({"rpm": 2}));
    let who = token("alice");
    for _ in 0..2 {
        admit(&p, &who, demand(None))
            .await
            .unwrap()
            .unwrap()
            .settle(Spent::NOTHING);
    }
    match admit(&p, &who, demand(None)).await.unwrap_err() {
        Refusal::RateLimited {
            message,
            retry_after_secs,
        } => {
            // 10 s into the minute: 50 s left.
            assert_eq!(retry_after_secs, 50);
            assert!(
                message.contains("user `alice` may send 2 requests per minute"),
                "{message}"
            );
            assert!(message.contains("2026-12-04T15:31:00.000Z"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Another user is not affected; the next window starts from zero.
    assert!(
        admit(&p, &token("bob"), demand(None))
            .await
            .unwrap()
            .is_none()
    );
    c.advance(Duration::from_secs(50));
    assert!(admit(&p, &who, demand(None)).await.is_ok());
}

#[tokio::test]
async fn tokens_per_minute_reserve_the_estimate_and_settle_the_real_usage() {
    let (_, p) = for_alice(json!({"tpm": 300}));
    let who = token("alice");
    // Each reserves 40 + 100 (the default maximum) = 140.
    let a = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    let b = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    let e = admit(&p, &who, demand(None)).await.unwrap_err().to_string();
    assert!(
        e.contains("280 are used or reserved")
            && e.contains("140 tokens (estimated input 40 + max output 100)"),
        "{e}"
    );
    // Settling with the real usage (30 + 10) returns the rest.
    let spent = Spent {
        input: Some(30),
        output: Some(10),
        cached_input: None,
    };
    a.settle(spent);
    b.settle(spent);
    let key = "tpm|".to_owned() + &(NOW / 60_000).to_string() + "|u|alice";
    assert_eq!(p.counters().value(&key, NOW).await.unwrap(), Some(80));
    assert!(admit(&p, &who, demand(None)).await.is_ok());
    // A request that could never fit says so.
    match admit(&p, &who, demand(Some(1000))).await.unwrap_err() {
        Refusal::NeverFits { message, budget } => {
            assert!(!budget);
            assert!(
                message.contains("1040 tokens")
                    && message.contains("whole limit of 300 tokens per minute"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn concurrency_is_held_until_settled_or_dropped() {
    let c = clock();
    let p = policy(settings(json!({}), Some(json!({"max_concurrent": 1}))), &c);
    let who = token("carol");
    let first = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    let e = admit(&p, &who, demand(None)).await.unwrap_err();
    assert!(
        matches!(
            e,
            Refusal::RateLimited {
                retry_after_secs: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("1 requests in flight"), "{e}");
    // A dropped admission (a client gone) frees its slot too.
    drop(first);
    let second = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    second.settle(Spent::NOTHING);
    assert!(admit(&p, &who, demand(None)).await.is_ok());
}

#[tokio::test]
async fn budgets_refuse_with_their_reset_and_charge_what_was_not_reported() {
    let (_, p) = for_alice(json!({"token_budget": {"tokens": 500, "period": "daily"}}));
    let who = token("alice");
    let key = "tok|day:2026-12-04|u|alice";
    // Dropped before an answer: the estimated input is charged.
    drop(admit(&p, &who, demand(None)).await.unwrap());
    assert_eq!(p.counters().value(key, NOW).await.unwrap(), Some(40));
    // Answered without usage: the reservation stands.
    let mut a = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    a.answered();
    a.settle(Spent::default());
    assert_eq!(p.counters().value(key, NOW).await.unwrap(), Some(180));
    // An upstream error: nothing.
    admit(&p, &who, demand(None))
        .await
        .unwrap()
        .unwrap()
        .settle(Spent::NOTHING);
    assert_eq!(p.counters().value(key, NOW).await.unwrap(), Some(180));
    // Reported usage: exactly that.
    let b = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    b.settle(Spent {
        input: Some(200),
        output: Some(20),
        cached_input: None,
    });
    assert_eq!(p.counters().value(key, NOW).await.unwrap(), Some(400));
    match admit(&p, &who, demand(None)).await.unwrap_err() {
        Refusal::BudgetExhausted {
            message,
            retry_after_secs,
        } => {
            assert!(message.contains("token budget exhausted: user `alice` has a daily budget of 500 tokens, 400 tokens spent or reserved"), "{message}");
            assert!(
                message.contains("resets at 2026-12-05T00:00:00.000Z"),
                "{message}"
            );
            assert_eq!(retry_after_secs, Some(30_590));
        }
        other => panic!("{other:?}"),
    }
    // A smaller request still fits; a bigger one than the whole budget never will.
    assert!(admit(&p, &who, demand(Some(10))).await.is_ok());
    let e = admit(&p, &who, demand(Some(1000))).await.unwrap_err();
    assert!(
        matches!(e, Refusal::NeverFits { budget: true, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn cost_budgets_price_the_model_and_refuse_what_has_no_price() {
    let (_, p) = for_alice(json!({"cost_budget": {"usd": 0.001, "period": "never"}}));
    let who = token("alice");
    // $1/M input, $2/M output: 40 + 100 tokens reserve 40 + 200 micro-dollars.
    let a = admit(&p, &who, demand(None)).await.unwrap().unwrap();
    let key = "usd|all|u|alice";
    assert_eq!(p.counters().value(key, NOW).await.unwrap(), Some(240));
    // Cached input is priced at its own rate: 100 input of which 50 cached, 100 output.
    a.settle(Spent {
        input: Some(100),
        output: Some(100),
        cached_input: Some(50),
    });
    assert_eq!(
        p.counters().value(key, NOW).await.unwrap(),
        Some(50 + 25 + 200)
    );
    let unpriced = Demand {
        model: "o3",
        ..demand(None)
    };
    let e = admit(&p, &who, unpriced).await.unwrap_err();
    assert!(matches!(e, Refusal::Unpriced(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("model `o3` of backend `openai` has no price"),
        "{e}"
    );
    // A lifetime budget: no reset, no retry.
    let e = admit(&p, &who, demand(Some(400))).await.unwrap_err();
    assert!(e.to_string().contains("does not reset"), "{e}");
    assert!(matches!(
        e,
        Refusal::BudgetExhausted {
            retry_after_secs: None,
            ..
        }
    ));
}

#[tokio::test]
async fn a_key_and_its_owner_are_both_counted_and_refusals_take_nothing() {
    let (_, p) = for_alice(json!({"rpm": 1}));
    let key = vkey(Some("alice"), json!({"rpm": 5}));
    admit(&p, &key, demand(None))
        .await
        .unwrap()
        .unwrap()
        .settle(Spent::NOTHING);
    let e = admit(&p, &key, demand(None)).await.unwrap_err();
    assert!(
        e.to_string().contains("user `alice`"),
        "the owner's limit: {e}"
    );
    // All or nothing: the refused request took nothing from the key's own window.
    let window = NOW / 60_000;
    let key_count = format!("rpm|{window}|k|k1");
    assert_eq!(p.counters().value(&key_count, NOW).await.unwrap(), Some(1));
}

#[tokio::test]
async fn budgets_start_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn UsageStore> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let c = clock();
    let s = || settings(json!({"alice": {"token_budget": {"tokens": 1000}}}), None);
    let build = || {
        let counters: Arc<dyn Counters> = Arc::new(counters::LocalCounters::new());
        Policy::new(s(), counters, Some(store.clone()), Arc::new(c.clone()))
    };
    let first = build();
    assert_eq!(first.jobs().len(), 1, "usage.flush");
    let who = token("alice");
    for _ in 0..3 {
        let mut a = admit(&first, &who, demand(None)).await.unwrap().unwrap();
        a.answered();
        a.settle(Spent {
            input: Some(150),
            output: Some(50),
            cached_input: None,
        });
    }
    assert_eq!(
        first.flush().await.unwrap(),
        1,
        "one row: one day, user, model"
    );
    let spent = store
        .usage_spent(UsageSubject::User("alice"), "2026-12-01")
        .await
        .unwrap();
    assert_eq!(spent.tokens, 600);
    // One more, flushed at shutdown.
    admit(&first, &who, demand(None))
        .await
        .unwrap()
        .unwrap()
        .settle(Spent {
            input: Some(100),
            output: Some(0),
            cached_input: None,
        });
    first.flush().await.unwrap();
    drop(first);
    // A new instance: 700 spent, 300 left; a 140-token reservation fits twice, not three times.
    let second = build();
    let key = "tok|month:2026-12|u|alice";
    let keep: Vec<_> = [
        admit(&second, &who, demand(None)).await,
        admit(&second, &who, demand(None)).await,
    ]
    .into_iter()
    .map(|r| r.unwrap().unwrap())
    .collect();
    assert_eq!(second.counters().value(key, NOW).await.unwrap(), Some(980));
    let e = admit(&second, &who, demand(None)).await.unwrap_err();
    assert!(
        e.to_string().contains("980 tokens spent or reserved"),
        "{e}"
    );
    drop(keep);
    let rows = store
        .usage_report(&UsageFilter::default(), UsageGrouping::default())
        .await
        .unwrap();
    assert_eq!(rows[0].requests, 4);
}

/// Counters whose server is gone: every call fails.
struct Unreachable;

#[async_trait::async_trait]
impl Counters for Unreachable {
    async fn reserve(
        &self,
        _: &[counters::Claim],
        _: u64,
    ) -> Result<counters::Reserved, counters::CounterError> {
        Err(counters::CounterError("connection refused".into()))
    }
    async fn adjust(&self, _: &[(String, i64)], _: u64) -> Result<(), counters::CounterError> {
        panic!("nothing was reserved, so nothing is settled")
    }
    async fn seed(
        &self,
        _: &str,
        _: u64,
        _: Option<u64>,
        _: u64,
    ) -> Result<bool, counters::CounterError> {
        Err(counters::CounterError("connection refused".into()))
    }
    async fn value(&self, _: &str, _: u64) -> Result<Option<u64>, counters::CounterError> {
        Err(counters::CounterError("connection refused".into()))
    }
}

#[tokio::test]
async fn unreachable_counters_refuse_or_admit_unmetered_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn UsageStore> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let c = clock();
    let build = |mode: FailMode| {
        let mut s = settings(json!({"alice": {"rpm": 1, "max_concurrent": 1}}), None);
        s.limits.on_redis_error = mode;
        Policy::new(
            s,
            Arc::new(Unreachable),
            Some(store.clone()),
            Arc::new(c.clone()),
        )
    };
    let who = token("alice");
    // Closed (the default): refused, saying the counters are unavailable.
    let closed = build(FailMode::default());
    assert_eq!(closed.fail_mode(), FailMode::Closed);
    let e = admit(&closed, &who, demand(None)).await.unwrap_err();
    assert!(matches!(e, Refusal::Unavailable(_)), "{e:?}");
    assert!(
        e.to_string().contains("limit counters are unavailable"),
        "{e}"
    );
    // Open: admitted past every limit, nothing reserved or settled, the usage still recorded.
    let open = build(FailMode::Open);
    for _ in 0..3 {
        let mut a = admit(&open, &who, demand(None)).await.unwrap().unwrap();
        a.answered();
        a.settle(Spent {
            input: Some(10),
            output: Some(5),
            cached_input: None,
        });
    }
    open.settled().await;
    open.flush().await.unwrap();
    let spent = store
        .usage_spent(UsageSubject::User("alice"), "2026-12-01")
        .await
        .unwrap();
    assert_eq!(spent.tokens, 45);
}
