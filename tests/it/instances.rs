//! Instances that share one Redis server (PRODUCT §8), in one process: wrong credentials spread
//! over two instances meet one lockout (static keys, the management key, repeats counted once
//! across both), a fresh instance learns the blocks in force, Redis failing falls back to counting
//! per instance; a revocation and an upstream credential's cooldown reach the other instance
//! through the bus, before its revision poll would. The process-level versions (separate
//! `portcullis serve` processes on PostgreSQL) are in `cluster/`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::bus::Bus;
use portcullis::clock::{Clock, ManualClock, SystemClock};
use portcullis::config::Config;
use portcullis::identity::brute_force::{FailureOutcome, Limiter, LimiterPolicy};
use portcullis::identity::lockout::Lockout;
use portcullis::jobs::Jobs;
use portcullis::notify::NoNotifier;
use portcullis::redis_conn::{RedisConn, RedisSettings};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::{SqlStore, Store};
use serde_json::{Value, json};

use crate::harness::*;
use crate::redis_fixture::{Throwaway, test_redis};

const MGMT: &str = "management-key-0123456789";
const CLIENT_KEY: &str = "client-key-0123456789";

/// Polls `check` until it holds or `within` has passed; the time it took.
async fn within(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// Runs the long-lived `bus.subscribe` job of `jobs` in a task (aborted on drop).
struct Subscribed(tokio::task::JoinHandle<()>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn subscribe(jobs: Jobs) -> Subscribed {
    Subscribed(tokio::spawn(async move {
        jobs.run_once("bus.subscribe", 0).await;
    }))
}

/// One "instance" of a lockout on `redis` (5 failures block for 30 s), with its bus subscribed.
fn lockout(redis: &RedisSettings, clock: &ManualClock) -> (Lockout<IpAddr>, Subscribed) {
    let conn = RedisConn::new(redis).unwrap();
    let bus = Bus::new(Some(conn.clone())).unwrap();
    let l = Lockout::new(Limiter::new(LimiterPolicy::default(), 1000)).unwrap();
    l.share(conn, &bus, "addr", Arc::new(clock.clone()));
    let subscribed = subscribe(Jobs::new(bus.jobs()));
    (l, subscribed)
}

/// `n` distinct wrong values from `ip`.
async fn guesses(l: &Lockout<IpAddr>, ip: IpAddr, n: usize, now: u64) {
    for i in 0..n {
        let _ = l
            .record_failure(&ip, Some(&format!("guess {i}")), now)
            .await;
    }
}

fn clock() -> ManualClock {
    ManualClock::new(std::time::UNIX_EPOCH + Duration::from_secs(1_795_428_000))
}

#[tokio::test]
async fn failures_spread_over_two_instances_block_on_both_and_repeats_count_once() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let clock = clock();
    let (a, _sa) = lockout(&redis.settings(), &clock);
    let (b, _sb) = lockout(&redis.settings(), &clock);
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let now = clock.now_millis();
    // The same wrong value on both instances is one failure, not two.
    for l in [&a, &b, &a] {
        let counted = l.record_failure(&ip, Some("stale-key"), now).await;
        assert_eq!(counted, FailureOutcome::Counted { failures: 1 });
    }
    // Three more distinct guesses, spread, then the fifth starts the block.
    for (l, value, failures) in [(&b, "g2", 2), (&a, "g3", 3), (&b, "g4", 4)] {
        let counted = l.record_failure(&ip, Some(value), now).await;
        assert_eq!(counted, FailureOutcome::Counted { failures });
    }
    assert_eq!(a.blocked(&ip, now), None);
    let fifth = a.record_failure(&ip, Some("g5"), now).await;
    assert_eq!(
        fifth,
        FailureOutcome::Blocked {
            retry_after_secs: 30
        }
    );
    assert_eq!(a.blocked(&ip, now), Some(30), "where it started");
    within(Duration::from_secs(2), "B hears of the block", async || {
        b.blocked(&ip, now) == Some(30)
    })
    .await;
    // A slow check is refused on B too, without counting.
    assert_eq!(b.try_reserve(&ip, None, now).await.unwrap_err(), 30);
    // Another address is not affected, and the block ends with its time.
    assert_eq!(b.blocked(&"203.0.113.10".parse().unwrap(), now), None);
    assert_eq!(b.blocked(&ip, now + 30_000), None);
}

#[tokio::test]
async fn a_fresh_instance_learns_the_blocks_in_force_without_a_message() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let clock = clock();
    let (a, _sa) = lockout(&redis.settings(), &clock);
    let ip: IpAddr = "2001:db8:1:2::7".parse().unwrap();
    let now = clock.now_millis();
    guesses(&a, ip, 5, now).await;
    // An instance started after the block, its bus not even subscribed: the sync job reads the
    // active blocks — the same /64 network is blocked, counted as one bucket.
    let late = Lockout::new(Limiter::new(LimiterPolicy::default(), 1000)).unwrap();
    let conn = RedisConn::new(&redis.settings()).unwrap();
    late.share(
        conn.clone(),
        &Bus::new(Some(conn)).unwrap(),
        "addr",
        Arc::new(clock.clone()),
    );
    let neighbour: IpAddr = "2001:db8:1:2::8".parse().unwrap();
    assert_eq!(late.blocked(&neighbour, now), None, "not yet synced");
    let jobs = Jobs::new(late.jobs("lockouts.sync.addr"));
    assert!(jobs.run_once("lockouts.sync.addr", now).await);
    assert_eq!(late.blocked(&neighbour, now), Some(30));
}

