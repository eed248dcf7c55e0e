//! Client connections as the rest of the gateway sees them: the counters the server keeps
//! (open, accepted, refused at `server.max_connections`, closed by a timeout) and shows in
//! `/internal/health`, and the error a request body that stopped arriving ends with (the API
//! answers it with 408). The server (`server::connections`) records; nothing here does I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The request head did not arrive in time.
    HeaderTimeout,
    /// Idle between requests for too long.
    Idle,
}

/// Counts of what happened to client connections, shared by every event loop of a process.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    idle_closed: AtomicU64,
}

/// A snapshot of [`ConnectionStats`], as `/internal/health` shows it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub open: usize,
    pub accepted: u64,
    pub refused: u64,
    pub header_timeouts: u64,
    pub idle_closed: u64,
}

impl ConnectionStats {
    pub fn counts(&self) -> ConnectionCounts {
        ConnectionCounts {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
        }
    }

    /// Takes a slot for a new connection, or counts it refused when `max` are open.
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<OpenSlot> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            // One line for the first refusal and then one per thousand, not one per connection.
            if refused == 1 || refused.is_multiple_of(1000) {
                tracing::warn!(
                    max_connections = max,
                    refused_so_far = refused,
                    "connection limit reached: new connections are closed (server.max_connections)"
                );
            }
            return None;
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(OpenSlot(self.clone()))
    }

    fn closed(&self, why: Closed) {
        let counter = match why {
            Closed::HeaderTimeout => &self.header_timeouts,
            Closed::Idle => &self.idle_closed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One open connection's place under the cap, given back when the connection ends.
pub struct OpenSlot(Arc<ConnectionStats>);

impl OpenSlot {
    /// Counts the connection closed by a timeout.
    pub fn closed(&self, why: Closed) {
        self.0.closed(why);
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error a stalled request body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body bytes for {0:?}")]
pub struct RequestBodyTimeout(pub Duration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_the_cap_and_resumes_when_a_slot_frees() {
        let stats = Arc::new(ConnectionStats::default());
        let a = stats.admit(2).unwrap();
        let _b = stats.admit(2).unwrap();
        assert!(stats.admit(2).is_none());
        drop(a);
        assert!(stats.admit(2).is_some());
        let c = stats.counts();
        assert_eq!((c.accepted, c.refused), (3, 1));
    }
}
