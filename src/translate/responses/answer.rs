//! Whole Responses API answers (`object: "response"`), read from a backend and written for a
//! caller, and the output items and usage object the stream encoder shares.
//!
//! A written answer has every member the `openai` SDK's `Response` model requires (`id`,
//! `created_at`, `model`, `object`, `output`, `parallel_tool_calls`, `tool_choice`, `tools`) and
//! the `usage` shape Codex reads (`input_tokens_details.cached_tokens`,
//! `output_tokens_details.reasoning_tokens`, `total_tokens`). Ids are derived from the
//! upstream's: `resp_<id>`, and `msg_`/`rs_`/`fc_`/`ctc_<id>_<output index>` for items.
//! Canonical reasoning's Anthropic signature has no place of its own here: it is written as
//! `encrypted_content` (and comes back as [`Reasoning::encrypted`]).

use serde_json::{Value, json};

use super::{read_call, read_reasoning};
use crate::translate::fields::{Fields, parse, to_json};
use crate::translate::model::{
    FREEFORM_INPUT, Part, Reasoning, Response, StopReason, TokenUsage, ToolCall,
};
use crate::translate::{AnswerContext, TranslateError};

/// Reads a backend's whole answer.
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    let value = parse(body, "the answer", TranslateError::Upstream)?;
    let o = Fields::of(&value, "", TranslateError::Upstream)?;
    if let Some(error) = o.obj("error")? {
        let message = error.str("message")?.unwrap_or("no message");
        return Err(TranslateError::Upstream(format!(
            "the response failed: {message}"
        )));
    }
    let mut content = Vec::new();
    let mut refusal = false;
    for item in o.items("output")? {
        output_item_parts(&item, &mut content, &mut refusal)?;
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    Ok(Response {
        id: o.req_str("id")?.to_owned(),
        model: o.str("model")?.unwrap_or_default().to_owned(),
        created: o.f64("created_at")?.map_or(0, |t| t as u64),
        stop: stop_reason(&o, called, refusal)?,
        usage: read_usage(&o)?.unwrap_or_default(),
        content,
    })
}

/// The canonical parts of one output item (appended to `parts`); `refusal` is set when a
/// message part is a refusal. Hosted tool records are dropped.
pub(super) fn output_item_parts(
    item: &Fields,
    parts: &mut Vec<Part>,
    refusal: &mut bool,
) -> Result<(), TranslateError> {
    match item.req_str("type")? {
        "message" => {
            for p in item.items("content")? {
                match p.req_str("type")? {
                    "output_text" => parts.push(Part::Text(p.req_str("text")?.to_owned())),
                    "refusal" => {
                        *refusal = true;
                        parts.push(Part::Text(p.req_str("refusal")?.to_owned()));
                    }
                    kind => tracing::debug!(part = kind, "an output content part dropped"),
                }
            }
        }
        "reasoning" => parts.push(Part::Reasoning(read_reasoning(item)?)),
        kind => match read_call(item, kind)? {
            Some(call) => parts.push(Part::ToolCall(call)),
            None => tracing::debug!(item = kind, "an output item dropped"),
        },
    }
    Ok(())
}

/// The stop reason of a finished response object (`status`, `incomplete_details`).
pub(super) fn stop_reason(
    o: &Fields,
    called: bool,
    refusal: bool,
) -> Result<StopReason, TranslateError> {
    match o.str("status")?.unwrap_or("completed") {
        "completed" if called => Ok(StopReason::ToolUse),
        "completed" if refusal => Ok(StopReason::ContentFilter),
        "completed" => Ok(StopReason::EndTurn),
        "incomplete" => {
            let details = o.obj("incomplete_details")?;
            Ok(
                match details.map(|d| d.str("reason")).transpose()?.flatten() {
                    Some("max_output_tokens") => StopReason::MaxTokens,
                    Some("content_filter") => StopReason::ContentFilter,
                    reason => StopReason::Other(reason.unwrap_or("incomplete").to_owned()),
                },
            )
        }
        status => Err(TranslateError::Upstream(format!(
            "the response is {status}, not finished"
        ))),
    }
}

/// The `usage` member of a response object.
pub(super) fn read_usage(o: &Fields) -> Result<Option<TokenUsage>, TranslateError> {
    let Some(u) = o.obj("usage")? else {
        return Ok(None);
    };
    let detail = |key: &str, field: &str| -> Result<Option<u64>, TranslateError> {
        Ok(u.obj(key)?.map(|d| d.u64(field)).transpose()?.flatten())
    };
    Ok(Some(TokenUsage {
        input: u.u64("input_tokens")?.unwrap_or(0),
        output: u.u64("output_tokens")?.unwrap_or(0),
        cached_input: detail("input_tokens_details", "cached_tokens")?,
        // Reported as 0 when nothing was written, which the canonical shape says as "not
        // reported".
        cache_creation: detail("input_tokens_details", "cache_write_tokens")?.filter(|&n| n > 0),
        reasoning: detail("output_tokens_details", "reasoning_tokens")?,
    }))
}