#[tokio::test]
async fn a_right_credential_during_an_advance_count_lifts_the_block_it_started_everywhere() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let clock = clock();
    let (a, _sa) = lockout(&redis.settings(), &clock);
    let (b, _sb) = lockout(&redis.settings(), &clock);
    let ip: IpAddr = "198.51.100.4".parse().unwrap();
    let now = clock.now_millis();
    guesses(&b, ip, 4, now).await;
    // A slow check's advance count is the fifth: it starts a block, everywhere...
    let advance = a
        .try_reserve(&ip, Some("the real token"), now)
        .await
        .unwrap();
    assert!(matches!(advance.outcome, FailureOutcome::Blocked { .. }));
    within(Duration::from_secs(2), "B hears of the block", async || {
        b.blocked(&ip, now).is_some()
    })
    .await;
    // ...and the credential turns out right: the block is lifted on both.
    a.refund(&ip, advance, now).await;
    assert_eq!(a.blocked(&ip, now), None);
    within(Duration::from_secs(2), "B hears of the lift", async || {
        b.blocked(&ip, now).is_none()
    })
    .await;
    // The four guesses stay: the next wrong value blocks again.
    let next = b.record_failure(&ip, Some("guess 9"), now).await;
    assert!(matches!(next, FailureOutcome::Blocked { .. }), "{next:?}");
}

#[tokio::test]
async fn without_redis_failures_are_counted_by_the_instance_alone() {
    // Nothing listens on the port of a listener just closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = RedisSettings {
        url: Secret::new(format!("redis://127.0.0.1:{port}")),
        prefix: "pcl-test-down:".to_owned(),
        timeout: Duration::from_millis(500),
    };
    let clock = clock();
    let (a, _sa) = lockout(&settings, &clock);
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let now = clock.now_millis();
    for i in 1..5 {
        let counted = a.record_failure(&ip, Some(&format!("g{i}")), now).await;
        assert_eq!(counted, FailureOutcome::Counted { failures: i });
    }
    // A repeat is still told apart (by this process's own key), and the fifth guess blocks.
    let repeat = a.record_failure(&ip, Some("g1"), now).await;
    assert_eq!(repeat, FailureOutcome::Counted { failures: 4 });
    let fifth = a.record_failure(&ip, Some("g5"), now).await;
    assert!(matches!(fifth, FailureOutcome::Blocked { .. }), "{fifth:?}");
    assert_eq!(a.blocked(&ip, now), Some(30));
}

/// Two gateways (real clock) on one SQLite store and `redis`, client key and management key
/// set, a backend whose only credential is `upstream_key`; their jobs running.
struct Twins {
    a: (AppState, Gateway),
    b: (AppState, Gateway),
    _mock: Mock,
    _jobs: Vec<portcullis::jobs::SchedulerHandle>,
    _dir: tempfile::TempDir,
}

