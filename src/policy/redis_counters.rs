//! [`RedisCounters`]: the [`Counters`] of several gateway instances, kept in one Redis server so
//! they share one limit — never the limit times the number of instances. Each operation is one
//! server-side Lua script, so it runs atomically: a reservation checks and adds every claim, all
//! or nothing, with no other command in between, whichever instance sends it.
//!
//! A counter is a hash under `<prefix>counter:<name>`: its value (`v`) and, when it has one, its
//! expiry by the gateway clock (`e`, ms since the epoch). Times come from the caller, as the
//! contract says: a script treats a counter whose `e` is not after the caller's `now_ms` as
//! missing. Redis's own expiry only collects garbage: it is set to the counter's remaining time
//! by the caller's clock plus [`GRACE_MS`], so it never removes a live counter early (clocks of
//! instances would have to disagree by more than the grace). Counters without an expiry (a
//! lifetime budget) have none in Redis either.
//!
//! Held counters (the concurrency slots, [`HELD`]) are leased instead: each instance adds to its
//! own field of the hash (a random id drawn at start), and refreshes a heartbeat key
//! (`<prefix>instance:<id>`, [`HEARTBEAT_TTL_MS`], renewed by the `counters.heartbeat` job and
//! every reservation). A held counter's value is the sum of the fields of instances whose
//! heartbeat is alive; a dead instance's field is deleted by the next script that reads it. So
//! the slots of an instance killed mid-request free themselves within the heartbeat's lifetime,
//! with no settlement.
//!
//! Numbers travel as decimal text and are doubles inside Lua: amounts, limits and values are
//! capped at 2^53 − 1 (nine quadrillion tokens or micro-dollars — nothing real comes close).
//!
//! A settlement ([`Counters::adjust`]) that finds Redis refusing connections — the command
//! certainly not sent — is sent again for about a quarter of a minute (it runs in a task of its
//! own, not on the request path), so a restart does not leave reservations counted for good.

use std::sync::Arc;

use async_trait::async_trait;
use redis::{FromRedisValue, Script};

use super::counters::{Claim, CounterError, Counters, Reserved};
use crate::redis_conn::{RedisConn, RedisError};

/// How long after its expiry (by the clock of the instance that wrote it) Redis drops a counter.
pub const GRACE_MS: u64 = 10 * 60_000;

/// Counters whose name starts with this are held counters (see the module comment).
pub const HELD: &str = "conc|";

/// How long an instance's held slots outlive its last heartbeat.
pub const HEARTBEAT_TTL_MS: u64 = 15_000;

/// How often the heartbeat is renewed.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The largest integer a Lua number holds exactly.
const MAX_EXACT: u64 = (1 << 53) - 1;

/// Pauses (ms) before each new attempt of a settlement Redis refused.
const ADJUST_RETRY_MS: [u64; 6] = [250, 500, 1_000, 2_000, 4_000, 8_000];

