//! Every client endpoint end to end through the gateway to the mock: JSON and streams, the
//! upstream credential replacing the client's, model rewriting, unknown fields preserved.

use portcullis::mock::MOCK_TEXT;
use serde_json::{Value, json};

use crate::harness::*;

/// The set of key paths of a JSON value (values ignored), to compare shapes.
fn shape(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}.{k}");
                out.push(p.clone());
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    shape(v, "", &mut out);
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn chat_completion_json_is_relayed_as_the_upstream_sent_it() {
    let (mock, gw) = start().await;
    let body = chat("mock-gpt", false);
    let via: Value = post_for_json(&format!("{}/v1/chat/completions", gw.url), body.clone()).await;
    let direct: Value =
        post_for_json(&format!("http://{}/v1/chat/completions", mock.addr), body).await;
    assert_eq!(via["choices"][0]["message"]["content"], MOCK_TEXT);
    assert_eq!(via["model"], "mock-gpt");
    assert!(via["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        shape_of(&via),
        shape_of(&direct),
        "every upstream field is kept"
    );
}

#[tokio::test]
async fn the_clients_credential_never_reaches_the_upstream() {
    let (mock, gw) = start().await;
    let resp = client()
        .post(format!(
            "{}/v1/chat/completions?key=client-query-secret",
            gw.url
        ))
        .header("authorization", "Bearer client-secret-1")
        .header("x-api-key", "client-secret-2")
        .header("x-goog-api-key", "client-secret-3")
        .header("cookie", "session=client-secret-4")
        .header("x-custom-header", "kept")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("x-goog-api-key"), None);
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(
        seen.header("x-custom-header"),
        None,
        "not on the allow-list"
    );
    assert!(
        !seen
            .query
            .clone()
            .unwrap_or_default()
            .contains("client-query-secret")
    );
    let all = format!("{:?}", seen.headers);
    assert!(!all.contains("client-secret"), "{all}");

    // Anthropic and Gemini backends get their own header forms.
    client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "client-secret-2")
        .json(&json!({"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);

    client()
        .post(format!(
            "{}/v1beta/models/mock-gemini:generateContent?key=client-secret-5",
            gw.url
        ))
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.header("x-goog-api-key"), Some(GEMINI_KEY));
    assert!(
        seen.query.is_none(),
        "the key= parameter is dropped: {:?}",
        seen.query
    );
}

/// The default backends plus a second OpenAI one (`second`, upstream key `key`) and the alias
/// `fast` → `second:mock-gpt-mini`; `tweak` changes the configuration last.
async fn with_second_backend(
    key: Option<&str>,
    tweak: impl FnOnce(&mut portcullis::config::Config),
) -> (Mock, Gateway) {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    let url = format!("http://{}/v1", mock.addr);
    let second = backend(portcullis::config::BackendKind::Openai, url, key);
    config.backends.insert("second".into(), second);
    let alias = ("fast".into(), "second:mock-gpt-mini".into());
    config.routing.aliases.extend([alias]);
    tweak(&mut config);
    let gw = start_gateway(config).await;
    (mock, gw)
}

#[tokio::test]
async fn backend_prefix_and_aliases_rewrite_only_the_model() {
    let (mock, gw) = with_second_backend(Some("sk-second-0123456789"), |_| {}).await;

    let body = json!({"model": "second:mock-gpt", "messages": [], "custom_field": {"a": [1, 2]}, "temperature": 0.5});
    let resp: Value = post_for_json(&format!("{}/v1/chat/completions", gw.url), body).await;
    assert_eq!(resp["model"], "mock-gpt");
    let seen = mock.stats.last_request().unwrap();
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["model"], "mock-gpt");
    assert_eq!(sent["custom_field"], json!({"a": [1, 2]}));
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-second-0123456789")
    );

    post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("fast", false),
    )
    .await;
    let sent: Value = serde_json::from_slice(&mock.stats.last_request().unwrap().body).unwrap();
    assert_eq!(sent["model"], "mock-gpt-mini");

    // A plain name is forwarded byte for byte.
    let raw = r#"{"model":"mock-gpt",  "messages":[] , "zzz":1}"#;
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(&mock.stats.last_request().unwrap().body[..], raw.as_bytes());
}

#[tokio::test]
async fn chat_completion_streams_with_usage() {
    let (_mock, gw) = start().await;
    let mut body = chat("mock-gpt", true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = post_json(&format!("{}/v1/chat/completions", gw.url), body).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(resp).await;
    assert_eq!(openai_text(&events), MOCK_TEXT);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(events.iter().any(|(_, d)| d.contains("\"usage\"")));
}

#[tokio::test]
async fn responses_api_json_and_stream() {
    let (_mock, gw) = start().await;
    let url = format!("{}/v1/responses", gw.url);
    let v: Value = post_for_json(&url, json!({"model": "mock-gpt", "input": "hi"})).await;
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["content"][0]["text"], MOCK_TEXT);

    let events = sse_events(
        post_json(
            &url,
            json!({"model": "mock-gpt", "input": "hi", "stream": true}),
        )
        .await,
    )
    .await;
    let text: String = events
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("response.output_text.delta"))
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["delta"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, MOCK_TEXT);
    assert_eq!(
        events.last().unwrap().0.as_deref(),
        Some("response.completed")
    );
}

