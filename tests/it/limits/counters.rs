//! The contract of `policy::counters::Counters` (its module documents it), as a suite any
//! implementation runs through: `counter_suite!(name, fixture)` makes one test per rule, where
//! `fixture` (evaluated in each test) gives `Some((counters, keep))` — `keep` lives until the
//! test ends — or `None` when the implementation's server is absent (skipped; its fixture says
//! why). The in-process counters run it here, and so do the Redis ones (`RedisCounters`, on the
//! machine's server under a fresh key prefix per test). Counter names carry a random prefix
//! too, so a suite can share a server with other runs.

use std::sync::Arc;

use portcullis::policy::counters::{Claim, Counters, LocalCounters, Reserved};

use crate::redis_fixture::test_redis;

/// A fresh name prefix.
fn prefix() -> String {
    let b = portcullis::secret::random_bytes::<6>().unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect::<String>() + "|"
}

fn claim(key: &str, amount: u64, limit: u64) -> Claim {
    Claim {
        key: key.to_owned(),
        amount,
        limit,
        expires_at_ms: None,
        seeded: false,
    }
}

const NOW: u64 = 1_800_000_000_000;

/// Reservations add to every counter, or to none when any would pass its limit.
pub(crate) async fn reservations_are_all_or_nothing(c: Arc<dyn Counters>) {
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let both = |x, y| vec![claim(&a, x, 10), claim(&b, y, 5)];
    assert_eq!(c.reserve(&both(4, 4), NOW).await.unwrap(), Reserved::Done);
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(4));
    // b would reach 6 > 5: refused, and a is untouched.
    let r = c.reserve(&both(1, 2), NOW).await.unwrap();
    assert_eq!(
        r,
        Reserved::Refused {
            index: 1,
            current: 4
        }
    );
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(4));
    assert_eq!(c.value(&b, NOW).await.unwrap(), Some(4));
    // Exactly at the limit fits.
    assert_eq!(c.reserve(&both(6, 1), NOW).await.unwrap(), Reserved::Done);
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(10));
    // An amount larger than the limit never fits, even on a new counter.
    let big = c
        .reserve(&[claim(&format!("{p}c"), 11, 10)], NOW)
        .await
        .unwrap();
    assert_eq!(
        big,
        Reserved::Refused {
            index: 0,
            current: 0
        }
    );
    assert_eq!(c.value(&format!("{p}c"), NOW).await.unwrap(), None);
}

/// A seeded claim needs its counter to exist; seeding never overwrites.
pub(crate) async fn seeded_counters_must_exist_first(c: Arc<dyn Counters>) {
    let p = prefix();
    let (budget, window) = (format!("{p}budget"), format!("{p}window"));
    let claims = vec![
        claim(&window, 1, 10),
        Claim {
            seeded: true,
            ..claim(&budget, 30, 100)
        },
    ];
    let r = c.reserve(&claims, NOW).await.unwrap();
    assert_eq!(r, Reserved::Unseeded(vec![1]));
    assert_eq!(c.value(&window, NOW).await.unwrap(), None, "nothing added");
    assert!(c.seed(&budget, 60, None, NOW).await.unwrap());
    assert!(
        !c.seed(&budget, 0, None, NOW).await.unwrap(),
        "already there"
    );
    assert_eq!(c.reserve(&claims, NOW).await.unwrap(), Reserved::Done);
    assert_eq!(c.value(&budget, NOW).await.unwrap(), Some(90));
    let r = c.reserve(&claims, NOW).await.unwrap();
    assert_eq!(
        r,
        Reserved::Refused {
            index: 1,
            current: 90
        }
    );
}

