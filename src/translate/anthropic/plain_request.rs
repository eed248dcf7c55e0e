//! The hot path for a caller's usual Anthropic Messages request, what a coding agent sends on
//! every turn (Claude Code: a system prompt in text blocks, tools with JSON schemas, the
//! conversation with its tool calls and their results, often 50–200 KB): read into typed
//! fields in one pass, without a JSON tree. It takes the system prompt (a string or text
//! blocks), user and assistant messages (a string or text, thinking, redacted thinking, tool
//! use and tool result blocks, a result's content a string or text blocks), custom tools, the
//! sampling fields, `stop_sequences`, `stream` and `metadata.user_id`. Anything else — a
//! `tool_choice`, `thinking` or output configuration, images, another block type, a member of
//! an unexpected type or missing, a repeated member — returns `None` and goes through the
//! general reader ([`super::request::decode_general`]), which gives the same request where
//! this one gives one and names the defect where there is one. With debug logging on, every
//! request takes the general reader, which logs what translation drops.
//!
//! A tool's schema and a call's input are read again from their text into the tree the
//! canonical request holds; serde_json's nesting limit (128) then counts from that member, not
//! from the body (the general reader refuses a body nested deeper than 128 levels in all).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::plain::{Block, OneOrMany};
use crate::translate::fields::Object;
use crate::translate::model::{Message, Part, Request, Role, Tool};

/// The request as the general reader reads it, or `None` when it needs that reader.
pub(super) fn decode(body: &[u8]) -> Option<Request> {
    if tracing::enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let Object(top) = serde_json::from_slice::<Object<Top<'_>>>(body).ok()?;
    let configured = [
        top.tool_choice,
        top.thinking,
        top.output_config,
        top.output_format,
    ];
    if configured.iter().any(Option::is_some) {
        return None;
    }
    let system = match top.system {
        None => Vec::new(),
        Some(OneOrMany::One(text)) => vec![text],
        Some(OneOrMany::Many(blocks)) => blocks
            .into_iter()
            .map(|Object(b)| (b.kind == "text").then_some(b.text?))
            .collect::<Option<_>>()?,
    };
    let mut messages = Vec::new();
    for Object(message) in top.messages? {
        let role = match message.role.as_ref() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        };
        let content = match message.content? {
            OneOrMany::One(text) => vec![Part::Text(text)],
            OneOrMany::Many(blocks) => blocks
                .into_iter()
                .map(|Object(b)| b.request_part())
                .collect::<Option<_>>()?,
        };
        messages.push(Message { role, content });
    }
    let mut tools = Vec::new();
    for Object(tool) in top.tools.unwrap_or_default() {
        if let Some(tool) = tool.tool()? {
            tools.push(tool);
        }
    }
    let stream = top.stream.unwrap_or(false);
    Some(Request {
        model: top.model.unwrap_or_default(),
        system,
        messages,
        tools,
        max_tokens: top.max_tokens,
        temperature: top.temperature,
        top_p: top.top_p,
        top_k: top.top_k,
        stop: top.stop_sequences.unwrap_or_default(),
        stream,
        // Anthropic streams always end with a usage report.
        include_usage: stream,
        user: top.metadata.and_then(|Object(m)| m.user_id),
        ..Request::default()
    })
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    system: Option<OneOrMany<Object<SystemBlock<'a>>>>,
    #[serde(borrow, default)]
    messages: Option<Vec<Object<RequestMessage<'a>>>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    metadata: Option<Object<Metadata>>,
    #[serde(borrow, default)]
    tools: Option<Vec<Object<ToolDef<'a>>>>,
    #[serde(borrow, default)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_config: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_format: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SystemBlock<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RequestMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<OneOrMany<Object<Block<'a>>>>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct ToolDef<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
}

impl ToolDef<'_> {
    /// The tool; `Ok(None)`-like `Some(None)` for a server tool (dropped, as the general reader
    /// drops it), `None` when the general reader must decide.
    fn tool(self) -> Option<Option<Tool>> {
        if self.kind.as_deref().is_some_and(|k| k != "custom") {
            return Some(None);
        }
        let parameters = match self.input_schema {
            None => serde_json::json!({"type": "object", "properties": {}}),
            Some(raw) => match serde_json::from_str(raw.get()) {
                Ok(schema @ Value::Object(_)) => schema,
                _ => return None,
            },
        };
        Some(Some(Tool {
            name: self.name?,
            description: self.description,
            parameters,
            strict: self.strict,
            freeform: false,
        }))
    }
}

#[cfg(test)]
#[path = "plain_request_tests.rs"]
mod tests;
