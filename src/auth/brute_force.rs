//! Brute-force protection: failed-credential counters per key (a client IP, a username, …) with
//! escalating blocks, as PRODUCT §2.1 specifies.
//!
//! Within `ttl` the failures of a key are counted; the `max_failed_attempts`-th starts a block of
//! `initial_block`; each later failure multiplies the next block by `block_multiplier`, capped at
//! `max_block`; a success clears the key. A record is kept for `ttl` after its block ends (the
//! origin system forgot it as soon as a block outlasted the TTL, which let an attacker restart
//! from four free guesses and a 30 s block every ~16 minutes). While blocked, the caller must refuse every attempt of
//! that key (valid or not) with the remaining time.
//!
//! The table is bounded: it is split into shards, each holding at most `capacity / SHARDS`
//! records. A full shard frees a slot by sampling a few records: an expired one goes first, then
//! the unblocked one closest to expiry (a blocked record is evicted only when the whole sample is
//! blocked). An attacker spraying addresses therefore costs a fixed amount of memory and a fixed
//! amount of work per attempt. Time is the caller's
//! `now`, so tests move a clock instead of sleeping.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::Duration;

const SHARDS: usize = 64;

/// Limiter settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterPolicy {
    /// Failures within `ttl` that start a block (≥ 1).
    pub max_failed_attempts: u32,
    /// How long failures are remembered.
    pub ttl: Duration,
    /// First block.
    pub initial_block: Duration,
    /// Growth of each following block (≥ 1.0).
    pub block_multiplier: f64,
    /// Longest block.
    pub max_block: Duration,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// The limiter `auth.brute_force_protection` describes, or `None` when it is turned off.
    pub fn from_config(bf: &crate::config::BruteForceConfig) -> Option<Self> {
        bf.enabled.then(|| {
            let policy = LimiterPolicy {
                max_failed_attempts: bf.max_failed_attempts,
                ttl: Duration::from_secs(bf.ttl_seconds),
                initial_block: Duration::from_secs(bf.initial_block_seconds),
                block_multiplier: bf.block_multiplier,
                max_block: Duration::from_secs(bf.max_block_seconds),
            };
            Limiter::new(policy, bf.max_tracked_ips)
        })
    }
}

