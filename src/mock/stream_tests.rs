//! Tests of the stream directives (`chunks`, `chunk_delay_ms`, `drop_after`,
//! `malformed`, `header_delay_ms`), the stream counters, request recording
//! and h2c, against a live mock server.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::test_util::{TestServer, client, parse_sse, post};
use super::{MOCK_TEXT, pieces};

fn chat(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn chat_text(body: &str) -> String {
    parse_sse(body)
        .iter()
        .filter(|e| e.data.starts_with('{') && e.data.ends_with('}'))
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn chunks_directive_sets_piece_count() {
    let server = TestServer::start().await;
    for n in [1usize, 3, 40] {
        let mock = format!("chunks={n}");
        let resp = post(&server, "/v1/chat/completions", chat(true), Some(&mock)).await;
        let events = parse_sse(&resp.text().await.unwrap());
        // role chunk + n pieces + finish chunk + [DONE]
        assert_eq!(events.len(), n + 3);
        assert_eq!(
            chat_text(
                &events
                    .iter()
                    .map(|e| format!("data: {}\n\n", e.data))
                    .collect::<String>()
            ),
            MOCK_TEXT
        );
    }
}

#[tokio::test]
async fn header_and_chunk_delays() {
    let server = TestServer::start().await;
    let start = Instant::now();
    let resp = post(
        &server,
        "/v1/chat/completions",
        chat(false),
        Some("header_delay_ms=150"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(150));

    let start = Instant::now();
    let resp = post(
        &server,
        "/v1/chat/completions",
        chat(true),
        Some("chunks=4;chunk_delay_ms=40"),
    )
    .await;
    let mut body = resp.bytes_stream();
    let mut frames = 0;
    let mut text = Vec::new();
    while let Some(frame) = body.next().await {
        text.extend_from_slice(&frame.unwrap());
        frames += 1;
    }
    // 3 delays between 4 pieces: the whole answer takes at least their sum (a lower bound: a
    // loaded machine only stretches it). The pieces come apart, though a client that is itself
    // held up (a busy machine, here during CI's builds) may read two of them at once.
    let total = start.elapsed();
    assert!(total >= Duration::from_millis(120), "{total:?}");
    assert!(frames >= 2, "delayed pieces arrive separately: {frames}");
    assert_eq!(chat_text(std::str::from_utf8(&text).unwrap()), MOCK_TEXT);
}

/// Reads a body until its end or an error; returns the bytes and whether it failed.
async fn read_until_error(resp: reqwest::Response) -> (String, bool) {
    let mut body = resp.bytes_stream();
    let mut data = Vec::new();
    while let Some(frame) = body.next().await {
        match frame {
            Ok(b) => data.extend_from_slice(&b),
            Err(_) => return (String::from_utf8(data).unwrap(), true),
        }
    }
    (String::from_utf8(data).unwrap(), false)
}

#[tokio::test]
async fn drop_after_aborts_the_stream() {
    let server = TestServer::start().await;
    for (mock, k) in [
        ("drop_after=3", 3),
        ("drop_after=2;chunk_delay_ms=5", 2),
        ("drop_after=0", 0),
    ] {
        let resp = post(&server, "/v1/chat/completions", chat(true), Some(mock)).await;
        assert_eq!(resp.status(), 200);
        let (data, failed) = read_until_error(resp).await;
        assert!(failed, "{mock}: body must fail");
        assert!(!data.contains("[DONE]"));
        let expected: String = pieces(MOCK_TEXT, 8).take(k).collect();
        assert_eq!(chat_text(&data), expected, "{mock}");
    }
    // Anthropic and Gemini streams abort too.
    let body = json!({"model": "c", "max_tokens": 5, "messages": [], "stream": true});
    let resp = post(&server, "/v1/messages", body, Some("drop_after=1")).await;
    let (data, failed) = read_until_error(resp).await;
    assert!(failed && data.contains("content_block_delta") && !data.contains("message_stop"));
    let path = "/v1beta/models/g:streamGenerateContent?alt=sse";
    let resp = post(&server, path, json!({}), Some("drop_after=1")).await;
    assert!(read_until_error(resp).await.1);
    assert_eq!(server.stats.streams_started(), 5);
    assert_eq!(server.stats.streams_completed(), 0);
    assert_eq!(server.stats.streams_cancelled(), 0);
}

#[tokio::test]
async fn malformed_inserts_a_broken_event_then_finishes() {
    let server = TestServer::start().await;
    let resp = post(
        &server,
        "/v1/chat/completions",
        chat(true),
        Some("malformed=1"),
    )
    .await;
    let (data, failed) = read_until_error(resp).await;
    assert!(!failed);
    let broken = "data: {\"choices\": [ {oops\n\n";
    let at = data.find(broken).unwrap();
    let first_piece = pieces(MOCK_TEXT, 8).next().unwrap();
    let before = &data[..at];
    assert_eq!(chat_text(before), first_piece);
    assert!(data.ends_with("data: [DONE]\n\n"));
    assert_eq!(chat_text(&data.replace(broken, "")), MOCK_TEXT);
    assert_eq!(server.stats.streams_completed(), 1);
}

#[tokio::test]
async fn client_dropping_a_stream_counts_as_cancelled() {
    let server = TestServer::start().await;
    let resp = post(
        &server,
        "/v1/chat/completions",
        chat(true),
        Some("chunks=50;chunk_delay_ms=20"),
    )
    .await;
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);
    tokio::time::timeout(Duration::from_secs(5), server.stats.wait_cancelled(1))
        .await
        .expect("stream cancelled");
    assert_eq!(server.stats.streams_cancelled(), 1);
    assert_eq!(server.stats.streams_completed(), 0);
    assert_eq!(server.stats.streams_started(), 1);
    // Already satisfied: returns at once.
    server.stats.wait_cancelled(1).await;
}

#[tokio::test]
async fn records_the_last_request() {
    let server = TestServer::start().await;
    assert!(server.stats.last_request().is_none());
    let resp = client()
        .post(server.url("/v1/chat/completions?x=1"))
        .header("Authorization", "Bearer sk-test")
        .header("content-type", "application/json")
        .body(r#"{"model":"m","messages":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = server.stats.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.query.as_deref(), Some("x=1"));
    assert_eq!(seen.header("AUTHORIZATION"), Some("Bearer sk-test"));
    assert_eq!(&seen.body[..], br#"{"model":"m","messages":[]}"#);
    client().get(server.url("/nowhere")).send().await.unwrap();
    assert_eq!(server.stats.last_request().unwrap().path, "/nowhere");
    assert_eq!(server.stats.requests(), 2);
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let server = TestServer::start().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let send = |stream: bool, mock: &'static str| {
        h2.post(server.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-mock", mock)
            .body(serde_json::to_vec(&chat(stream)).unwrap())
            .send()
    };
    let resp = send(false, "").await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], MOCK_TEXT);
    let resp = send(true, "chunk_delay_ms=1").await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(chat_text(&resp.text().await.unwrap()), MOCK_TEXT);
    for _ in 0..20 {
        let resp = send(true, "drop_after=2").await.unwrap();
        let (data, failed) = read_until_error(resp).await;
        assert!(failed);
        let expected: String = pieces(MOCK_TEXT, 8).take(2).collect();
        assert_eq!(chat_text(&data), expected, "pieces before the drop arrive");
    }
    assert_eq!(server.stats.streams_completed(), 1);
}
