//! Hostile upstreams against the gateway's memory: non-streamed answers are read whole, so all
//! of them together stay inside `server.max_buffered_answer_bytes` — an answer that finds no room
//! is cut off at once with 503 and `Retry-After`, and its room comes back when it ends.

use serde_json::Value;

use crate::harness::*;
use crate::hostile::{Answer, BOUNDED, Seen, hostile};
use crate::security::{evil_gateway_config, http_response};

const MIB: u64 = 1024 * 1024;

async fn budget(gw: &Gateway) -> Value {
    get_json(format!("{}/internal/health", gw.url)).await["buffered_answers"].clone()
}

#[tokio::test]
async fn concurrent_huge_answers_stay_inside_the_buffer_budget() {
    let mut upstream = hostile(Box::new(|_: &Seen| Answer::Endless { chunked: true })).await;
    let mut config = evil_gateway_config(&upstream);
    config.server.max_buffered_answer_bytes = 8 * MIB;
    let gw = start_gateway(config).await;
    let http = client();
    let calls = (0..6).map(|_| {
        http.post(format!("{}/v1/chat/completions", gw.url))
            .json(&chat("m", false))
            .send()
    });
    for resp in futures_util::future::join_all(calls).await {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let v: Value = resp.json().await.unwrap();
        assert!(openai_error(&v).contains("retry"), "{v}");
    }
    let b = budget(&gw).await;
    assert_eq!(b["limit_bytes"], 8 * MIB, "{b}");
    assert!(b["peak_bytes"].as_u64().unwrap() <= 8 * MIB, "{b}");
    assert!(b["refused"].as_u64().unwrap() >= 6, "{b}");
    assert_eq!(b["in_use_bytes"], 0, "every claim given back: {b}");
    // The gateway stopped reading each 50 MB answer early (what was written beyond the budget
    // sat in the sockets' kernel buffers).
    upstream.wait_closed(6, "huge answer").await;
    let written = upstream.written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        written < 6 * BOUNDED,
        "{written} bytes: read past the budget"
    );
}

#[tokio::test]
async fn an_announced_length_beyond_the_budget_is_refused_before_reading() {
    let mut upstream = hostile(Box::new(|_: &Seen| Answer::Endless { chunked: false })).await;
    let mut config = evil_gateway_config(&upstream);
    config.server.max_buffered_answer_bytes = 4 * MIB;
    let gw = start_gateway(config).await;
    let resp = post_json(&format!("{}/v1/chat/completions", gw.url), chat("m", false)).await;
    assert_eq!(resp.status(), 503);
    upstream.assert_cut_short(1, "announced 50 MB").await;
    assert_eq!(budget(&gw).await["peak_bytes"], 0);
}

#[tokio::test]
async fn a_large_answer_within_the_budget_is_relayed_whole_and_gives_its_room_back() {
    // 3 MB of content in a well-formed answer, with usage.
    let text = "y".repeat(3 * 1024 * 1024);
    let body = serde_json::json!({
        "id": "chatcmpl-big", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 700000, "total_tokens": 700003}
    })
    .to_string();
    let answer = http_response(
        "200 OK",
        &[("content-type", "application/json".into())],
        &body,
    );
    let upstream = hostile(Box::new(move |_: &Seen| Answer::Whole(answer.clone()))).await;
    let mut config = evil_gateway_config(&upstream);
    config.server.max_buffered_answer_bytes = 16 * MIB;
    let gw = start_gateway(config).await;
    let resp = post_json(&format!("{}/v1/chat/completions", gw.url), chat("m", false)).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str().map(str::len),
        Some(3 * 1024 * 1024)
    );
    let b = budget(&gw).await;
    assert!(b["peak_bytes"].as_u64().unwrap() >= 3 * MIB, "{b}");
    assert_eq!(b["in_use_bytes"], 0, "{b}");
    assert_eq!(b["refused"], 0, "{b}");
}
