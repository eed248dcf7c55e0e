//! Anthropic Messages streams: the upstream's SSE events read into canonical [`Event`]s, and
//! canonical events written as the `message_start` … `message_stop` sequence the Anthropic SDKs
//! and Claude Code read.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{decode_stop, decode_usage, encode_stop, message_id, usage_json};
use crate::protocol::{Operation, Protocol};
use crate::translate::fields::{Fields, parse, sse};
use crate::translate::model::{Event, StopReason, TokenUsage};
use crate::translate::{AnswerContext, TranslateError, kind_for_status};
use crate::wire::errors::stream_error_event;

/// What an upstream content block is, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamBlock {
    /// Text or thinking: its deltas pass.
    Content,
    /// Tool call `ordinal`; whether any argument text came.
    Tool { ordinal: usize, args: bool },
    /// A block that does not translate (server tools): its deltas are dropped.
    Ignored,
}

/// Reads an Anthropic stream, one `data:` payload at a time.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    usage: TokenUsage,
    blocks: HashMap<u64, UpstreamBlock>,
    tools: usize,
}

/// The HTTP status an Anthropic error type stands for.
fn status_of(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

fn index_of(event: &Fields<'_>) -> Result<u64, TranslateError> {
    event.need("index", event.u64("index")?)
}

impl StreamDecoder {
    /// Decodes one `data:` payload, appending what it says to `out`.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        let value = parse(data, "a stream event", TranslateError::Upstream)?;
        let event = Fields::of(&value, "", TranslateError::Upstream)?;
        let kind = event.req_str("type")?;
        if !self.started && !matches!(kind, "message_start" | "error" | "ping") {
            tracing::debug!(kind, "an Anthropic stream without message_start");
            self.started = true;
            out.push(Event::Start {
                id: String::new(),
                model: String::new(),
            });
        }
        match kind {
            "message_start" => {
                let msg = event.req_obj("message")?;
                self.started = true;
                out.push(Event::Start {
                    id: msg.req_str("id")?.to_owned(),
                    model: msg.str("model")?.unwrap_or_default().to_owned(),
                });
                self.usage_from(&msg, out)?;
            }
            "content_block_start" => self.block_start(&event, out)?,
            "content_block_delta" => self.block_delta(&event, out)?,
            "content_block_stop" => {
                let block = self.blocks.remove(&index_of(&event)?);
                if let Some(UpstreamBlock::Tool {
                    ordinal,
                    args: false,
                }) = block
                {
                    out.push(Event::ToolCallArgs {
                        index: ordinal,
                        fragment: "{}".into(),
                    });
                }
            }
            "message_delta" => {
                let delta = event.req_obj("delta")?;
                if let Some(reason) = delta.str("stop_reason")? {
                    let stop = decode_stop(Some(reason), delta.str("stop_sequence")?);
                    out.push(Event::Stop(stop));
                }
                self.usage_from(&event, out)?;
            }
            "error" => {
                let error = event.req_obj("error")?;
                out.push(Event::Error {
                    status: status_of(error.str("type")?.unwrap_or_default()),
                    message: error.str("message")?.unwrap_or_default().to_owned(),
                });
            }
            "message_stop" | "ping" => {}
            other => tracing::debug!(kind = other, "Anthropic stream event ignored"),
        }
        Ok(())
    }

    /// The upstream's stream ended (Anthropic says everything explicitly: nothing to add).
    pub fn finish(&mut self, _out: &mut Vec<Event>) {}

    fn usage_from(
        &mut self,
        holder: &Fields<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        if let Some(usage) = holder.obj("usage")? {
            decode_usage(&usage, &mut self.usage)?;
            out.push(Event::Usage(self.usage));
        }
        Ok(())
    }

    fn block_start(
        &mut self,
        event: &Fields<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let index = index_of(event)?;
        let block = event.req_obj("content_block")?;
        let kind = match block.req_str("type")? {
            "text" => {
                push_text(out, Event::Text, block.str("text")?);
                UpstreamBlock::Content
            }
            "thinking" => {
                push_text(out, Event::Reasoning, block.str("thinking")?);
                push_text(out, Event::ReasoningSignature, block.str("signature")?);
                UpstreamBlock::Content
            }
            "redacted_thinking" => {
                // The encrypted form travels as a signature with no reasoning text before it.
                out.push(Event::ReasoningSignature(block.req_str("data")?.to_owned()));
                UpstreamBlock::Ignored
            }
            "tool_use" => {
                let ordinal = self.tools;
                self.tools += 1;
                out.push(Event::ToolCallStart {
                    index: ordinal,
                    id: block.req_str("id")?.to_owned(),
                    name: block.req_str("name")?.to_owned(),
                });
                let input = block
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                if let Some(input) = input {
                    out.push(Event::ToolCallArgs {
                        index: ordinal,
                        fragment: input.to_string(),
                    });
                }
                UpstreamBlock::Tool {
                    ordinal,
                    args: input.is_some(),
                }
            }
            other => {
                tracing::debug!(
                    kind = other,
                    "Anthropic stream block dropped (not translatable)"
                );
                UpstreamBlock::Ignored
            }
        };
        self.blocks.insert(index, kind);
        Ok(())
    }

    fn block_delta(
        &mut self,
        event: &Fields<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let index = index_of(event)?;
        let delta = event.req_obj("delta")?;
        let block = self.blocks.get_mut(&index);
        match (delta.req_str("type")?, block) {
            (_, None | Some(UpstreamBlock::Ignored)) => {}
            ("text_delta", _) => push_text(out, Event::Text, delta.str("text")?),
            ("thinking_delta", _) => push_text(out, Event::Reasoning, delta.str("thinking")?),
            ("signature_delta", _) => {
                push_text(out, Event::ReasoningSignature, delta.str("signature")?);
            }
            ("input_json_delta", Some(UpstreamBlock::Tool { ordinal, args })) => {
                let fragment = delta.str("partial_json")?.unwrap_or_default();
                if !fragment.is_empty() {
                    *args = true;
                    out.push(Event::ToolCallArgs {
                        index: *ordinal,
                        fragment: fragment.to_owned(),
                    });
                }
            }
            (other, _) => tracing::debug!(kind = other, "Anthropic stream delta ignored"),
        }
        Ok(())
    }
}

