//! The in-memory ledger of settled usage, waiting to be written to the store: one entry per UTC
//! day, virtual key, user, backend and model, summed as requests settle, flushed every second by
//! the `usage.flush` job (and once more at shutdown). A flush leaves the entries in place until
//! the store has taken them, so a budget's baseline read meanwhile (ledger first, then store)
//! may count a flushing entry twice but never misses one.
//!
//! With a [`Journal`] (`serve`: the data directory), each settlement is appended to it before it
//! is added here, under the same lock, and a flush rotates the journal and takes its snapshot
//! under that lock too — so the rotated files hold exactly what the snapshot holds, and are
//! deleted once the store has it. The flush writes their names (or, without a journal, an id
//! of its own) with the rows, so what a crash or a failed commit leaves behind is counted once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::journal::{self, Held, Journal, JournalError};
use crate::clock::calendar::civil_from_days;
use crate::store::{StoreError, UsageBatches, UsageRow, UsageSpent, UsageStore};

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

/// A flush whose write failed: the store may have committed it anyway (the connection broke
/// during the commit), which the next flush asks before writing again.
#[derive(Debug)]
struct Attempt {
    snapshot: Vec<(RowKey, Amounts)>,
    covered: usize,
    ids: Vec<String>,
}

/// What flushes hand on to the next one.
#[derive(Debug, Default)]
struct Flushes {
    unconfirmed: Option<Attempt>,
    /// The marks of the last flush that landed, whose files are deleted: dropped by the next.
    forget: Vec<String>,
}

/// How long a mark whose instance died before dropping it is kept: a journal file left in a
/// data directory no instance starts from for longer is counted again.
const MARKS_KEPT_SECS: i64 = 30 * 86_400;

/// Settled usage not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    book: Mutex<Book>,
    /// One flush at a time (the job and the shutdown flush), and what they hand on.
    flushing: tokio::sync::Mutex<Flushes>,
}

impl Ledger {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Journals every settlement from now on in `dir`, and adds what the journal files no
    /// running process holds recorded (a previous run's unflushed usage) — those `store` has
    /// not counted yet: the others (a flush committed, the process died before deleting them)
    /// are deleted, their marks dropped with the marks older than [`MARKS_KEPT_SECS`]. Returns
    /// how many records were added. `now_secs`: Unix seconds.
    pub(crate) async fn keep_journal(
        &self,
        dir: &std::path::Path,
        store: &dyn UsageStore,
        now_secs: i64,
    ) -> Result<usize, JournalError> {
        let (mut opened, found) = Journal::open(dir)?;
        let ids: Vec<String> = found.iter().map(|f| f.file.id()).collect();
        let counted = match ids.is_empty() {
            true => Vec::new(),
            false => store.applied_usage_batches(&ids).await?,
        };
        let mut records = 0;
        {
            let mut book = self.book();
            for (f, id) in found.into_iter().zip(&ids) {
                if counted.contains(id) {
                    tracing::info!(
                        records = f.records,
                        "usage journal file already in the store (its process died before deleting it): deleted uncounted"
                    );
                    f.file.delete();
                    continue;
                }
                records += f.records;
                for (k, a) in f.rows {
                    book.rows.entry(k).or_default().add(&a);
                }
                opened.adopt(f.file);
            }
            book.journal = Some(opened);
        }
        if let Err(e) = store
            .forget_usage_batches(&counted, now_secs - MARKS_KEPT_SECS)
            .await
        {
            tracing::warn!(error = %e, "could not drop old usage-journal marks (tried again at the next start)");
        }
        Ok(records)
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

    /// Writes every entry to `store`, with the marks of the journal files they cover; returns
    /// how many rows were written. Entries (and the journal files holding them) stay until the
    /// store has them; a failed write keeps them for the next flush, which first asks the store
    /// whether that write landed after all. `now_secs`: Unix seconds.
    pub(crate) async fn flush(
        &self,
        store: &dyn UsageStore,
        now_secs: i64,
    ) -> Result<usize, StoreError> {
        let mut flushes = self.flushing.lock().await;
        let state = &mut *flushes;
        if let Some(before) = state.unconfirmed.take() {
            match store.applied_usage_batches(&before.ids[..1]).await {
                Ok(landed) if !landed.is_empty() => {
                    tracing::info!(
                        "a usage flush reported failed was committed: not written again"
                    );
                    self.landed(&before);
                    state.forget = before.ids;
                }
                Ok(_) => {}
                Err(e) => {
                    state.unconfirmed = Some(before);
                    return Err(e);
                }
            }
        }
        let (snapshot, covered, mut ids) = {
            let mut book = self.book();
            let journal = book.journal.as_mut();
            let (covered, ids) = journal.map_or((0, Vec::new()), |j| {
                let covered = j.rotate();
                (covered, j.ids(covered))
            });
            let snapshot: Vec<(RowKey, Amounts)> = book
                .rows
                .iter()
                .filter(|(_, a)| !a.is_zero())
                .map(|(k, a)| (k.clone(), *a))
                .collect();
            (snapshot, covered, ids)
        };
        if snapshot.is_empty() {
            self.release(covered);
            return Ok(0);
        }
        if ids.is_empty() {
            ids.push(flush_id()?);
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
        let attempt = Attempt {
            snapshot,
            covered,
            ids,
        };
        let batches = UsageBatches {
            applied: &attempt.ids,
            forget: &state.forget,
            at: now_secs,
        };
        if let Err(e) = store.record_usage(&rows, &batches).await {
            state.unconfirmed = Some(attempt);
            return Err(e);
        }
        self.landed(&attempt);
        state.forget = attempt.ids;
        Ok(rows.len())
    }

    /// What a flush wrote is in the store: its files are deleted, its amounts taken off.
    fn landed(&self, attempt: &Attempt) {
        self.release(attempt.covered);
        let live = &mut self.book().rows;
        for (k, a) in &attempt.snapshot {
            if let Some(e) = live.get_mut(k) {
                e.sub(a);
                if e.is_zero() {
                    live.remove(k);
                }
            }
        }
    }

    /// Deletes the `covered` oldest rotated journal files (outside the lock).
    fn release(&self, covered: usize) {
        let done = self.book().journal.as_mut().map(|j| j.release(covered));
        done.into_iter().flatten().for_each(Held::delete);
    }
}

/// A mark for a flush without journal files: `flush-` and 16 random hex digits.
fn flush_id() -> Result<String, StoreError> {
    let id = crate::secret::random_bytes::<8>()
        .map_err(|e| StoreError::Query(format!("no randomness for a usage flush id: {e}")))?;
    Ok(format!("flush-{}", crate::store::hex(&id)))
}

#[cfg(test)]
mod tests;
