//! Crash durability (PRODUCT §8: a kill -9 at any moment loses no committed token, credential or
//! usage record): one gateway under [`Load`] is killed with SIGKILL at a random moment, several
//! rounds (the seed is printed; `PORTCULLIS_CRASH_SEED` replays it), and started again on the
//! same store. Everything it acknowledged is then there: every virtual key, JWT and SSO agent
//! token authenticates, every credential added is listed with at least the priority of its last
//! acknowledged update, and every metered request answered before the kill is in the metered
//! key's usage (settlements are journaled in the data directory before the answer ends, and the
//! restart replays the journal). The credential's usage (`pool.flush_usage`) is the documented
//! exception: summed in memory and written to the store every second, so a kill loses what was
//! settled since the last write — requests answered in the last second, plus the write's own time
//! (allowed: 250 ms) — and never more. The figures are printed.

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use portcullis::store::PoolStore;
use reqwest::Method as M;
use serde_json::json;

use super::crash_load::{Acked, Load, METERED_WORKERS, PASSWORD};
use super::*;

/// Kill-and-restart rounds per test.
const ROUNDS: usize = 4;
/// How long ago a request must have been answered for its credential's usage to be in the store:
/// the flush interval, and a margin for the flush's write and the scheduler on a busy machine.
const FLUSHED_WITHIN: Duration = Duration::from_millis(1250);
/// The credential the metered requests use: the `metered` backend's configured key.
const METERED_CREDENTIAL: &str = "yaml-metered";

#[allow(clippy::disallowed_methods)] // a seed, not a decision
fn seed() -> u64 {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let given = std::env::var("PORTCULLIS_CRASH_SEED").ok();
    given.and_then(|s| s.parse().ok()).unwrap_or_else(now)
}

/// xorshift64: kill moments that a seed replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Usage as stored or answered: the metered key's requests, input and output tokens, and the
/// tokens counted against its credential.
type Counts = [u64; 4];