/// Pushes `make(text)` when there is text.
fn push_text(out: &mut Vec<Event>, make: fn(String) -> Event, text: Option<&str>) {
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        out.push(make(t.to_owned()));
    }
}

/// What the caller's open content block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking {
        signed: bool,
    },
    /// Tool call with this ordinal.
    Tool(usize),
}

/// Writes an Anthropic stream from canonical events (its state is boxed: the dialects'
/// encoders share an enum, and this one is the largest).
#[derive(Debug)]
pub struct StreamEncoder(Box<Encoder>);

impl StreamEncoder {
    /// An encoder for the request `ctx` describes.
    pub fn new(ctx: &AnswerContext) -> Self {
        Self(Box::new(Encoder::new(ctx)))
    }

    /// Appends the SSE events that express `event`.
    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        self.0.event(event, out);
    }

    /// The stream ended: closes what is open and writes `message_delta` and `message_stop`
    /// (once; nothing after an error).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.0.ended {
            self.0.end(out);
        }
    }
}

#[derive(Debug)]
struct Encoder {
    model: String,
    id: Option<String>,
    /// `message_start` was written.
    started: bool,
    /// `message_stop` or an error was written: nothing more.
    ended: bool,
    next_index: u64,
    open: Option<(u64, OpenKind)>,
    /// Tool call ordinal → its block index.
    tools: HashMap<usize, u64>,
    usage: TokenUsage,
    stop: Option<StopReason>,
}

/// Appends one SSE event.
fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, kind: &str, data: &T) {
    sse(out, Some(kind), data, "\n\n");
}

impl Encoder {
    fn new(ctx: &AnswerContext) -> Self {
        Self {
            model: ctx.model.clone(),
            id: None,
            started: false,
            ended: false,
            next_index: 0,
            open: None,
            tools: HashMap::new(),
            usage: TokenUsage::default(),
            stop: None,
        }
    }

    fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if self.ended {
            tracing::debug!("an event after the end of an Anthropic stream dropped");
            return;
        }
        match event {
            Event::Start { id, model } => {
                if self.id.is_none() && !id.is_empty() {
                    self.id = Some(message_id(&id));
                }
                if !model.is_empty() {
                    self.model = model;
                }
            }
            Event::Usage(usage) => {
                self.usage = usage;
                if self.stop.is_some() {
                    self.end(out);
                }
            }
            Event::Text(text) if !text.is_empty() => {
                self.ensure_open(OpenKind::Text, out);
                self.delta(Delta::Text { text: &text }, out);
            }
            Event::Reasoning(text) if !text.is_empty() => {
                self.ensure_open(OpenKind::Thinking { signed: false }, out);
                self.delta(Delta::Thinking { thinking: &text }, out);
            }
            Event::Text(_) | Event::Reasoning(_) => {}
            Event::ReasoningSignature(signature) => self.signature(signature, out),
            Event::ToolCallStart { index, id, name } => {
                self.close(out);
                let id = if id.is_empty() {
                    format!(
                        "toolu_{}_{index}",
                        self.message_id().trim_start_matches("msg_")
                    )
                } else {
                    id
                };
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let at = self.open_block(OpenKind::Tool(index), block, out);
                self.tools.insert(index, at);
            }
            Event::ToolCallArgs { index, fragment } => match self.tools.get(&index) {
                Some(&at) if !fragment.is_empty() => {
                    if self.open != Some((at, OpenKind::Tool(index))) {
                        tracing::debug!(index, "arguments for a tool call whose block was closed");
                    }
                    let delta = Delta::InputJson {
                        partial_json: &fragment,
                    };
                    write_delta(out, at, delta);
                }
                Some(_) => {}
                None => tracing::debug!(index, "arguments for an unknown tool call dropped"),
            },
            Event::Stop(stop) => {
                self.begin(out);
                self.close(out);
                self.stop = Some(stop);
            }
            Event::Error { status, message } => {
                let kind = kind_for_status(status);
                let event = stream_error_event(
                    Protocol::Anthropic,
                    Some(Operation::Messages),
                    kind,
                    status,
                    &message,
                );
                out.extend_from_slice(&event);
                self.ended = true;
            }
        }
    }

    fn message_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| "msg_unknown".into())
    }

    /// Writes `message_start` once.
    fn begin(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": self.message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage_json(&self.usage),
        });
        write(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
    }

    /// Writes the stop reason and usage, then `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.begin(out);
        let stop = self.stop.take().unwrap_or(match self.open {
            Some((_, OpenKind::Tool(_))) => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        });
        self.close(out);
        let (reason, sequence) = encode_stop(&stop);
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage_json(&self.usage),
        });
        write(out, "message_delta", &delta);
        write(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// Opens a block of `kind` unless one is open.
    fn ensure_open(&mut self, kind: OpenKind, out: &mut Vec<u8>) {
        if self.open.map(|(_, k)| k) == Some(kind) {
            return;
        }
        self.close(out);
        let block = match kind {
            OpenKind::Text => json!({"type": "text", "text": ""}),
            _ => json!({"type": "thinking", "thinking": "", "signature": ""}),
        };
        self.open_block(kind, block, out);
    }

    /// Writes `content_block_start` for `block` at the next index; returns the index.
    fn open_block(&mut self, kind: OpenKind, block: Value, out: &mut Vec<u8>) -> u64 {
        self.begin(out);
        let index = self.next_index;
        self.next_index += 1;
        let start = json!({"type": "content_block_start", "index": index, "content_block": block});
        write(out, "content_block_start", &start);
        self.open = Some((index, kind));
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            write(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open {
            write_delta(out, index, delta);
        }
    }

    /// A signature closes the open thinking block; with none open (or one already signed) it
    /// is a redacted thinking block's data.
    fn signature(&mut self, signature: String, out: &mut Vec<u8>) {
        if signature.is_empty() {
            return;
        }
        if let Some((index, OpenKind::Thinking { signed: false })) = self.open {
            self.delta(
                Delta::Signature {
                    signature: &signature,
                },
                out,
            );
            self.open = Some((index, OpenKind::Thinking { signed: true }));
            return;
        }
        self.close(out);
        let block = json!({"type": "redacted_thinking", "data": signature});
        self.open_block(OpenKind::Thinking { signed: true }, block, out);
        self.close(out);
    }
}

/// A `content_block_delta`'s `delta`: the per-chunk events, written without building a JSON
/// tree.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u64,
    delta: Delta<'a>,
}

fn write_delta(out: &mut Vec<u8>, index: u64, delta: Delta<'_>) {
    let event = BlockDelta {
        kind: "content_block_delta",
        index,
        delta,
    };
    write(out, "content_block_delta", &event);
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
