//! Tests of the Anthropic endpoints against a live mock server.

use serde_json::{Value, json};

use super::MOCK_TEXT;
use super::test_util::{TestServer, body_json, client, parse_sse, post};

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    })
}

#[tokio::test]
async fn messages_json_shape() {
    let server = TestServer::start().await;
    let resp = post(&server, "/v1/messages", request(false), None).await;
    assert_eq!(resp.status(), 200);
    let v = body_json(resp).await;
    assert!(v["id"].as_str().unwrap().starts_with("msg_mock_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-x");
    assert_eq!(v["content"], json!([{"type": "text", "text": MOCK_TEXT}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(v["usage"]["output_tokens"], 8);
}

#[tokio::test]
async fn messages_stream_events_in_order() {
    let server = TestServer::start().await;
    let resp = post(&server, "/v1/messages", request(true), Some("chunks=4")).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&resp.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    for (d, kind) in data.iter().zip(&kinds) {
        assert_eq!(d["type"], *kind);
    }
    let start = &data[0]["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["model"], "claude-x");
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = data[3..7]
        .iter()
        .map(|d| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, MOCK_TEXT);
    assert_eq!(data[8]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[8]["delta"]["stop_sequence"], Value::Null);
    assert_eq!(data[8]["usage"]["output_tokens"], 4);
    assert_eq!(server.stats.streams_completed(), 1);
}

#[tokio::test]
async fn count_tokens_and_models() {
    let server = TestServer::start().await;
    let resp = post(&server, "/v1/messages/count_tokens", request(false), None).await;
    let v = body_json(resp).await;
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
    let resp = client()
        .get(server.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v = body_json(resp).await;
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn status_directive_uses_anthropic_error_shape() {
    let server = TestServer::start().await;
    for (status, kind) in [
        (429, "rate_limit_error"),
        (401, "authentication_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let mock = format!("status={status}");
        let resp = post(&server, "/v1/messages", request(true), Some(&mock)).await;
        assert_eq!(resp.status(), status);
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry.as_deref(), (status == 429).then_some("1"));
        let v = body_json(resp).await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"].is_string());
    }
    let resp = post(
        &server,
        "/v1/messages",
        request(false),
        Some("malformed=maybe"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        body_json(resp).await["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(server.stats.streams_started(), 0);
}
