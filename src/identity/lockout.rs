//! Brute-force lockouts that hold across instances (PRODUCT §2.1, §8): a [`Lockout`] is the
//! process's [`Limiter`] plus, when several instances share a Redis server, the same records kept
//! in Redis, so an attacker spreading guesses over every instance behind a load balancer meets
//! one count and one block.
//!
//! The hot path never waits for Redis: [`Lockout::blocked`] reads this process's table and a
//! mirror of the blocks other instances started, which every instance keeps up to date from the
//! bus (an [`Event::Blocked`] as soon as a block starts or is lifted) and, as a fallback for a
//! missed message or a fresh instance, from the set of active blocks in Redis read every second
//! (`lockouts.sync`). Only failures (and a slow check's advance count and refund, and a success
//! that clears an account) go to Redis — one script call, which applies the same rules as the
//! process's table: the count within the window, escalating blocks, the last few distinct wrong
//! values not counted twice (their fingerprints keyed by a key every instance shares, kept in
//! Redis). When Redis fails, the failure is counted in the process's table instead — a lockout
//! never fails open to an attacker, it only falls back to counting per instance until Redis is
//! back.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::Script;

use super::brute_force::{Bucket, FailureOutcome, Limiter, Reservation};
use crate::bus::{Bus, Event};
use crate::clock::SharedClock;
use crate::jobs::Job;
use crate::redis_conn::{RedisConn, RedisError};

/// What a lockout counts, as it is written in Redis (an address, a network, a username).
pub trait SharedKey: Bucket + Display + FromStr + Send + Sync + 'static {}
impl<K: Bucket + Display + FromStr + Send + Sync + 'static> SharedKey for K {}

/// One record's rules, applied in Redis as `Limiter::record_in`, `try_reserve`, `refund_count`
/// and `record_success` apply them in the process. KEYS: the record (a hash), the set of active
/// blocks (scored by their end). ARGV: op, now, fingerprint (or ""), max failures, ttl, first
/// block, multiplier, longest block (ms), the bucket. Returns {status, value, blocked_until}:
/// 0 counted (value: failures), 1 counted and blocked (value: seconds left), 2 refused while
/// blocked (seconds left), 3 a repeated wrong value, not counted (failures), 4 refunded (value 1
/// when a block was lifted), 5 cleared.
const RECORD: &str = r"
local h, z = KEYS[1], KEYS[2]
local op, now, fp = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local maxf, ttl, first = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local mult, longest, member = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
if op == 'clear' then
  redis.call('DEL', h)
  redis.call('ZREM', z, member)
  return {5, 0, 0}
end
local r = redis.call('HMGET', h, 'c', 'b', 'n', 'e', 'rl', 'rn', 'f1', 'f2', 'f3', 'f4')
local c, b, n = tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or first
local e, rl, rn = tonumber(r[4]) or 0, tonumber(r[5]) or 0, tonumber(r[6]) or 0
local f = {r[7] or '', r[8] or '', r[9] or '', r[10] or ''}
if op == 'refund' then
  if e <= now then return {4, 0, 0} end
  c = math.max(c - 1, 0)
  local lifted = 0
  if c < maxf then
    if b > now then
      b = 0
      lifted = 1
      redis.call('ZREM', z, member)
    end
    n = first
  end
  if fp ~= '' then
    for i = 1, rl do if f[i] == fp then f[i] = '' end end
  end
  redis.call('HSET', h, 'c', c, 'b', b, 'n', n, 'f1', f[1], 'f2', f[2], 'f3', f[3], 'f4', f[4])
  return {4, lifted, 0}
end
if e <= now then
  c, b, n, rl, rn = 0, 0, first, 0, 0
  f = {'', '', '', ''}
end
if op == 'reserve' and b > now then
  return {2, math.ceil((b - now) / 1000), b}
end
if fp ~= '' then
  for i = 1, rl do if f[i] == fp then return {3, c, 0} end end
  local blank = 0
  for i = 1, rl do if f[i] == '' then blank = i break end end
  if blank > 0 then
    f[blank] = fp
  else
    f[rn + 1] = fp
    rn = (rn + 1) % 4
    rl = math.min(rl + 1, 4)
  end
