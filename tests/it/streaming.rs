//! Streaming behaviour: chunks are relayed as they arrive, a client that goes away cancels the
//! upstream request, idle-read timeouts (not total deadlines) apply.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use portcullis::mock::MOCK_TEXT;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn each_chunk_reaches_the_client_before_the_upstream_sends_the_next() {
    let (_mock, gw) = start().await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "chunks=3; chunk_delay_ms=400")
        .json(&chat("mock-gpt", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let mut first_content_at = None;
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if first_content_at.is_none() && !openai_text(&parse_sse(&seen)).is_empty() {
            first_content_at = Some(Instant::now());
        }
    }
    let ended = Instant::now();
    // The upstream waits 400 ms before each of the two later pieces: had the gateway buffered,
    // the first piece would arrive together with the end.
    let gap = ended - first_content_at.unwrap();
    assert!(
        gap >= Duration::from_millis(700),
        "first piece arrived only {gap:?} before the end"
    );
    assert_eq!(openai_text(&parse_sse(&seen)), MOCK_TEXT);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_stream() {
    let (mock, gw) = start().await;
    for (path, body) in [
        ("/v1/chat/completions", chat("mock-gpt", true)),
        (
            "/v1/messages",
            serde_json::json!({"model": "c", "max_tokens": 5, "stream": true, "messages": []}),
        ),
    ] {
        let before = mock.stats.streams_cancelled();
        let resp = client()
            .post(format!("{}{path}", gw.url))
            .header("x-mock", "chunks=200; chunk_delay_ms=50")
            .json(&body)
            .send()
            .await
            .unwrap();
        let mut stream = resp.bytes_stream();
        let first = stream.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        drop(stream);
        tokio::time::timeout(
            Duration::from_secs(10),
            mock.stats.wait_cancelled(before + 1),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: the upstream stream was not cancelled"));
    }
    assert_eq!(mock.stats.streams_completed(), 0);
}

#[tokio::test]
async fn a_long_stream_that_keeps_sending_is_never_cut() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    set_read_idle(&mut config, "openai", 600);
    let gw = start_gateway(config).await;
    let started = Instant::now();
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "chunks=8; chunk_delay_ms=200")
        .json(&chat("mock-gpt", true))
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    assert!(
        started.elapsed() > Duration::from_millis(1200),
        "the stream outlived the idle timeout"
    );
    assert_eq!(openai_text(&events), MOCK_TEXT);
    assert_eq!(events.last().unwrap().1, "[DONE]");
}

#[tokio::test]
async fn an_upstream_that_goes_silent_times_out_in_the_callers_protocol() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    for b in ["openai", "anthropic", "gemini"] {
        set_read_idle(&mut config, b, 300);
    }
    let gw = start_gateway(config).await;

    // Before the headers: 504 in each protocol's shape.
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "header_delay_ms=3000")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    openai_error(&resp.json().await.unwrap());
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-mock", "header_delay_ms=3000")
        .json(&serde_json::json!({"model": "c", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    anthropic_error(&resp.json().await.unwrap());

    // Mid-stream: the stream ends with the protocol's error event.
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "chunks=4; chunk_delay_ms=3000")
        .json(&chat("mock-gpt", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert!(openai_error(&last).contains("idle timeout"), "{last}");
}

/// An OpenAI chat stream whose lines end in a bare `\r` (the SSE specification allows `\r`,
/// `\n` and `\r\n`), with one `\r\n` split between two writes: "Hel" + "lo", then usage.
fn bare_cr_stream(_: &crate::hostile::Seen) -> crate::hostile::Answer {
    let chunk = |choices: &str, extra: &str| {
        format!(
            r#"data: {{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{choices}]{extra}}}"#
        )
    };
    let delta = |d: &str, finish: &str| {
        chunk(
            &format!(r#"{{"index":0,"delta":{d},"finish_reason":{finish}}}"#),
            "",
        )
    };
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let parts = vec![
        format!(
            "{head}{}\r",
            delta(r#"{"role":"assistant","content":"Hel"}"#, "null")
        ),
        format!(
            "\n{}\r\r{}\r\r{}\r",
            delta(r#"{"content":"lo"}"#, "null"),
            delta("{}", r#""stop""#),
            chunk(
                "",
                r#","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}"#
            ),
        ),
        "\rdata: [DONE]\r\r".to_owned(),
    ];
    let (go, wait) = tokio::sync::mpsc::channel::<()>(parts.len());
    for _ in 1..parts.len() {
        go.try_send(()).unwrap();
    }
    crate::hostile::Answer::Parts(parts.into_iter().map(String::into_bytes).collect(), wait)
}

/// Bare-CR line ends from an upstream are scanned like any others: the stream's usage is
/// counted against the credential's quota, and a translated stream carries the whole text.
#[tokio::test]
async fn an_upstream_stream_with_bare_cr_line_ends_is_scanned_and_translated() {
    const MGMT: &str = "management-key-0123456789";
    let upstream = crate::hostile::hostile(Box::new(bare_cr_stream)).await;
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(portcullis::secret::Secret::new(MGMT));
    let openai = config.backends.get_mut("openai").unwrap();
    openai.base_url = Some(format!("{}/v1", upstream.url));
    openai.quota = Some(portcullis::config::QuotaLimit { limit: 1_000_000 });
    let gw = start_gateway(config).await;
    let used = || quota_used(&gw.url, MGMT, "openai");

    // Same protocol: relayed byte for byte, the usage line (ended by `\r`) counted.
    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("openai:m", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert!(body.ends_with(b"data: [DONE]\r\r"), "relayed unchanged");
    assert_eq!(used().await, 5, "the usage of a bare-CR stream is deducted");

    // Translated for an Anthropic caller: every delta arrives.
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({
            "model": "openai:m", "max_tokens": 16, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    let text: String = events
        .iter()
        .filter(|(kind, _)| kind.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, data)| {
            let v: Value = serde_json::from_str(data).ok()?;
            v["delta"]["text"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Hello", "{events:?}");
    assert!(
        events
            .iter()
            .any(|(kind, _)| kind.as_deref() == Some("message_stop")),
        "{events:?}"
    );
    assert_eq!(used().await, 10);
}
