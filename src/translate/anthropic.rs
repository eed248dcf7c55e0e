//! The Anthropic Messages codec (`POST /v1/messages`): requests, whole answers and SSE streams
//! to and from the canonical shape of [`super::model`].
//!
//! # What is dropped (debug log) and what is refused (400)
//!
//! | Anthropic field | decoding a caller's request | encoding for an Anthropic backend |
//! |---|---|---|
//! | `cache_control` (anywhere), `citations`, `metadata` other than `user_id`, `service_tier`, `container`, `context_management`, `inference_geo`, unknown fields | dropped | not written |
//! | server and Anthropic-defined tools (`web_search_…`, `web_fetch_…`, `bash_…`, `text_editor_…`, `computer_…`, `code_execution_…`, `memory_…`, `tool_search_…`, any `type` but `custom`) and `mcp_servers` | dropped (the model is not offered them) | — |
//! | history blocks of server tools (`server_tool_use`, `*_tool_result`, `mcp_tool_use`, `container_upload`) | dropped | — |
//! | `document`, `search_result`, `image.source.type: file`, unknown block types | refused | — |
//! | `thinking.type: disabled` | no reasoning config (Anthropic's default) | — |
//! | `thinking.display` | `omitted` → `include: false` | not written |
//! | `seed`, `presence_penalty`, `frequency_penalty` | — | dropped (no such field) |
//! | `response_format: json_object` | — | refused (Anthropic cannot promise "any JSON object") |
//! | `temperature` > 1 | — | clamped to 1 |
//! | `temperature`, `top_k`, `top_p` < 0.95 with thinking on; `top_p` with `temperature` | — | dropped (Anthropic rejects the pair) |
//! | thinking with a forced tool (`any`/`tool`) | — | thinking dropped (Anthropic rejects the pair) |
//! | reasoning without a signature (other dialects' summaries) | — | dropped (Anthropic rejects unsigned thinking) |
//!
//! Decisions the encoder takes: `max_tokens` is the request's or [`DEFAULT_MAX_TOKENS`]; a
//! thinking budget is raised to Anthropic's minimum 1,024 and, when the caller set
//! `max_tokens`, lowered below it (the caller's cap includes reasoning, as OpenAI's does;
//! thinking is off when the cap leaves no 1,024 tokens); without a caller cap `max_tokens` is
//! the budget plus [`DEFAULT_MAX_TOKENS`]. Reasoning is asked as `thinking.type: enabled` with a
//! budget (an effort alone becomes [`ReasoningConfig::budget`]). A JSON schema goes to
//! `output_config.format` (GA, no beta header); the beta `output_format` is read too. A
//! reasoning part with text and an `encrypted` form but no signature is sent with that form as
//! its signature (streams carry Anthropic signatures as [`Event::ReasoningSignature`], which
//! other dialects keep as their encrypted reasoning); one with only an `encrypted` form becomes
//! `redacted_thinking`.
//!
//! Streams: the encoder writes `message_start` when the first content (or the end) arrives, so
//! that usage reported with the upstream's start is in it; `message_delta` (stop reason and
//! usage) waits for a usage report after the stop, or the end of the stream; a stream cut
//! without a stop ends with `end_turn` (`tool_use` when a tool call was open).
//!
//! [`DEFAULT_MAX_TOKENS`]: super::model::DEFAULT_MAX_TOKENS
//! [`ReasoningConfig::budget`]: super::model::ReasoningConfig::budget

mod plain;
mod plain_request;
mod request;
mod stream;

pub use request::{decode_request, encode_request};
pub use stream::{StreamDecoder, StreamEncoder};

use serde::Serialize;
use serde_json::{Value, json};

use super::fields::{Fields, arguments_object, data_url, parse, to_json};
use super::model::{Image, Part, Reasoning, Response, StopReason, TokenUsage, ToolCall};
use super::{AnswerContext, TranslateError};