end
c = c + 1
local status, value = 0, c
if c >= maxf then
  local block = math.min(n, longest)
  b = math.max(b, now + block)
  n = math.min(math.max(math.ceil(block * mult), block), longest)
  status, value = 1, math.ceil((b - now) / 1000)
  redis.call('ZADD', z, b, member)
end
e = math.max(now + ttl, b + ttl)
redis.call('HSET', h, 'c', c, 'b', b, 'n', n, 'e', e, 'rl', rl, 'rn', rn,
  'f1', f[1], 'f2', f[2], 'f3', f[3], 'f4', f[4])
redis.call('PEXPIRE', h, e - now)
redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
return {status, value, b}
";

/// A failure counted in advance by [`Lockout::try_reserve`]: give it to [`Lockout::refund`]
/// when the attempt turns out right or not a guess.
#[derive(Debug, Clone)]
#[must_use = "an advance count is refunded or kept on purpose"]
pub struct Advance {
    place: Place,
    /// What counting did (it may have started a block).
    pub outcome: FailureOutcome,
}

#[derive(Debug, Clone)]
enum Place {
    Local(Reservation),
    /// Counted in Redis; the fingerprint to forget on refund (none when nothing was counted).
    Shared {
        counted: bool,
        fingerprint: String,
    },
}

/// The Redis side of a lockout.
struct Shared<K> {
    redis: RedisConn,
    bus: Bus,
    /// `addr`, `user`: the table's name in keys and messages.
    scope: &'static str,
    clock: SharedClock,
    script: Arc<Script>,
    /// The fingerprint key every instance shares (created in Redis on first use).
    fingerprint_key: tokio::sync::OnceCell<[u8; 32]>,
    /// Blocks other instances started: bucket → end (ms).
    mirror: Mutex<HashMap<K, u64>>,
    /// `mirror`'s size, read without the lock (the hot path skips an empty mirror).
    mirrored: AtomicUsize,
    /// When the last "Redis failed" warning was logged (ms).
    warned: AtomicU64,
}

/// Brute-force lockout of one kind of key, shared through Redis when instances share one.
pub struct Lockout<K> {
    local: Limiter<K>,
    /// The key of this process's fingerprints (the local table's and the fallback's).
    local_key: [u8; 32],
    /// Set once, at composition, when instances share a Redis server.
    shared: OnceLock<Arc<Shared<K>>>,
    /// Failures that started or extended a block, here.
    blocks: AtomicU64,
}

impl<K> std::fmt::Debug for Lockout<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lockout")
            .field("shared", &self.shared.get().map(|s| s.scope))
            .finish_non_exhaustive()
    }
}

/// What a script call answered: status, value, block end.
type Answer = (i64, i64, i64);

impl<K: SharedKey> Lockout<K> {
    /// A lockout counting in this process (until [`Lockout::share`]).
    pub fn new(limiter: Limiter<K>) -> std::io::Result<Self> {
        Ok(Self {
            local: limiter,
            local_key: crate::secret::random_bytes::<32>()?,
            shared: OnceLock::new(),
            blocks: AtomicU64::new(0),
        })
    }

    /// Shares the lockout through `redis` under `scope` (`addr`, `user`), listening on `bus`
    /// for the blocks other instances start. Called once, at composition.
    pub fn share(&self, redis: RedisConn, bus: &Bus, scope: &'static str, clock: SharedClock) {
        let shared = Arc::new(Shared {
            redis,
            bus: bus.clone(),
            scope,
            clock,
            script: Arc::new(Script::new(RECORD)),
            fingerprint_key: tokio::sync::OnceCell::new(),
            mirror: Mutex::new(HashMap::new()),
            mirrored: AtomicUsize::new(0),
            warned: AtomicU64::new(0),
        });
        let listener = Arc::downgrade(&shared);
        if self.shared.set(shared).is_ok() {
            bus.listen(move |event| {
                if let Some(s) = listener.upgrade() {
                    s.heard(event);
                }
            });
        }
    }

    /// The settings in force.
    pub fn policy(&self) -> &super::brute_force::LimiterPolicy {
        self.local.policy()
    }