impl Default for LimiterPolicy {
    fn default() -> Self {
        Self {
            max_failed_attempts: 5,
            ttl: Duration::from_secs(900),
            initial_block: Duration::from_secs(30),
            block_multiplier: 2.0,
            max_block: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    count: u32,
    /// Milliseconds since the epoch.
    blocked_until: u64,
    next_block_ms: u64,
    expires_at: u64,
    /// Fingerprints of the last few distinct wrong values counted ([`Limiter::record_failure_of`]).
    recent: [u64; RECENT],
    recent_len: u8,
    recent_next: u8,
}

/// Distinct wrong values remembered per key.
const RECENT: usize = 4;

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; not blocked yet.
    Counted {
        /// Failures so far in the window.
        failures: u32,
    },
    /// This failure started (or extended) a block.
    Blocked {
        /// Seconds until the block ends (rounded up).
        retry_after_secs: u64,
    },
}

/// A bounded, sharded table of failure records keyed by `K`.
#[derive(Debug)]
pub struct Limiter<K> {
    policy: LimiterPolicy,
    shard_capacity: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<K, Record>>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter holding at most about `capacity` records.
    pub fn new(mut policy: LimiterPolicy, capacity: usize) -> Self {
        policy.max_failed_attempts = policy.max_failed_attempts.max(1);
        if policy.block_multiplier.is_nan() || policy.block_multiplier < 1.0 {
            policy.block_multiplier = 1.0;
        }
        Self {
            policy,
            shard_capacity: (capacity / SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The settings in force.
    pub fn policy(&self) -> &LimiterPolicy {
        &self.policy
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, Record>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        &self.shards[i]
    }

    /// Seconds left if `key` is blocked at `now_ms`.
    pub fn blocked(&self, key: &K, now_ms: u64) -> Option<u64> {
        let shard = self.shard(key).lock().ok()?;
        let rec = shard.get(key)?;
        (rec.blocked_until > now_ms).then(|| (rec.blocked_until - now_ms).div_ceil(1000))
    }

    /// Records a failed attempt of `key` at `now_ms`.
    pub fn record_failure(&self, key: &K, now_ms: u64) -> FailureOutcome {
        self.record(key, None, now_ms)
    }

    /// Records a failed attempt of `key` with a wrong value whose keyed `fingerprint` is given:
    /// repeating one of the last few wrong values is not counted again (it is not guessing — an
    /// agent configured with a placeholder key retries the same value).
    pub fn record_failure_of(&self, key: &K, fingerprint: u64, now_ms: u64) -> FailureOutcome {
        self.record(key, Some(fingerprint), now_ms)
    }

    fn record(&self, key: &K, fingerprint: Option<u64>, now_ms: u64) -> FailureOutcome {
        let p = &self.policy;
        let Ok(mut shard) = self.shard(key).lock() else {
            return FailureOutcome::Counted { failures: 0 };
        };
        if !shard.contains_key(key) && shard.len() >= self.shard_capacity {
            make_room(&mut shard, now_ms);
        }
        let fresh = Record {
            count: 0,
            blocked_until: 0,
            next_block_ms: p.initial_block.as_millis() as u64,
            expires_at: 0,
            recent: [0; RECENT],
            recent_len: 0,
            recent_next: 0,
        };
        let rec = shard.entry(key.clone()).or_insert(fresh);
        if rec.expires_at <= now_ms {
            *rec = fresh;
        }
        if let Some(f) = fingerprint {
            let filled = usize::from(rec.recent_len);
            if rec.recent[..filled].contains(&f) {
                return FailureOutcome::Counted {
                    failures: rec.count,
                };
            }
            rec.recent[usize::from(rec.recent_next)] = f;
            rec.recent_next = ((usize::from(rec.recent_next) + 1) % RECENT) as u8;
            rec.recent_len = (filled + 1).min(RECENT) as u8;
        }
        rec.count = rec.count.saturating_add(1);
        let max_block = p.max_block.as_millis() as u64;
        let mut outcome = FailureOutcome::Counted {
            failures: rec.count,
        };
        if rec.count >= p.max_failed_attempts {
            let block = rec.next_block_ms.min(max_block);
            rec.blocked_until = rec.blocked_until.max(now_ms + block);
            let grown = (block as f64 * p.block_multiplier).ceil() as u64;
            rec.next_block_ms = grown.max(block).min(max_block);
            outcome = FailureOutcome::Blocked {
                retry_after_secs: (rec.blocked_until - now_ms).div_ceil(1000),
            };
        }
        // Remember the record for `ttl` after the block ends, so that a client that waits out a
        // block and fails again meets the next, longer block rather than a fresh count.
        let ttl = p.ttl.as_millis() as u64;
        rec.expires_at = (now_ms + ttl).max(rec.blocked_until.saturating_add(ttl));
        outcome
    }

    /// Takes back one failure counted in advance (an attempt counted before its outcome was
    /// known turned out right). If that leaves fewer failures than start a block, a block the
    /// advance count started is lifted; a block other failures justify stays.
    pub fn refund(&self, key: &K, now_ms: u64) {
        let max = self.policy.max_failed_attempts;
        if let Ok(mut shard) = self.shard(key).lock()
            && let Some(rec) = shard.get_mut(key)
        {
            rec.count = rec.count.saturating_sub(1);
            if rec.count < max && rec.blocked_until > now_ms {
                rec.blocked_until = 0;
            }
        }
    }

    /// Clears `key` after a success.
    pub fn record_success(&self, key: &K) {
        if let Ok(mut shard) = self.shard(key).lock() {
            shard.remove(key);
        }
    }

    /// Records currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most records the table will hold.
    pub fn capacity(&self) -> usize {
        self.shard_capacity * SHARDS
    }
}

/// Frees one slot in a full shard by looking at a small sample of records (the map's iteration
/// order follows a per-process random hash, so attackers cannot aim at a record): expired records
/// go first, then the unblocked record closest to expiry, and only if the whole sample is blocked
/// the record whose block ends first. Constant work per insertion, however large the table.
fn make_room<K: Hash + Eq + Clone>(shard: &mut HashMap<K, Record>, now_ms: u64) {
    const SAMPLE: usize = 16;
    let sample: Vec<(&K, &Record)> = shard.iter().take(SAMPLE).collect();
    let victim = sample
        .iter()
        .find(|(_, r)| r.expires_at <= now_ms)
        .or_else(|| {
            sample
                .iter()
                .filter(|(_, r)| r.blocked_until <= now_ms)
                .min_by_key(|(_, r)| r.expires_at)
        })
        .or_else(|| sample.iter().min_by_key(|(_, r)| r.blocked_until))
        .map(|(k, _)| (*k).clone());
    if let Some(k) = victim {
        shard.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const S: u64 = 1000;

    fn limiter() -> Limiter<IpAddr> {
        Limiter::new(LimiterPolicy::default(), 1024)
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn fifth_failure_blocks_for_30s_then_escalates_to_the_cap() {
        let l = limiter();
        let a = ip(1);
        let mut now = 1_000_000 * S;
        for n in 1..=4 {
            assert_eq!(
                l.record_failure(&a, now),
                FailureOutcome::Counted { failures: n }
            );
            assert_eq!(l.blocked(&a, now), None);
        }
        assert_eq!(
            l.record_failure(&a, now),
            FailureOutcome::Blocked {
                retry_after_secs: 30
            }
        );
        assert_eq!(l.blocked(&a, now), Some(30));
        assert_eq!(l.blocked(&a, now + 29 * S), Some(1));
        assert_eq!(l.blocked(&a, now + 30 * S), None);
        let mut expected = vec![60, 120, 240, 480, 960, 1920, 3600, 3600];
        for want in expected.drain(..) {
            now = l_expire(&l, &a, now);
            assert_eq!(
                l.record_failure(&a, now),
                FailureOutcome::Blocked {
                    retry_after_secs: want
                }
            );
        }
    }

    /// Moves past the current block; returns the new time.
    fn l_expire(l: &Limiter<IpAddr>, a: &IpAddr, now: u64) -> u64 {
        let left = l.blocked(a, now).unwrap_or(0);
        now + left * S
    }

    #[test]
    fn success_clears_and_the_window_expires() {
        let l = limiter();
        let a = ip(2);
        let now = 5_000 * S;
        for _ in 0..4 {
            l.record_failure(&a, now);
        }
        l.record_success(&a);
        assert_eq!(
            l.record_failure(&a, now),
            FailureOutcome::Counted { failures: 1 }
        );
        // Failures older than the TTL are forgotten.
        for _ in 0..3 {
            l.record_failure(&a, now);
        }
        assert_eq!(
            l.record_failure(&a, now + 901 * S),
            FailureOutcome::Counted { failures: 1 }
        );
    }

    #[test]
    fn table_stays_bounded_under_an_address_spray_and_keeps_blocked_keys() {
        let l = Limiter::new(LimiterPolicy::default(), 4096);
        let now = 10_000 * S;
        let victim = ip(7);
        for _ in 0..5 {
            l.record_failure(&victim, now);
        }
        for n in 100..200_100u32 {
            l.record_failure(&ip(n), now);
        }
        assert!(l.len() <= l.capacity(), "{} > {}", l.len(), l.capacity());
        assert_eq!(
            l.blocked(&victim, now),
            Some(30),
            "a blocked address survives the spray"
        );
    }

    #[test]
    fn a_million_distinct_addresses_stay_within_the_bound() {
        let l = Limiter::new(LimiterPolicy::default(), 100_000);
        let now = 10_000 * S;
        let blocked = ip(3);
        for _ in 0..5 {
            l.record_failure(&blocked, now);
        }
        let rss_before = rss_kib();
        for n in 1_000_000..2_000_000u32 {
            l.record_failure(&ip(n), now);
        }
        assert!(
            l.len() <= l.capacity() && l.capacity() <= 100_000,
            "{} of {}",
            l.len(),
            l.capacity()
        );
        let grew = rss_kib().saturating_sub(rss_before);
        // Generous bound (the test binary runs other tests in parallel): the table itself is ~6 MiB.
        assert!(grew < 64 * 1024, "memory grew by {grew} KiB");
        eprintln!(
            "limiter: {} records after 1,000,000 distinct addresses; RSS grew {grew} KiB",
            l.len()
        );
        assert!(
            l.blocked(&blocked, now).is_some(),
            "the blocked address is still blocked"
        );
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }

    #[test]
    fn nonsense_settings_are_clamped() {
        let p = LimiterPolicy {
            max_failed_attempts: 0,
            block_multiplier: 0.5,
            ..Default::default()
        };
        let l: Limiter<u32> = Limiter::new(p, 10);
        assert_eq!(l.policy().max_failed_attempts, 1);
        assert_eq!(l.policy().block_multiplier, 1.0);
        assert_eq!(
            l.record_failure(&1, 0),
            FailureOutcome::Blocked {
                retry_after_secs: 30
            }
        );
    }
}
