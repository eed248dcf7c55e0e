//! The memory budget for upstream answers read whole.
//!
//! A non-streamed answer is read into memory before it is relayed (its usage is counted, its
//! credential echoes scrubbed, it may be translated). Each answer is capped on its own, and all
//! of them together are capped by this budget (`server.max_buffered_answer_bytes`): an answer
//! takes room in 64 KiB units as its bytes arrive and gives it back when the client has been sent
//! it (or the request ends). An answer that finds the budget spent fails at once with 503 and
//! `Retry-After` — memory stays bounded however many large answers arrive together.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per unit of the budget.
const UNIT: usize = 64 * 1024;

/// The budget every buffered answer of a process draws from.
#[derive(Debug)]
pub struct AnswerBudget {
    room: Arc<Semaphore>,
    units: u32,
    peak_units: AtomicU64,
    refused: AtomicU64,
}

/// What `/internal/health` shows of the budget.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct BudgetCounts {
    pub limit_bytes: u64,
    pub in_use_bytes: u64,
    pub peak_bytes: u64,
    pub refused: u64,
}

impl AnswerBudget {
    /// A budget of `bytes` (rounded down to whole units, at least one).
    pub fn new(bytes: u64) -> Arc<Self> {
        let units = u32::try_from(bytes / UNIT as u64)
            .unwrap_or(u32::MAX >> 4)
            .clamp(1, u32::MAX >> 4);
        Arc::new(Self {
            room: Arc::new(Semaphore::new(units as usize)),
            units,
            peak_units: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// An empty claim on the budget, grown with [`Claim::cover`].
    pub fn claim(self: &Arc<Self>) -> Claim {
        Claim {
            budget: self.clone(),
            permit: None,
        }
    }

    pub fn counts(&self) -> BudgetCounts {
        let unit = UNIT as u64;
        let free = self.room.available_permits() as u64;
        BudgetCounts {
            limit_bytes: u64::from(self.units) * unit,
            in_use_bytes: u64::from(self.units).saturating_sub(free) * unit,
            peak_bytes: self.peak_units.load(Ordering::Relaxed) * unit,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One answer's share of the budget; given back when dropped.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<AnswerBudget>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Claim {
    /// Makes the claim cover `bytes`; `false` (and the claim unchanged) when the budget has no
    /// room left for them.
    pub fn cover(&mut self, bytes: usize) -> bool {
        let held = self
            .permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        let needed = bytes.div_ceil(UNIT);
        if needed <= held {
            return true;
        }
        let more = u32::try_from(needed - held).unwrap_or(u32::MAX);
        match self.budget.room.clone().try_acquire_many_owned(more) {
            Ok(permit) => {
                match &mut self.permit {
                    Some(p) => p.merge(permit),
                    None => self.permit = Some(permit),
                }
                let in_use =
                    u64::from(self.budget.units) - self.budget.room.available_permits() as u64;
                self.budget.peak_units.fetch_max(in_use, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.budget.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// A buffered answer's bytes as a response body that keeps their claim until it is dropped
/// (when the client has been sent them, or has gone).
#[derive(Debug)]
pub struct ClaimedBytes {
    data: Option<Bytes>,
    _claim: Claim,
}

impl ClaimedBytes {
    pub fn new(data: Bytes, claim: Claim) -> Self {
        Self {
            data: Some(data).filter(|d| !d.is_empty()),
            _claim: claim,
        }
    }
}

impl http_body::Body for ClaimedBytes {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_grow_in_units_and_give_their_room_back_when_dropped() {
        let budget = AnswerBudget::new(4 * UNIT as u64);
        let mut a = budget.claim();
        assert!(a.cover(1));
        assert!(a.cover(UNIT));
        assert_eq!(budget.counts().in_use_bytes, UNIT as u64);
        assert!(a.cover(3 * UNIT));
        let mut b = budget.claim();
        assert!(b.cover(UNIT));
        // Full: the next unit is refused and counted, the claim keeps what it had.
        assert!(!b.cover(UNIT + 1));
        assert!(!budget.claim().cover(1));
        assert_eq!(budget.counts().refused, 2);
        drop(a);
        assert!(b.cover(2 * UNIT));
        let c = budget.counts();
        assert_eq!(
            (c.in_use_bytes, c.peak_bytes),
            (2 * UNIT as u64, 4 * UNIT as u64)
        );
        drop(b);
        assert_eq!(budget.counts().in_use_bytes, 0);
    }

    #[test]
    fn a_tiny_budget_is_one_unit() {
        assert_eq!(AnswerBudget::new(10).counts().limit_bytes, UNIT as u64);
    }
}
