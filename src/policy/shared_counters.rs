//! What the policy does about counters it reaches over the network (Redis): [`FailMode`] — the
//! operator's choice when they cannot be reached (`limits.on_redis_error`: refuse metered
//! requests, or admit them unmetered) —, [`Outage`], which reports such failures in the log at
//! most once every few seconds with how many requests they touched, and [`InFlight`], the
//! settlements still on their way to the counters (awaited at shutdown and by tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::counters::CounterError;

/// What a metered request gets when the limit counters cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Refused with a 503 saying the limit counters are unavailable (the default: no limit or
    /// budget is ever passed).
    #[default]
    Closed,
    /// Admitted without reserving or settling any counter (its usage is still recorded); a
    /// warning is logged.
    Open,
}

impl FailMode {
    /// The name used in config and `/internal/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Closed => "closed",
            FailMode::Open => "open",
        }
    }
}

/// How often (gateway clock, ms) an outage of the counters is reported while it lasts.
const REPORT_EVERY_MS: u64 = 5_000;

/// What failed to reach the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missed {
    /// A reservation: the request was refused or admitted unmetered, per the [`FailMode`].
    Reservation,
    /// A settlement: its reservation stays counted until the counter expires.
    Settlement,
}

/// Failures to reach the counters since the last report, reported at most every few seconds.
#[derive(Debug)]
pub(crate) struct Outage {
    mode: FailMode,
    next_report_ms: AtomicU64,
    reservations: AtomicU64,
    settlements: AtomicU64,
    down: AtomicBool,
}

impl Outage {
    pub(crate) fn new(mode: FailMode) -> Self {
        Self {
            mode,
            next_report_ms: AtomicU64::new(0),
            reservations: AtomicU64::new(0),
            settlements: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    pub(crate) fn mode(&self) -> FailMode {
        self.mode
    }

    /// Counts a failure at `now` and reports the ones counted so far when a report is due.
    pub(crate) fn missed(&self, what: Missed, error: &CounterError, now: u64) {
        self.down.store(true, Ordering::Relaxed);
        match what {
            Missed::Reservation => &self.reservations,
            Missed::Settlement => &self.settlements,
        }
        .fetch_add(1, Ordering::Relaxed);
        let due = self.next_report_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .next_report_ms
                .compare_exchange(
                    due,
                    now + REPORT_EVERY_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let reservations = self.reservations.swap(0, Ordering::Relaxed);
        let settlements = self.settlements.swap(0, Ordering::Relaxed);
        match self.mode {
            FailMode::Closed => tracing::error!(
                %error,
                refused = reservations,
                settlements_lost = settlements,
                "limit counters unavailable: metered requests are refused (limits.on_redis_error: closed)"
            ),
            FailMode::Open => tracing::warn!(
                %error,
                admitted_unmetered = reservations,
                settlements_lost = settlements,
                "limit counters unavailable: metered requests are admitted without limits or budgets (limits.on_redis_error: open)"
            ),
        }
    }

    /// A reservation reached the counters: reports the end of an outage once.
    pub(crate) fn reached(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("limit counters reachable again");
        }
    }
}

/// Settlements on their way to the counters.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One settlement in flight, until dropped.
pub(crate) struct Sending(Arc<InFlight>);

impl Drop for Sending {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Counts a settlement until the returned guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> Sending {
        self.count.fetch_add(1, Ordering::AcqRel);
        Sending(self.clone())
    }

    /// Waits until no settlement is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}
