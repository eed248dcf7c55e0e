//! Bad input gets a clear 4xx in the caller's protocol and nothing panics.

use serde_json::{Value, json};

use crate::harness::*;

async fn raw(gw: &Gateway, path: &str, body: &'static str) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_a_400_in_each_protocol() {
    let (_mock, gw) = start().await;
    for body in ["{\"model\": ", "not json", "", "[1,2]"] {
        let resp = raw(&gw, "/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 400, "{body:?}");
        let msg = openai_error(&resp.json().await.unwrap());
        assert!(msg.contains("JSON") || msg.contains("empty"), "{msg}");

        let resp = raw(&gw, "/v1/messages", body).await;
        assert_eq!(resp.status(), 400);
        anthropic_error(&resp.json().await.unwrap());

        let resp = raw(&gw, "/v1beta/models/mock-gemini:generateContent", body).await;
        assert_eq!(resp.status(), 400);
        google_error(&resp.json().await.unwrap());
    }
}

#[tokio::test]
async fn unknown_backends_and_models_are_clear_4xx() {
    let (_mock, gw) = start().await;
    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("nope:gpt-4o", false),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let msg = openai_error(&resp.json().await.unwrap());
    assert!(
        msg.contains("`nope`") && msg.contains("not configured"),
        "{msg}"
    );

    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("openai:", false),
    )
    .await;
    assert_eq!(resp.status(), 400);

    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        json!({"messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(openai_error(&resp.json().await.unwrap()).contains("names no model"));

    // An Anthropic token count naming an OpenAI backend: only generation is translated.
    let resp = post_json(
        &format!("{}/v1/messages/count_tokens", gw.url),
        json!({"model": "openai:gpt-4o", "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(anthropic_error(&resp.json().await.unwrap()).contains("not translated"));

    let url = format!("{}/v1beta/models/mock-gemini:explode", gw.url);
    let resp = post_json(&url, json!({})).await;
    assert_eq!(resp.status(), 404);
    google_error(&resp.json().await.unwrap());
}

#[tokio::test]
async fn oversized_bodies_are_413_in_each_protocol() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.max_body_bytes = 4096;
    let gw = start_gateway(config).await;
    let big =
        json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "x".repeat(10_000)}]});
    let resp = post_json(&format!("{}/v1/chat/completions", gw.url), big.clone()).await;
    assert_eq!(resp.status(), 413);
    assert!(openai_error(&resp.json().await.unwrap()).contains("larger"));
    let resp = post_json(&format!("{}/v1/messages", gw.url), big.clone()).await;
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert!(!anthropic_error(&v).is_empty());
    assert_eq!(v["error"]["type"], "request_too_large");
    let resp = post_json(&format!("{}/v1beta/models/m:generateContent", gw.url), big).await;
    assert_eq!(resp.status(), 413);
    google_error(&resp.json().await.unwrap());
    assert_eq!(mock.stats.requests(), 0, "nothing oversized went upstream");
}

#[tokio::test]
async fn a_chunked_body_is_read_whole_and_held_to_the_limit() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.max_body_bytes = 4096;
    let gw = start_gateway(config).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    // Sent in pieces of 100 bytes, without a length: the gateway sees several frames.
    let chunked = |text: String| {
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> = text
            .into_bytes()
            .chunks(100)
            .map(|c| Ok(c.to_vec()))
            .collect();
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                pieces,
            )))
    };
    let fits =
        json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "y".repeat(3000)}]})
            .to_string();
    let resp = chunked(fits.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.stats.last_request().unwrap().body, fits.as_bytes());
    let over =
        json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "y".repeat(5000)}]})
            .to_string();
    let resp = chunked(over).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(openai_error(&resp.json().await.unwrap()).contains("larger"));
    assert_eq!(mock.stats.requests(), 1, "nothing oversized went upstream");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (_mock, gw) = start().await;
    let resp = client()
        .get(format!("{}/v1/nothing-here", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    openai_error(&resp.json().await.unwrap());
    let resp = client()
        .get(format!("{}/v1/chat/completions", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    openai_error(&resp.json().await.unwrap());
    let resp = client()
        .get(format!("{}/v1/messages", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    anthropic_error(&resp.json().await.unwrap());
}
