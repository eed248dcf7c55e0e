//! Hostile upstreams against the gateway's memory: non-streamed answers are read whole, so all
//! of them together stay inside `server.max_buffered_answer_bytes` — an answer that finds no room
//! is cut off at once with 503 and `Retry-After`, and its room comes back when it ends — and a
//! matrix of misbehaving answers (invalid UTF-8, `Set-Cookie`, a 2 MB header, a stall after the
//! headers, a connection closed mid-body, the key echoed), each ending in a clean relay or a
//! clean error in the caller's protocol, in bounded time, the key never reaching the client.

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

/// What the hostile upstream answers for each `x-mock` case.
fn misbehave(seen: &Seen, held: &std::sync::Mutex<Vec<tokio::sync::mpsc::Sender<()>>>) -> Answer {
    let key = seen.credential();
    let json = ("content-type", "application/json".to_owned());
    let ok_body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
    match seen.header("x-mock").unwrap_or("") {
        "invalid-utf8" => {
            let mut raw = http_response("200 OK", &[json], "");
            // Replace the empty body with 6 bytes that are not UTF-8 (length fixed up).
            let text = String::from_utf8(raw)
                .unwrap()
                .replace("content-length: 0", "content-length: 6");
            raw = text.into_bytes();
            raw.extend_from_slice(b"{\xff\xfe\"}\n");
            Answer::Whole(raw)
        }
        "set-cookie" => Answer::Whole(http_response(
            "200 OK",
            &[
                json,
                ("set-cookie", format!("session={key}; Path=/")),
                ("set-cookie", "tracker=1".into()),
            ],
            ok_body,
        )),
        "huge-header" => Answer::Whole(http_response(
            "200 OK",
            &[json, ("x-huge", "h".repeat(2 * 1024 * 1024))],
            ok_body,
        )),
        "stall-after-headers" => {
            let (go, wait) = tokio::sync::mpsc::channel(1);
            held.lock().unwrap().push(go);
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":";
            Answer::Parts(vec![head.as_bytes().to_vec(), b"never".to_vec()], wait)
        }
        "reset-mid-body" => {
            let mut raw = http_response("200 OK", &[json], ok_body);
            raw.truncate(raw.len() - ok_body.len() / 2);
            Answer::Whole(raw)
        }
        "echo-key" => Answer::Whole(http_response(
            "200 OK",
            &[json, ("x-echo", key.clone())],
            &ok_body.replace("\"hi\"", &format!("\"{key}\"")),
        )),
        _ => Answer::Whole(http_response("200 OK", &[json], ok_body)),
    }
}

#[tokio::test]
async fn every_kind_of_hostile_answer_ends_cleanly_without_the_key() {
    let held = std::sync::Mutex::new(Vec::new());
    let upstream = hostile(Box::new(move |seen: &Seen| misbehave(seen, &held))).await;
    let mut config = evil_gateway_config(&upstream);
    let evil = config.backends.get_mut("evil").unwrap();
    evil.forward_headers = vec!["x-mock".into()];
    evil.timeouts.read_idle =
        portcullis::config::HumanDuration(std::time::Duration::from_millis(500));
    let gw = start_gateway(config).await;
    // (case, expected status, a check on the body the client got)
    type Case = (&'static str, u16, fn(&[u8]) -> bool);
    let cases: &[Case] = &[
        ("plain", 200, |b| b.windows(4).any(|w| w == b"\"hi\"")),
        // Relayed unchanged: the client's JSON parser decides; nothing is lost or invented.
        ("invalid-utf8", 200, |b| b == b"{\xff\xfe\"}\n"),
        ("set-cookie", 200, |b| b.windows(4).any(|w| w == b"\"hi\"")),
        ("huge-header", 502, |b| b.starts_with(b"{\"error\"")),
        ("stall-after-headers", 504, |b| b.starts_with(b"{\"error\"")),
        ("reset-mid-body", 502, |b| b.starts_with(b"{\"error\"")),
        ("echo-key", 200, |b| b.windows(3).any(|w| w == b"***")),
    ];
    for (case, status, check) in cases {
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client()
                .post(format!("{}/v1/chat/completions", gw.url))
                .header("x-mock", *case)
                .json(&chat("m", false))
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{case}: no answer"))
        .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{case}");
        let headers = format!("{:?}", resp.headers());
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "{case}: {headers}"
        );
        let body = resp.bytes().await.unwrap();
        assert!(check(&body), "{case}: {}", String::from_utf8_lossy(&body));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(crate::security::leaked(&headers), None, "{case}: {headers}");
        assert_eq!(crate::security::leaked(&text), None, "{case}: {text}");
    }
    let b = budget(&gw).await;
    assert_eq!(b["in_use_bytes"], 0, "{b}");
}
