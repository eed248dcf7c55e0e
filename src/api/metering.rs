//! The request path's side of limits and budgets: [`admit`] asks the policy to reserve what a
//! request may spend before the provider is called (the caller skips it for an unmetered grant,
//! `Policy::meters`: no await, no allocation), and [`Settlement`] carries what an accepted answer settles once its
//! usage is known — the pool credential's [`Lease`] (its quota) and the caller's [`Admission`]
//! (limits, budgets, usage records) — exactly once: when the body is read, when the stream ends
//! or breaks, or when the client goes away (the relay drops it).

use std::sync::Arc;

use super::context::Ctx;
use super::error::ApiError;
use crate::policy::{Admission, Demand, Spent, estimate_input_tokens};
use crate::pool::Lease;
use crate::protocol::Operation;
use crate::secret::scrub::Scrubber;
use crate::state::AppState;
use crate::upstream::routing::Route;
use crate::wire::usage::{Usage, requested_max_output};

/// Reserves what a request of `operation` with `body` may spend under the caller's grant, or
/// refuses it (429, 402, 403, 503 in the caller's protocol); `None` when nothing is metered.
pub(crate) async fn admit(
    state: &AppState,
    ctx: &Ctx,
    route: &Route,
    operation: Operation,
    body: Option<&[u8]>,
) -> Result<Option<Admission>, ApiError> {
    let policy = state.policy();
    let body = body.unwrap_or_default();
    let spends = operation.spends_tokens();
    let demand = Demand {
        backend: &route.provider.backend.name,
        model: &route.model,
        input_tokens: estimate_input_tokens(body.len()),
        max_output_tokens: spends.then(|| requested_max_output(body)).flatten(),
        spends,
    };
    policy.admit(&ctx.grant, &demand).await.map_err(|refusal| {
        tracing::info!(principal = ?ctx.principal.as_ref().map(|p| p.label()), reason = %refusal, "request refused by a limit");
        ApiError::from(refusal)
    })
}

/// What an accepted answer settles, once.
pub(crate) struct Settlement {
    lease: Option<Lease>,
    admission: Option<Admission>,
}

impl Settlement {
    /// The lease and admission of one accepted answer.
    pub(crate) fn new(lease: Option<Lease>, admission: Option<Admission>) -> Self {
        Self { lease, admission }
    }

    /// The scrubber of the credential that answered.
    pub(crate) fn scrubber(&self) -> Option<&Arc<Scrubber>> {
        self.lease.as_ref().map(Lease::scrubber)
    }

    /// The answer broke off after its status: the credential's failure is reported.
    pub(crate) fn broke(&self) {
        if let Some(l) = &self.lease {
            l.broke();
        }
    }

    /// Settles with `usage` as reported (what it leaves out is charged as reserved), when the
    /// operation `spends` tokens; a second call does nothing.
    pub(crate) fn settle(&mut self, usage: &Usage, spends: bool) {
        if let Some(l) = self.lease.take() {
            l.settle(usage.total().filter(|_| spends));
        }
        if let Some(a) = self.admission.take() {
            a.settle(if spends {
                Spent {
                    input: usage.input_tokens,
                    output: usage.output_tokens,
                    cached_input: usage.cached_input_tokens,
                }
            } else {
                Spent::NOTHING
            });
        }
    }
}