/// What every script starts with: the caller's clock, and reading and writing a counter.
const PRELUDE: &str = r"
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local me, beats, held_prefix, beat_ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local function int(n) return string.format('%d', n) end
local function expiry(arg) if arg == '' then return nil end return tonumber(arg) end
local function held(key) return string.sub(key, 1, #held_prefix) == held_prefix end
local function beat() redis.call('SET', beats .. me, '1', 'PX', beat_ttl) end
-- A held counter: the fields of instances whose heartbeat is alive (dead ones are deleted).
local function held_value(key)
  local f = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #f, 2 do
    if f[i] == me or redis.call('EXISTS', beats .. f[i]) == 1 then
      total = total + tonumber(f[i + 1])
    else
      redis.call('HDEL', key, f[i])
    end
  end
  return total
end
-- A counter's value and expiry; nil when it is missing or expired by the caller's clock.
local function live(key)
  if held(key) then return held_value(key), nil end
  local f = redis.call('HMGET', key, 'v', 'e')
  if not f[1] then return nil, nil end
  local e = f[2] and tonumber(f[2]) or nil
  if e and now >= e then return nil, nil end
  return tonumber(f[1]), e
end
-- Adds `delta` to this instance's share of a held counter (never below 0).
local function hold(key, delta)
  local v = math.max(0, tonumber(redis.call('HGET', key, me) or '0') + delta)
  if v == 0 then redis.call('HDEL', key, me) else redis.call('HSET', key, me, int(v)) end
  beat()
end
-- Writes a whole counter; Redis drops it `grace` ms after its expiry.
local function put(key, v, e)
  if e then
    redis.call('HSET', key, 'v', int(v), 'e', int(e))
    redis.call('PEXPIRE', key, int(math.max(e - now, 1) + grace))
  else
    redis.call('HSET', key, 'v', int(v))
    redis.call('HDEL', key, 'e')
    redis.call('PERSIST', key)
  end
end
";

/// KEYS: the claims' counters; ARGV[4i+3 .. 4i+6]: claim i's amount, limit, expiry ('' for
/// none), seeded ('1'). Replies {0} done, {1, index, current} refused, {2, index…} unseeded.
const RESERVE: &str = r"
local n = #KEYS
local cur, exp = {}, {}
local missing = {2}
for i = 1, n do
  cur[i], exp[i] = live(KEYS[i])
  if cur[i] == nil and ARGV[4 * i + 6] == '1' then missing[#missing + 1] = i - 1 end
end
if #missing > 1 then return missing end
-- The same counter may be claimed twice (two rule sets of one subject): check sums.
local sum = {}
for i = 1, n do
  local k = KEYS[i]
  local amount, limit = tonumber(ARGV[4 * i + 3]), tonumber(ARGV[4 * i + 4])
  local earlier = sum[k] or 0
  if (cur[i] or 0) + earlier + amount > limit then return {1, i - 1, cur[i] or 0} end
  sum[k] = earlier + amount
end
for i = 1, n do
  local k = KEYS[i]
  if sum[k] then
    if held(k) then
      hold(k, sum[k])
    elseif cur[i] then
      put(k, cur[i] + sum[k], exp[i])
    else
      put(k, sum[k], expiry(ARGV[4 * i + 5]))
    end
    sum[k] = nil
  end
end
return {0}
";

/// KEYS: counters; ARGV[i+6]: counter i's signed delta. Missing counters stay missing; a held
/// counter changes this instance's share.
const ADJUST: &str = r"
for i = 1, #KEYS do
  local delta = tonumber(ARGV[i + 6])
  if held(KEYS[i]) then
    hold(KEYS[i], delta)
  else
    local v = live(KEYS[i])
    if v then redis.call('HSET', KEYS[i], 'v', int(math.max(0, v + delta))) end
  end
end
return 0
";

/// KEYS[1]: the counter; ARGV[7]: value, ARGV[8]: expiry. Replies 1 when it was created.
const SEED: &str = r"
if live(KEYS[1]) then return 0 end
put(KEYS[1], tonumber(ARGV[7]), expiry(ARGV[8]))
return 1
";

/// KEYS[1]: the counter. Replies its value, or nil (a held counter at 0 is missing).
const VALUE: &str = r"
local v = live(KEYS[1])
if v == nil or (held(KEYS[1]) and v == 0) then return false end
return v
";

/// [`Counters`] in Redis, shared by every instance using the same server and prefix.
pub struct RedisCounters {
    conn: RedisConn,
    /// This instance's id: its field in held counters, its heartbeat key's name.
    instance: String,
    reserve: Arc<Script>,
    adjust: Arc<Script>,
    seed: Arc<Script>,
    value: Arc<Script>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

fn script(body: &str) -> Arc<Script> {
    Arc::new(Script::new(&format!("{PRELUDE}{body}")))
}

fn exact(n: u64) -> u64 {
    n.min(MAX_EXACT)
}

fn expiry_arg(at: Option<u64>) -> String {
    at.map(|ms| exact(ms).to_string()).unwrap_or_default()
}

fn counter_error(e: RedisError) -> CounterError {
    CounterError(e.to_string())
}

impl RedisCounters {
    /// Counters on `conn`, under its prefix.
    pub fn new(conn: RedisConn) -> std::io::Result<Self> {
        let instance = crate::store::hex(&crate::secret::random_bytes::<8>()?);
        Ok(Self {
            conn,
            instance,
            reserve: script(RESERVE),
            adjust: script(ADJUST),
            seed: script(SEED),
            value: script(VALUE),
        })
    }

    /// This instance's id in held counters (its heartbeat is `<prefix>instance:<id>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The arguments every script starts with: the caller's clock, the grace, this instance and
    /// what held counters need.
    fn fixed_args(&self, now_ms: u64) -> Vec<String> {
        vec![
            now_ms.to_string(),
            GRACE_MS.to_string(),
            self.instance.clone(),
            format!("{}instance:", self.conn.prefix()),
            self.key(HELD),
            HEARTBEAT_TTL_MS.to_string(),
        ]
    }

    /// Renews this instance's heartbeat: its held slots stay counted.
    pub async fn heartbeat(&self) -> Result<(), RedisError> {
        let key = format!("{}instance:{}", self.conn.prefix(), self.instance);
        self.conn
            .run(move |mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg("1")
                        .arg("PX")
                        .arg(HEARTBEAT_TTL_MS)
                        .query_async::<()>(&mut c)
                        .await
                }
            })
            .await
    }

    /// The Redis key of counter `name`.
    fn key(&self, name: &str) -> String {
        format!("{}counter:{name}", self.conn.prefix())
    }

    /// Runs `script` with `keys` and `args`.
    async fn call<T>(
        &self,
        script: &Arc<Script>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, RedisError>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.conn.script(script, keys, args).await
    }
}

#[async_trait]
impl Counters for RedisCounters {
    fn jobs(self: Arc<Self>) -> Vec<crate::jobs::Job> {
        vec![crate::jobs::Job::new(
            "counters.heartbeat",
            HEARTBEAT_EVERY,
            move |_| {
                let counters = self.clone();
                async move {
                    if let Err(e) = counters.heartbeat().await {
                        tracing::debug!(error = %e, "could not renew the held slots' heartbeat");
                    }
                }
            },
        )]
    }

    async fn reserve(&self, claims: &[Claim], now_ms: u64) -> Result<Reserved, CounterError> {
        if claims.is_empty() {
            return Ok(Reserved::Done);
        }
        let keys = claims.iter().map(|c| self.key(&c.key)).collect();
        let mut args = self.fixed_args(now_ms);
        for c in claims {
            args.extend([
                exact(c.amount).to_string(),
                exact(c.limit).to_string(),
                expiry_arg(c.expires_at_ms),
                if c.seeded { "1" } else { "0" }.to_owned(),
            ]);
        }
        let reply: Vec<u64> = self
            .call(&self.reserve, keys, args)
            .await
            .map_err(counter_error)?;
        let index = |i: &u64| usize::try_from(*i).unwrap_or(usize::MAX);
        match reply.as_slice() {
            [0] => Ok(Reserved::Done),
            [1, i, current] => Ok(Reserved::Refused {
                index: index(i),
                current: *current,
            }),
            [2, missing @ ..] => Ok(Reserved::Unseeded(missing.iter().map(index).collect())),
            other => Err(CounterError(format!(
                "unexpected reply from the reservation script: {other:?}"
            ))),
        }
    }

    async fn adjust(&self, deltas: &[(String, i64)], now_ms: u64) -> Result<(), CounterError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = deltas.iter().map(|(k, _)| self.key(k)).collect();
        let mut args = self.fixed_args(now_ms);
        let cap = MAX_EXACT as i64;
        args.extend(
            deltas
                .iter()
                .map(|(_, d)| (*d).clamp(-cap, cap).to_string()),
        );
        let mut pauses = ADJUST_RETRY_MS.iter();
        loop {
            let sent = self.call::<i64>(&self.adjust, keys.clone(), args.clone());
            match sent.await {
                Ok(_) => return Ok(()),
                Err(e) if e.unsent() => match pauses.next() {
                    Some(ms) => tokio::time::sleep(std::time::Duration::from_millis(*ms)).await,
                    None => return Err(counter_error(e)),
                },
                Err(e) => return Err(counter_error(e)),
            }
        }
    }

    async fn seed(
        &self,
        key: &str,
        value: u64,
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<bool, CounterError> {
        let mut args = self.fixed_args(now_ms);
        args.extend([exact(value).to_string(), expiry_arg(expires_at_ms)]);
        let created: i64 = self
            .call(&self.seed, vec![self.key(key)], args)
            .await
            .map_err(counter_error)?;
        Ok(created == 1)
    }

    async fn value(&self, key: &str, now_ms: u64) -> Result<Option<u64>, CounterError> {
        let keys = vec![self.key(key)];
        self.call(&self.value, keys, self.fixed_args(now_ms))
            .await
            .map_err(counter_error)
    }
}
