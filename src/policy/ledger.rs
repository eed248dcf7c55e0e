//! The in-memory ledger of settled usage, waiting to be written to the store: one entry per UTC
//! day, virtual key, user, backend and model, summed as requests settle, flushed every second by
//! the `usage.flush` job (and once more at shutdown). A flush leaves the entries in place until
//! the store has taken them, so a budget's baseline read meanwhile (ledger first, then store)
//! may count a flushing entry twice but never misses one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::calendar::civil_from_days;
use crate::store::{StoreError, UsageRow, UsageSpent, UsageStore};

/// Whose usage an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RowKey {
    /// UTC day number.
    pub(crate) day: i64,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) backend: Arc<str>,
    pub(crate) model: Arc<str>,
}

/// What was spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub(crate) requests: u64,
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) cached: u64,
    pub(crate) cost_micros: u64,
}

impl Amounts {
    fn add(&mut self, o: &Amounts) {
        self.requests += o.requests;
        self.input += o.input;
        self.output += o.output;
        self.cached += o.cached;
        self.cost_micros += o.cost_micros;
    }

    fn sub(&mut self, o: &Amounts) {
        self.requests = self.requests.saturating_sub(o.requests);
        self.input = self.input.saturating_sub(o.input);
        self.output = self.output.saturating_sub(o.output);
        self.cached = self.cached.saturating_sub(o.cached);
        self.cost_micros = self.cost_micros.saturating_sub(o.cost_micros);
    }

    fn is_zero(&self) -> bool {
        *self == Amounts::default()
    }
}

/// A key's or a user's id, as usage entries name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder<'a> {
    Key(&'a str),
    User(&'a str),
}

/// `YYYY-MM-DD` of a UTC day number.
pub(crate) fn day_string(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Settled usage not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    rows: Mutex<HashMap<RowKey, Amounts>>,
    /// One flush at a time (the job and the shutdown flush).
    flushing: tokio::sync::Mutex<()>,
}

impl Ledger {
    fn rows(&self) -> MutexGuard<'_, HashMap<RowKey, Amounts>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds one settled request.
    pub(crate) fn record(&self, key: RowKey, amounts: Amounts) {
        self.rows().entry(key).or_default().add(&amounts);
    }

    /// What `holder` spent from day `since` on, of what is not yet in the store.
    pub(crate) fn pending(&self, holder: Holder<'_>, since: i64) -> UsageSpent {
        let rows = self.rows();
        let mut out = UsageSpent::default();
        for (k, a) in rows.iter().filter(|(k, _)| k.day >= since) {
            let theirs = match holder {
                Holder::Key(id) => k.key.as_deref() == Some(id),
                Holder::User(id) => k.user.as_deref() == Some(id),
            };
            if theirs {
                out.tokens += a.input + a.output;
                out.cost_micros += a.cost_micros;
            }
        }
        out
    }

    /// Writes every entry to `store`; returns how many rows were written. Entries stay until the
    /// store has them; a failed write keeps them for the next flush.
    pub(crate) async fn flush(&self, store: &dyn UsageStore) -> Result<usize, StoreError> {
        let _one = self.flushing.lock().await;
        let snapshot: Vec<(RowKey, Amounts)> = self
            .rows()
            .iter()
            .filter(|(_, a)| !a.is_zero())
            .map(|(k, a)| (k.clone(), *a))
            .collect();
        if snapshot.is_empty() {
            return Ok(0);
        }
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows: Vec<UsageRow> = snapshot
            .iter()
            .map(|(k, a)| UsageRow {
                day: day_string(k.day),
                key_id: k.key.as_deref().unwrap_or("").to_owned(),
                user_id: k.user.as_deref().unwrap_or("").to_owned(),
                backend: k.backend.to_string(),
                model: k.model.to_string(),
                requests: as_i64(a.requests),
                input_tokens: as_i64(a.input),
                output_tokens: as_i64(a.output),
                cached_input_tokens: as_i64(a.cached),
                cost_micros: as_i64(a.cost_micros),
            })
            .collect();
        store.record_usage(&rows).await?;
        let mut live = self.rows();
        for (k, a) in &snapshot {
            if let Some(e) = live.get_mut(k) {
                e.sub(a);
                if e.is_zero() {
                    live.remove(k);
                }
            }
        }
        Ok(rows.len())
    }
}
