//! The counters limits and budgets are enforced with, behind one narrow trait so a shared
//! implementation (Redis, with server-side scripts) can replace the in-process one without the
//! policy changing: [`Counters`]. A counter is a named non-negative integer with an optional
//! expiry; a reservation adds to several counters at once, all or nothing; settlement adjusts
//! them by signed deltas.
//!
//! The contract every implementation keeps (its tests are `tests/it/limits/counters.rs`, a
//! suite any implementation can be run through):
//! - [`Counters::reserve`] is atomic across its claims: either every claim's amount is added, or
//!   none is — a claim whose counter would pass its limit refuses the whole reservation, and a
//!   seeded claim whose counter does not exist makes it report [`Reserved::Unseeded`] (the caller
//!   seeds the counter from the store and tries again). Concurrent reservations never together
//!   pass a limit.
//! - A counter created by a reservation starts at 0 and is forgotten at its expiry (the next
//!   reservation after that starts again from 0, or reports it unseeded).
//! - [`Counters::adjust`] adds signed deltas, never taking a counter below 0, and ignores
//!   counters that do not exist (an expired window is not recreated by a late settlement).
//! - [`Counters::seed`] creates a counter at a value only if it does not exist.
//!
//! Times are passed in (the gateway clock), never read here.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

/// One counter a reservation adds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The counter's name, the same on every instance.
    pub key: String,
    /// What the reservation adds.
    pub amount: u64,
    /// The counter may hold at most this much once the amount is added.
    pub limit: u64,
    /// When the counter is forgotten (ms since the epoch); `None`: never.
    pub expires_at_ms: Option<u64>,
    /// The counter must exist already (a budget, seeded with what the store says was spent);
    /// when it does not, the reservation reports it instead of starting it at 0.
    pub seeded: bool,
}

/// What a reservation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every claim's amount was added.
    Done,
    /// Nothing was added: claim `index` would have passed its limit; its counter holds `current`.
    Refused {
        /// Index of the first claim that did not fit.
        index: usize,
        /// That counter's value.
        current: u64,
    },
    /// Nothing was added: the counters of these seeded claims do not exist.
    Unseeded(Vec<usize>),
}

/// The counters could not be reached (a shared implementation's server is down).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the limit counters are unavailable: {0}")]
pub struct CounterError(pub String);

/// Named counters with limits, shared by everything that enforces the same limits.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds every claim's amount if every counter stays within its limit (see the module's
    /// contract); `now_ms` decides expiry.
    async fn reserve(&self, claims: &[Claim], now_ms: u64) -> Result<Reserved, CounterError>;

    /// Adds each signed delta to its counter (floored at 0; missing counters are left missing).
    async fn adjust(&self, deltas: &[(String, i64)], now_ms: u64) -> Result<(), CounterError>;

    /// Creates counter `key` at `value` (forgotten at `expires_at_ms`) unless it exists; true
    /// when it was created.
    async fn seed(
        &self,
        key: &str,
        value: u64,
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<bool, CounterError>;

    /// The value of counter `key`, `None` when it does not exist (or has expired).
    async fn value(&self, key: &str, now_ms: u64) -> Result<Option<u64>, CounterError>;

    /// The background work the counters need (Redis's: the heartbeat that keeps this instance's
    /// held slots counted).
    fn jobs(self: std::sync::Arc<Self>) -> Vec<crate::jobs::Job> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    value: u64,
    expires_at_ms: Option<u64>,
}

impl Entry {
    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }
}

/// How often (clock ms) the in-process counters drop expired entries.
const SWEEP_EVERY_MS: u64 = 60_000;

/// The in-process [`Counters`]: one map behind one lock, for a single instance. Every
/// operation completes without waiting (its futures are ready when first polled).
#[derive(Debug, Default)]
pub struct LocalCounters {
    inner: Mutex<Local>,
}

#[derive(Debug, Default)]
struct Local {
    map: HashMap<String, Entry>,
    next_sweep_ms: u64,
}

impl Local {
    fn live(&mut self, key: &str, now_ms: u64) -> Option<&mut Entry> {
        self.map.get_mut(key).filter(|e| e.live(now_ms))
    }

    fn sweep(&mut self, now_ms: u64) {
        if now_ms >= self.next_sweep_ms {
            self.map.retain(|_, e| e.live(now_ms));
            self.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
        }
    }
}

impl LocalCounters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        // A panic while holding the lock leaves whole integers behind: still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Counters for LocalCounters {
    async fn reserve(&self, claims: &[Claim], now_ms: u64) -> Result<Reserved, CounterError> {
        let mut local = self.lock();
        local.sweep(now_ms);
        let unseeded: Vec<usize> = claims
            .iter()
            .enumerate()
            .filter(|(_, c)| c.seeded && local.live(&c.key, now_ms).is_none())
            .map(|(i, _)| i)
            .collect();
        if !unseeded.is_empty() {
            return Ok(Reserved::Unseeded(unseeded));
        }
        // The same counter may be claimed twice (two rule sets of one subject): check sums.
        for (index, c) in claims.iter().enumerate() {
            let current = local.live(&c.key, now_ms).map_or(0, |e| e.value);
            let earlier: u64 = claims[..index]
                .iter()
                .filter(|o| o.key == c.key)
                .map(|o| o.amount)
                .sum();
            if current.saturating_add(earlier).saturating_add(c.amount) > c.limit {
                return Ok(Reserved::Refused { index, current });
            }
        }
        for c in claims {
            match local.live(&c.key, now_ms) {
                Some(e) => e.value = e.value.saturating_add(c.amount),
                None => {
                    local.map.insert(
                        c.key.clone(),
                        Entry {
                            value: c.amount,
                            expires_at_ms: c.expires_at_ms,
                        },
                    );
                }
            }
        }
        Ok(Reserved::Done)
    }

    async fn adjust(&self, deltas: &[(String, i64)], now_ms: u64) -> Result<(), CounterError> {
        let mut local = self.lock();
        for (key, delta) in deltas {
            if let Some(e) = local.live(key, now_ms) {
                e.value = e.value.saturating_add_signed(*delta);
            }
        }
        Ok(())
    }

    async fn seed(
        &self,
        key: &str,
        value: u64,
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<bool, CounterError> {
        let mut local = self.lock();
        if local.live(key, now_ms).is_some() {
            return Ok(false);
        }
        local.map.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at_ms,
            },
        );
        Ok(true)
    }

    async fn value(&self, key: &str, now_ms: u64) -> Result<Option<u64>, CounterError> {
        Ok(self.lock().live(key, now_ms).map(|e| e.value))
    }
}
