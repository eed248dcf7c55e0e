//! Operator events as the operator's screens see them: every event handed to the notifier is
//! also counted (`portcullis_operator_events_total{kind}`) and kept in a short list of the most
//! recent ones for the admin console, by [`Recording`], the notifier the composition root puts in
//! front of the configured one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;
use crate::notify::{Notifier, OperatorEvent};

/// Recent events kept.
pub const RECENT: usize = 200;

/// One event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// When (ms since the epoch, the gateway's clock).
    pub at_ms: u64,
    /// [`OperatorEvent::kind`].
    pub kind: &'static str,
    /// One line.
    pub summary: String,
    /// The longer text (never a secret: confirmation codes are left out of it).
    pub body: String,
}

/// The most recent events, newest last.
#[derive(Debug, Default)]
pub struct EventLog {
    recent: Mutex<VecDeque<EventRecord>>,
}

impl EventLog {
    fn push(&self, record: EventRecord) {
        let mut r = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(record);
    }

    /// The recent events, newest first.
    pub fn recent(&self) -> Vec<EventRecord> {
        let r = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.iter().rev().cloned().collect()
    }
}

/// A notifier that counts and keeps each event, then hands it to the next one.
pub struct Recording {
    telemetry: super::Telemetry,
    clock: SharedClock,
    next: Arc<dyn Notifier>,
}

impl Recording {
    /// Records in `telemetry` (its counter and its event log), then notifies `next`.
    pub fn new(telemetry: super::Telemetry, clock: SharedClock, next: Arc<dyn Notifier>) -> Self {
        Self {
            telemetry,
            clock,
            next,
        }
    }
}

impl Notifier for Recording {
    fn notify(&self, event: OperatorEvent) {
        let kind = event.kind();
        self.telemetry.operator_event(kind);
        self.telemetry.events().push(EventRecord {
            at_ms: self.clock.now_millis(),
            kind,
            summary: event.summary(),
            body: event.body(),
        });
        self.next.notify(event);
    }
}
