//! What the shared limit counters cost per metered request (issue 18): one reservation and one
//! settlement through `RedisCounters`, as the policy sends them for a virtual key with an owner
//! (the key's rpm, tpm, concurrency and token budget, the owner's token budget). Needs a Redis:
//! `cargo run --release --example redis_cost [redis://127.0.0.1:6379]`.
//!
//! Prints the latency of a reserve + settle pair one after the other (p50, p99, mean) — sent
//! from the caller's task, and as the gateway sends them, through a task on the runtime the
//! connection was built on —, then the pairs per second 16 tasks sustain over the one
//! multiplexed connection. Its keys are under a fresh prefix, deleted at the end.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::policy::RedisCounters;
use portcullis::policy::counters::{Claim, Counters, Reserved};
use portcullis::redis_conn::{RedisConn, RedisSettings};
use portcullis::secret::Secret;

const NOW: u64 = 1_800_000_000_000;

fn claims() -> Vec<Claim> {
    let minute = NOW / 60_000;
    let window = Some((minute + 1) * 60_000);
    let claim = |key: String, amount, expires_at_ms, seeded| Claim {
        key,
        amount,
        limit: u64::MAX / 2,
        expires_at_ms,
        seeded,
    };
    vec![
        claim(format!("rpm|{minute}|k|key1"), 1, window, false),
        claim("conc|k|key1".to_owned(), 1, None, false),
        claim(format!("tpm|{minute}|k|key1"), 4_200, window, false),
        claim("tok|month:2027-01|k|key1".to_owned(), 4_200, None, true),
        claim("tok|month:2027-01|u|usr_1".to_owned(), 4_200, None, true),
    ]
}

fn settlement() -> Vec<(String, i64)> {
    let minute = NOW / 60_000;
    vec![
        ("conc|k|key1".to_owned(), -1),
        (format!("tpm|{minute}|k|key1"), -3_000),
        ("tok|month:2027-01|k|key1".to_owned(), -3_000),
        ("tok|month:2027-01|u|usr_1".to_owned(), -3_000),
    ]
}

async fn pair(c: &dyn Counters, claims: &[Claim], deltas: &[(String, i64)]) {
    assert_eq!(c.reserve(claims, NOW).await.unwrap(), Reserved::Done);
    c.adjust(deltas, NOW).await.unwrap();
}

/// The latency of `n` pairs one after the other: (p50, p99, mean).
async fn sequential(c: &dyn Counters, n: usize) -> (Duration, Duration, Duration) {
    let (claims, deltas) = (claims(), settlement());
    let mut took: Vec<Duration> = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        pair(c, &claims, &deltas).await;
        took.push(start.elapsed());
    }
    took.sort();
    let mean = took.iter().sum::<Duration>() / took.len() as u32;
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    (at(0.5), at(0.99), mean)
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let hex: String = portcullis::secret::random_bytes::<4>()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let prefix = format!("pcl-cost-{hex}:");
    let settings = RedisSettings {
        url: Secret::new(url.as_str()),
        prefix: prefix.clone(),
        timeout: Duration::from_secs(2),
    };
    // Built outside a runtime, a connection runs commands on the caller's task; built inside
    // one (as the gateway builds it), on that runtime, one task per command.
    let inline = RedisConn::new(&settings).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let spawned = RedisConn::new(&settings).unwrap();
        for (name, conn) in [("on the caller's task", &inline), ("on the built-on runtime", &spawned)] {
            let counters: Arc<dyn Counters> = Arc::new(RedisCounters::new(conn.clone()).unwrap());
            for c in &claims()[3..] {
                counters.seed(&c.key, 0, None, NOW).await.unwrap();
            }
            sequential(counters.as_ref(), 200).await;
            let (p50, p99, mean) = sequential(counters.as_ref(), 2_000).await;
            println!(
                "reserve (5 claims) + settle (4 deltas), one after the other, {name}: p50 {p50:?}  p99 {p99:?}  mean {mean:?}"
            );
        }
        let counters: Arc<dyn Counters> = Arc::new(RedisCounters::new(spawned.clone()).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let c = counters.clone();
                tokio::spawn(async move {
                    let (claims, deltas) = (claims(), settlement());
                    for _ in 0..250 {
                        pair(c.as_ref(), &claims, &deltas).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let rate = 4_000.0 / start.elapsed().as_secs_f64();
        println!("16 tasks on one connection: {rate:.0} reserve + settle pairs per second");
        let cleanup = move |mut c: redis::aio::ConnectionManager| {
            let pattern = format!("{prefix}*");
            async move {
                let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut c).await?;
                redis::cmd("DEL").arg(keys).query_async::<i64>(&mut c).await
            }
        };
        spawned.run(cleanup).await.unwrap();
    });
}
