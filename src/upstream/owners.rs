//! Which pool credential created an object a provider keeps for later calls — a stored
//! response (`resp_…`), a message batch (`msgbatch_…`) — and for which caller. Such an object is
//! visible only to the account that created it, so a follow-up call (`GET /v1/responses/{id}`,
//! a batch's results, `previous_response_id`) asks the pool for the same credential first
//! (`Call::prefer`), and is refused to other callers of the gateway.
//!
//! Bounded and forgetful by design: at most [`CAPACITY`] objects per backend, each for
//! [`TTL_MS`] (the providers keep responses and batch results about 30 days); the oldest entry
//! makes room for a new one. The memory is this process's: after a restart, on another instance,
//! or once forgotten, a follow-up goes to whichever credential the pool picks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Most objects remembered per backend.
pub const CAPACITY: usize = 10_000;
/// How long an object is remembered (30 days).
pub const TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// Longest object id remembered (real ids are under 100 bytes).
const MAX_ID_LEN: usize = 256;

/// Who created an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The pool credential that created it.
    pub credential: Arc<str>,
    /// A fingerprint of the gateway caller that created it.
    pub caller: u64,
}

/// The objects of one backend and their owners.
#[derive(Debug, Default)]
pub struct ObjectOwners {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Owner and expiry (ms) by object id.
    by_id: HashMap<Box<str>, (Owner, u64)>,
    /// Ids in the order they were first remembered (one entry per id in `by_id`).
    order: VecDeque<Box<str>>,
}

impl ObjectOwners {
    /// Records that `owner` created object `id` at `now`.
    pub fn remember(&self, id: &str, owner: Owner, now: u64) {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let expires = now.saturating_add(TTL_MS);
        if let Some(entry) = inner.by_id.get_mut(id) {
            *entry = (owner, expires);
            return;
        }
        // Entries expire in the order they were made: the front is the oldest.
        while let Some(front) = inner.order.front() {
            let stale = inner.by_id.get(front).is_none_or(|(_, e)| *e <= now);
            if !stale && inner.by_id.len() < CAPACITY {
                break;
            }
            if let Some(front) = inner.order.pop_front() {
                inner.by_id.remove(&front);
            }
        }
        inner.by_id.insert(Box::from(id), (owner, expires));
        inner.order.push_back(Box::from(id));
    }

    /// The owner of object `id`, if it is remembered at `now`.
    pub fn owner(&self, id: &str, now: u64) -> Option<Owner> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .by_id
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(o, _)| o.clone())
    }

    /// Number of objects remembered (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(c: &str) -> Owner {
        Owner {
            credential: Arc::from(c),
            caller: 7,
        }
    }

    #[test]
    fn remembers_until_expiry_and_stays_bounded() {
        let o = ObjectOwners::default();
        o.remember("resp_1", owner("a"), 0);
        assert_eq!(o.owner("resp_1", TTL_MS - 1), Some(owner("a")));
        assert_eq!(o.owner("resp_1", TTL_MS), None);
        assert_eq!(o.owner("resp_2", 0), None);
        o.remember("resp_1", owner("b"), 10);
        assert_eq!(o.owner("resp_1", 10), Some(owner("b")));
        assert_eq!(o.len(), 1);
        for i in 0..CAPACITY + 5 {
            o.remember(&format!("id{i}"), owner("c"), 20);
        }
        assert_eq!(o.len(), CAPACITY);
        assert_eq!(o.owner("id0", 20), None, "the oldest made room");
        assert!(o.owner(&format!("id{}", CAPACITY + 4), 20).is_some());
        // Expired entries leave as soon as something new comes.
        o.remember("late", owner("d"), 20 + TTL_MS);
        assert_eq!(o.len(), 1);
        o.remember("", owner("e"), 0);
        o.remember(&"x".repeat(MAX_ID_LEN + 1), owner("e"), 0);
        assert_eq!(o.len(), 1);
    }
}
