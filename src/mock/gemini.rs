//! Gemini (Google Generative Language API) endpoints under `/v1beta/models`
//! (and `/v1/models`, which newer SDKs use):
//! model listing, `generateContent`, `streamGenerateContent` (SSE with
//! `?alt=sse`, else a progressively streamed JSON array) and `countTokens`.

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::errors::{Proto, error_response};
use super::stream::Script;
use super::{MOCK_TEXT, MockReq, pieces};

/// The model listed by `GET /v1beta/models`.
const MODEL: &str = "mock-gemini";

fn model_object(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": "Mock Gemini",
        "description": "portcullis-mock scripted model",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse<'a> {
    candidates: [Candidate; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<&'a UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content {
    role: &'static str,
    parts: [Part; 1],
}

#[derive(Serialize)]
struct Part {
    text: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
}

/// Whether a request on a path shared with OpenAI (`/v1/models...`, which
/// newer Gemini SDKs use) comes from a Gemini client: it carries a Google API
/// key in `x-goog-api-key` or the `key` query parameter.
pub(crate) fn is_google(req: &MockReq) -> bool {
    req.headers.contains_key("x-goog-api-key")
        || req
            .query
            .as_deref()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("key=")))
}

/// `GET /v1beta/models`.
pub(crate) async fn list_models(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Google).await {
        return r;
    }
    Json(json!({"models": [model_object(MODEL)]})).into_response()
}

/// `GET /v1beta/models/{model}`: the model object, echoing any name.
pub(crate) async fn get_model(Path(rest): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Google).await {
        return r;
    }
    Json(model_object(&rest)).into_response()
}

/// `POST /v1beta/models/{model}:{action}`.
pub(crate) async fn model_action(Path(rest): Path<String>, req: MockReq) -> Response {
    match action_inner(&rest, &req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn action_inner(rest: &str, req: &MockReq) -> Result<Response, Response> {
    let not_found = || {
        let msg = format!("mock: unknown model action in {:?}", req.path);
        error_response(Proto::Google, StatusCode::NOT_FOUND, &msg, None)
    };
    // Model names may themselves contain ':', so split on the last one.
    let (model, action) = rest.rsplit_once(':').ok_or_else(not_found)?;
    if !model.is_empty() && matches!(action, "embedContent" | "batchEmbedContents") {
        return Ok(super::gemini_embed::answer(model, action, req).await);
    }
    let known = ["generateContent", "streamGenerateContent", "countTokens"];
    if model.is_empty() || !known.contains(&action) {
        return Err(not_found());
    }
    let d = req.prelude(Proto::Google).await?;
    req.json::<serde::de::IgnoredAny>(Proto::Google)?;
    let prompt = req.prompt_tokens();
    if action == "countTokens" {
        return Ok(Json(json!({"totalTokens": prompt})).into_response());
    }
    let output = d.chunks as u64;
    let response_id = format!("mock-{}", req.seq);
    let usage = UsageMetadata {
        prompt_token_count: prompt,
        candidates_token_count: output,
        total_token_count: prompt + output,
    };
    let response = |text: &'static str, last: bool| {
        let part = Part { text };
        GenerateContentResponse {
            candidates: [Candidate {
                content: Content {
                    role: "model",
                    parts: [part],
                },
                finish_reason: last.then_some("STOP"),
                index: 0,
            }],
            usage_metadata: last.then_some(&usage),
            model_version: model,
            response_id: &response_id,
        }
    };
    if action == "generateContent" {
        return Ok(Json(response(MOCK_TEXT, true)).into_response());
    }
    let sse = req
        .query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    let mut s = Script::new(&d);
    let n = d.chunks;
    if sse {
        s = s.crlf();
        for (i, piece) in pieces(n).enumerate() {
            s.piece(|s| s.sse(None, &response(piece, i + 1 == n)));
        }
        return Ok(s.into_response(&req.stats, "text/event-stream"));
    }
    for (i, piece) in pieces(n).enumerate() {
        s.piece(|s| {
            s.raw(if i == 0 { b"[" } else { b",\r\n" });
            s.json(&response(piece, i + 1 == n));
        });
    }
    s.raw(b"]");
    Ok(s.into_response(&req.stats, "application/json"))
}