/// Reads one content block common to requests and answers (text, thinking, tool use);
/// `Ok(None)` for another type (the caller decides).
fn decode_common_block(block: &Fields<'_>, kind: &str) -> Result<Option<Part>, TranslateError> {
    Ok(Some(match kind {
        "text" => Part::Text(block.req_str("text")?.to_owned()),
        "thinking" => Part::Reasoning(Reasoning {
            text: block.req_str("thinking")?.to_owned(),
            signature: block
                .str("signature")?
                .filter(|s| !s.is_empty())
                .map(Into::into),
            encrypted: None,
        }),
        "redacted_thinking" => Part::Reasoning(Reasoning {
            encrypted: Some(block.req_str("data")?.to_owned()),
            ..Reasoning::default()
        }),
        "tool_use" => {
            let input = block
                .obj("input")?
                .map_or_else(|| json!({}), |i| Value::Object(i.map.clone()));
            Part::ToolCall(ToolCall {
                id: block.req_str("id")?.to_owned(),
                name: block.req_str("name")?.to_owned(),
                arguments: input.to_string(),
            })
        }
        _ => return Ok(None),
    }))
}

/// An image's `source`.
fn image_source(image: &Image) -> Value {
    match image {
        Image::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Image::Url { url, .. } => match data_url(url) {
            Some((media_type, data)) => {
                json!({"type": "base64", "media_type": media_type, "data": data})
            }
            None => json!({"type": "url", "url": url}),
        },
    }
}

/// A reasoning part as a block: `thinking` with its signature (or, lacking one, its encrypted
/// form), `redacted_thinking` for a bare encrypted form. Unsigned reasoning is `None` in a
/// request (Anthropic rejects it) and a `thinking` block with an empty signature in an answer
/// (the caller sees the reasoning; the gateway's decoder reads the empty signature as none).
fn reasoning_block(r: &Reasoning, answer: bool) -> Option<Value> {
    let thinking = |sig: &str| json!({"type": "thinking", "thinking": r.text, "signature": sig});
    match (&r.signature, &r.encrypted) {
        (Some(sig), _) => Some(thinking(sig)),
        (None, Some(data)) if r.text.is_empty() => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        (None, Some(sig)) => Some(thinking(sig)),
        (None, None) if answer => Some(thinking("")),
        (None, None) => {
            tracing::debug!("reasoning without a signature dropped (Anthropic rejects it)");
            None
        }
    }
}

/// A part of an answer (`answer`) or of an assistant turn as a content block (`None`: not
/// expressible).
fn encode_common_part(part: &Part, answer: bool) -> Option<Value> {
    match part {
        Part::Text(t) if t.is_empty() => None,
        Part::Text(t) => Some(json!({"type": "text", "text": t})),
        Part::Reasoning(r) => reasoning_block(r, answer),
        Part::ToolCall(c) => Some(json!({
            "type": "tool_use",
            "id": c.id,
            "name": c.name,
            "input": arguments_object(&c.name, &c.arguments),
        })),
        Part::Image(_) | Part::ToolResult(_) => None,
    }
}

/// A usage object read into canonical counts (`input` gains the cache reads and writes).
fn decode_usage(u: &Fields<'_>, into: &mut TokenUsage) -> Result<(), TranslateError> {
    let counts = UsageCounts {
        input_tokens: u.u64("input_tokens")?,
        output_tokens: u.u64("output_tokens")?,
        cache_read_input_tokens: u.u64("cache_read_input_tokens")?,
        cache_creation_input_tokens: u.u64("cache_creation_input_tokens")?,
    };
    counts.add_to(into);
    Ok(())
}

/// A usage object's counts as Anthropic writes them (absent: `None`).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct UsageCounts {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl UsageCounts {
    /// The counts into canonical ones (`input` gains the cache reads and writes); what a
    /// report leaves out keeps the value an earlier report of the stream gave.
    fn add_to(self, into: &mut TokenUsage) {
        let (read, created) = (
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
        );
        if let Some(input) = self.input_tokens {
            into.input = input
                .saturating_add(read.unwrap_or(0))
                .saturating_add(created.unwrap_or(0));
        }
        into.cached_input = read.or(into.cached_input);
        into.cache_creation = created.or(into.cache_creation);
        if let Some(output) = self.output_tokens {
            into.output = output;
        }
    }
}