/// Writes a whole answer for a caller.
pub fn encode_response(resp: &Response, ctx: &AnswerContext) -> Vec<u8> {
    let id = response_id(&resp.id);
    let mut output = Vec::new();
    let mut texts: Vec<Value> = Vec::new();
    let flush = |texts: &mut Vec<Value>, output: &mut Vec<Value>| {
        if !texts.is_empty() {
            let item_id = item_id(&id, "msg", output.len());
            output.push(message_item(&item_id, "completed", std::mem::take(texts)));
        }
    };
    for part in &resp.content {
        match part {
            Part::Text(text) => texts.push(text_part(text)),
            Part::Reasoning(r) => {
                flush(&mut texts, &mut output);
                output.push(reasoning_item(Some(&item_id(&id, "rs", output.len())), r));
            }
            Part::ToolCall(call) => {
                flush(&mut texts, &mut output);
                let custom = ctx.freeform_tools.contains(&call.name);
                output.push(call_item(&id, output.len(), call, custom));
            }
            Part::Image(_) | Part::ToolResult(_) => {
                tracing::debug!("an answer part the Responses API cannot hold dropped");
            }
        }
    }
    flush(&mut texts, &mut output);
    let head = Head {
        id,
        model: if resp.model.is_empty() {
            ctx.model.clone()
        } else {
            resp.model.clone()
        },
        created: if resp.created != 0 {
            resp.created
        } else {
            ctx.created
        },
    };
    to_json(&head.response(Some(&resp.stop), true, output, Some(&resp.usage)))
}

/// What every response object of one answer repeats.
#[derive(Debug, Clone, Default)]
pub(super) struct Head {
    /// `resp_…`.
    pub(super) id: String,
    pub(super) model: String,
    pub(super) created: u64,
}

impl Head {
    /// A response object: in progress, or finished for `stop` (`None`: the upstream was cut).
    pub(super) fn response(
        &self,
        stop: Option<&StopReason>,
        finished: bool,
        output: Vec<Value>,
        usage: Option<&TokenUsage>,
    ) -> Value {
        let (status, details) = match stop {
            _ if !finished => ("in_progress", Value::Null),
            Some(StopReason::MaxTokens) => ("incomplete", json!({"reason": "max_output_tokens"})),
            Some(StopReason::ContentFilter) => ("incomplete", json!({"reason": "content_filter"})),
            None => ("incomplete", Value::Null),
            Some(_) => ("completed", Value::Null),
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": details,
            "instructions": null,
            "max_output_tokens": null,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "store": false,
            "temperature": null,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": null,
            "truncation": "disabled",
            "usage": usage.map(usage_json),
            "user": null,
            "metadata": {},
        })
    }
}

/// The `usage` object (`cache_write_tokens` is required by the current SDK's model).
pub(super) fn usage_json(u: &TokenUsage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {
            "cached_tokens": u.cached_input.unwrap_or(0),
            "cache_write_tokens": u.cache_creation.unwrap_or(0),
        },
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning.unwrap_or(0)},
        "total_tokens": u.total(),
    })
}

/// The caller's response id for an upstream id.
pub(super) fn response_id(upstream: &str) -> String {
    match upstream {
        "" => "resp_gateway".to_owned(),
        id if id.starts_with("resp_") => id.to_owned(),
        id => format!("resp_{id}"),
    }
}

/// An output item's id: `<prefix>_<response id without resp_>_<output index>`.
pub(super) fn item_id(response_id: &str, prefix: &str, index: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{index}")
}

/// An `output_text` content part.
pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// An assistant `message` item.
pub(super) fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": content})
}

/// A `reasoning` item (an input item has no id).
pub(super) fn reasoning_item(id: Option<&str>, r: &Reasoning) -> Value {
    let summary: Vec<Value> = if r.text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": r.text})]
    };
    let mut item = json!({"type": "reasoning", "summary": summary});
    if let Some(id) = id {
        item["id"] = json!(id);
    }
    if let Some(blob) = r.encrypted.as_ref().or(r.signature.as_ref()) {
        item["encrypted_content"] = json!(blob);
    }
    item
}

/// A complete `function_call` item, or a `custom_tool_call` one for a freeform tool.
pub(super) fn call_item(response_id: &str, index: usize, call: &ToolCall, custom: bool) -> Value {
    if custom {
        json!({"id": item_id(response_id, "ctc", index), "type": "custom_tool_call",
               "status": "completed", "call_id": call.id, "name": call.name,
               "input": freeform_input(&call.arguments)})
    } else {
        json!({"id": item_id(response_id, "fc", index), "type": "function_call",
               "status": "completed", "call_id": call.id, "name": call.name,
               "arguments": call.arguments})
    }
}

/// A freeform tool's input from canonical arguments: their `input` member, else the raw text.
pub(super) fn freeform_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get(FREEFORM_INPUT)?.as_str().map(str::to_owned))
        .unwrap_or_else(|| arguments.to_owned())
}