async fn twins(redis: &dyn Fn(&mut Config), upstream_key: &str, jobs: &[&str]) -> Twins {
    let dir = tempfile::tempdir().unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    require_key(&mut config, CLIENT_KEY);
    config.management.key = Some(Secret::new(MGMT));
    config.auth.disable_cooling = false;
    config.backends.get_mut("openai").unwrap().api_key = Some(Secret::new(upstream_key));
    redis(&mut config);
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let mut handles = Vec::new();
    let mut start = async || {
        let state = AppState::with_parts(
            config.clone(),
            Arc::new(SystemClock),
            Arc::new(NoNotifier),
            Some(store.clone()),
        )
        .unwrap();
        let all = state.jobs();
        let picked = jobs.iter().filter_map(|n| all.get(n).cloned()).collect();
        let scheduler = portcullis::jobs::Scheduler::new(Jobs::new(picked), state.clock().clone());
        handles.push(scheduler.start());
        let gw = start_gateway_with_state(state.clone()).await;
        (state, gw)
    };
    let a = start().await;
    let b = start().await;
    Twins {
        a,
        b,
        _mock: mock,
        _jobs: handles,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_spread_over_two_gateways_block_the_address_on_both() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let t = twins(&|c| redis.configure(c), "sk-upstream", &["bus.subscribe"]).await;
    redis.subscribed(2).await;
    let (a, b) = (&t.a.1, &t.b.1);
    // Four distinct wrong client keys and a wrong management key, spread over both.
    for (i, gw) in [a, b, a, b].into_iter().enumerate() {
        assert_eq!(chat_status(&gw.url, &format!("wrong-key-{i}")).await, 401);
    }
    let (status, _) = call_with_key(
        &b.url,
        "wrong-management-key",
        reqwest::Method::GET,
        "/v0/management/auths",
        None,
    )
    .await;
    assert_eq!(status, 401, "the fifth failure");
    // Blocked on both: even the right key is refused with 429 while it lasts.
    assert_eq!(chat_status(&b.url, CLIENT_KEY).await, 429);
    within(
        Duration::from_secs(2),
        "A refuses the address",
        async || chat_status(&a.url, CLIENT_KEY).await == 429,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_gateway_is_refused_by_the_other_at_once() {
    let Some(redis) = test_redis().await else {
        return;
    };
    // Only the bus runs: no revision poll, so the message alone must do it.
    let t = twins(&|c| redis.configure(c), "sk-upstream", &["bus.subscribe"]).await;
    redis.subscribed(2).await;
    let (a, b) = (&t.a.1, &t.b.1);
    let created = mgmt_json(
        a,
        reqwest::Method::POST,
        "/v0/management/keys",
        json!({"name": "ci"}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    // B verifies (and caches) the key, then A revokes it.
    assert_eq!(chat_status(&b.url, &key).await, 200);
    let path = format!("/v0/management/keys/{id}");
    let (status, _) = call_with_key(&a.url, MGMT, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    let took = within(
        Duration::from_secs(1),
        "B refuses the revoked key",
        async || chat_status(&b.url, &key).await == 401,
    )
    .await;
    eprintln!("revocation reached the other gateway in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_rate_limited_on_one_gateway_cools_on_the_other() {
    let Some(redis) = test_redis().await else {
        return;
    };
    // The mock answers this key's every request with a 429 and Retry-After: 40.
    let t = twins(
        &|c| redis.configure(c),
        "sk-limited~status=429;retry_after=40",
        &["bus.subscribe"],
    )
    .await;
    redis.subscribed(2).await;
    let (a, b) = (&t.a.1, &t.b.1);
    assert_eq!(chat_status(&a.url, CLIENT_KEY).await, 429);
    let status_on_b = async || {
        let (_, list) = call_with_key(
            &b.url,
            MGMT,
            reqwest::Method::GET,
            "/v0/management/auths",
            None,
        )
        .await;
        let auths = list["auths"].as_array().cloned().unwrap_or_default();
        let openai = auths.into_iter().find(|c| c["provider"] == "openai");
        openai.map(|c| c["status"].clone())
    };
    within(Duration::from_secs(2), "B sees the cooldown", async || {
        status_on_b().await == Some(json!("rate_limited"))
    })
    .await;
    // B answers from the cooldown, without asking the upstream.
    let resp = post_json_with_key(&b.url, CLIENT_KEY).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((30..=40).contains(&retry), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_the_instances_hear_each_other_again() {
    let Some(mut server) = Throwaway::start() else {
        return;
    };
    let url = server.url();
    let configure = |c: &mut Config| {
        c.storage.redis_url = Some(Secret::new(url.as_str()));
        c.storage.redis_prefix = "pcl-test-restart:".to_owned();
        c.storage.redis_timeout = portcullis::config::HumanDuration(Duration::from_secs(2));
    };
    let t = twins(&configure, "sk-upstream", &["bus.subscribe"]).await;
    let (a, b) = (&t.a.1, &t.b.1);
    let created = mgmt_json(
        a,
        reqwest::Method::POST,
        "/v0/management/keys",
        json!({"name": "ci"}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(chat_status(&b.url, &key).await, 200);
    // Redis dies (its data with it) and comes back: the subscriptions are opened again, and a
    // revocation made meanwhile or after reaches B without any revision poll.
    server.kill();
    server.restart();
    let path = format!("/v0/management/keys/{}", created["id"].as_str().unwrap());
    let (status, _) = call_with_key(&a.url, MGMT, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    within(
        Duration::from_secs(5),
        "B refuses the revoked key",
        async || chat_status(&b.url, &key).await == 401,
    )
    .await;
    // And failures spread over both count as one again.
    for (i, gw) in [a, b, a, b, a].into_iter().enumerate() {
        assert_eq!(chat_status(&gw.url, &format!("wrong-key-{i}")).await, 401);
    }
    within(
        Duration::from_secs(2),
        "both refuse the address",
        async || {
            chat_status(&a.url, CLIENT_KEY).await == 429
                && chat_status(&b.url, CLIENT_KEY).await == 429
        },
    )
    .await;
}

/// A management call that must succeed; its JSON.
async fn mgmt_json(gw: &Gateway, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, v) = call_with_key(&gw.url, MGMT, method, path, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

/// A chat completion with the client key.
async fn post_json_with_key(base: &str, key: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("openai:mock-gpt", false))
        .send()
        .await
        .unwrap()
}
