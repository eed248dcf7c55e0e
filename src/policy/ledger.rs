//! The in-memory ledger of settled usage, waiting to be written to the store: one entry per UTC
//! day, virtual key, user, backend and model, summed as requests settle, flushed every second by
//! the `usage.flush` job (and once more at shutdown). A flush leaves the entries in place until
//! the store has taken them, so a budget's baseline read meanwhile (ledger first, then store)
//! may count a flushing entry twice but never misses one.
//!
//! With a [`Journal`] (`serve`: the data directory), each settlement is appended to it before it
//! is added here, under the same lock, and a flush rotates the journal and takes its snapshot
//! under that lock too — so the rotated files hold exactly what the snapshot holds, and are
//! deleted once the store has it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::journal::{self, Held, Journal, JournalError};
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
    pub(crate) fn add(&mut self, o: &Amounts) {
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

/// The entries and the journal, under one lock.
#[derive(Debug, Default)]
struct Book {
    rows: HashMap<RowKey, Amounts>,
    journal: Option<Journal>,
}

/// Settled usage not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    book: Mutex<Book>,
    /// One flush at a time (the job and the shutdown flush).
    flushing: tokio::sync::Mutex<()>,
}

impl Ledger {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Journals every settlement from now on in `dir`, and adds what the journal files no
    /// running process holds recorded (a previous run's unflushed usage); returns how many
    /// records that was.
    pub(crate) fn keep_journal(&self, dir: &std::path::Path) -> Result<usize, JournalError> {
        let (opened, replayed) = Journal::open(dir)?;
        let mut book = self.book();
        for (k, a) in &replayed.rows {
            book.rows.entry(k.clone()).or_default().add(a);
        }
        book.journal = Some(opened);
        Ok(replayed.records)
    }

    /// Adds one settled request (journaled first, when there is a journal).
    pub(crate) fn record(&self, key: RowKey, amounts: Amounts) {
        let line = journal::line(&key, &amounts);
        let mut book = self.book();
        if let Some(j) = &mut book.journal {
            j.append(line.as_bytes());
        }
        book.rows.entry(key).or_default().add(&amounts);
    }

    /// What `holder` spent from day `since` on, of what is not yet in the store.
    pub(crate) fn pending(&self, holder: Holder<'_>, since: i64) -> UsageSpent {
        let book = self.book();
        let mut out = UsageSpent::default();
        for (k, a) in book.rows.iter().filter(|(k, _)| k.day >= since) {
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

    /// Writes every entry to `store`; returns how many rows were written. Entries (and the
    /// journal files holding them) stay until the store has them; a failed write keeps them for
    /// the next flush.
    pub(crate) async fn flush(&self, store: &dyn UsageStore) -> Result<usize, StoreError> {
        let _one = self.flushing.lock().await;
        let (snapshot, covered) = {
            let mut book = self.book();
            let covered = book.journal.as_mut().map_or(0, Journal::rotate);
            let snapshot: Vec<(RowKey, Amounts)> = book
                .rows
                .iter()
                .filter(|(_, a)| !a.is_zero())
                .map(|(k, a)| (k.clone(), *a))
                .collect();
            (snapshot, covered)
        };
        if snapshot.is_empty() {
            self.release(covered);
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
        self.release(covered);
        let live = &mut self.book().rows;
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

    /// Deletes the `covered` oldest rotated journal files (outside the lock).
    fn release(&self, covered: usize) {
        let done = self.book().journal.as_mut().map(|j| j.release(covered));
        done.into_iter().flatten().for_each(Held::delete);
    }
}
