//! A credential's runtime state: cooldown after upstream failures (bounded, growing with each
//! consecutive failure, reset by a success), token usage in the current quota period, and
//! counters for the management API. Kept by credential id, so a reload of the credential's file
//! or row does not forget that it is cooling down or how much it has used.
//!
//! Failure classes: a rate limit, a refusal and an exhausted account quota are the credential's;
//! a server error or a transport failure says nothing about the credential — it only steers
//! requests to other credentials, and never takes the last available one out of service (the
//! pool decides that, `ProviderPool::fail`, before [`Health::fail`] is called).

use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// When a credential's token quota starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetSchedule {
    /// Never: the limit is for the credential's lifetime.
    #[default]
    Never,
    /// At 00:00 UTC.
    Daily,
    /// On the 1st of the month, 00:00 UTC.
    Monthly,
}

/// Why a credential failed, as far as cooldown is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429; `retry_after_secs` from the upstream's `Retry-After`, when it sent one.
    RateLimited {
        /// Seconds the upstream asked for.
        retry_after_secs: Option<u64>,
    },
    /// HTTP 401, 402 or 403: the upstream refuses this credential.
    Rejected,
    /// HTTP 429 saying the account behind the credential is out of quota or credit (OpenAI's
    /// `insufficient_quota`): it will not pass in seconds.
    QuotaExhausted,
    /// HTTP 408 or 5xx.
    Server,
    /// No answer in time, no connection, or the stream broke off.
    Transport,
}

impl Failure {
    /// True when the failure is the credential's own (a rate limit, a refusal, an exhausted
    /// quota); false when it says nothing about the credential (a server error, a timeout, a
    /// connection or stream that broke), which may be the backend's or the request's doing.
    pub fn blames_credential(self) -> bool {
        match self {
            Failure::RateLimited { .. } | Failure::Rejected | Failure::QuotaExhausted => true,
            Failure::Server | Failure::Transport => false,
        }
    }
}

/// What a credential is cooling down from (for the management API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Not cooling down.
    None = 0,
    /// Rate limited upstream.
    RateLimited = 1,
    /// Refused by the upstream.
    Rejected = 2,
    /// Upstream server error.
    Server = 3,
    /// Timeout or connection failure.
    Transport = 4,
    /// The provider said the account is out of quota.
    QuotaExhausted = 5,
}

impl Reason {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Reason::RateLimited,
            2 => Reason::Rejected,
            3 => Reason::Server,
            4 => Reason::Transport,
            5 => Reason::QuotaExhausted,
            _ => Reason::None,
        }
    }

    /// Status word shown by the management API.
    pub fn status(self) -> &'static str {
        match self {
            Reason::None => "active",
            Reason::RateLimited => "rate_limited",
            Reason::Rejected => "rejected",
            Reason::QuotaExhausted => "quota_exceeded",
            Reason::Server | Reason::Transport => "cooling_down",
        }
    }
}

const SEC: u64 = 1000;

/// `(first cooldown, cap)` in milliseconds per failure class. 429 without `Retry-After` starts
/// at 1 s; a refused credential and an exhausted account quota at 5 min (neither will start
/// working by itself soon, but a provider's transient 401 or a topped-up account must not stay
/// disabled for good); server errors and transport failures at 2 s.
fn schedule(f: Failure) -> (u64, u64) {
    match f {
        Failure::RateLimited { .. } => (SEC, 30 * 60 * SEC),
        Failure::Rejected | Failure::QuotaExhausted => (5 * 60 * SEC, 60 * 60 * SEC),
        Failure::Server | Failure::Transport => (2 * SEC, 2 * 60 * SEC),
    }
}

/// Longest `Retry-After` (or reset time) honoured: a month, the longest window a subscription
/// plan resets on (ChatGPT's Codex limits reset weekly, Kiro's quota monthly); an upstream
/// asking for longer is capped.
const MAX_RETRY_AFTER_SECS: u64 = 31 * 24 * 60 * 60;

/// A credential's runtime state; all fields are atomics read on the request path.
#[derive(Debug)]
pub struct Health {
    cooldown_until: AtomicU64,
    level: AtomicU32,
    reason: AtomicU8,
    /// Quota limit in force (`u64::MAX`: unlimited).
    limit: AtomicU64,
    /// Quota period `used` belongs to.
    period: AtomicU64,
    /// Tokens used in `period` (the store's total at the last sync plus local usage since).
    used: AtomicU64,
    /// Local usage not yet written to the store.
    pending: AtomicU64,
    /// Requests sent with this credential.
    pub requests: AtomicU64,
    /// Requests that failed (cooldown-worthy).
    pub failures: AtomicU64,
    /// Last upstream status (0: none yet, 1: transport failure).
    pub last_status: AtomicU16,
    /// Last use (ms).
    pub last_used: AtomicU64,
    /// Fingerprint of the secret the state belongs to (a new secret starts afresh).
    fingerprint: AtomicU64,
    /// The operator was told the quota ran out (cleared when it is available again).
    exhaustion_reported: std::sync::atomic::AtomicBool,
    /// Unconfirmed refusals (401/402/403) since the last success, and the callers they came
    /// from (see [`Health::strike`]).
    strikes: AtomicU8,
    strikers: std::sync::Mutex<Vec<u64>>,
}

