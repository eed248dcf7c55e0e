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
//!
//! Slow checks (an agent token's store lookup and Argon2id, a JWT whose keys may be fetched)
//! count their attempt *before* the check ([`Limiter::try_reserve`]: refused while blocked,
//! otherwise counted, in one step) and take it back when the attempt turns out right or not a
//! guess ([`Limiter::refund`]), so a burst of parallel guesses cannot all pass the lockout before
//! the first one is counted, and a request dropped mid-check stays counted. [`Turns`] lets such
//! checks run one at a time per address, so a client's own valid first uses never meet each
//! other's advance counts.
//!
//! A caller that can tell repeats apart passes a keyed fingerprint of the wrong value
//! ([`Limiter::record_failure_of`], [`Limiter::try_reserve`]): the record keeps the last four
//! distinct ones (8 bytes each, inside the bounded record), and a value among them is not counted
//! again — an agent retrying a stale key is not guessing — while every distinct value is.
//!
//! Addresses are counted by bucket ([`Bucket`]): an IPv4 address alone (an IPv4-mapped IPv6
//! address is folded into it), an IPv6 address by its network prefix (`/64` by default,
//! `auth.brute_force_protection.ipv6_prefix`) — one subscriber usually holds a whole /64, so
//! counting single IPv6 addresses would give each attacker billions of fresh budgets.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// IPv6 addresses are counted by this network prefix (1–128; 128 = each address alone).
    pub ipv6_prefix: u8,
}

/// What a limiter counts: a key reduced to its bucket. Addresses fall into their IPv6 network
/// (see the module comment); other keys (usernames) are their own bucket.
pub trait Bucket: Hash + Eq + Clone {
    /// The bucket of `self` under `policy`.
    fn bucket(&self, policy: &LimiterPolicy) -> Self {
        let _ = policy;
        self.clone()
    }
}

impl Bucket for IpAddr {
    fn bucket(&self, policy: &LimiterPolicy) -> Self {
        match self {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // `::ffff:a.b.c.d` is the IPv4 client a.b.c.d.
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u32::from(policy.ipv6_prefix.clamp(1, 128));
                    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                    IpAddr::V6((u128::from(*v6) & mask).into())
                }
            },
            v4 => *v4,
        }
    }
}

impl Bucket for String {}
impl Bucket for u32 {}