/// Adjustments add signed deltas, floor at zero and never create a counter.
pub(crate) async fn adjustments_settle_without_going_negative(c: Arc<dyn Counters>) {
    let p = prefix();
    let (a, gone) = (format!("{p}a"), format!("{p}gone"));
    c.reserve(&[claim(&a, 50, 100)], NOW).await.unwrap();
    c.adjust(&[(a.clone(), -20), (gone.clone(), 5)], NOW)
        .await
        .unwrap();
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(30));
    assert_eq!(c.value(&gone, NOW).await.unwrap(), None);
    c.adjust(&[(a.clone(), 15)], NOW).await.unwrap();
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(45));
    c.adjust(&[(a.clone(), -1000)], NOW).await.unwrap();
    assert_eq!(c.value(&a, NOW).await.unwrap(), Some(0));
}

/// A counter is forgotten at its expiry: the next reservation starts again from zero, and a
/// late adjustment does not bring it back.
pub(crate) async fn counters_expire(c: Arc<dyn Counters>) {
    let p = prefix();
    let w = format!("{p}window");
    let in_window = Claim {
        expires_at_ms: Some(NOW + 60_000),
        ..claim(&w, 3, 3)
    };
    assert_eq!(
        c.reserve(std::slice::from_ref(&in_window), NOW)
            .await
            .unwrap(),
        Reserved::Done
    );
    let later = NOW + 59_999;
    assert!(matches!(
        c.reserve(std::slice::from_ref(&in_window), later)
            .await
            .unwrap(),
        Reserved::Refused { .. }
    ));
    let after = NOW + 60_000;
    assert_eq!(c.value(&w, after).await.unwrap(), None);
    c.adjust(&[(w.clone(), 7)], after).await.unwrap();
    assert_eq!(c.value(&w, after).await.unwrap(), None);
    let next = Claim {
        expires_at_ms: Some(after + 60_000),
        ..in_window
    };
    assert_eq!(c.reserve(&[next], after).await.unwrap(), Reserved::Done);
    assert_eq!(c.value(&w, after).await.unwrap(), Some(3));
    // Seeded counters expire the same way.
    let b = format!("{p}budget");
    c.seed(&b, 5, Some(NOW + 10), NOW).await.unwrap();
    assert_eq!(c.value(&b, NOW + 10).await.unwrap(), None);
}

/// Reservations racing from many tasks never pass a limit together.
pub(crate) async fn concurrent_reservations_never_pass_a_limit(c: Arc<dyn Counters>) {
    let p = prefix();
    let key = format!("{p}shared");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (c, key) = (c.clone(), key.clone());
            tokio::spawn(async move { c.reserve(&[claim(&key, 3, 100)], NOW).await.unwrap() })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        if t.await.unwrap() == Reserved::Done {
            done += 1;
        }
    }
    assert_eq!(done, 33, "100 / 3 reservations fit");
    assert_eq!(c.value(&key, NOW).await.unwrap(), Some(99));
}

/// One test per rule of the contract for the counters `$make` gives.
macro_rules! counter_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reservations_are_all_or_nothing() {
                let Some((c, _keep)) = $make else { return };
                super::reservations_are_all_or_nothing(c).await;
            }

            #[tokio::test]
            async fn seeded_counters_must_exist_first() {
                let Some((c, _keep)) = $make else { return };
                super::seeded_counters_must_exist_first(c).await;
            }

            #[tokio::test]
            async fn adjustments_settle_without_going_negative() {
                let Some((c, _keep)) = $make else { return };
                super::adjustments_settle_without_going_negative(c).await;
            }

            #[tokio::test]
            async fn counters_expire() {
                let Some((c, _keep)) = $make else { return };
                super::counters_expire(c).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_reservations_never_pass_a_limit() {
                let Some((c, _keep)) = $make else { return };
                super::concurrent_reservations_never_pass_a_limit(c).await;
            }
        }
    };
}

counter_suite!(
    in_process,
    Some((Arc::new(LocalCounters::new()) as Arc<dyn Counters>, ()))
);

counter_suite!(in_redis, test_redis().await.map(|r| (r.counters(), r)));

