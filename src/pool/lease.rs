//! One request's use of a credential, kept by the pool: the bookkeeping of an attempt (counters,
//! last status, refusal strikes, cooldowns) and the [`Lease`] that settles the answer's usage.
//! The upstream's failover loop (`upstream::Provider::call`) drives these; nothing above it
//! writes a credential's health.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Credential, Failure, ProviderPool};
use crate::clock::SharedClock;
use crate::secret::scrub::Scrubber;

/// What the pool did with a failed attempt's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Cooling down until this time (ms; `now` when cooling is off).
    Cooling(u64),
    /// A refusal not believed from one caller: the credential stays in use (a suspect).
    Doubted,
    /// The request, not the credential, was at fault: the credential works.
    Acquitted,
}

impl ProviderPool {
    /// An attempt with `c` begins at `now`.
    pub(crate) fn started(&self, c: &Credential, now: u64) {
        c.health.requests.fetch_add(1, Ordering::Relaxed);
        c.health.last_used.store(now, Ordering::Relaxed);
    }

    /// The upstream answered `c`'s attempt with `status` (1: a transport failure).
    pub(crate) fn answered(&self, c: &Credential, status: u16) {
        c.health.last_status.store(status, Ordering::Relaxed);
    }

    /// Judges a failed attempt: `failure` is `None` when the request was at fault. A refusal is
    /// believed only once callers of `STRIKES_TO_COOL` distinct principals (`who`) were refused
    /// with no success in between.
    pub(crate) fn judge(
        &self,
        c: &Credential,
        failure: Option<Failure>,
        who: impl FnOnce() -> u64,
        now: u64,
    ) -> Verdict {
        match failure {
            None => {
                c.health.succeed();
                Verdict::Acquitted
            }
            Some(Failure::Rejected) if !c.health.strike(who()) => Verdict::Doubted,
            Some(f) => Verdict::Cooling(self.fail(c, f, now)),
        }
    }

    /// `c` was accepted: its failure streak ends, and the answer's usage is settled by the lease.
    pub(crate) fn lease(self: &Arc<Self>, c: Arc<Credential>, clock: &SharedClock) -> Lease {
        c.health.succeed();
        Lease {
            credential: c,
            pool: self.clone(),
            clock: clock.clone(),
        }
    }
}

/// The credential an accepted request used, for usage deduction and failure reports once the
/// answer is on its way to the client.
pub struct Lease {
    credential: Arc<Credential>,
    pool: Arc<ProviderPool>,
    clock: SharedClock,
}

impl Lease {
    /// Deducts the answer's reported token usage from the credential's quota.
    pub fn settle(self, tokens: Option<u64>) {
        if let Some(tokens) = tokens.filter(|t| *t > 0) {
            let now = self.clock.now_millis();
            self.credential
                .health
                .add_usage(self.pool.period(now), tokens);
        }
    }

    /// The answer broke off (a transport failure after the status): the credential cools down
    /// if another one can take over ([`ProviderPool::fail`]).
    pub fn broke(&self) {
        self.pool.fail(
            &self.credential,
            Failure::Transport,
            self.clock.now_millis(),
        );
    }

    /// The id of the credential that paid (to ask for it again for a follow-up call).
    pub fn credential_id(&self) -> &Arc<str> {
        &self.credential.id
    }

    /// Keeps the credential's secret out of what is relayed.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.credential.scrubber
    }
}