impl<K: Bucket> Limiter<K> {
    /// The limiter `auth.brute_force_protection` describes, or `None` when it is turned off.
    pub fn from_config(bf: &super::BruteForceConfig) -> Option<Self> {
        bf.enabled.then(|| {
            let policy = LimiterPolicy {
                max_failed_attempts: bf.max_failed_attempts,
                ttl: Duration::from_secs(bf.ttl_seconds),
                initial_block: Duration::from_secs(bf.initial_block_seconds),
                block_multiplier: bf.block_multiplier,
                max_block: Duration::from_secs(bf.max_block_seconds),
                ipv6_prefix: bf.ipv6_prefix,
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
            ipv6_prefix: 64,
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

/// A failure counted in advance by [`Limiter::try_reserve`]; give it to [`Limiter::refund`] if
/// the attempt turns out right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an advance count is refunded or kept on purpose"]
pub struct Reservation {
    /// False when the wrong value was a repeat ([`Limiter::record_failure_of`]): nothing to refund.
    counted: bool,
    fingerprint: Option<u64>,
    /// What counting did (it may have started a block).
    pub outcome: FailureOutcome,
}

/// `d` in milliseconds (configured windows are bounded far below where this saturates).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A bounded, sharded table of failure records keyed by `K`.
#[derive(Debug)]
pub struct Limiter<K> {
    policy: LimiterPolicy,
    shard_capacity: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<K, Record>>>,
    /// The latest end of a block ever set (ms): no record is blocked at or after it, so a check
    /// then needs neither the key's hash nor its shard's lock — every request's check when no
    /// block was set for a while (~250 instructions, bench/PROFILE.md §22).
    horizon: AtomicU64,
}

impl<K: Bucket> Limiter<K> {
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
            horizon: AtomicU64::new(0),
        }
    }

    /// The settings in force.
    pub fn policy(&self) -> &LimiterPolicy {
        &self.policy
    }

    /// The bucket `key` is counted in.
    pub fn bucket_of(&self, key: &K) -> K {
        key.bucket(&self.policy)
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, Record>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        &self.shards[i]
    }

    /// Seconds left if `key` is blocked at `now_ms`.
    pub fn blocked(&self, key: &K, now_ms: u64) -> Option<u64> {
        // Set under the shard's lock after the block: seen here, the lock below shows the block;
        // not seen yet, this check came first.
        if now_ms >= self.horizon.load(Ordering::Acquire) {
            return None;
        }
        let key = &key.bucket(&self.policy);
        let shard = self.shard(key).lock().ok()?;
        let rec = shard.get(key)?;
        (rec.blocked_until > now_ms).then(|| (rec.blocked_until - now_ms).div_ceil(1000))
    }

    /// Starts a slow attempt of `key`: refused with the seconds left while blocked, otherwise
    /// counted as a failure now, in the same step (parallel attempts cannot all pass the check
    /// before one is counted). `fingerprint` as in [`Limiter::record_failure_of`]. Give the
    /// reservation back with [`Limiter::refund`] when the attempt was right or not a guess.
    pub fn try_reserve(
        &self,
        key: &K,
        fingerprint: Option<u64>,
        now_ms: u64,
    ) -> Result<Reservation, u64> {
        let key = &key.bucket(&self.policy);
        let Ok(mut shard) = self.shard(key).lock() else {
            return Ok(Reservation {
                counted: false,
                fingerprint,
                outcome: FailureOutcome::Counted { failures: 0 },
            });
        };
        if let Some(rec) = shard.get(key)
            && rec.blocked_until > now_ms
        {
            return Err((rec.blocked_until - now_ms).div_ceil(1000));
        }
        let (counted, outcome) = self.record_in(&mut shard, key, fingerprint, now_ms);
        Ok(Reservation {
            counted,
            fingerprint,
            outcome,
        })
    }

    /// Records a failed attempt of `key` at `now_ms`.
    pub fn record_failure(&self, key: &K, now_ms: u64) -> FailureOutcome {
        self.record(key, None, now_ms)
    }

    /// Records a failed attempt of `key` with a wrong value whose keyed `fingerprint` (never 0)
    /// is given: repeating one of the last few wrong values is not counted again (it is not
    /// guessing — an agent configured with a placeholder key retries the same value).
    pub fn record_failure_of(&self, key: &K, fingerprint: u64, now_ms: u64) -> FailureOutcome {
        self.record(key, Some(fingerprint), now_ms)
    }

    fn record(&self, key: &K, fingerprint: Option<u64>, now_ms: u64) -> FailureOutcome {
        let key = &key.bucket(&self.policy);
        let Ok(mut shard) = self.shard(key).lock() else {
            return FailureOutcome::Counted { failures: 0 };
        };
        self.record_in(&mut shard, key, fingerprint, now_ms).1
    }

    /// Counts a failure of `key` (already a bucket) in its locked shard; false when the value
    /// was a repeat and nothing was counted.
    fn record_in(
        &self,
        shard: &mut HashMap<K, Record>,
        key: &K,
        fingerprint: Option<u64>,
        now_ms: u64,
    ) -> (bool, FailureOutcome) {
        let p = &self.policy;
        if !shard.contains_key(key) && shard.len() >= self.shard_capacity {
            make_room(shard, now_ms);
        }
        let fresh = Record {
            count: 0,
            blocked_until: 0,
            next_block_ms: millis(p.initial_block),
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
                return (
                    false,
                    FailureOutcome::Counted {
                        failures: rec.count,
                    },
                );
            }
            // A slot blanked by a refund is reused first; otherwise the oldest goes.
            if let Some(blank) = rec.recent[..filled].iter_mut().find(|r| **r == 0) {
                *blank = f;
            } else {
                rec.recent[usize::from(rec.recent_next)] = f;
                rec.recent_next = ((usize::from(rec.recent_next) + 1) % RECENT) as u8;
                rec.recent_len = (filled + 1).min(RECENT) as u8;
            }
        }
        rec.count = rec.count.saturating_add(1);
        let max_block = millis(p.max_block);
        let mut outcome = FailureOutcome::Counted {
            failures: rec.count,
        };
        if rec.count >= p.max_failed_attempts {
            let block = rec.next_block_ms.min(max_block);
            rec.blocked_until = rec.blocked_until.max(now_ms.saturating_add(block));
            self.horizon.fetch_max(rec.blocked_until, Ordering::Release);
            let grown = (block as f64 * p.block_multiplier).ceil() as u64;
            rec.next_block_ms = grown.max(block).min(max_block);
            outcome = FailureOutcome::Blocked {
                retry_after_secs: (rec.blocked_until - now_ms).div_ceil(1000),
            };
        }
        // Remember the record for `ttl` after the block ends, so that a client that waits out a
        // block and fails again meets the next, longer block rather than a fresh count.
        let ttl = millis(p.ttl);
        rec.expires_at = now_ms
            .saturating_add(ttl)
            .max(rec.blocked_until.saturating_add(ttl));
        (true, outcome)
    }

    /// Takes back one failure counted in advance (an attempt counted before its outcome was
    /// known turned out right). If that leaves fewer failures than start a block, a block the
    /// advance count started is lifted; a block other failures justify stays.
    pub fn refund(&self, key: &K, now_ms: u64) {
        self.refund_count(key, None, now_ms);
    }

    /// Takes back a [`Reservation`] (nothing if it counted nothing), forgetting its fingerprint.
    pub fn refund_reservation(&self, key: &K, reservation: Reservation, now_ms: u64) {
        if reservation.counted {
            self.refund_count(key, reservation.fingerprint, now_ms);
        }
    }

    fn refund_count(&self, key: &K, fingerprint: Option<u64>, now_ms: u64) {
        let max = self.policy.max_failed_attempts;
        let key = &key.bucket(&self.policy);
        if let Ok(mut shard) = self.shard(key).lock()
            && let Some(rec) = shard.get_mut(key)
        {
            rec.count = rec.count.saturating_sub(1);
            // Fewer failures than start a block: no block of this record's lifetime was earned
            // (counts only grow until the record expires), so none stands and none escalates.
            if rec.count < max {
                if rec.blocked_until > now_ms {
                    rec.blocked_until = 0;
                }
                rec.next_block_ms = millis(self.policy.initial_block);
            }
            // A right value is no placeholder to remember: its slot is blanked (fingerprints
            // are never 0), so it does not push a real repeat out of the ring.
            if let Some(f) = fingerprint {
                let filled = usize::from(rec.recent_len);
                if let Some(slot) = rec.recent[..filled].iter_mut().find(|r| **r == f) {
                    *slot = 0;
                }
            }
        }
    }

    /// Clears `key` after a success.
    pub fn record_success(&self, key: &K) {
        let key = &key.bucket(&self.policy);
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

/// One turn at a time per key (a client address) for slow checks. Entries exist only while a
/// turn is held or awaited, so the table is as large as the work in flight.
#[derive(Debug)]
pub struct Turns<K> {
    gates: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Hash + Eq + Clone> Default for Turns<K> {
    fn default() -> Self {
        Self {
            gates: Mutex::new(HashMap::new()),
        }
    }
}

/// A held turn; the next caller for the same key goes on when it is dropped.
#[derive(Debug)]
pub struct Turn<'a, K: Hash + Eq + Clone> {
    turns: &'a Turns<K>,
    key: K,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Hash + Eq + Clone> Turns<K> {
    /// Waits for `key`'s turn.
    pub async fn take(&self, key: K) -> Turn<'_, K> {
        let gate = match self.gates.lock() {
            Ok(mut g) => g.entry(key.clone()).or_default().clone(),
            // A poisoned table: no ordering, but never a refusal.
            Err(_) => Arc::default(),
        };
        Turn {
            turns: self,
            key,
            held: Some(gate.lock_owned().await),
        }
    }

    /// Keys with a turn held or awaited (for tests).
    pub fn in_flight(&self) -> usize {
        self.gates.lock().map_or(0, |g| g.len())
    }
}

impl<K: Hash + Eq + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let gate = tokio::sync::OwnedMutexGuard::mutex(&held).clone();
        drop(held);
        if let Ok(mut g) = self.turns.gates.lock()
            // Ours and the table's: nobody else holds or waits for this key.
            && Arc::strong_count(&gate) <= 2
        {
            g.remove(&self.key);
        }
    }
}

/// Frees one slot in a full shard by looking at a small sample of records (the map's iteration
/// order follows a per-process random hash, so attackers cannot aim at a record): expired records
/// go first, then the unblocked record closest to expiry, and only if the whole sample is blocked
/// the record whose block ends first. Constant work per insertion, however large the table.
fn make_room<K: Bucket>(shard: &mut HashMap<K, Record>, now_ms: u64) {
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
    fn the_latest_block_keeps_every_earlier_one_checked() {
        let l = limiter();
        let (a, b) = (ip(1), ip(2));
        let now = 1_000_000 * S;
        assert_eq!(l.horizon.load(Ordering::Relaxed), 0, "no block yet");
        for _ in 0..5 {
            l.record_failure(&a, now);
        }
        // b's block (30 s) starts 10 s after a's and ends after it.
        for _ in 0..5 {
            l.record_failure(&b, now + 10 * S);
        }
        assert_eq!(l.horizon.load(Ordering::Relaxed), now + 40 * S);
        assert_eq!(l.blocked(&a, now + 29 * S), Some(1));
        assert_eq!(l.blocked(&b, now + 29 * S), Some(11));
        assert_eq!(l.blocked(&a, now + 35 * S), None);
        assert_eq!(l.blocked(&b, now + 35 * S), Some(5));
        // A refund that lifts b's block leaves the horizon where it was: the check looks.
        l.refund(&b, now + 36 * S);
        assert_eq!(l.blocked(&b, now + 36 * S), None);
        assert_eq!(l.blocked(&a, now + 40 * S), None);
        assert_eq!(l.blocked(&b, now + 40 * S), None);
        // A client failing again after the horizon meets its next block, and is checked again.
        l.record_failure(&a, now + 50 * S);
        assert_eq!(l.blocked(&a, now + 50 * S), Some(60));
        assert_eq!(l.horizon.load(Ordering::Relaxed), now + 110 * S);
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
    fn reservations_are_counted_with_the_check_and_refunds_lift_their_own_block() {
        let l = limiter();
        let a = ip(11);
        let now = 10_000 * S;
        // Five slow attempts in flight: all counted before any answer; the sixth is refused.
        let held: Vec<Reservation> = (0..5)
            .map(|_| l.try_reserve(&a, None, now).unwrap())
            .collect();
        assert_eq!(
            held[4].outcome,
            FailureOutcome::Blocked {
                retry_after_secs: 30
            }
        );
        assert_eq!(l.try_reserve(&a, None, now), Err(30));
        // The fifth was right: its refund lifts the block it started; the other four stay.
        l.refund_reservation(&a, held[4], now);
        assert_eq!(l.blocked(&a, now), None);
        assert_eq!(
            l.record_failure(&a, now),
            FailureOutcome::Blocked {
                retry_after_secs: 30
            }
        );
    }

    #[test]
    fn a_repeated_value_reserves_nothing_and_a_refunded_one_is_forgotten() {
        let l = limiter();
        let a = ip(12);
        let now = 10_000 * S;
        let first = l.try_reserve(&a, Some(7), now).unwrap();
        assert_eq!(first.outcome, FailureOutcome::Counted { failures: 1 });
        let repeat = l.try_reserve(&a, Some(7), now).unwrap();
        assert_eq!(repeat.outcome, FailureOutcome::Counted { failures: 1 });
        // Refunding the repeat takes back nothing.
        l.refund_reservation(&a, repeat, now);
        assert_eq!(
            l.record_failure_of(&a, 8, now),
            FailureOutcome::Counted { failures: 2 }
        );
        // A right value (9) is refunded and forgotten: it does not push 7 out of the ring.
        for f in [9, 10] {
            let r = l.try_reserve(&a, Some(f), now).unwrap();
            if f == 9 {
                l.refund_reservation(&a, r, now);
            }
        }
        assert_eq!(
            l.record_failure_of(&a, 11, now),
            FailureOutcome::Counted { failures: 4 }
        );
        assert_eq!(
            l.record_failure_of(&a, 7, now),
            FailureOutcome::Counted { failures: 4 },
            "7 is still remembered"
        );
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_network() {
        let l = limiter();
        let now = 10_000 * S;
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        // Five different addresses of one /64: one budget.
        for i in 1..=5 {
            l.record_failure(&v6(&format!("2001:db8:1:2::{i}")), now);
        }
        assert_eq!(l.blocked(&v6("2001:db8:1:2:ffff::9"), now), Some(30));
        assert_eq!(l.blocked(&v6("2001:db8:1:3::1"), now), None, "another /64");
        // IPv4 stays per address; an IPv4-mapped IPv6 address is its IPv4 address.
        l.record_failure(&ip(20), now);
        assert_eq!(l.bucket_of(&ip(20)), ip(20));
        assert_eq!(l.bucket_of(&v6("::ffff:0.0.0.20")), ip(20));
        // The prefix is a setting; 128 counts each address alone.
        let exact = Limiter::new(
            LimiterPolicy {
                ipv6_prefix: 128,
                ..Default::default()
            },
            1024,
        );
        for i in 1..=5 {
            exact.record_failure(&v6(&format!("2001:db8::{i}")), now);
        }
        assert_eq!(exact.blocked(&v6("2001:db8::6"), now), None);
        let wide = Limiter::new(
            LimiterPolicy {
                ipv6_prefix: 48,
                ..Default::default()
            },
            1024,
        );
        assert_eq!(
            wide.bucket_of(&v6("2001:db8:1:2::1")),
            v6("2001:db8:1::"),
            "a /48 bucket"
        );
    }

    #[tokio::test]
    async fn turns_are_taken_one_at_a_time_per_key_and_forgotten_after() {
        let turns: Turns<u32> = Turns::default();
        let first = turns.take(1).await;
        let other = turns.take(2).await;
        let waiting = turns.take(1);
        tokio::pin!(waiting);
        assert!(
            futures_util::FutureExt::now_or_never(waiting.as_mut()).is_none(),
            "key 1 is taken"
        );
        drop(first);
        let second = waiting.await;
        drop((second, other));
        assert_eq!(turns.in_flight(), 0);
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
