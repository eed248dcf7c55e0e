//! Translation on the request path: every caller dialect (OpenAI chat and Responses, Anthropic
//! Messages, Gemini) on every backend type, JSON and streamed, through a real gateway in front of
//! the mock — the answer in the caller's shape, the request in the backend's (its path, its
//! headers, none of the caller's dialect headers); upstream failures, before and during a
//! stream, in the caller's protocol; a client that goes away cancels the upstream; what cannot
//! be translated is refused with a 400 that says why.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::harness::*;
use portcullis::mock::MOCK_TEXT;

/// A caller dialect: where it posts, its request for `model`, and how its answer's text reads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Caller {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

pub(crate) const CALLERS: [Caller; 4] = [
    Caller::Chat,
    Caller::Responses,
    Caller::Anthropic,
    Caller::Gemini,
];

impl Caller {
    pub(crate) fn path(self, model: &str, stream: bool) -> String {
        match self {
            Caller::Chat => "/v1/chat/completions".into(),
            Caller::Responses => "/v1/responses".into(),
            Caller::Anthropic => "/v1/messages".into(),
            Caller::Gemini if stream => {
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
            }
            Caller::Gemini => format!("/v1beta/models/{model}:generateContent"),
        }
    }

    pub(crate) fn body(self, model: &str, stream: bool) -> Value {
        match self {
            Caller::Chat => chat(model, stream),
            Caller::Responses => json!({"model": model, "input": "Hello", "stream": stream}),
            Caller::Anthropic => json!({
                "model": model, "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "Hello"}],
            }),
            Caller::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}),
        }
    }

    /// The answer text of a whole JSON answer.
    pub(crate) fn text(self, v: &Value) -> String {
        let t = match self {
            Caller::Chat => &v["choices"][0]["message"]["content"],
            Caller::Responses => &v["output"][0]["content"][0]["text"],
            Caller::Anthropic => &v["content"][0]["text"],
            Caller::Gemini => &v["candidates"][0]["content"]["parts"][0]["text"],
        };
        t.as_str()
            .unwrap_or_else(|| panic!("{self:?}: no text in {v}"))
            .to_owned()
    }

    /// The answer text of a stream's events.
    pub(crate) fn streamed_text(self, events: &[(Option<String>, String)]) -> String {
        let mut text = String::new();
        for (_, data) in events {
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            let piece = match self {
                Caller::Chat => &v["choices"][0]["delta"]["content"],
                Caller::Responses if v["type"] == "response.output_text.delta" => &v["delta"],
                Caller::Anthropic if v["delta"]["type"] == "text_delta" => &v["delta"]["text"],
                Caller::Gemini => &v["candidates"][0]["content"]["parts"][0]["text"],
                _ => &Value::Null,
            };
            text.push_str(piece.as_str().unwrap_or(""));
        }
        text
    }

    /// Asserts the last event is the caller's error event.
    fn assert_error_event(self, events: &[(Option<String>, String)]) {
        let (name, data) = events.last().expect("no events");
        let v: Value = serde_json::from_str(data).unwrap_or_else(|_| panic!("{data}"));
        match self {
            Caller::Responses => assert_eq!(name.as_deref(), Some("response.failed"), "{data}"),
            Caller::Anthropic => assert_eq!(name.as_deref(), Some("error"), "{data}"),
            Caller::Chat | Caller::Gemini => assert!(v["error"]["message"].is_string(), "{data}"),
        }
    }
}

/// The backends of `config_for` another caller's dialect reaches through translation, with the
/// path the upstream request must go to.
fn crossed(caller: Caller) -> Vec<(&'static str, &'static str)> {
    let all = [
        ("openai:mock-gpt", "/v1/chat/completions"),
        ("anthropic:mock-claude", "/v1/messages"),
        ("gemini:mock-gemini", "/v1beta/models/mock-gemini:"),
    ];
    let own = match caller {
        Caller::Chat | Caller::Responses => "openai:",
        Caller::Anthropic => "anthropic:",
        Caller::Gemini => "gemini:",
    };
    all.into_iter()
        .filter(|(m, _)| !m.starts_with(own))
        .collect()
}

