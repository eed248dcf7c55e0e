//! Wire capture: one record per crossing, in order per request, credentials masked.

use std::collections::BTreeMap;

use portcullis::state::AppState;
use serde_json::{Value, json};

use crate::harness::*;

fn read_records(path: &std::path::Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_request: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        by_request
            .entry(v["request_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    by_request
}

fn directions(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["direction"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_crossing_is_recorded_with_credentials_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.jsonl");
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.logging.capture_file = Some(path.clone());
    let state = AppState::new(config).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;

    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("authorization", "Bearer client-credential-123456")
        .header("user-agent", "capture-test/1")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = post_json(
        &format!("{}/v1/messages", gw.url),
        json!({"model": "c", "max_tokens": 5, "stream": true, "messages": []}),
    )
    .await;
    resp.text().await.unwrap();
    let resp = client()
        .post(format!(
            "{}/v1beta/models/mock-gemini:generateContent?key=gemini-client-key-9876",
            gw.url
        ))
        .header("x-mock", "status=500")
        .json(&json!({"contents": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);

    state.capture().flush();
    let records = read_records(&path);
    assert_eq!(records.len(), 3, "{records:?}");
    let mut seen = records.values();

    let chat = seen.next().unwrap();
    assert_eq!(
        directions(chat),
        ["inbound_request", "outbound_request", "inbound_response"]
    );
    assert_eq!(chat[0]["source"], "127.0.0.1 (capture-test/1)");
    assert_eq!(chat[0]["principal"], "anonymous");
    assert_eq!(chat[0]["payload"]["model"], "mock-gpt");
    assert_eq!(
        chat[1]["destination"],
        format!("http://{}/v1/chat/completions", mock.addr)
    );
    assert_eq!(chat[1]["backend"], "openai");
    assert_eq!(chat[1]["model"], "mock-gpt");
    assert_eq!(chat[1]["key_name"], "yaml-openai");
    let auth_header = chat[1]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .unwrap();
    assert_eq!(auth_header[1], "***");
    assert_eq!(chat[2]["status"], 200);
    assert!(chat[2]["payload"]["choices"].is_array());
    // The answer's headers as the upstream sent them (not yet filtered for the client).
    let header = |record: &serde_json::Value, name: &str| {
        record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&chat[2], "content-type").as_deref(),
        Some("application/json")
    );
    assert!(
        header(&chat[2], "content-length").is_some(),
        "{:?}",
        chat[2]
    );

    let stream = seen.next().unwrap();
    let dirs = directions(stream);
    assert_eq!(
        &dirs[..3],
        ["inbound_request", "outbound_request", "stream_start"]
    );
    assert!(dirs.iter().filter(|d| **d == "stream_chunk").count() >= 1);
    assert_eq!(dirs.last(), Some(&"stream_end"));
    assert!(
        header(&stream[2], "content-type").is_some_and(|ct| ct.starts_with("text/event-stream")),
        "{:?}",
        stream[2]
    );
    assert_eq!(stream.last().unwrap()["payload"], "completed");

    let failed = seen.next().unwrap();
    assert_eq!(
        directions(failed),
        ["inbound_request", "outbound_request", "inbound_response"]
    );
    assert_eq!(
        failed[0]["destination"],
        "/v1beta/models/mock-gemini:generateContent?key=***"
    );
    assert_eq!(failed[2]["status"], 500);

    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        "client-credential-123456",
        "gemini-client-key-9876",
        OPENAI_KEY,
        ANTHROPIC_KEY,
        GEMINI_KEY,
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the capture");
    }
    assert_eq!(state.capture().dropped(), 0);
}