#[tokio::test]
async fn embeddings_and_model_list() {
    let (_mock, gw) =
        with_second_backend(None, |c| c.routing.default_backend = Some("openai".into())).await;

    let v: Value = post_for_json(
        &format!("{}/v1/embeddings", gw.url),
        json!({"model": "mock-embed", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["data"][0]["embedding"].is_array());

    let v: Value = get_json(format!("{}/v1/models", gw.url)).await;
    assert_eq!(v["object"], "list");
    let ids = ids(&v["data"]);
    for want in [
        "mock-gpt",
        "mock-gpt-mini",
        "second:mock-gpt",
        "second:mock-gpt-mini",
        "fast",
    ] {
        assert!(
            ids.iter().any(|id| id == want),
            "{want} missing from {ids:?}"
        );
    }
    assert_eq!(
        v["data"][0]["owned_by"], "portcullis-mock",
        "upstream fields are kept"
    );

    // Anthropic clients (anthropic-version header) get Anthropic's list shape.
    let v = get_json_with(
        format!("{}/v1/models", gw.url),
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn anthropic_messages_json_stream_and_count_tokens() {
    let (_mock, gw) = start().await;
    let url = format!("{}/v1/messages", gw.url);
    let req = json!({"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let v: Value = post_for_json(&url, req.clone()).await;
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], MOCK_TEXT);

    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    let events = sse_events(post_json(&url, sreq).await).await;
    let names: Vec<&str> = events.iter().filter_map(|(e, _)| e.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["delta"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, MOCK_TEXT);

    let v: Value = post_for_json(&format!("{url}/count_tokens"), req).await;
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn gemini_generate_stream_count_and_models() {
    let (_mock, gw) = start().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let base = format!("{}/v1beta/models", gw.url);
    let v: Value =
        post_for_json(&format!("{base}/mock-gemini:generateContent"), body.clone()).await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], MOCK_TEXT);

    let resp = post_json(
        &format!("{base}/gemini:mock-gemini:streamGenerateContent?alt=sse"),
        body.clone(),
    )
    .await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text: String = sse_events(resp)
        .await
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(text, MOCK_TEXT);

    // Without alt=sse Gemini streams a JSON array; it is relayed as is.
    let arr: Value = post_for_json(
        &format!("{base}/mock-gemini:streamGenerateContent"),
        body.clone(),
    )
    .await;
    assert!(arr.as_array().unwrap().len() > 1);

    let v: Value = post_for_json(&format!("{base}/mock-gemini:countTokens"), body).await;
    assert!(v["totalTokens"].as_u64().unwrap() > 0);

    let v: Value = get_json(&base).await;
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "models/mock-gemini")
    );
    let v: Value = get_json(format!("{base}/mock-gemini")).await;
    assert!(v["name"].as_str().unwrap().contains("mock-gemini"));
}

#[tokio::test]
async fn health_endpoints() {
    let (_mock, gw) = start().await;
    let v: Value = get_json(format!("{}/health", gw.url)).await;
    assert_eq!(v, json!({"status": "ok"}));
    post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("mock-gpt", false),
    )
    .await;
    let v: Value = get_json(format!("{}/internal/health", gw.url)).await;
    assert_eq!(v["access_mode"], "single_user");
    let backends = v["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 3);
    let openai = backends.iter().find(|b| b["name"] == "openai").unwrap();
    assert_eq!(openai["type"], "openai");
    assert_eq!(openai["requests"], 1);
    assert_eq!(openai["last_status"], 200);
    assert!(!v.to_string().contains(OPENAI_KEY));
}

#[tokio::test]
async fn http2_prior_knowledge_to_the_upstream() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    if let Some(b) = config.backends.get_mut("openai") {
        b.http2_prior_knowledge = true;
    }
    let gw = start_gateway(config).await;
    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat("mock-gpt", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(openai_text(&sse_events(resp).await), MOCK_TEXT);
    let seen = mock.stats.last_request().unwrap();
    assert!(seen.header("authorization").is_some());
    assert_eq!(seen.version, "HTTP/2.0");
    // Without the option the same upstream is spoken to over HTTP/1.1.
    post_json(
        &format!("{}/v1/messages", gw.url),
        json!({"model": "c", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(mock.stats.last_request().unwrap().version, "HTTP/1.1");
}

#[tokio::test]
async fn gemini_v1_paths_used_by_newer_sdks_work_too() {
    let (mock, gw) = start().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let v: Value = post_for_json(
        &format!(
            "{}/v1/models/mock-gemini:generateContent?key=client-key",
            gw.url
        ),
        body,
    )
    .await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], MOCK_TEXT);
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/mock-gemini:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(GEMINI_KEY));
    let resp = post_json(
        &format!("{}/v1/models/mock-gemini:explode", gw.url),
        json!({}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    google_error(&resp.json().await.unwrap());
}

#[tokio::test]
async fn one_model_and_routes_without_the_v1_prefix() {
    let (mock, gw) = start().await;
    let v: Value = get_json(format!("{}/v1/models/openai:mock-gpt", gw.url)).await;
    assert_eq!(v["id"], "mock-gpt");
    assert_eq!(
        mock.stats.last_request().unwrap().path,
        "/v1/models/mock-gpt"
    );
    let resp = client()
        .get(format!("{}/v1/models/nope:x", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    openai_error(&resp.json().await.unwrap());

    let v: Value = post_for_json(
        &format!("{}/chat/completions", gw.url),
        chat("mock-gpt", false),
    )
    .await;
    assert_eq!(v["choices"][0]["message"]["content"], MOCK_TEXT);
    let v: Value = get_json(format!("{}/models", gw.url)).await;
    assert_eq!(v["object"], "list");
}
