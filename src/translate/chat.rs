//! The OpenAI Chat Completions codec (`POST /v1/chat/completions`, and every OpenAI-compatible
//! server: vLLM, DeepSeek, Ollama, Groq, OpenRouter…): request bodies (`request`), whole
//! answers (here) and `chat.completion.chunk` streams (`stream`) to and from the canonical
//! [`model`](super::model).
//!
//! # What is dropped, what is refused
//!
//! Decoding a caller's request:
//! - refused (`Unsupported`, it would change the answer): `n` > 1; `logprobs: true`;
//!   `top_logprobs` > 0; a non-empty `logit_bias`; `audio`; `modalities` other than `text`;
//!   `input_audio` and `file` content parts; tools other than `function` (`custom`) and a
//!   `tool_choice` naming one; the legacy `functions`/`function_call` fields, `function`
//!   messages and an assistant's `function_call` (send `tools`); an assistant's `audio`
//!   reference.
//! - dropped (debug log): `metadata`, `store`, `service_tier`, `prompt_cache_key`,
//!   `web_search_options` (a provider-hosted tool: the model is simply not offered it),
//!   `prediction` (a latency hint), `verbosity`, `stream_options.include_obfuscation`,
//!   `logprobs: false`, an image's `detail`, a schema's `description`, message `name`s (but a
//!   `tool` message's `name` is kept as the result's function name), any unknown field.
//! - mapped: `system` and `developer` messages → `Request::system` in order (one block per
//!   message or text part); one that comes after the conversation began also joins the system
//!   prompt (debug log). Consecutive `tool` messages, and a `user` message right after them,
//!   form ONE canonical user message (tool results first), which is how the other dialects
//!   hold them. `max_completion_tokens` wins over `max_tokens`. `reasoning_effort` →
//!   `reasoning.effort` with `include: true` (Chat has no switch for it and its answers can
//!   carry `reasoning_content`); OpenRouter's `reasoning{effort, max_tokens, exclude}` too.
//!   `tool_choice.allowed_tools` keeps only the allowed tools. `safety_identifier` → `user`
//!   when `user` is absent. Extensions some servers take: `top_k`; assistant
//!   `reasoning_content` (DeepSeek, vLLM, Qwen) or `reasoning` (OpenRouter) → a reasoning part;
//!   a `refusal` → text.
//!
//! Encoding a request for a backend: the system blocks are joined into ONE `system` message
//! (`\n\n`; many chat templates refuse a second one); `max_tokens`, or `max_completion_tokens` +
//! `reasoning_effort` when reasoning is asked; `stream_options.include_usage: true` whenever
//! streaming. Dropped (debug): `top_k`, reasoning parts of the history (most servers refuse
//! them back), `reasoning.include` and signatures, images in assistant messages, `tool_choice`
//! and `parallel_tool_calls` when there are no tools (OpenAI refuses them). A user message
//! holding tool results becomes one `tool` message per result first, then a `user` message with
//! the images the results held (tool messages carry text only) and the message's other parts.
//! A failed result's text is prefixed `Error: ` (Chat has no error flag). Several text parts
//! of an assistant message or a result are joined with `\n\n`.
//!
//! Answers: `refusal` → text with stop `ContentFilter`; `finish_reason: "stop"` with tool calls
//! (Gemini's OpenAI endpoint, some vLLM builds) → `ToolUse`; vLLM's matched `stop_reason`
//! string → `StopSequence`; DeepSeek's `prompt_cache_hit_tokens` → cached input. Written
//! answers give `finish_reason: "tool_calls"` whenever they hold a call; `StopSequence` and
//! `Other` are written `stop`; Anthropic's cache-creation count has no field (dropped).
//!
//! Streams: the first chunk with an id or content gives `Start` (Azure's filter-results-only
//! opening chunk is skipped); a call starts with an id not seen before (servers that send every
//! call at wire index 0 are told apart by ids) or, id-less, with the first fragment at a wire
//! index (its id is then `<answer id>_<ordinal>`); `{"error": …}` → `Error` (status from a
//! numeric `code`, else from `type`, else 502). Written streams: a `role` chunk first, one
//! chunk per event, a finish chunk (also from `finish` when the upstream was cut), the usage
//! chunk (`choices: []`) only when the caller asked for it, `[DONE]`; after an error only the
//! error payload.

mod plain;
mod request;
mod stream;

pub use request::{decode_request, encode_request};
pub use stream::{StreamDecoder, StreamEncoder};

use serde::Serialize;
use serde_json::{Value, json};

use super::fields::{Fields, image_url, parse, to_json};
use super::model::{Image, Part, Reasoning, Response, StopReason, TokenUsage, ToolCall};
use super::{AnswerContext, TranslateError};

/// Reads an upstream's whole `chat.completion` answer (its first choice): the usual answers
/// on the typed hot path ([`plain`]), any other through the field reader.
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    match plain::decode(body) {
        Some(resp) => Ok(resp),
        None => decode_general(body),
    }
}

