//! Tests of the OpenAI endpoints against a live mock server.

use base64::Engine as _;
use serde_json::{Value, json};

use super::MOCK_TEXT;
use super::test_util::{TestServer, body_json, client, parse_sse, post};

#[tokio::test]
async fn chat_completion_json_shape() {
    let server = TestServer::start().await;
    let body = json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&server, "/v1/chat/completions", body, None).await;
    assert_eq!(resp.status(), 200);
    let v = body_json(resp).await;
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(v["model"], "gpt-x");
    assert!(v["created"].as_u64().unwrap() > 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], MOCK_TEXT);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(u["completion_tokens"], 8);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + 8
    );
    assert_eq!(server.stats.requests(), 1);
    assert_eq!(server.stats.streams_started(), 0);
}

async fn chat_stream(server: &TestServer, include_usage: Option<bool>) -> Vec<Value> {
    let mut body = json!({"model": "gpt-s", "messages": [], "stream": true});
    if let Some(u) = include_usage {
        body["stream_options"] = json!({"include_usage": u});
    }
    let resp = post(server, "/v1/chat/completions", body, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&resp.text().await.unwrap());
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect()
}

#[tokio::test]
async fn chat_completion_stream_shape() {
    let server = TestServer::start().await;
    for include_usage in [None, Some(false)] {
        let chunks = chat_stream(&server, include_usage).await;
        assert_eq!(chunks.len(), 1 + 8 + 1);
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert!(chunks.iter().all(|c| c["model"] == "gpt-s"));
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        let text: String = chunks[1..9]
            .iter()
            .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, MOCK_TEXT);
        assert_eq!(chunks[9]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[9]["choices"][0]["delta"], json!({}));
    }
    assert_eq!(server.stats.streams_started(), 2);
    assert_eq!(server.stats.streams_completed(), 2);
    assert_eq!(server.stats.streams_cancelled(), 0);
}

#[tokio::test]
async fn chat_completion_stream_usage_chunk_only_with_include_usage() {
    let server = TestServer::start().await;
    let chunks = chat_stream(&server, Some(true)).await;
    assert_eq!(chunks.len(), 1 + 8 + 1 + 1);
    let last = &chunks[10];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 8);
    assert_eq!(chunks[9]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn responses_json_shape() {
    let server = TestServer::start().await;
    let body = json!({"model": "gpt-r", "input": "hello"});
    let v = body_json(post(&server, "/v1/responses", body, None).await).await;
    assert_eq!(v["object"], "response");
    assert!(v["id"].as_str().unwrap().starts_with("resp_mock_"));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt-r");
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["tools"], json!([]));
    assert_eq!(v["text"], json!({"format": {"type": "text"}}));
    let item = &v["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["text"], MOCK_TEXT);
    assert_eq!(v["usage"]["output_tokens"], 8);
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn responses_stream_events_in_order() {
    let server = TestServer::start().await;
    let body = json!({"model": "gpt-r", "input": "hello", "stream": true});
    let resp = post(&server, "/v1/responses", body, Some("chunks=3")).await;
    let events = parse_sse(&resp.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    for (i, (d, kind)) in data.iter().zip(&kinds).enumerate() {
        assert_eq!(d["type"], *kind);
        assert_eq!(d["sequence_number"], i);
    }
    assert_eq!(data[0]["response"]["status"], "in_progress");
    let item_id = data[2]["item"]["id"].as_str().unwrap();
    let text: String = data[4..7]
        .iter()
        .map(|d| {
            assert_eq!(d["item_id"], item_id);
            assert_eq!(d["output_index"], 0);
            assert_eq!(d["content_index"], 0);
            assert_eq!(d["logprobs"], json!([]));
            d["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, MOCK_TEXT);
    assert_eq!(data[7]["text"], MOCK_TEXT);
    let done = &data[10]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], MOCK_TEXT);
    assert_eq!(done["usage"]["output_tokens"], 3);
}

async fn embed(server: &TestServer, body: Value) -> Value {
    let resp = post(server, "/v1/embeddings", body, None).await;
    assert_eq!(resp.status(), 200);
    body_json(resp).await
}

fn floats(v: &Value) -> Vec<f32> {
    let arr = v.as_array().unwrap();
    arr.iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let server = TestServer::start().await;
    let v = embed(&server, json!({"model": "emb", "input": "abc"})).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "emb");
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["index"], 0);
    let a = floats(&v["data"][0]["embedding"]);
    assert_eq!(a.len(), 8);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let body = json!({"input": ["abc", "xyz"], "dimensions": 5});
    let v = embed(&server, body).await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let a5 = floats(&data[0]["embedding"]);
    let b5 = floats(&data[1]["embedding"]);
    assert_eq!((a5.len(), b5.len()), (5, 5));
    assert_ne!(a5, b5);
    assert_eq!(data[1]["index"], 1);

    let body = json!({"input": "abc", "encoding_format": "base64"});
    let v = embed(&server, body).await;
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, a, "base64 and float encodings agree");

    let v = embed(
        &server,
        json!({"input": [[1, 2, 3], [4]], "encoding_format": "float"}),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let v = embed(&server, json!({"input": [1, 2, 3]})).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);

    for bad in [
        json!({"input": "x", "encoding_format": "hex"}),
        json!({"input": []}),
        json!({"input": 5}),
        json!({"input": "x", "dimensions": 0}),
    ] {
        let resp = post(&server, "/v1/embeddings", bad, None).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            body_json(resp).await["error"]["type"],
            "invalid_request_error"
        );
    }
}

#[tokio::test]
async fn models_list() {
    let server = TestServer::start().await;
    let resp = client().get(server.url("/v1/models")).send().await.unwrap();
    let v = body_json(resp).await;
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock-gpt", "mock-gpt-mini"]);
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "portcullis-mock");
    let resp = client()
        .get(server.url("/v1/models/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(resp).await["id"], "abc");
}

#[tokio::test]
async fn status_directive_uses_openai_error_shape() {
    let server = TestServer::start().await;
    let body = json!({"model": "m", "messages": []});
    let resp = post(
        &server,
        "/v1/chat/completions",
        body.clone(),
        Some("status=429"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v = body_json(resp).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("429"));
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["param"], Value::Null);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let resp = post(
        &server,
        "/v1/responses",
        body.clone(),
        Some("status=503; retry_after=9"),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "9");
    let resp = post(
        &server,
        "/v1/chat/completions",
        body.clone(),
        Some("status=401"),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(body_json(resp).await["error"]["code"], "invalid_api_key");

    let resp = post(&server, "/v1/chat/completions", body, Some("chunks=zero")).await;
    assert_eq!(resp.status(), 400);
    let v = body_json(resp).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("x-mock"));

    let resp = client()
        .post(server.url("/v1/chat/completions"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(server.stats.requests(), 5);
}
