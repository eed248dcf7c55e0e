//! Tests of the Gemini endpoints against a live mock server.

use serde_json::{Value, json};

use super::MOCK_TEXT;
use super::test_util::{TestServer, body_json, client, parse_sse, post};

fn request() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

fn text_of(v: &Value) -> &str {
    v["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn models_list_and_get() {
    let server = TestServer::start().await;
    let resp = client()
        .get(server.url("/v1beta/models"))
        .send()
        .await
        .unwrap();
    let v = body_json(resp).await;
    let m = &v["models"][0];
    assert_eq!(m["name"], "models/mock-gemini");
    assert_eq!(
        m["supportedGenerationMethods"],
        json!(["generateContent", "streamGenerateContent", "countTokens"])
    );
    assert!(m["inputTokenLimit"].as_u64().unwrap() > 0);
    assert!(m["displayName"].is_string());
    let resp = client()
        .get(server.url("/v1beta/models/other-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(resp).await["name"], "models/other-model");
}

#[tokio::test]
async fn generate_content_and_count_tokens() {
    let server = TestServer::start().await;
    let path = "/v1beta/models/mock-gemini:generateContent?key=abc";
    let v = body_json(post(&server, path, request(), None).await).await;
    assert_eq!(text_of(&v), MOCK_TEXT);
    let c = &v["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["index"], 0);
    assert_eq!(v["modelVersion"], "mock-gemini");
    let u = &v["usageMetadata"];
    assert_eq!(u["candidatesTokenCount"], 8);
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap() + 8
    );
    let seen = server.stats.last_request().unwrap();
    assert_eq!(seen.query.as_deref(), Some("key=abc"));

    // A model name containing ':' is split on the last ':'.
    let path = "/v1beta/models/tuned:v1:generateContent";
    let v = body_json(post(&server, path, request(), None).await).await;
    assert_eq!(v["modelVersion"], "tuned:v1");

    let path = "/v1beta/models/mock-gemini:countTokens";
    let v = body_json(post(&server, path, request(), None).await).await;
    assert!(v["totalTokens"].as_u64().unwrap() > 0);

    let path = "/v1beta/models/mock-gemini:fly";
    let resp = post(&server, path, request(), None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body_json(resp).await["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn stream_generate_content_sse() {
    let server = TestServer::start().await;
    let path = "/v1beta/models/mock-gemini:streamGenerateContent?alt=sse";
    let resp = post(&server, path, request(), Some("chunks=5")).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events: Vec<Value> = parse_sse(&resp.text().await.unwrap())
        .iter()
        .map(|e| e.json())
        .collect();
    assert_eq!(events.len(), 5);
    let text: String = events.iter().map(text_of).collect();
    assert_eq!(text, MOCK_TEXT);
    for e in &events[..4] {
        assert!(e["candidates"][0].get("finishReason").is_none());
        assert!(e.get("usageMetadata").is_none());
    }
    assert_eq!(events[4]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[4]["usageMetadata"]["candidatesTokenCount"], 5);
}

#[tokio::test]
async fn stream_generate_content_json_array() {
    let server = TestServer::start().await;
    let path = "/v1beta/models/mock-gemini:streamGenerateContent";
    let resp = post(&server, path, request(), Some("chunks=3")).await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    let raw = resp.text().await.unwrap();
    assert!(raw.starts_with("[{") && raw.ends_with("}]"));
    assert_eq!(raw.matches(",\r\n{").count(), 2);
    let v: Value = serde_json::from_str(&raw).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    let text: String = arr.iter().map(text_of).collect();
    assert_eq!(text, MOCK_TEXT);
    assert_eq!(arr[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(server.stats.streams_completed(), 1);
}

#[tokio::test]
async fn status_directive_uses_google_error_shape() {
    let server = TestServer::start().await;
    let path = "/v1beta/models/mock-gemini:generateContent";
    let resp = post(&server, path, request(), Some("status=429;retry_after=4")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "4");
    let v = body_json(resp).await;
    assert_eq!(v["error"]["code"], 429);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(v["error"]["message"].is_string());
    let resp = client()
        .get(server.url("/v1beta/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(body_json(resp).await["error"]["code"], 404);
}

#[tokio::test]
async fn v1_paths_serve_gemini_clients() {
    let server = TestServer::start().await;
    let path = "/v1/models/mock-gemini:generateContent";
    let v = body_json(post(&server, path, request(), None).await).await;
    assert_eq!(text_of(&v), MOCK_TEXT);
    let path = "/v1/models/mock-gemini:streamGenerateContent?alt=sse";
    let resp = post(&server, path, request(), None).await;
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.len(), 8);
    let resp = client()
        .get(server.url("/v1/models"))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body_json(resp).await["models"][0]["name"],
        "models/mock-gemini"
    );
    let resp = client()
        .get(server.url("/v1/models/abc?key=k"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(resp).await["name"], "models/abc");
    // Without a Google key the same paths answer in OpenAI's shape.
    let resp = client()
        .get(server.url("/v1/models/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(resp).await["object"], "model");
}