/// Reads any answer through the field reader, which names what is wrong with it.
fn decode_general(body: &[u8]) -> Result<Response, TranslateError> {
    let root = parse(body, "the answer", TranslateError::Upstream)?;
    let f = Fields::of(&root, "", TranslateError::Upstream)?;
    if let Some(e) = f.get("error") {
        let (status, message) = error_parts(e);
        return Err(TranslateError::Upstream(format!(
            "the backend answered with an error ({status}): {message}"
        )));
    }
    let id = f.str("id")?.unwrap_or_default().to_owned();
    let choices = f.need("choices", f.opt_array("choices")?)?;
    let first = choices.first().ok_or_else(|| f.fault("choices", "empty"))?;
    let choice = Fields::of(first, "choices[0]", TranslateError::Upstream)?;
    let msg = choice.req_obj("message")?;
    let mut content = Vec::new();
    if let Some(text) = reasoning_text(&msg)? {
        content.push(Part::Reasoning(Reasoning {
            text: text.to_owned(),
            ..Default::default()
        }));
    }
    content.extend(text_parts(&msg)?);
    let refusal = msg.str("refusal")?.filter(|r| !r.is_empty());
    content.extend(refusal.map(|r| Part::Text(r.to_owned())));
    for (i, call) in msg.items("tool_calls")?.into_iter().enumerate() {
        let func = call.req_obj("function")?;
        let call_id = call
            .str("id")?
            .map_or_else(|| format!("{id}_{i}"), str::to_owned);
        content.push(Part::ToolCall(tool_call(&func, call_id)?));
    }
    if let Some(func) = msg.obj("function_call")? {
        content.push(Part::ToolCall(tool_call(&func, format!("{id}_fc"))?));
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let reason = choice.str("finish_reason")?;
    let stop = stop_from_wire(reason, choice.get("stop_reason"), refusal.is_some(), called);
    Ok(Response {
        model: f.str("model")?.unwrap_or_default().to_owned(),
        created: f.u64("created")?.unwrap_or(0),
        content,
        stop,
        usage: f
            .obj("usage")?
            .map(|u| usage_from(&u))
            .transpose()?
            .unwrap_or_default(),
        id,
    })
}

/// Writes a whole `chat.completion` answer.
pub fn encode_response(resp: &Response, ctx: &AnswerContext) -> Vec<u8> {
    let mut text = Vec::new();
    let mut reasoning = Vec::new();
    let mut calls = Vec::new();
    for part in &resp.content {
        match part {
            Part::Text(t) => text.push(t.as_str()),
            Part::Reasoning(r) => reasoning.push(r.text.as_str()),
            Part::ToolCall(c) => calls.push(call_json(c)),
            Part::Image(_) | Part::ToolResult(_) => {
                tracing::debug!("a chat answer carries no images or tool results: dropped");
            }
        }
    }
    let finish = finish_reason(&resp.stop, !calls.is_empty());
    let message = MessageJson {
        role: "assistant",
        content: match (text.is_empty(), calls.is_empty()) {
            (true, false) => None,
            _ => Some(text.join(TEXT_JOINER)),
        },
        refusal: None,
        reasoning_content: (!reasoning.is_empty()).then(|| reasoning.concat()),
        tool_calls: calls,
    };
    to_json(&CompletionJson {
        id: &resp.id,
        object: "chat.completion",
        created: if resp.created == 0 {
            ctx.created
        } else {
            resp.created
        },
        model: if resp.model.is_empty() {
            &ctx.model
        } else {
            &resp.model
        },
        choices: [ChoiceJson {
            index: 0,
            message,
            logprobs: None,
            finish_reason: finish,
        }],
        usage: usage_json(&resp.usage),
    })
}

/// A whole `chat.completion` answer as written (straight from these fields: no map is built).
#[derive(Serialize)]
struct CompletionJson<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceJson; 1],
    usage: UsageJson,
}

#[derive(Serialize)]
struct ChoiceJson {
    index: u32,
    message: MessageJson,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// The answer's message: `content` is `null` only for calls without text; `refusal` always
/// `null` (a refusal read from a backend is text by now).
#[derive(Serialize)]
struct MessageJson {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
}

/// How several text parts become one Chat string (assistant content, tool results).
const TEXT_JOINER: &str = "\n\n";

/// The text parts of a message's `content`: a string, or `text`/`refusal` parts (what an
/// answer holds; a request's user content is read by [`request`]).
fn text_parts(msg: &Fields) -> Result<Vec<Part>, TranslateError> {
    match msg.get("content") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(_)) => {
            let mut parts = Vec::new();
            for p in msg.items("content")? {
                let text = p.str("text")?.or(p.str("refusal")?);
                parts.extend(text.filter(|t| !t.is_empty()).map(|t| Part::Text(t.into())));
            }
            Ok(parts)
        }
        Some(_) => Err(msg.wrong("content", "a string or an array of parts")),
    }
}

