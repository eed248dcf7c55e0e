//! The usage journal end to end: a gateway (`AppState::open`, as `serve` builds it) answers
//! metered requests and is dropped without any flush — a kill, as far as the store can tell —;
//! the next state opened on the same data directory and store has every one of them in the
//! store before it serves.

use std::time::Instant;

use portcullis::store::{UsageFilter, UsageGrouping};
use serde_json::json;

use super::*;

/// The journal files in `dir`.
fn journal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect()
}

/// True when no handle holds a lock on any journal file in `dir` (the dropped state is gone).
fn journal_unlocked(dir: &std::path::Path) -> bool {
    journal_files(dir).iter().all(|p| {
        let f = std::fs::File::open(p).unwrap();
        f.try_lock().is_ok()
    })
}

#[tokio::test]
async fn usage_settled_before_a_kill_is_replayed_from_the_journal_at_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let mock = start_mock().await;
    let make = || {
        let mut c = config_for(&mock);
        c.auth.disable_auth = false;
        c.management.key = Some(portcullis::secret::Secret::new(MGMT));
        c.storage.data_dir = data.path().to_path_buf();
        c
    };
    let sent = {
        let (state, _jobs) = AppState::open(make()).await.unwrap();
        let gw = start_gateway_with_state(state).await;
        let (key, _) = super::keys::issue(&gw.url, json!({"name": "journaled"})).await;
        let http = reqwest::Client::new();
        let mut sent = 0;
        for stream in [false, true, false, true, false] {
            let req = http.post(format!("{}/v1/chat/completions", gw.url));
            let resp = req
                .bearer_auth(&key)
                .json(&chat("mock-gpt", stream))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap();
            sent += 1;
        }
        let written: u64 = journal_files(data.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(written > 0, "the settlements are journaled");
        // No `usage.flush` ran and nothing flushes at drop: the store has none of it.
        sent
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !journal_unlocked(data.path()) {
        assert!(
            Instant::now() < deadline,
            "the dropped gateway still holds its journal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (state, _jobs) = AppState::open(make()).await.unwrap();
    // The store holds this one key's usage.
    let filter = UsageFilter::default();
    let store = state.usage_store().unwrap();
    let rows = store
        .usage_report(&filter, UsageGrouping::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].requests, sent,
        "every answered request is in the store"
    );
    assert!(
        rows[0].input_tokens > 0 && rows[0].output_tokens > 0,
        "{rows:?}"
    );
    // Replayed files are gone; only the new state's own (empty) file is left.
    let left = journal_files(data.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(std::fs::read(&left[0]).unwrap().is_empty());
    // A third start replays nothing more.
    drop(state);
    let (state, _jobs) = AppState::open(make()).await.unwrap();
    let rows = state
        .usage_store()
        .unwrap()
        .usage_report(&filter, UsageGrouping::default())
        .await
        .unwrap();
    assert_eq!(rows[0].requests, sent, "counted once");
}