/// Anthropic's usage object.
#[derive(Serialize)]
struct UsageJson {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// Canonical counts as Anthropic's usage object (`input_tokens` without the cache's).
fn usage_json(u: &TokenUsage) -> UsageJson {
    let read = u.cached_input.unwrap_or(0);
    let created = u.cache_creation.unwrap_or(0);
    UsageJson {
        input_tokens: u.input.saturating_sub(read + created),
        cache_creation_input_tokens: created,
        cache_read_input_tokens: read,
        output_tokens: u.output,
    }
}

/// A `stop_reason` (and `stop_sequence`) read.
fn decode_stop(reason: Option<&str>, sequence: Option<&str>) -> StopReason {
    match reason {
        None | Some("end_turn") => StopReason::EndTurn,
        Some("max_tokens" | "model_context_window_exceeded") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence(sequence.map(Into::into)),
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::ContentFilter,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// A stop reason as `stop_reason` and `stop_sequence`.
fn encode_stop(stop: &StopReason) -> (&str, Option<&str>) {
    match stop {
        StopReason::EndTurn => ("end_turn", None),
        StopReason::MaxTokens => ("max_tokens", None),
        StopReason::StopSequence(seq) => ("stop_sequence", seq.as_deref()),
        StopReason::ToolUse => ("tool_use", None),
        StopReason::ContentFilter => ("refusal", None),
        StopReason::Other(o) if o == "pause_turn" => ("pause_turn", None),
        StopReason::Other(_) => ("end_turn", None),
    }
}

/// An answer id as Anthropic writes them (`msg_…`).
fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// The model to show: the upstream's, else the one the caller asked for.
fn shown_model<'a>(upstream: &'a str, ctx: &'a AnswerContext) -> &'a str {
    if upstream.is_empty() {
        &ctx.model
    } else {
        upstream
    }
}

/// Reads an upstream's whole answer: the usual answers on the typed hot path ([`plain`]), any
/// other through the field reader.
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    match plain::decode(body) {
        Some(resp) => Ok(resp),
        None => decode_general(body),
    }
}

/// Reads any answer through the field reader, which names what is wrong with it.
fn decode_general(body: &[u8]) -> Result<Response, TranslateError> {
    let value = parse(body, "the answer", TranslateError::Upstream)?;
    let msg = Fields::of(&value, "", TranslateError::Upstream)?;
    if msg.str("type")? == Some("error") {
        let message = msg
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(TranslateError::Upstream(format!("an error: {message}")));
    }
    let mut content = Vec::new();
    for block in msg.items("content")? {
        let kind = block.req_str("type")?;
        match decode_common_block(&block, kind)? {
            Some(part) => content.push(part),
            None => tracing::debug!(kind, "answer block dropped (not translatable)"),
        }
    }
    let mut usage = TokenUsage::default();
    if let Some(u) = msg.obj("usage")? {
        decode_usage(&u, &mut usage)?;
    }
    Ok(Response {
        id: msg.req_str("id")?.to_owned(),
        model: msg.str("model")?.unwrap_or_default().to_owned(),
        created: 0,
        content,
        stop: decode_stop(msg.str("stop_reason")?, msg.str("stop_sequence")?),
        usage,
    })
}

/// A whole answer as Anthropic writes it (written straight from these fields: no map is built).
#[derive(Serialize)]
struct MessageJson<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Value>,
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
    usage: UsageJson,
}

/// Writes a whole answer for the request `ctx` describes.
pub fn encode_response(resp: &Response, ctx: &AnswerContext) -> Vec<u8> {
    let (stop_reason, stop_sequence) = encode_stop(&resp.stop);
    to_json(&MessageJson {
        id: message_id(&resp.id),
        kind: "message",
        role: "assistant",
        model: shown_model(&resp.model, ctx),
        content: resp
            .content
            .iter()
            .filter_map(|p| encode_common_part(p, true))
            .collect(),
        stop_reason,
        stop_sequence,
        usage: usage_json(&resp.usage),
    })
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
