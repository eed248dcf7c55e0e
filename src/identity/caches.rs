//! What the credential verifiers' caches share: a bounded table insert, and the store revision
//! a cache last saw (it is cleared when the revision moves — a revocation or change made by any
//! instance).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};

/// Inserts into a bounded table: when it is full, the entries `stale` says are stale go first,
/// then (still full) all of them — a flood can neither grow it nor make it slow.
pub(crate) fn insert_bounded<K: Hash + Eq, V>(
    table: &mut HashMap<K, V>,
    max: usize,
    key: K,
    value: V,
    stale: impl Fn(&V) -> bool,
) {
    if table.len() >= max {
        table.retain(|_, v| !stale(v));
        if table.len() >= max {
            table.clear();
        }
    }
    table.insert(key, value);
}

/// The store revision a cache last saw: it is cleared when the revision moves.
#[derive(Debug)]
pub(crate) struct SeenRevision(AtomicI64);

impl SeenRevision {
    /// Nothing seen yet.
    pub(crate) fn new() -> Self {
        Self(AtomicI64::new(i64::MIN))
    }

    /// Records `revision`; true when it differs from the one seen before (the first call only
    /// learns it).
    pub(crate) fn moved_to(&self, revision: i64) -> bool {
        let before = self.0.swap(revision, Ordering::Relaxed);
        before != revision && before != i64::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_drops_stale_entries_first_then_everything() {
        let mut t = HashMap::new();
        for i in 0..4 {
            insert_bounded(&mut t, 4, i, i, |v| *v < 2);
        }
        insert_bounded(&mut t, 4, 9, 9, |v| *v < 2);
        let mut keys: Vec<_> = t.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, [2, 3, 9], "the stale ones went");
        insert_bounded(&mut t, 3, 10, 10, |_| false);
        assert_eq!(t.len(), 1, "nothing stale: all went");
    }

    #[test]
    fn the_first_revision_is_learnt_and_later_moves_are_seen() {
        let seen = SeenRevision::new();
        assert!(!seen.moved_to(5));
        assert!(!seen.moved_to(5));
        assert!(seen.moved_to(6));
    }
}
