//! Gemini (Google Generative Language API) endpoints under `/v1beta/models`
//! (and `/v1/models`, which newer SDKs use):
//! model listing, `generateContent`, `streamGenerateContent` (SSE with
//! `?alt=sse`, else a progressively streamed JSON array) and `countTokens`. A request for JSON
//! output (`generationConfig.responseMimeType: application/json`) is answered with an instance of
//! its schema (`schema.rs`) unless `x-mock: reply=` scripts the text.

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::errors::{Proto, error_response};
use super::stream::Script;
use super::{MockReq, pieces, schema};

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
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<&'a UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: [Part<'a>; 1],
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
}

/// The part of a `generateContent` request the mock reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    #[serde(default)]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(default)]
    response_mime_type: Option<String>,
    #[serde(default)]
    response_json_schema: Option<Value>,
    #[serde(default)]
    response_schema: Option<Value>,
}

impl GenerationConfig {
    /// The JSON text answering a JSON-mode request; `None` for a text request.
    fn json_answer(&self) -> Option<String> {
        if self.response_mime_type.as_deref() != Some("application/json") {
            return None;
        }
        let schema = self.response_json_schema.as_ref();
        Some(schema::json_answer(
            schema.or(self.response_schema.as_ref()),
        ))
    }
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
    let body: GenerateRequest = req.json(Proto::Google)?;
    let prompt = req.prompt_tokens();
    if action == "countTokens" {
        return Ok(Json(json!({"totalTokens": prompt})).into_response());
    }
    let json_text = body
        .generation_config
        .and_then(|c| c.json_answer())
        .filter(|_| d.reply.is_none());
    let text = json_text.as_deref().unwrap_or(d.text());
    let output = d.chunks as u64;
    let response_id = format!("mock-{}", req.seq);
    let usage = UsageMetadata {
        prompt_token_count: prompt,
        candidates_token_count: output,
        total_token_count: prompt + output,
    };
    let response = |text, last: bool| {
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
        return Ok(Json(response(text, true)).into_response());
    }
    let sse = req
        .query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    let mut s = Script::new(&d);
    let n = d.chunks;
    if sse {
        s = s.crlf();
        for (i, piece) in pieces(text, n).enumerate() {
            s.piece(|s| s.sse(None, &response(piece, i + 1 == n)));
        }
        return Ok(s.into_response(&req.stats, "text/event-stream"));
    }
    for (i, piece) in pieces(text, n).enumerate() {
        s.piece(|s| {
            s.raw(if i == 0 { b"[" } else { b",\r\n" });
            s.json(&response(piece, i + 1 == n));
        });
    }
    s.raw(b"]");
    Ok(s.into_response(&req.stats, "application/json"))
}
