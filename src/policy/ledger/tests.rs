//! The ledger with its journal and a store: what a crash between a flush's commit and the
//! deletion of its files leaves, and a commit reported failed that landed, are counted once;
//! a write that really failed is not lost.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::policy::journal::tests::journal_files as journals;
use crate::store::{SqlStore, UsageFilter, UsageGrouping, UsageSubject};

fn row() -> RowKey {
    RowKey {
        day: 20_791,
        key: Some(Arc::from("pvk_0123456789ab")),
        user: None,
        backend: Arc::from("openai"),
        model: Arc::from("gpt-4o"),
    }
}

fn spent(input: u64) -> Amounts {
    Amounts {
        requests: 1,
        input,
        output: 5,
        cached: 0,
        cost_micros: 7,
    }
}

/// How a [`Faulty`] store's next `record_usage` goes wrong.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Committed, then the data directory is copied (the process dies before deleting files).
    CrashAfterCommit,
    /// Committed, then reported failed (the connection broke during the commit).
    LostAnswer,
    /// Refused, nothing written.
    Refused,
}

/// SQLite, with one fault injected into the next `record_usage`.
struct Faulty {
    inner: SqlStore,
    fault: Mutex<Option<Fault>>,
    data: std::path::PathBuf,
    crash_copy: std::path::PathBuf,
    writes: AtomicUsize,
}

impl Faulty {
    fn inject(&self, fault: Fault) {
        *self.fault.lock().unwrap() = Some(fault);
    }
}

#[async_trait]
impl UsageStore for Faulty {
    async fn record_usage(
        &self,
        rows: &[UsageRow],
        batches: &UsageBatches<'_>,
    ) -> Result<(), StoreError> {
        let fault = self.fault.lock().unwrap().take();
        if fault == Some(Fault::Refused) {
            return Err(StoreError::Query("connection refused".into()));
        }
        self.inner.record_usage(rows, batches).await?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        match fault {
            Some(Fault::CrashAfterCommit) => {
                copy_journals(&self.data, &self.crash_copy);
                Ok(())
            }
            Some(Fault::LostAnswer) => Err(StoreError::Query("connection reset".into())),
            _ => Ok(()),
        }
    }
    async fn applied_usage_batches(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.inner.applied_usage_batches(ids).await
    }
    async fn forget_usage_batches(&self, ids: &[String], before: i64) -> Result<(), StoreError> {
        self.inner.forget_usage_batches(ids, before).await
    }
    async fn usage_spent(
        &self,
        subject: UsageSubject<'_>,
        since_day: &str,
    ) -> Result<UsageSpent, StoreError> {
        self.inner.usage_spent(subject, since_day).await
    }
    async fn usage_report(
        &self,
        filter: &UsageFilter,
        group: UsageGrouping,
    ) -> Result<Vec<UsageRow>, StoreError> {
        self.inner.usage_report(filter, group).await
    }
}

fn copy_journals(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in journals(from) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

async fn faulty(home: &Path) -> Faulty {
    Faulty {
        inner: SqlStore::open_sqlite(&home.join("db")).await.unwrap(),
        fault: Mutex::new(None),
        data: home.join("data"),
        crash_copy: home.join("crashed"),
        writes: AtomicUsize::new(0),
    }
}

/// A [`Faulty`] store in `home` and a ledger journaling in its data directory.
async fn journaled(home: &Path) -> (Faulty, Ledger) {
    let store = faulty(home).await;
    let ledger = Ledger::default();
    let replayed = ledger.keep_journal(&store.data, &store, NOW).await.unwrap();
    assert_eq!(replayed, 0);
    (store, ledger)
}

/// Requests and input tokens in the store.
async fn stored(store: &dyn UsageStore) -> (i64, i64) {
    let rows = store
        .usage_report(&UsageFilter::default(), UsageGrouping::default())
        .await
        .unwrap();
    rows.first()
        .map_or((0, 0), |r| (r.requests, r.input_tokens))
}

const NOW: i64 = 1_796_400_000;

#[tokio::test]
async fn files_a_crash_left_after_the_commit_are_deleted_uncounted() {
    let home = tempfile::tempdir().unwrap();
    let (store, first) = journaled(home.path()).await;
    for input in [10, 20, 30] {
        first.record(row(), spent(input));
    }
    store.inject(Fault::CrashAfterCommit);
    assert_eq!(first.flush(&store, NOW).await.unwrap(), 1);
    assert_eq!(stored(&store).await, (3, 60));
    // The copy holds the flushed file (and the empty next one), as a kill -9 would leave them.
    let left = journals(&store.crash_copy);
    assert_eq!(left.len(), 2, "{left:?}");
    let marks: Vec<String> = left
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        store.applied_usage_batches(&marks).await.unwrap(),
        marks[..1]
    );
    // The restart on the copy: nothing to replay, the counted file deleted, its mark dropped.
    let second = Ledger::default();
    let replayed = second.keep_journal(&store.crash_copy, &store, NOW).await;
    assert_eq!(replayed.unwrap(), 0);
    assert!(
        store
            .applied_usage_batches(&marks)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!journals(&store.crash_copy).contains(&left[0]));
    assert_eq!(second.flush(&store, NOW).await.unwrap(), 0);
    assert_eq!(stored(&store).await, (3, 60), "counted once");
    // Usage after the restart is counted as usual.
    second.record(row(), spent(1));
    assert_eq!(second.flush(&store, NOW).await.unwrap(), 1);
    assert_eq!(stored(&store).await, (4, 61));
}

