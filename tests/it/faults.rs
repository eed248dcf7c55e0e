//! Each upstream fault's client-visible result, in each protocol's shape.

use serde_json::{Value, json};

use crate::harness::*;

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude-x", "max_tokens": 10, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// POSTs `body` to `path` with the mock's (or a scripted upstream's) `x-mock` directive.
pub async fn send(gw: &Gateway, path: &str, directive: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .header("x-mock", directive)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limits_keep_status_and_retry_after() {
    let (_mock, gw) = start().await;
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "status=429; retry_after=7",
        chat("mock-gpt", false),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    openai_error(&resp.json().await.unwrap());

    let resp = send(
        &gw,
        "/v1/messages",
        "status=429; retry_after=3",
        anthropic_body(true),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    anthropic_error(&resp.json().await.unwrap());

    let resp = send(
        &gw,
        "/v1beta/models/mock-gemini:generateContent",
        "status=429",
        json!({"contents": []}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    google_error(&v);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn an_upstream_credential_failure_is_a_gateway_error_not_the_clients() {
    let (_mock, gw) = start().await;
    for status in [401, 403] {
        let resp = send(
            &gw,
            "/v1/chat/completions",
            &format!("status={status}"),
            chat("mock-gpt", false),
        )
        .await;
        assert_eq!(resp.status(), 502, "upstream {status}");
        let msg = openai_error(&resp.json().await.unwrap());
        assert!(msg.contains("rejected the gateway's credential"), "{msg}");
        assert!(!msg.contains(OPENAI_KEY));
    }
    let resp = send(&gw, "/v1/messages", "status=401", anthropic_body(false)).await;
    assert_eq!(resp.status(), 502);
    anthropic_error(&resp.json().await.unwrap());
}

#[tokio::test]
async fn upstream_server_errors_become_502_with_the_upstream_message() {
    let (_mock, gw) = start().await;
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "status=500",
        chat("mock-gpt", true),
    )
    .await;
    assert_eq!(resp.status(), 502);
    let msg = openai_error(&resp.json().await.unwrap());
    assert!(msg.contains("failed (HTTP 500)"), "{msg}");

    let resp = send(&gw, "/v1/messages", "status=529", anthropic_body(false)).await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    anthropic_error(&v);
    assert_eq!(v["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn a_stream_dropped_midway_ends_with_an_error_event() {
    let (_mock, gw) = start().await;
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "chunks=6; drop_after=2",
        chat("mock-gpt", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    assert!(
        !openai_text(&events).is_empty(),
        "the pieces sent before the drop arrive"
    );
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert!(openai_error(&last).contains("broke off"), "{last}");

    let resp = send(
        &gw,
        "/v1/messages",
        "chunks=6; drop_after=2",
        anthropic_body(true),
    )
    .await;
    let events = sse_events(resp).await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    anthropic_error(&serde_json::from_str(data).unwrap());

    let resp = send(
        &gw,
        "/v1beta/models/mock-gemini:streamGenerateContent?alt=sse",
        "chunks=6; drop_after=2",
        json!({"contents": []}),
    )
    .await;
    let events = sse_events(resp).await;
    google_error(&serde_json::from_str(&events.last().unwrap().1).unwrap());
}

/// Client review (issue 16): a broken Responses stream ended in the Chat Completions shape,
/// which Codex (reading events by `type`) ignored. It ends with `response.failed`, which also
/// carries the `error` member the SDKs raise on.
#[tokio::test]
async fn a_responses_stream_dropped_midway_ends_with_response_failed() {
    let (_mock, gw) = start().await;
    let resp = send(
        &gw,
        "/v1/responses",
        "chunks=6; drop_after=3",
        json!({"model": "mock-gpt", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    assert!(
        events
            .iter()
            .any(|(e, _)| e.as_deref() == Some("response.created")),
        "the events before the drop arrive: {events:?}"
    );
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.failed"));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["type"], "response.failed");
    assert_eq!(v["response"]["status"], "failed");
    assert_eq!(v["response"]["error"]["code"], "server_error");
    let message = v["response"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("broke off"), "{v}");
    assert_eq!(openai_error(&v), message);
    // Chat completions keep their shape.
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "chunks=6; drop_after=2",
        chat("mock-gpt", true),
    )
    .await;
    let events = sse_events(resp).await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, &None);
    let v: Value = serde_json::from_str(data).unwrap();
    assert!(v.get("type").is_none(), "{v}");
    openai_error(&v);
}

#[tokio::test]
async fn malformed_sse_is_relayed_unchanged_and_the_stream_completes() {
    let (_mock, gw) = start().await;
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "malformed=1",
        chat("mock-gpt", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("{oops"),
        "the broken event is passed through: {text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    // The gateway is unaffected.
    let ok = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("mock-gpt", false),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn an_unreachable_backend_is_a_502_in_the_callers_protocol() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.backends.insert(
        "anthropic".into(),
        backend(
            portcullis::config::BackendKind::Anthropic,
            format!("http://{dead}"),
            Some("k-0123456789"),
        ),
    );
    let gw = start_gateway(config).await;
    let resp = post_json(&format!("{}/v1/messages", gw.url), anthropic_body(false)).await;
    assert_eq!(resp.status(), 502);
    let msg = anthropic_error(&resp.json().await.unwrap());
    assert!(msg.contains("could not be reached"), "{msg}");
}
