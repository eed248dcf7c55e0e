//! OpenAI endpoints: chat completions (JSON and SSE; text, `tool_calls` and DeepSeek-style
//! `reasoning_content`), embeddings and models. The Responses API lives in `responses.rs`.

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::directives::Directives;
use super::errors::{Proto, error_response};
use super::stream::Script;
use super::tools::{self, Answer, Dialect};
use super::{CREATED, MockReq, pieces};

/// Model ids listed by `GET /v1/models`.
const MODELS: [&str; 2] = ["mock-gpt", "mock-gpt-mini"];
/// Default embedding length.
const DEFAULT_DIMENSIONS: usize = 8;
/// Largest accepted `dimensions`.
const MAX_DIMENSIONS: usize = 65_536;

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(req: MockReq) -> Response {
    match chat_inner(&req).await {
        Ok(r) | Err(r) => r,
    }
}

#[derive(Serialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningTokens>,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent without `include_usage`; then `null` except on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<&'a ChatUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: ChunkDelta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// `Some(None)` is an explicit `null` (the first chunk of a tool-call answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[Value; 1]>,
}

async fn chat_inner(req: &MockReq) -> Result<Response, Response> {
    let d = req.prelude(Proto::OpenAi).await?;
    let body: ChatRequest<'_> = req.json(Proto::OpenAi)?;
    let answer = tools::answer(req, Dialect::Chat, &d)?;
    let model = body.model.as_deref().unwrap_or("mock-gpt");
    let id = format!("chatcmpl-mock-{}", req.seq);
    let call_ids: Vec<String> = match &answer {
        Answer::Calls(calls) => (0..calls.len())
            .map(|i| tools::id("call_", req.seq, i))
            .collect(),
        Answer::Text(_) => Vec::new(),
    };
    let reasoning = d.reasoning.as_deref();
    let prompt = req.prompt_tokens();
    let reasoning_tokens = reasoning.map_or(0, token_count);
    let completion = d.chunks as u64 + reasoning_tokens;
    let usage = ChatUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        completion_tokens_details: reasoning.map(|_| ReasoningTokens { reasoning_tokens }),
    };
    if !body.stream.unwrap_or(false) {
        let mut message = json!({"role": "assistant", "content": null, "refusal": null});
        let finish_reason = match &answer {
            Answer::Text(text) => {
                message["content"] = json!(text);
                "stop"
            }
            Answer::Calls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .zip(&call_ids)
                    .map(|(c, id)| json!({"id": id, "type": "function", "function": {"name": c.name, "arguments": c.input}}))
                    .collect();
                message["tool_calls"] = json!(calls);
                "tool_calls"
            }
        };
        if let Some(r) = reasoning {
            message["reasoning_content"] = json!(r);
        }
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
            "usage": usage,
            "system_fingerprint": "fp_mock",
        }))
        .into_response());
    }
    let include_usage = body
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let chunk = |s: &mut Script, delta: ChunkDelta<'_>, finish_reason: Option<&'static str>| {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        };
        let chunk = ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created: CREATED,
            model,
            system_fingerprint: "fp_mock",
            choices: std::slice::from_ref(&choice),
            usage: include_usage.then_some(None),
        };
        s.sse(None, &chunk);
    };
    let mut s = Script::new(&d);
    let role = Some("assistant");
    let finish = match &answer {
        Answer::Text(text) => {
            chunk(
                &mut s,
                ChunkDelta {
                    role,
                    content: Some(Some("")),
                    ..ChunkDelta::default()
                },
                None,
            );
            stream_reasoning(&mut s, &d, &chunk, false);
            for piece in pieces(text, d.chunks) {
                let delta = ChunkDelta {
                    content: Some(Some(piece)),
                    ..ChunkDelta::default()
                };
                s.piece(|s| chunk(s, delta, None));
            }
            "stop"
        }
        Answer::Calls(calls) => {
            stream_reasoning(&mut s, &d, &chunk, true);
            for (i, (call, call_id)) in calls.iter().zip(&call_ids).enumerate() {
                // The call's first fragment names it; on the first call, it opens the message.
                let head = json!({"index": i, "id": call_id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}});
                let first = i == 0 && reasoning.is_none();
                let delta = ChunkDelta {
                    role: role.filter(|_| first),
                    content: first.then_some(None),
                    reasoning_content: None,
                    tool_calls: Some([head]),
                };
                chunk(&mut s, delta, None);
                for piece in pieces(&call.input, d.chunks) {
                    let fragment = json!({"index": i, "function": {"arguments": piece}});
                    let delta = ChunkDelta {
                        tool_calls: Some([fragment]),
                        ..ChunkDelta::default()
                    };
                    s.piece(|s| chunk(s, delta, None));
                }
            }
            "tool_calls"
        }
    };
    chunk(&mut s, ChunkDelta::default(), Some(finish));
    if include_usage {
        let last = ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created: CREATED,
            model,
            system_fingerprint: "fp_mock",
            choices: &[],
            usage: Some(Some(&usage)),
        };
        s.sse(None, &last);
    }
    s.raw(b"data: [DONE]\n\n");
    Ok(s.into_response(&req.stats, "text/event-stream"))
}

