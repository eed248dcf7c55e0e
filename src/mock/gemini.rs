//! Gemini (Google Generative Language API) endpoints under `/v1beta/models`
//! (and `/v1/models`, which newer SDKs use):
//! model listing, `generateContent`, `streamGenerateContent` (SSE with
//! `?alt=sse`, else a progressively streamed JSON array) and `countTokens`. A request for JSON
//! output (`generationConfig.responseMimeType: application/json`) is answered with an instance of
//! its schema (`schema.rs`) unless `x-mock: reply=` scripts the text. Tool calls are
//! `functionCall` parts (streamed whole, one a chunk; `thoughtSignature` on the first with
//! `x-mock: thought_signature=1`); `x-mock: reasoning=` adds `thought: true` parts first.

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::{Proto, error_response};
use super::openai::token_count;
use super::stream::Script;
use super::tools::{self, Answer, Dialect};
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
    parts: &'a [Part<'a>],
}

/// A part of a candidate's content: text (a thought when `thought`) or a `functionCall`.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

/// A `functionCall`: Gemini 2.5 sends no `id`, so neither does the mock.
#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a Map<String, Value>,
}

fn text_part(text: &str) -> Part<'_> {
    Part {
        text: Some(text),
        ..Part::default()
    }
}

fn thought_part(text: &str) -> Part<'_> {
    Part {
        text: Some(text),
        thought: Some(true),
        ..Part::default()
    }
}

/// What every response chunk of one request shares.
struct Envelope<'a> {
    usage: UsageMetadata,
    model: &'a str,
    response_id: String,
}

impl Envelope<'_> {
    /// A response (chunk) with `parts`; the `last` one carries `finishReason` and usage.
    fn response<'a>(&'a self, parts: &'a [Part<'a>], last: bool) -> GenerateContentResponse<'a> {
        GenerateContentResponse {
            candidates: [Candidate {
                content: Content {
                    role: "model",
                    parts,
                },
                finish_reason: last.then_some("STOP"),
                index: 0,
            }],
            usage_metadata: last.then_some(&self.usage),
            model_version: self.model,
            response_id: &self.response_id,
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
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
    let answer = tools::answer(req, Dialect::Gemini, &d)?;
    let json_text = body
        .generation_config
        .and_then(|c| c.json_answer())
        .filter(|_| d.reply.is_none());
    let (text, calls) = match &answer {
        Answer::Text(text) => (json_text.as_deref().unwrap_or(text), &[][..]),
        Answer::Calls(calls) => ("", &calls[..]),
    };
    let reasoning = d.reasoning.as_deref();
    let thoughts = reasoning.map(token_count);
    let output = d.chunks as u64;
    let envelope = Envelope {
        usage: UsageMetadata {
            prompt_token_count: prompt,
            candidates_token_count: output,
            total_token_count: prompt + output + thoughts.unwrap_or(0),
            thoughts_token_count: thoughts,
        },
        model,
        response_id: format!("mock-{}", req.seq),
    };
    let signature = d.thought_signature.then(|| thought_signature(req.seq));
    let call_parts = calls.iter().enumerate().map(|(i, call)| Part {
        function_call: Some(FunctionCall {
            name: &call.name,
            args: &call.args,
        }),
        // Gemini 3 signs the first function call of a turn.
        thought_signature: signature.as_deref().filter(|_| i == 0),
        ..Part::default()
    });
    let n = d.chunks;
    if action == "generateContent" {
        let mut parts: Vec<Part<'_>> = reasoning.map(thought_part).into_iter().collect();
        if calls.is_empty() {
            parts.push(text_part(text));
        }
        parts.extend(call_parts);
        return Ok(Json(envelope.response(&parts, true)).into_response());
    }
    // Streamed: one part a chunk; thoughts and text in pieces, each function call whole.
    let thoughts = reasoning
        .into_iter()
        .flat_map(|r| pieces(r, n).map(thought_part));
    let mut chunks: Vec<Part<'_>> = thoughts.collect();
    if calls.is_empty() {
        chunks.extend(pieces(text, n).map(text_part));
    }
    chunks.extend(call_parts);
    let last = chunks.len().saturating_sub(1);
    let chunks = chunks.iter().enumerate();
    let chunk = |i, part| envelope.response(std::slice::from_ref(part), i == last);
    let sse = req
        .query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    let mut s = Script::new(&d);
    if sse {
        s = s.crlf();
        for (i, part) in chunks {
            s.piece(|s| s.sse(None, &chunk(i, part)));
        }
        return Ok(s.into_response(&req.stats, "text/event-stream"));
    }
    for (i, part) in chunks {
        s.piece(|s| {
            s.raw(if i == 0 { b"[" } else { b",\r\n" });
            s.json(&chunk(i, part));
        });
    }
    s.raw(b"]");
    Ok(s.into_response(&req.stats, "application/json"))
}

/// A Gemini 3 style `thoughtSignature`: opaque base64 text, derived from the request number.
fn thought_signature(seq: u64) -> String {
    let raw = format!("portcullis-mock thought signature {seq}");
    base64::engine::general_purpose::STANDARD.encode(raw)
}
