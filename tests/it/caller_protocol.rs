//! The caller's protocol where paths are shared (model lists, one model, unknown paths) is told
//! by its credential style and headers, and answered by that protocol's backends with their own
//! credentials and in its own shape; Gemini methods without a version prefix; the OpenAI and
//! Gemini operations relayed besides chat (legacy completions, moderations, Responses helpers,
//! Gemini embeddings) and the routing of a request without a model.

use portcullis::config::{ApiKeyConfig, BackendKind, Config};
use portcullis::mock::MOCK_TEXT;
use portcullis::secret::Secret;
use serde_json::{Value, json};

use crate::harness::*;
use crate::objects::spent;

const KEY: &str = "caller-protocol-key-0123456789";

/// Client authentication on, with one key.
fn guarded(mut config: Config) -> Config {
    config.auth.disable_auth = false;
    config.auth.api_keys = vec![ApiKeyConfig::Named {
        name: Some("tester".into()),
        key: Some(Secret::new(KEY)),
        key_env: None,
    }];
    config
}

/// POSTs `body` as JSON to `url` and reads the answer as JSON.
async fn answer(url: String, body: Value) -> Value {
    post_json(&url, body).await.json().await.unwrap()
}

async fn get(url: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// google-genai 3.x: `/v1/models[/{id}]` with `x-goog-api-key` and `x-goog-api-client`.
const GENAI: &[(&str, &str)] = &[
    ("x-goog-api-key", KEY),
    ("x-goog-api-client", "google-genai-sdk/3.6.1 gl-python/3.11"),
];

#[tokio::test]
async fn model_lists_and_lookups_follow_the_callers_protocol_and_its_backends_credential() {
    let mock = start_mock().await;
    let gw = start_gateway(guarded(config_for(&mock))).await;
    let upstream = || mock.stats.last_request().unwrap();

    for path in ["/v1/models", "/models"] {
        let listed_by_gemini = mock.stats.requests_with(GEMINI_KEY);
        let (s, v) = get(format!("{}{path}", gw.url), GENAI).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert_eq!(v["models"][0]["name"], "models/mock-gemini", "{path}: {v}");
        assert_eq!(
            v["models"][0]["version"], "001",
            "the backend's own description"
        );
        assert!(v.get("object").is_none(), "Gemini's shape: {v}");
        assert_eq!(mock.stats.requests_with(GEMINI_KEY), listed_by_gemini + 1);
        // Other protocols' models are reachable through translation, described by the gateway.
        let translated = v["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "models/openai:mock-gpt")
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(translated["displayName"], "openai:mock-gpt");
    }
    // models.get: the Gemini backend answers, with its key; `?key=` alone says Gemini too.
    let (s, v) = get(format!("{}/v1/models/gemini-2.5-flash", gw.url), GENAI).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "models/gemini-2.5-flash");
    assert_eq!(upstream().path, "/v1beta/models/gemini-2.5-flash");
    assert_eq!(upstream().header("x-goog-api-key"), Some(GEMINI_KEY));
    let (s, v) = get(format!("{}/v1/models?key={KEY}", gw.url), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["models"].is_array(), "{v}");
    assert_eq!(
        upstream().query,
        None,
        "the client's key stays at the gateway"
    );

    // Anthropic clients get Anthropic's list from the Anthropic backend.
    let anthropic = [("x-api-key", KEY), ("anthropic-version", "2023-06-01")];
    let listed_by_anthropic = mock.stats.requests_with(ANTHROPIC_KEY);
    let (s, v) = get(format!("{}/v1/models", gw.url), &anthropic).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["has_more"], false);
    assert_eq!(
        mock.stats.requests_with(ANTHROPIC_KEY),
        listed_by_anthropic + 1
    );
    // A lookup of a model another protocol's backend serves is answered by the gateway.
    let (s, v) = get(format!("{}/v1/models/openai:mock-gpt", gw.url), &anthropic).await;
    assert_eq!(
        (s, &v["id"], &v["type"]),
        (200, &json!("openai:mock-gpt"), &json!("model"))
    );

    // Everyone else is an OpenAI client.
    let bearer = format!("Bearer {KEY}");
    let (s, v) = get(
        format!("{}/v1/models/mock-gpt", gw.url),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "model");
    assert_eq!(
        upstream().header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
}

#[tokio::test]
async fn gemini_methods_are_served_without_a_version_prefix() {
    let (mock, gw) = start().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    // litellm and aider with the bare host as base URL.
    let v = answer(
        format!("{}/models/mock-gemini:generateContent?key=k", gw.url),
        body.clone(),
    )
    .await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], MOCK_TEXT);
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/mock-gemini:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(GEMINI_KEY));
    let r = post_json(
        &format!(
            "{}/models/mock-gemini:streamGenerateContent?alt=sse&key=k",
            gw.url
        ),
        body,
    )
    .await;
    assert_eq!(r.status(), 200);
    let events = sse_events(r).await;
    assert!(events.len() > 1, "{events:?}");
    assert_eq!(
        mock.stats.last_request().unwrap().query.as_deref(),
        Some("alt=sse")
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_callers_protocol() {
    let mock = start_mock().await;
    let gw = start_gateway(guarded(config_for(&mock))).await;
    let bearer = format!("Bearer {KEY}");
    let http = client();
    let send = |method: reqwest::Method, path: &str, headers: Vec<(&'static str, String)>| {
        let mut req = http.request(method, format!("{}{path}", gw.url));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let gemini = || vec![("x-goog-api-key", KEY.to_owned())];
    let anthropic = || {
        vec![
            ("x-api-key", KEY.to_owned()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ]
    };
    let openai = || vec![("authorization", bearer.clone())];

    let (s, v) = send(reqwest::Method::GET, "/v2/nowhere", gemini()).await;
    assert_eq!(s, 404);
    assert!(google_error(&v).contains("no route"), "{v}");
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    let (s, v) = send(
        reqwest::Method::GET,
        &format!("/v1/nowhere?key={KEY}"),
        vec![],
    )
    .await;
    assert_eq!(s, 404);
    google_error(&v);
    let (s, v) = send(reqwest::Method::POST, "/v1/nowhere", anthropic()).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
    anthropic_error(&v);
    let (s, v) = send(reqwest::Method::GET, "/v1/nowhere", openai()).await;
    assert_eq!(s, 404);
    openai_error(&v);
    // A Gemini method the gateway does not relay: Gemini's 404, unprefixed too.
    let (s, v) = send(reqwest::Method::POST, "/models/m:explode", gemini()).await;
    assert_eq!(s, 404);
    assert!(google_error(&v).contains("embedContent"), "{v}");
    // A wrong method on a shared path.
    let (s, v) = send(reqwest::Method::DELETE, "/v1/models", gemini()).await;
    assert_eq!(s, 405);
    google_error(&v);
    // Refused before any handler: the refusal speaks the caller's protocol too.
    let (s, v) = send(
        reqwest::Method::GET,
        "/v1/models",
        vec![("x-goog-api-key", "wrong-key".to_owned())],
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED", "{v}");
    assert_eq!(mock.stats.requests(), 0);
}

#[tokio::test]
async fn gemini_embeddings_are_relayed_with_the_routed_model() {
    let (mock, gw) = start().await;
    for prefix in ["/v1beta", "/v1", ""] {
        let v = answer(
            format!("{}{prefix}/models/mock-embed:embedContent?key=k", gw.url),
            json!({"content": {"parts": [{"text": "hello"}]}}),
        )
        .await;
        assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 8, "{v}");
        let seen = mock.stats.last_request().unwrap();
        assert_eq!(seen.path, "/v1beta/models/mock-embed:embedContent");
        assert_eq!(seen.header("x-goog-api-key"), Some(GEMINI_KEY));
    }
    // google-genai's embed_content: a batch whose requests name the path's model. Named with
    // its backend, the model is rewritten in the path and in every request (the mock checks).
    let batch = |model: &str| {
        json!({"requests": [
            {"model": format!("models/{model}"), "content": {"parts": [{"text": "a"}]}},
            {"model": format!("models/{model}"), "content": {"parts": [{"text": "b"}]}},
        ]})
    };
    for model in ["mock-embed", "gemini:mock-embed"] {
        let r = post_json(
            &format!("{}/v1/models/{model}:batchEmbedContents", gw.url),
            batch(model),
        )
        .await;
        assert_eq!(r.status(), 200, "{model}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(
            mock.stats.last_request().unwrap().path,
            "/v1beta/models/mock-embed:batchEmbedContents"
        );
    }
}

#[tokio::test]
async fn openai_completions_moderations_and_response_helpers_are_relayed() {
    let mock = start_mock().await;
    let state = portcullis::state::AppState::new(config_for(&mock)).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;

    // Legacy completions (autocomplete, fill-in-the-middle), with and without /v1, and streamed.
    for path in ["/v1/completions", "/completions"] {
        let before = spent(&state, "openai");
        let v = answer(
            format!("{}{path}", gw.url),
            json!({"model": "openai:mock-instruct", "prompt": "def f(", "suffix": "):"}),
        )
        .await;
        assert_eq!(v["choices"][0]["text"], MOCK_TEXT, "{v}");
        let seen = mock.stats.last_request().unwrap();
        assert_eq!(seen.path, "/v1/completions");
        let sent: Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(sent["model"], "mock-instruct");
        assert_eq!(sent["suffix"], "):");
        let total = v["usage"]["total_tokens"].as_u64().unwrap();
        assert_eq!(spent(&state, "openai"), before + total, "usage is settled");
    }
    let r = post_json(
        &format!("{}/v1/completions", gw.url),
        json!({"model": "mock-instruct", "prompt": "x", "stream": true}),
    )
    .await;
    let events = sse_events(r).await;
    let text: String = events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, MOCK_TEXT);

    // Moderations: without a model it goes to the default OpenAI backend, body untouched.
    let v = answer(
        format!("{}/v1/moderations", gw.url),
        json!({"input": ["a", "b"]}),
    )
    .await;
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/v1/moderations");
    assert_eq!(
        serde_json::from_slice::<Value>(&seen.body).unwrap(),
        json!({"input": ["a", "b"]})
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );

    // Responses helpers: counting spends nothing; compaction is billed.
    let before = spent(&state, "openai");
    let v = answer(
        format!("{}/v1/responses/input_tokens", gw.url),
        json!({"model": "mock-gpt", "input": "hello there"}),
    )
    .await;
    assert_eq!(v["object"], "response.input_tokens", "{v}");
    assert_eq!(
        mock.stats.last_request().unwrap().path,
        "/v1/responses/input_tokens"
    );
    assert_eq!(spent(&state, "openai"), before, "a count spends nothing");
    let v = answer(
        format!("{}/responses/compact", gw.url),
        json!({"model": "mock-gpt", "input": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(v["object"], "response.compaction", "{v}");
    assert_eq!(
        mock.stats.last_request().unwrap().path,
        "/v1/responses/compact"
    );
    assert_eq!(
        spent(&state, "openai"),
        before + v["usage"]["total_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn a_request_without_a_model_goes_to_the_backend_the_header_names() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.backends.insert(
        "second".into(),
        backend(
            BackendKind::Openai,
            format!("http://{}/v1", mock.addr),
            Some("sk-second-0123456789"),
        ),
    );
    config.routing.default_backend = Some("openai".into());
    let gw = start_gateway(config).await;
    let moderate = |backend: &'static str| {
        client()
            .post(format!("{}/v1/moderations", gw.url))
            .header("x-portcullis-backend", backend)
            .json(&json!({"input": "x"}))
            .send()
    };
    let r = moderate("second").await.unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-second-0123456789")
    );
    assert_eq!(
        seen.header("x-portcullis-backend"),
        None,
        "the gateway's own header"
    );

    let r = moderate("nope").await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "backend_not_found", "{v}");
    let r = moderate("anthropic").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        openai_error(&r.json().await.unwrap()).contains("not translated"),
        "another protocol's backend is refused"
    );
}