/// What the store holds for the metered key (through the gateway's report) and its credential.
async fn stored(c: &Cluster, gw: &Instance, key_id: &str) -> Counts {
    let (status, v) = gw
        .mgmt(M::GET, &format!("/v0/management/usage?key={key_id}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    let total = |f: &str| v["total"][f].as_u64().unwrap_or(0);
    let store = c.store("gw").await;
    let credential = store.usage(METERED_CREDENTIAL, "all").await.unwrap() as u64;
    [
        total("requests"),
        total("input_tokens"),
        total("output_tokens"),
        credential,
    ]
}

/// The sum of `answered` requests' usage.
fn sum<'a>(answered: impl Iterator<Item = &'a (Instant, u64, u64)>) -> Counts {
    answered.fold([0; 4], |s, u| {
        [s[0] + 1, s[1] + u.1, s[2] + u.2, s[3] + u.1 + u.2]
    })
}

/// Usage stored in round `round` (`now` − `before`) against what was answered before the kill
/// at `killed`: the key's usage of every answered request is there (the credential's, of every
/// request older than [`FLUSHED_WITHIN`]), and nothing is counted that was not sent.
fn check_usage(now: Counts, before: Counts, acked: &Acked, killed: Instant, round: usize) {
    let stored: Counts = std::array::from_fn(|i| now[i] - before[i]);
    let answered = sum(acked.usage.iter());
    let old = |u: &&(Instant, u64, u64)| killed.duration_since(u.0) > FLUSHED_WITHIN;
    let flushed = sum(acked.usage.iter().filter(old));
    let must = [answered[0], answered[1], answered[2], flushed[3]];
    let lost = answered[0].saturating_sub(stored[0]) as usize;
    let first_lost = acked
        .usage
        .get(acked.usage.len() - lost.min(acked.usage.len()));
    let age = first_lost.map(|u| killed.duration_since(u.0));
    eprintln!(
        "round {round}: {} metered requests answered, {} in the store ({lost} lost, the oldest \
         answered {age:?} before the kill); credential tokens: {} answered, {} in the store",
        answered[0], stored[0], answered[3], stored[3]
    );
    for (i, what) in ["requests", "input", "output", "credential tokens"]
        .iter()
        .enumerate()
    {
        let (s, m) = (stored[i], must[i]);
        assert!(s >= m, "round {round}: {what}: {s} stored < {m} answered");
    }
    let most = answered[0] + METERED_WORKERS as u64;
    assert!(
        stored[0] <= most,
        "round {round}: {} requests stored, {most} sent",
        stored[0]
    );
}

/// Every bearer authenticates at `gw` (16 at a time).
async fn all_authenticate(gw: &Instance, what: &str, bearers: &[String]) {
    for chunk in bearers.chunks(16) {
        let statuses = join_all(chunk.iter().map(|b| gw.chat(b))).await;
        for (b, status) in chunk.iter().zip(statuses) {
            assert_eq!(
                status, 200,
                "an acknowledged {what} does not authenticate: {b}"
            );
        }
    }
}

/// Every acknowledged token authenticates at the restarted `gw`, every acknowledged credential
/// is listed with at least its last acknowledged priority.
async fn check_writes(gw: &Instance, acked: &Acked, round: usize) {
    assert!(
        acked.anomalies.is_empty(),
        "failures before the kill: {:?}",
        acked.anomalies
    );
    all_authenticate(gw, "virtual key", &acked.keys).await;
    all_authenticate(gw, "JWT", &acked.jwts).await;
    all_authenticate(gw, "SSO agent token", &acked.logins).await;
    let (_, list) = gw.mgmt(M::GET, "/v0/management/auths/openai", None).await;
    let listed = list["auths"].as_array().unwrap();
    for (id, priority) in &acked.credentials {
        let c = listed.iter().find(|c| c["id"] == id.as_str());
        let c = c.unwrap_or_else(|| panic!("acknowledged credential {id} missing: {list}"));
        assert!(
            c["priority"].as_i64().unwrap() >= *priority,
            "{id} lost an update: {c}"
        );
    }
    eprintln!(
        "round {round}: {} virtual keys, {} JWTs, {} SSO logins, {} credential writes acknowledged, all there",
        acked.keys.len(),
        acked.jwts.len(),
        acked.logins.len(),
        acked.credentials.len()
    );
}

/// Adds the `metered` backend: the mock again, its own key with a quota (so its usage is kept).
fn metered_backend(config: &mut Value) {
    let mut backend = config["backends"]["openai"].clone();
    backend["api_key"] = json!("sk-upstream-metered-0123456789");
    backend["quota"] = json!({"limit": 1u64 << 40});
    config["backends"]["metered"] = backend;
}

/// Runs the rounds on `c` (SSO on).
async fn kill_rounds(c: Cluster) {
    let seed = seed();
    eprintln!("crash durability: seed {seed} (PORTCULLIS_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);
    c.admin(
        "gw",
        &["users", "add", "dev", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    let mut gw = c.spawn("gw", metered_backend).await;
    let (key_id, key) = gw.create_key("metered", Value::Null).await;
    let mut before = stored(&c, &gw, &key_id).await;
    for round in 0..ROUNDS {
        let load = Load::start(&gw.url, &key);
        // The kill's moment, drawn from the seed (a choice, not a wait for something).
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1800))).await;
        load.stop();
        let killed = Instant::now();
        gw.kill();
        let acked = load.finish().await;
        gw = c.spawn("gw", metered_backend).await;
        check_writes(&gw, &acked, round).await;
        let now = stored(&c, &gw, &key_id).await;
        check_usage(now, before, &acked, killed, round);
        before = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_but_the_last_second_of_credential_usage_on_postgres() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    kill_rounds(c.with_sso().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_but_the_last_second_of_credential_usage_on_sqlite() {
    kill_rounds(Cluster::on_sqlite().await.with_sso().await).await;
}