/// In Redis, a counter's key is dropped only after its expiry, by the grace (never before), a
/// counter without expiry is kept, and sixteen-digit values stay exact.
#[tokio::test]
async fn redis_drops_a_counter_only_after_it_expired() {
    let Some(r) = test_redis().await else {
        return;
    };
    let c = r.counters();
    let p = prefix();
    let window = Claim {
        expires_at_ms: Some(NOW + 60_000),
        ..claim(&format!("{p}window"), 1, 10)
    };
    let forever = claim(&format!("{p}forever"), 1, 10);
    c.reserve(&[window, forever], NOW).await.unwrap();
    let client = redis::Client::open(r.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut pttl = async |name: &str| -> i64 {
        let key = format!("{}counter:{p}{name}", r.prefix);
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    let most = (60_000 + portcullis::policy::GRACE_MS) as i64;
    let ttl = pttl("window").await;
    assert!(most - 10_000 < ttl && ttl <= most, "{ttl}");
    assert_eq!(pttl("forever").await, -1, "no expiry, no TTL");
    let big = format!("{p}big");
    c.seed(&big, 1_234_567_890_123_456, None, NOW)
        .await
        .unwrap();
    c.adjust(&[(big.clone(), 1)], NOW).await.unwrap();
    let value = c.value(&big, NOW).await.unwrap();
    assert_eq!(value, Some(1_234_567_890_123_457));
}

/// The concurrency slots in Redis are leased: an instance that dies holding slots (no
/// settlement ever comes) stops counting once its heartbeat expires, while a live instance's
/// slots stay counted however long its requests run.
#[tokio::test]
async fn a_dead_instances_held_slots_free_themselves() {
    use portcullis::policy::{HEARTBEAT_TTL_MS, HELD, RedisCounters};
    use portcullis::redis_conn::RedisConn;
    let Some(redis) = test_redis().await else {
        return;
    };
    let counters =
        || Arc::new(RedisCounters::new(RedisConn::new(&redis.settings()).unwrap()).unwrap());
    let (a, b) = (counters(), counters());
    let key = format!("{HELD}{}key", prefix());
    let slot = [claim(&key, 1, 2)];
    let refused = Reserved::Refused {
        index: 0,
        current: 2,
    };
    // A holds both slots; B is refused; A's settlement frees one, which B takes.
    for _ in 0..2 {
        assert_eq!(a.reserve(&slot, NOW).await.unwrap(), Reserved::Done);
    }
    assert_eq!(b.reserve(&slot, NOW).await.unwrap(), refused);
    a.adjust(&[(key.clone(), -1)], NOW).await.unwrap();
    assert_eq!(b.reserve(&slot, NOW).await.unwrap(), Reserved::Done);
    assert_eq!(b.reserve(&slot, NOW).await.unwrap(), refused);
    // A is killed: its heartbeat expires (deleted here rather than waited for) and its slot
    // goes with it; B's own slot stays.
    let mut redis_cli = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let beat = |id: &str| format!("{}instance:{id}", redis.prefix);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(beat(a.instance()))
        .query_async(&mut redis_cli)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= HEARTBEAT_TTL_MS as i64, "{ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(beat(a.instance()))
        .query_async(&mut redis_cli)
        .await
        .unwrap();
    assert_eq!(b.value(&key, NOW).await.unwrap(), Some(1));
    assert_eq!(b.reserve(&slot, NOW).await.unwrap(), Reserved::Done);
    // A settlement A would still send changes only A's share: B's two slots stay counted.
    a.adjust(&[(key.clone(), -1)], NOW).await.unwrap();
    assert_eq!(b.value(&key, NOW).await.unwrap(), Some(2));
    // The heartbeat job keeps a live instance's slots: renewed, B's lease runs again in full.
    let jobs = portcullis::jobs::Jobs::new(b.clone().jobs());
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(beat(b.instance()))
        .arg(50)
        .query_async(&mut redis_cli)
        .await
        .unwrap();
    assert!(jobs.run_once("counters.heartbeat", NOW).await);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(beat(b.instance()))
        .query_async(&mut redis_cli)
        .await
        .unwrap();
    assert!(ttl > 1_000, "{ttl}");
    assert_eq!(a.value(&key, NOW).await.unwrap(), Some(2));
}