/// A message's reasoning text: `reasoning_content` (DeepSeek, vLLM, Qwen), else `reasoning`
/// (OpenRouter); never both (some servers send the same text twice).
fn reasoning_text<'a>(msg: &Fields<'a>) -> Result<Option<&'a str>, TranslateError> {
    let primary = msg.str("reasoning_content")?.filter(|t| !t.is_empty());
    match primary {
        Some(t) => Ok(Some(t)),
        None => Ok(msg.str("reasoning")?.filter(|t| !t.is_empty())),
    }
}

/// A `function{name, arguments}` object as a call (`"{}"` for empty arguments).
fn tool_call(func: &Fields, id: String) -> Result<ToolCall, TranslateError> {
    let arguments = func.str("arguments")?.unwrap_or_default();
    Ok(ToolCall {
        id,
        name: func.req_str("name")?.to_owned(),
        arguments: if arguments.is_empty() {
            "{}"
        } else {
            arguments
        }
        .to_owned(),
    })
}

fn call_json(c: &ToolCall) -> Value {
    json!({
        "id": c.id,
        "type": "function",
        "function": { "name": c.name, "arguments": c.arguments },
    })
}

/// The canonical stop reason of a `finish_reason` (`matched`: vLLM's `stop_reason`, the stop
/// string that ended the answer; `refused`: the answer is a refusal; `called`: it holds calls).
fn stop_from_wire(
    reason: Option<&str>,
    matched: Option<&Value>,
    refused: bool,
    called: bool,
) -> StopReason {
    match reason {
        None | Some("" | "stop") if refused => StopReason::ContentFilter,
        None | Some("" | "stop") if called => StopReason::ToolUse,
        None | Some("" | "stop") => match matched {
            Some(Value::String(s)) => StopReason::StopSequence(Some(s.clone())),
            _ => StopReason::EndTurn,
        },
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// The `finish_reason` of a stop reason (`called`: the answer holds tool calls, which OpenAI
/// clients expect to end with `tool_calls`).
fn finish_reason(stop: &StopReason, called: bool) -> &'static str {
    match stop {
        StopReason::MaxTokens => "length",
        StopReason::ContentFilter => "content_filter",
        StopReason::ToolUse => "tool_calls",
        _ if called => "tool_calls",
        StopReason::EndTurn | StopReason::StopSequence(_) | StopReason::Other(_) => "stop",
    }
}

fn usage_from(u: &Fields) -> Result<TokenUsage, TranslateError> {
    let prompt = u.obj("prompt_tokens_details")?;
    let completion = u.obj("completion_tokens_details")?;
    let cached = match prompt {
        Some(p) => p.u64("cached_tokens")?,
        None => None,
    };
    Ok(TokenUsage {
        input: u.u64("prompt_tokens")?.unwrap_or(0),
        output: u.u64("completion_tokens")?.unwrap_or(0),
        cached_input: cached.or(u.u64("prompt_cache_hit_tokens")?),
        cache_creation: None,
        reasoning: completion
            .map(|c| c.u64("reasoning_tokens"))
            .transpose()?
            .flatten(),
    })
}

/// Chat's usage object; the details only when there is something to say in them.
#[derive(Serialize)]
struct UsageJson {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<CachedJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<ReasoningJson>,
}

#[derive(Serialize)]
struct CachedJson {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningJson {
    reasoning_tokens: u64,
}

fn usage_json(u: &TokenUsage) -> UsageJson {
    UsageJson {
        prompt_tokens: u.input,
        completion_tokens: u.output,
        total_tokens: u.total(),
        prompt_tokens_details: u
            .cached_input
            .map(|cached_tokens| CachedJson { cached_tokens }),
        completion_tokens_details: u
            .reasoning
            .map(|reasoning_tokens| ReasoningJson { reasoning_tokens }),
    }
}

/// The HTTP status and message of an `error` member: the status is its `code` when that is
/// an HTTP error status (a number or a numeric string), else the one its `type` stands for
/// (the client-side types: 400, 401, 403, 429), else 502.
fn error_parts(error: &Value) -> (u16, String) {
    let message = match error {
        Value::String(s) => s.clone(),
        _ => match error.get("message").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => error.to_string(),
        },
    };
    let code = error.get("code").and_then(|c| match c {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let by_type = match error.get("type").and_then(Value::as_str) {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("rate_limit_exceeded" | "rate_limit_error" | "insufficient_quota") => 429,
        _ => 502,
    };
    let status = code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(by_type);
    (status, message)
}

/// An `image_url` content part.
fn image_json(image: &Image) -> Value {
    json!({ "type": "image_url", "image_url": { "url": image_url(image) } })
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