/// Refusals from this many distinct callers, with no success in between, cool a credential
/// that no other credential could be compared with.
pub(crate) const STRIKES_TO_COOL: usize = 3;

impl Default for Health {
    fn default() -> Self {
        Self {
            cooldown_until: AtomicU64::new(0),
            level: AtomicU32::new(0),
            reason: AtomicU8::new(0),
            limit: AtomicU64::new(u64::MAX),
            period: AtomicU64::new(0),
            used: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_status: AtomicU16::new(0),
            last_used: AtomicU64::new(0),
            fingerprint: AtomicU64::new(0),
            exhaustion_reported: std::sync::atomic::AtomicBool::new(false),
            strikes: AtomicU8::new(0),
            strikers: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Health {
    /// Records a failure at `now`; returns when the cooldown ends.
    /// Failures of requests that were already in flight while the credential was cooling down
    /// do not lengthen the cooldown: only a failure after it has ended moves up a step (12
    /// concurrent 429s are one step, not twelve).
    pub fn fail(&self, f: Failure, now: u64) -> u64 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let level = if self.cooldown_until() > now {
            self.level.load(Ordering::Acquire).saturating_sub(1)
        } else {
            self.level.fetch_add(1, Ordering::AcqRel)
        }
        .min(20);
        let (base, cap) = schedule(f);
        let wait = match f {
            Failure::RateLimited {
                retry_after_secs: Some(s),
            } => s.clamp(1, MAX_RETRY_AFTER_SECS) * SEC,
            _ => base.saturating_mul(1 << level).min(cap),
        };
        let reason = match f {
            Failure::RateLimited { .. } => Reason::RateLimited,
            Failure::Rejected => Reason::Rejected,
            Failure::QuotaExhausted => Reason::QuotaExhausted,
            Failure::Server => Reason::Server,
            Failure::Transport => Reason::Transport,
        };
        let until = now + wait;
        self.reason.store(reason as u8, Ordering::Release);
        self.cooldown_until.fetch_max(until, Ordering::AcqRel);
        until
    }

    /// Adopts a cooldown another instance started (until `until`, for the reason coded
    /// `reason`); a longer one in force here stays.
    pub(crate) fn cool_until(&self, until: u64, reason: u8) {
        if Reason::from_u8(reason) == Reason::None {
            return;
        }
        if self.cooldown_until.fetch_max(until, Ordering::AcqRel) < until {
            self.reason.store(reason, Ordering::Release);
        }
    }

    /// The code of the current cooldown's reason (what [`Health::cool_until`] takes).
    pub(crate) fn reason_code(&self) -> u8 {
        self.reason.load(Ordering::Acquire)
    }

    /// Records whether the quota is used up; true exactly when it has just become so.
    pub(crate) fn mark_exhausted(&self, exhausted: bool) -> bool {
        if exhausted {
            !self.exhaustion_reported.swap(true, Ordering::AcqRel)
        } else {
            if self.exhaustion_reported.load(Ordering::Relaxed) {
                self.exhaustion_reported.store(false, Ordering::Release);
            }
            false
        }
    }

    /// Counts a failure without cooling down (`auth.disable_cooling`).
    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a refusal (401/402/403) that may be the request's own doing (a header, a model
    /// the key may not use) rather than the credential's, from the caller `who`: true once
    /// refusals from [`STRIKES_TO_COOL`] distinct callers arrived with no success in between —
    /// then the credential is the common factor.
    pub fn strike(&self, who: u64) -> bool {
        let mut strikers = self
            .strikers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.strikes.load(Ordering::Acquire) == 0 {
            strikers.clear();
        }
        if !strikers.contains(&who) {
            strikers.push(who);
        }
        let n = strikers.len().min(u8::MAX as usize);
        self.strikes.store(n as u8, Ordering::Release);
        if n >= STRIKES_TO_COOL {
            strikers.clear();
            self.strikes.store(0, Ordering::Release);
            return true;
        }
        false
    }

    /// Records a request the upstream accepted: the failure streak ends.
    pub fn succeed(&self) {
        if self.strikes.load(Ordering::Relaxed) != 0 {
            self.strikes.store(0, Ordering::Release);
        }
        if self.level.load(Ordering::Relaxed) != 0 {
            self.level.store(0, Ordering::Release);
        }
        if self.reason.load(Ordering::Relaxed) != 0 {
            self.reason.store(0, Ordering::Release);
        }
    }

    /// Ends any cooldown (an operator fixed or re-enabled the credential).
    pub fn clear_cooldown(&self) {
        self.cooldown_until.store(0, Ordering::Release);
        self.level.store(0, Ordering::Release);
        self.reason.store(0, Ordering::Release);
    }

    /// When the cooldown ends (ms; in the past when not cooling down).
    pub fn cooldown_until(&self) -> u64 {
        self.cooldown_until.load(Ordering::Acquire)
    }

    /// Why it is cooling down, if it is at `now`.
    pub fn reason(&self, now: u64) -> Reason {
        if self.cooldown_until() > now {
            Reason::from_u8(self.reason.load(Ordering::Acquire))
        } else {
            Reason::None
        }
    }

    /// The quota limit in force.
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Acquire)).filter(|l| *l != u64::MAX)
    }

    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        self.limit
            .store(limit.unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Tokens used in `period` (0 when the recorded usage belongs to an earlier period).
    pub fn used(&self, period: u64) -> u64 {
        if self.period.load(Ordering::Acquire) == period {
            self.used.load(Ordering::Acquire)
        } else {
            0
        }
    }

    /// Remaining quota in `period` (`u64::MAX` when unlimited).
    pub fn remaining(&self, period: u64) -> u64 {
        match self.limit() {
            Some(l) => l.saturating_sub(self.used(period)),
            None => u64::MAX,
        }
    }

    /// True when the quota of `period` is used up.
    pub fn exhausted(&self, period: u64) -> bool {
        self.remaining(period) == 0
    }

    /// Moves the usage counters to `period` when it is a new one.
    fn roll(&self, period: u64) {
        let seen = self.period.load(Ordering::Acquire);
        if seen != period
            && self
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.used.store(0, Ordering::Release);
            self.pending.store(0, Ordering::Release);
        }
    }

    /// Deducts `tokens` used in `period`.
    pub fn add_usage(&self, period: u64, tokens: u64) {
        self.roll(period);
        self.used.fetch_add(tokens, Ordering::AcqRel);
        self.pending.fetch_add(tokens, Ordering::AcqRel);
    }

    /// Takes the usage not yet written to the store, for `period`.
    pub(crate) fn take_pending(&self, period: u64) -> u64 {
        self.roll(period);
        self.pending.swap(0, Ordering::AcqRel)
    }

    /// Puts back usage whose write failed.
    pub(crate) fn restore_pending(&self, tokens: u64) {
        self.pending.fetch_add(tokens, Ordering::AcqRel);
    }

    /// Adopts the store's total for `period` (which includes every instance's usage).
    pub(crate) fn sync_used(&self, period: u64, total: u64) {
        self.roll(period);
        let local = self.pending.load(Ordering::Acquire);
        self.used.store(total + local, Ordering::Release);
    }

    /// Sets the usage of `period` (the management API's reset).
    pub(crate) fn reset_used(&self, period: u64) {
        self.roll(period);
        self.used.store(0, Ordering::Release);
        self.pending.store(0, Ordering::Release);
    }

    /// Forgets the cooldown when the credential's secret changed (new key, refreshed token).
    pub(crate) fn adopt_secret(&self, fingerprint: u64) {
        let old = self.fingerprint.swap(fingerprint, Ordering::AcqRel);
        if old != 0 && old != fingerprint {
            self.clear_cooldown();
        }
    }
}