async fn send(
    gw: &Gateway,
    caller: Caller,
    model: &str,
    stream: bool,
    mock: &str,
) -> reqwest::Response {
    client()
        .post(format!("{}{}", gw.url, caller.path(model, stream)))
        .header("anthropic-version", "2023-06-01")
        .header("x-stainless-lang", "python")
        .header("x-mock", mock)
        .json(&caller.body(model, stream))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_caller_reaches_every_backend_json_and_streamed() {
    let (mock, gw) = start().await;
    for caller in CALLERS {
        for (model, upstream_path) in crossed(caller) {
            let what = format!("{caller:?} on {model}");
            let r = send(&gw, caller, model, false, "").await;
            assert_eq!(r.status(), 200, "{what}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(caller.text(&v), MOCK_TEXT, "{what}: {v}");
            let seen = mock.stats.last_request().unwrap();
            assert!(
                seen.path.starts_with(upstream_path),
                "{what}: {}",
                seen.path
            );
            assert_eq!(
                seen.header("x-stainless-lang"),
                None,
                "{what}: the caller's telemetry"
            );
            if !model.starts_with("anthropic:") {
                assert_eq!(seen.header("anthropic-version"), None, "{what}");
            }

            let r = send(&gw, caller, model, true, "chunks=5").await;
            assert_eq!(r.status(), 200, "{what} streamed");
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(ct.starts_with("text/event-stream"), "{what}: {ct}");
            let events = sse_events(r).await;
            assert_eq!(
                caller.streamed_text(&events),
                MOCK_TEXT,
                "{what}: {events:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_translated_stream_broken_midway_ends_with_the_callers_error_event() {
    let (_mock, gw) = start().await;
    for caller in CALLERS {
        for (model, _) in crossed(caller) {
            let r = send(&gw, caller, model, true, "chunks=6; drop_after=2").await;
            assert_eq!(r.status(), 200, "{caller:?} on {model}");
            let events = sse_events(r).await;
            caller.assert_error_event(&events);
        }
    }
}

#[tokio::test]
async fn upstream_refusals_come_back_in_the_callers_protocol() {
    let (_mock, gw) = start().await;
    for caller in CALLERS {
        for (model, _) in crossed(caller) {
            for (status, expected) in [(429, 429), (400, 400), (500, 502)] {
                let r = send(&gw, caller, model, false, &format!("status={status}")).await;
                assert_eq!(
                    r.status(),
                    expected,
                    "{caller:?} on {model}, upstream {status}"
                );
                let v: Value = r.json().await.unwrap();
                match caller {
                    Caller::Chat | Caller::Responses => openai_error(&v),
                    Caller::Anthropic => anthropic_error(&v),
                    Caller::Gemini => google_error(&v),
                };
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_a_translated_stream() {
    let (mock, gw) = start().await;
    let before = mock.stats.streams_cancelled();
    let resp = send(
        &gw,
        Caller::Anthropic,
        "openai:mock-gpt",
        true,
        "chunks=200; chunk_delay_ms=50",
    )
    .await;
    let mut stream = resp.bytes_stream();
    assert!(!stream.next().await.unwrap().unwrap().is_empty());
    drop(stream);
    tokio::time::timeout(
        Duration::from_secs(10),
        mock.stats.wait_cancelled(before + 1),
    )
    .await
    .expect("the upstream stream was not cancelled");
}

#[tokio::test]
async fn what_cannot_be_translated_is_refused_with_the_reason() {
    let (mock, gw) = start().await;
    let before = mock.stats.requests();
    // Two choices: only OpenAI backends answer with several.
    let mut body = chat("anthropic:mock-claude", false);
    body["n"] = json!(2);
    let r = post_json(&format!("{}/v1/chat/completions", gw.url), body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(openai_error(&v).contains("n: several choices"), "{v}");
    assert_eq!(v["error"]["code"], "translation_unsupported", "{v}");
    // A stored response cannot be continued on a backend that stores none.
    let r = post_json(
        &format!("{}/v1/responses", gw.url),
        json!({"model": "anthropic:mock-claude", "input": "Hi", "previous_response_id": "resp_1"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(openai_error(&r.json().await.unwrap()).contains("previous_response_id"));
    // Embeddings are not translated.
    let r = post_json(
        &format!("{}/v1/embeddings", gw.url),
        json!({"model": "gemini:mock-gemini", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(openai_error(&r.json().await.unwrap()).contains("not translated"));
    // A Gemini stream as one JSON array (no `alt=sse`) is not written by translation.
    let r = post_json(
        &format!(
            "{}/v1beta/models/openai:mock-gpt:streamGenerateContent",
            gw.url
        ),
        Caller::Gemini.body("openai:mock-gpt", true),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(google_error(&r.json().await.unwrap()).contains("alt=sse"));
    assert_eq!(mock.stats.requests(), before, "nothing went upstream");
}

#[tokio::test]
async fn a_responses_request_to_a_chat_completions_backend_is_translated() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.backends.get_mut("openai").unwrap().responses_api =
        portcullis::config::ResponsesApi::ChatCompletions;
    let gw = start_gateway(config).await;
    for stream in [false, true] {
        let r = send(&gw, Caller::Responses, "openai:mock-gpt", stream, "").await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            mock.stats.last_request().unwrap().path,
            "/v1/chat/completions"
        );
        let text = if stream {
            Caller::Responses.streamed_text(&sse_events(r).await)
        } else {
            Caller::Responses.text(&r.json().await.unwrap())
        };
        assert_eq!(text, MOCK_TEXT);
    }
}

#[tokio::test]
async fn a_translated_streams_usage_is_settled_against_the_quota() {
    const MGMT: &str = "management-key-0123456789";
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(portcullis::secret::Secret::new(MGMT));
    config.backends.get_mut("openai").unwrap().quota =
        Some(portcullis::config::QuotaLimit { limit: 1_000_000 });
    let gw = start_gateway(config).await;
    let used = || quota_used(&gw.url, MGMT, "openai");
    assert_eq!(used().await, 0);
    for (caller, stream) in [(Caller::Anthropic, true), (Caller::Gemini, false)] {
        let before = used().await;
        let r = send(&gw, caller, "openai:mock-gpt", stream, "chunks=4").await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        assert!(
            used().await > before,
            "{caller:?}: the upstream's usage is deducted"
        );
    }
}