    /// The bucket `key` is counted in.
    pub fn bucket_of(&self, key: &K) -> K {
        self.local.bucket_of(key)
    }

    /// Seconds left if `key` is blocked at `now_ms` — here or, through the mirror, by any
    /// instance. Never waits.
    pub fn blocked(&self, key: &K, now_ms: u64) -> Option<u64> {
        let here = self.local.blocked(key, now_ms);
        let Some(s) = self.shared.get() else {
            return here;
        };
        if s.mirrored.load(Ordering::Relaxed) == 0 {
            return here;
        }
        let bucket = self.local.bucket_of(key);
        let there = s
            .mirror
            .lock()
            .ok()
            .and_then(|m| m.get(&bucket).copied())
            .filter(|until| *until > now_ms)
            .map(|until| (until - now_ms).div_ceil(1000));
        here.max(there)
    }

    /// Records a failed attempt of `key`; `value` (the wrong credential, when the caller can
    /// tell repeats apart) is counted once however often it is repeated.
    pub async fn record_failure(
        &self,
        key: &K,
        value: Option<&str>,
        now_ms: u64,
    ) -> FailureOutcome {
        let outcome = self.count_failure(key, value, now_ms).await;
        self.count_block(outcome);
        outcome
    }

    /// Blocks this process started or extended so far (`portcullis_lockouts_total`).
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    /// Entries in this process's table (addresses or accounts with recent failures or a block).
    pub fn tracked(&self) -> usize {
        self.local.len()
    }