#[tokio::test]
async fn a_kill_before_the_flush_is_replayed_once() {
    let home = tempfile::tempdir().unwrap();
    let (store, first) = journaled(home.path()).await;
    first.record(row(), spent(10));
    first.record(row(), spent(20));
    copy_journals(&store.data, &store.crash_copy);
    let second = Ledger::default();
    let replayed = second.keep_journal(&store.crash_copy, &store, NOW).await;
    assert_eq!(replayed.unwrap(), 2);
    assert_eq!(second.flush(&store, NOW).await.unwrap(), 1);
    assert_eq!(stored(&store).await, (2, 30));
    assert_eq!(
        journals(&store.crash_copy).len(),
        1,
        "only the current file"
    );
}

#[tokio::test]
async fn a_commit_reported_failed_that_landed_is_not_written_again() {
    let home = tempfile::tempdir().unwrap();
    let (store, ledger) = journaled(home.path()).await;
    ledger.record(row(), spent(10));
    store.inject(Fault::LostAnswer);
    assert!(ledger.flush(&store, NOW).await.is_err());
    assert_eq!(stored(&store).await, (1, 10), "it landed");
    ledger.record(row(), spent(20));
    assert_eq!(ledger.flush(&store, NOW).await.unwrap(), 1);
    assert_eq!(stored(&store).await, (2, 30), "the first not twice");
    assert_eq!(journals(&store.data).len(), 1, "both files deleted");
    assert_eq!(store.writes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_write_that_failed_is_retried_and_its_marks_dropped_later() {
    let home = tempfile::tempdir().unwrap();
    let (store, ledger) = journaled(home.path()).await;
    ledger.record(row(), spent(10));
    store.inject(Fault::Refused);
    assert!(ledger.flush(&store, NOW).await.is_err());
    assert_eq!(stored(&store).await, (0, 0));
    assert_eq!(ledger.flush(&store, NOW).await.unwrap(), 1);
    assert_eq!(stored(&store).await, (1, 10), "not lost");
    let marks = ledger.flushing.lock().await.forget.clone();
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(store.applied_usage_batches(&marks).await.unwrap(), marks);
    // The next flush that writes drops them.
    ledger.record(row(), spent(1));
    ledger.flush(&store, NOW).await.unwrap();
    assert!(
        store
            .applied_usage_batches(&marks)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn without_a_journal_a_flush_marks_itself() {
    let home = tempfile::tempdir().unwrap();
    let store = faulty(home.path()).await;
    let ledger = Ledger::default();
    ledger.record(row(), spent(10));
    store.inject(Fault::LostAnswer);
    assert!(ledger.flush(&store, NOW).await.is_err());
    assert_eq!(ledger.flush(&store, NOW).await.unwrap(), 0);
    assert_eq!(stored(&store).await, (1, 10));
    let marks = ledger.flushing.lock().await.forget.clone();
    assert!(
        marks[0].starts_with("flush-") && marks[0].len() == 22,
        "{marks:?}"
    );
}