/// Streams `reasoning=` as DeepSeek does: `reasoning_content` deltas before the answer, the
/// first of them with the role when it `opens` the message.
fn stream_reasoning(
    s: &mut Script,
    d: &Directives,
    chunk: &impl Fn(&mut Script, ChunkDelta<'_>, Option<&'static str>),
    opens: bool,
) {
    let Some(reasoning) = d.reasoning.as_deref() else {
        return;
    };
    for (i, piece) in pieces(reasoning, d.chunks).enumerate() {
        let delta = ChunkDelta {
            role: (opens && i == 0).then_some("assistant"),
            reasoning_content: Some(piece),
            ..ChunkDelta::default()
        };
        s.piece(|s| chunk(s, delta, None));
    }
}

/// Deterministic token count of a text: its length / 4 + 1.
pub(crate) fn token_count(text: &str) -> u64 {
    text.len() as u64 / 4 + 1
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    encoding_format: Option<String>,
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(req: MockReq) -> Response {
    match embeddings_inner(&req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn embeddings_inner(req: &MockReq) -> Result<Response, Response> {
    let bad = |msg: &str| error_response(Proto::OpenAi, StatusCode::BAD_REQUEST, msg, None);
    req.prelude(Proto::OpenAi).await?;
    let body: EmbeddingsRequest = req.json(Proto::OpenAi)?;
    let dims = body.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if !(1..=MAX_DIMENSIONS).contains(&dims) {
        return Err(bad("dimensions must be between 1 and 65536"));
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(bad(&format!("unsupported encoding_format {other:?}"))),
    };
    let inputs = embedding_inputs(&body.input).ok_or_else(|| {
        bad("input must be a non-empty string, array of strings or array of token arrays")
    })?;
    let mut tokens = 0u64;
    let data: Vec<EmbeddingItem> = inputs
        .iter()
        .enumerate()
        .map(|(index, (seed, n))| {
            tokens += n;
            let vector = embedding_vector(*seed, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                // As f64, so the floats equal the base64-decoded f32 values exactly.
                Embedding::Float(vector.iter().map(|&f| f64::from(f)).collect())
            };
            EmbeddingItem {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": body.model.as_deref().unwrap_or("mock-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f64>),
    Base64(String),
}

/// The inputs of an embeddings request as (hash seed, token count) pairs.
fn embedding_inputs(input: &Value) -> Option<Vec<(u64, u64)>> {
    let text = |s: &str| (fnv1a(s.as_bytes()), s.len() as u64 / 4 + 1);
    let tokens = |items: &[Value]| -> Option<(u64, u64)> {
        let mut bytes = Vec::with_capacity(items.len() * 8);
        for t in items {
            bytes.extend_from_slice(&t.as_i64()?.to_le_bytes());
        }
        Some((fnv1a(&bytes), items.len() as u64))
    };
    match input {
        Value::String(s) => Some(vec![text(s)]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(Value::is_number) => Some(vec![tokens(items)?]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(text(s)),
                Value::Array(t) => tokens(t),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A deterministic unit-length vector derived from `seed`.
pub(crate) fn embedding_vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut state = seed | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            (r as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "portcullis-mock"})
}

/// `GET /v1/models`: OpenAI's shape, Anthropic's when `anthropic-version` is
/// sent, Gemini's when a Google API key is.
pub(crate) async fn list_models(req: MockReq) -> Response {
    if super::gemini::is_google(&req) {
        return super::gemini::list_models(req).await;
    }
    let anthropic = req.headers.contains_key("anthropic-version");
    let proto = if anthropic {
        Proto::Anthropic
    } else {
        Proto::OpenAi
    };
    if let Err(r) = req.prelude(proto).await {
        return r;
    }
    if anthropic {
        return Json(super::anthropic::models_list()).into_response();
    }
    let data: Vec<Value> = MODELS.iter().map(|id| model_object(id)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/models/{id}` (Gemini's shape when a Google API key is sent).
pub(crate) async fn get_model(Path(id): Path<String>, req: MockReq) -> Response {
    if super::gemini::is_google(&req) {
        return super::gemini::get_model(Path(id), req).await;
    }
    if let Err(r) = req.prelude(Proto::OpenAi).await {
        return r;
    }
    Json(model_object(&id)).into_response()
}