    fn count_block(&self, outcome: FailureOutcome) {
        if matches!(outcome, FailureOutcome::Blocked { .. }) {
            self.blocks.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn count_failure(&self, key: &K, value: Option<&str>, now_ms: u64) -> FailureOutcome {
        if let Some(s) = self.shared.get() {
            let bucket = self.local.bucket_of(key);
            let fingerprint = s.fingerprint(value).await;
            match s
                .call(self, "count", &bucket, fingerprint.as_deref(), now_ms)
                .await
            {
                Ok(answer) => return s.outcome(&bucket, answer),
                Err(e) => s.fall_back(&e, now_ms),
            }
        }
        match value {
            Some(v) => self
                .local
                .record_failure_of(key, self.local_fingerprint(v), now_ms),
            None => self.local.record_failure(key, now_ms),
        }
    }

    /// Starts a slow attempt of `key`: refused with the seconds left while blocked, otherwise
    /// counted now (see [`Limiter::try_reserve`]).
    pub async fn try_reserve(
        &self,
        key: &K,
        value: Option<&str>,
        now_ms: u64,
    ) -> Result<Advance, u64> {
        if let Some(secs) = self.blocked(key, now_ms) {
            return Err(secs);
        }
        let advance = self.reserve(key, value, now_ms).await;
        if let Ok(a) = &advance {
            self.count_block(a.outcome);
        }
        advance
    }

    async fn reserve(&self, key: &K, value: Option<&str>, now_ms: u64) -> Result<Advance, u64> {
        if let Some(s) = self.shared.get() {
            let bucket = self.local.bucket_of(key);
            let fingerprint = s.fingerprint(value).await;
            match s
                .call(self, "reserve", &bucket, fingerprint.as_deref(), now_ms)
                .await
            {
                Ok((2, secs, until)) => {
                    s.mirror_block(&bucket, u64::try_from(until).unwrap_or(0));
                    return Err(u64::try_from(secs).unwrap_or(1));
                }
                Ok(answer) => {
                    return Ok(Advance {
                        place: Place::Shared {
                            counted: answer.0 != 3,
                            fingerprint: fingerprint.unwrap_or_default(),
                        },
                        outcome: s.outcome(&bucket, answer),
                    });
                }
                Err(e) => s.fall_back(&e, now_ms),
            }
        }
        let fingerprint = value.map(|v| self.local_fingerprint(v));
        self.local
            .try_reserve(key, fingerprint, now_ms)
            .map(|r| Advance {
                outcome: r.outcome,
                place: Place::Local(r),
            })
    }

    /// Takes back an [`Advance`] (the attempt was right, or proved nothing about guessing).
    pub async fn refund(&self, key: &K, advance: Advance, now_ms: u64) {
        match advance.place {
            Place::Local(r) => self.local.refund_reservation(key, r, now_ms),
            Place::Shared { counted: false, .. } => {}
            Place::Shared {
                counted: true,
                fingerprint,
            } => {
                let Some(s) = self.shared.get() else { return };
                let bucket = self.local.bucket_of(key);
                let fp = (!fingerprint.is_empty()).then_some(fingerprint.as_str());
                match s.call(self, "refund", &bucket, fp, now_ms).await {
                    Ok((_, 1, _)) => {
                        s.mirror_block(&bucket, 0);
                        s.bus.publish(Event::Blocked {
                            scope: s.scope.to_owned(),
                            bucket: bucket.to_string(),
                            until_ms: 0,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => s.fall_back(&e, now_ms),
                }
            }
        }
    }

    /// Clears `key` after a success.
    pub async fn record_success(&self, key: &K, now_ms: u64) {
        self.local.record_success(key);
        if let Some(s) = self.shared.get() {
            let bucket = self.local.bucket_of(key);
            if let Err(e) = s.call(self, "clear", &bucket, None, now_ms).await {
                s.fall_back(&e, now_ms);
            }
        }
    }

    /// `lockouts.sync.<scope>` (shared lockouts only): reads the active blocks every second —
    /// the fallback for a missed message and how a fresh instance learns the blocks in force.
    pub fn jobs(&self, name: &'static str) -> Vec<Job> {
        let Some(s) = self.shared.get() else {
            return Vec::new();
        };
        let s = Arc::downgrade(s);
        let capacity = self.local.capacity();
        vec![Job::new(name, Duration::from_secs(1), move |now| {
            let s = s.clone();
            async move {
                if let Some(s) = s.upgrade() {
                    s.sync(now, capacity).await;
                }
            }
        })]
    }

    /// A keyed fingerprint of a wrong value for this process's table (never 0, never the value).
    fn local_fingerprint(&self, value: &str) -> u64 {
        fingerprint(&self.local_key, value)
    }
}

/// A keyed fingerprint of `value` under `key`: 8 bytes of keyed BLAKE3, never 0 (0 marks a
/// forgotten fingerprint in the table).
fn fingerprint(key: &[u8; 32], value: &str) -> u64 {
    let h = blake3::keyed_hash(key, value.as_bytes());
    let mut f = [0u8; 8];
    f.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(f).max(1)
}

impl<K: SharedKey> Shared<K> {
    /// Runs the record script for `bucket`.
    async fn call(
        &self,
        lockout: &Lockout<K>,
        op: &str,
        bucket: &K,
        fingerprint: Option<&str>,
        now_ms: u64,
    ) -> Result<Answer, RedisError> {
        let p = lockout.local.policy();
        let name = bucket.to_string();
        let keys = vec![
            self.redis.key(&format!("lockout:{}:{name}", self.scope)),
            self.blocks_key(),
        ];
        let args = vec![
            op.to_owned(),
            now_ms.to_string(),
            fingerprint.unwrap_or_default().to_owned(),
            p.max_failed_attempts.to_string(),
            p.ttl.as_millis().to_string(),
            p.initial_block.as_millis().to_string(),
            p.block_multiplier.to_string(),
            p.max_block.as_millis().to_string(),
            name,
        ];
        self.redis.script(&self.script, keys, args).await
    }

    fn blocks_key(&self) -> String {
        self.redis.key(&format!("lockout:{}:blocked", self.scope))
    }

    /// The fingerprint of `value` under the key every instance shares; `None` without a value
    /// or when the key cannot be read (the value is then counted every time, never skipped).
    async fn fingerprint(&self, value: Option<&str>) -> Option<String> {
        let value = value?;
        let key = self
            .fingerprint_key
            .get_or_try_init(|| self.shared_fingerprint_key())
            .await
            .ok()?;
        Some(format!("{:016x}", fingerprint(key, value)))
    }

    /// The fingerprint key in Redis: set once by the first instance that needs it.
    async fn shared_fingerprint_key(&self) -> Result<[u8; 32], RedisError> {
        let fresh =
            crate::secret::random_bytes::<32>().map_err(|e| RedisError::Failed(e.to_string()))?;
        let name = self.redis.key("lockout:fingerprint-key");
        let proposed = crate::store::hex(&fresh);
        let stored: String = self
            .redis
            .run(move |mut c| {
                let (name, proposed) = (name.clone(), proposed.clone());
                async move {
                    let _: Option<String> = redis::cmd("SET")
                        .arg(&name)
                        .arg(&proposed)
                        .arg("NX")
                        .query_async(&mut c)
                        .await?;
                    redis::cmd("GET").arg(&name).query_async(&mut c).await
                }
            })
            .await?;
        let bytes = (0..stored.len())
            .step_by(2)
            .filter_map(|i| stored.get(i..i + 2))
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect::<Vec<u8>>();
        bytes
            .try_into()
            .map_err(|_| RedisError::Failed("the stored fingerprint key is malformed".to_owned()))
    }

    /// What a counting answer means; a block is mirrored here and told to the other instances.
    fn outcome(&self, bucket: &K, (status, value, until): Answer) -> FailureOutcome {
        let value = u64::try_from(value).unwrap_or(0);
        if status == 1 {
            let until = u64::try_from(until).unwrap_or(0);
            self.mirror_block(bucket, until);
            self.bus.publish(Event::Blocked {
                scope: self.scope.to_owned(),
                bucket: bucket.to_string(),
                until_ms: until,
            });
            FailureOutcome::Blocked {
                retry_after_secs: value.max(1),
            }
        } else {
            FailureOutcome::Counted {
                failures: u32::try_from(value).unwrap_or(u32::MAX),
            }
        }
    }

    /// Mirrors a block (`until` 0: lifts it).
    fn mirror_block(&self, bucket: &K, until: u64) {
        let Ok(mut m) = self.mirror.lock() else {
            return;
        };
        if until == 0 {
            m.remove(bucket);
        } else {
            let e = m.entry(bucket.clone()).or_insert(0);
            *e = (*e).max(until);
        }
        self.mirrored.store(m.len(), Ordering::Relaxed);
    }

    /// A message from another instance.
    fn heard(self: &Arc<Self>, event: &Event) {
        match event {
            Event::Blocked {
                scope,
                bucket,
                until_ms,
            } if scope == self.scope => {
                if let Ok(k) = bucket.parse::<K>() {
                    self.mirror_block(&k, *until_ms);
                }
            }
            Event::Resync => {
                let s = self.clone();
                tokio::spawn(async move {
                    let now = s.clock.now_millis();
                    s.sync(now, usize::MAX).await;
                });
            }
            _ => {}
        }
    }

    /// Adopts the active blocks in Redis (at most `capacity`, the longest-running first) and
    /// forgets mirrored blocks that have ended.
    async fn sync(&self, now_ms: u64, capacity: usize) {
        let name = self.blocks_key();
        let limit = i64::try_from(capacity).unwrap_or(i64::MAX);
        let read = self
            .redis
            .run(move |mut c| {
                let name = name.clone();
                async move {
                    redis::cmd("ZREVRANGEBYSCORE")
                        .arg(&name)
                        .arg("+inf")
                        .arg(format!("({now_ms}"))
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(limit)
                        .query_async::<Vec<(String, f64)>>(&mut c)
                        .await
                }
            })
            .await;
        let blocks = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, scope = self.scope, "could not read the shared blocks");
                return;
            }
        };
        let Ok(mut m) = self.mirror.lock() else {
            return;
        };
        m.retain(|_, until| *until > now_ms);
        for (bucket, until) in blocks {
            if let Ok(k) = bucket.parse::<K>() {
                let e = m.entry(k).or_insert(0);
                *e = (*e).max(until as u64);
            }
        }
        self.mirrored.store(m.len(), Ordering::Relaxed);
    }

    /// Logs (at most once a minute) that Redis failed and failures are counted per instance.
    fn fall_back(&self, e: &RedisError, now_ms: u64) {
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now_ms.saturating_sub(last) >= 60_000)
            && self
                .warned
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %e, scope = self.scope, "shared lockout unavailable: failed attempts are counted by this instance alone until Redis answers");
        }
    }
}