/// Quota periods: a number per period (days or months since the epoch) and its store key.
pub mod period {
    use super::ResetSchedule;
    use crate::clock::calendar::{DAY_MS, civil_from_days, days_from_civil};

    /// The period containing `now_ms`.
    pub fn of(schedule: ResetSchedule, now_ms: u64) -> u64 {
        match schedule {
            ResetSchedule::Never => 0,
            ResetSchedule::Daily => now_ms / DAY_MS,
            ResetSchedule::Monthly => {
                let (y, m, _) = civil_from_days((now_ms / DAY_MS) as i64);
                (y * 12 + i64::from(m) - 1) as u64
            }
        }
    }

    /// When the period after `period` starts (ms); `None` for `never`.
    pub fn next_start(schedule: ResetSchedule, period: u64) -> Option<u64> {
        match schedule {
            ResetSchedule::Never => None,
            ResetSchedule::Daily => Some((period + 1) * DAY_MS),
            ResetSchedule::Monthly => {
                let next = period as i64 + 1;
                let days = days_from_civil(next / 12, (next % 12) as u32 + 1, 1);
                Some(days as u64 * DAY_MS)
            }
        }
    }

    /// The store's key of a period (`day:2026-11-23`, `month:2026-11`, `all`).
    pub fn key(schedule: ResetSchedule, period: u64) -> String {
        match schedule {
            ResetSchedule::Never => "all".to_owned(),
            ResetSchedule::Daily => {
                let (y, m, d) = civil_from_days(period as i64);
                format!("day:{y:04}-{m:02}-{d:02}")
            }
            ResetSchedule::Monthly => {
                format!("month:{:04}-{:02}", period / 12, period % 12 + 1)
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn periods_and_their_boundaries() {
            // 2026-11-23T10:00:00Z
            let now = 1_795_428_000_000;
            let d = of(ResetSchedule::Daily, now);
            assert_eq!(key(ResetSchedule::Daily, d), "day:2026-11-23");
            assert_eq!(next_start(ResetSchedule::Daily, d), Some(1_795_478_400_000));
            let m = of(ResetSchedule::Monthly, now);
            assert_eq!(key(ResetSchedule::Monthly, m), "month:2026-11");
            // 2026-12-01T00:00:00Z
            assert_eq!(
                next_start(ResetSchedule::Monthly, m),
                Some(1_796_083_200_000)
            );
            let dec = of(ResetSchedule::Monthly, 1_796_083_200_000);
            assert_eq!(key(ResetSchedule::Monthly, dec), "month:2026-12");
            assert_eq!(key(ResetSchedule::Monthly, dec + 1), "month:2027-01");
            assert_eq!(of(ResetSchedule::Never, now), 0);
            assert_eq!(next_start(ResetSchedule::Never, 0), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldowns_grow_are_bounded_and_end_with_success() {
        let h = Health::default();
        assert_eq!(h.fail(Failure::Server, 0), 2_000);
        for _ in 0..12 {
            assert_eq!(
                h.fail(Failure::Server, 1_000),
                3_000,
                "in-flight failures: same step"
            );
        }
        assert_eq!(h.cooldown_until(), 3_000);
        assert_eq!(
            h.fail(Failure::Server, 3_000),
            7_000,
            "after it ended: next step"
        );
        assert_eq!(h.reason(3_000), Reason::Server);
        let mut t = 7_000;
        for _ in 0..30 {
            t = h.fail(Failure::Server, t);
        }
        assert_eq!(h.fail(Failure::Server, t) - t, 120_000, "capped at 2 min");
        h.succeed();
        let later = t + 200_000;
        assert_eq!(
            h.fail(Failure::Transport, later),
            later + 2_000,
            "streak reset"
        );
        let r = Health::default();
        assert_eq!(
            r.fail(
                Failure::RateLimited {
                    retry_after_secs: Some(7)
                },
                1_000
            ),
            8_000
        );
        assert_eq!(r.reason(7_999), Reason::RateLimited);
        assert_eq!(r.reason(8_000), Reason::None);
        let x = Health::default();
        assert_eq!(x.fail(Failure::Rejected, 0), 300_000);
        assert_eq!(
            x.fail(Failure::Rejected, 10),
            300_010,
            "concurrent 401s: one step"
        );
        assert_eq!(x.reason(0).status(), "rejected");
        x.adopt_secret(1);
        x.adopt_secret(2);
        assert_eq!(x.reason(0), Reason::None, "a new secret starts afresh");
    }

    #[test]
    fn usage_belongs_to_its_period() {
        let h = Health::default();
        h.set_limit(Some(100));
        h.add_usage(5, 60);
        assert_eq!(h.remaining(5), 40);
        h.add_usage(5, 50);
        assert!(h.exhausted(5));
        assert!(!h.exhausted(6), "a new period starts empty");
        assert_eq!(h.take_pending(5), 110);
        h.sync_used(5, 300);
        assert_eq!(h.used(5), 300);
        h.add_usage(6, 1);
        assert_eq!(h.used(6), 1);
        assert_eq!(h.used(5), 0);
    }

    #[test]
    fn refusals_cool_only_once_distinct_callers_were_refused_without_a_success() {
        let h = Health::default();
        assert!(!h.strike(1));
        assert!(!h.strike(1), "one caller repeating counts once");
        assert!(!h.strike(2));
        h.succeed();
        assert!(!h.strike(3), "a success started the count again");
        assert!(!h.strike(4));
        assert!(
            h.strike(5),
            "three distinct callers with no success between"
        );
        assert!(!h.strike(5), "counting starts again after a cooldown");
    }
}
