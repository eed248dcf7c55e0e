//! Chat Completions streams: `chat.completion.chunk` payloads to canonical [`Event`]s and back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::plain::Message;
use super::{
    UsageJson, error_parts, finish_reason, reasoning_text, stop_from_wire, usage_from, usage_json,
};
use crate::protocol::{Operation, Protocol};
use crate::translate::fields::{Fields, Object, parse, sse};
use crate::translate::model::{Event, StopReason, TokenUsage};
use crate::translate::{AnswerContext, TranslateError, kind_for_status};

/// Reads an upstream's `chat.completion.chunk`s (each SSE `data:` payload but `[DONE]`).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// The first chunk was seen (and [`Event::Start`] emitted).
    started: bool,
    /// The answer's id (for the ids of calls that come without one).
    id: String,
    /// The calls started so far, by canonical ordinal: (wire `index`, id).
    calls: Vec<(u64, String)>,
    /// The answer is a refusal.
    refused: bool,
}

impl StreamDecoder {
    /// Decodes one chunk, appending its events to `out`.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if self.plain(data, out) {
            return Ok(());
        }
        self.general(data, out)
    }

    /// Decodes any chunk through the field reader.
    fn general(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        let chunk = parse(data, "a stream chunk", TranslateError::Upstream)?;
        let f = Fields::of(&chunk, "", TranslateError::Upstream)?;
        if let Some(error) = f.get("error") {
            let (status, message) = error_parts(error);
            out.push(Event::Error { status, message });
            return Ok(());
        }
        let choices = f.items("choices")?;
        if !self.started {
            let id = f.str("id")?.unwrap_or_default();
            if id.is_empty() && choices.is_empty() && f.get("usage").is_none() {
                // Azure's first chunk: only `prompt_filter_results`, no id or model yet.
                tracing::debug!("a chunk before the answer's first one: dropped");
                return Ok(());
            }
            self.started = true;
            self.id = id.to_owned();
            let model = f.str("model")?.unwrap_or_default().to_owned();
            out.push(Event::Start {
                id: self.id.clone(),
                model,
            });
        }
        for choice in choices {
            if choice.u64("index")?.unwrap_or(0) != 0 {
                tracing::debug!("a chunk of a second choice: dropped");
                continue;
            }
            if let Some(delta) = choice.obj("delta")? {
                self.delta(&delta, out)?;
            }
            if let Some(reason) = choice.str("finish_reason")?.filter(|r| !r.is_empty()) {
                let called = !self.calls.is_empty();
                let matched = choice.get("stop_reason");
                let stop = stop_from_wire(Some(reason), matched, self.refused, called);
                out.push(Event::Stop(stop));
            }
        }
        if let Some(usage) = f.obj("usage")? {
            out.push(Event::Usage(usage_from(&usage)?));
        }
        Ok(())
    }

    /// The per-chunk hot path: a chunk that carries only text (the answer's first chunk
    /// included), read into borrowed fields without building a JSON tree. Anything else — tool
    /// calls, a finish reason, usage, an error, an unexpected type — returns false and goes
    /// through the general reader, which gives the same events and names defects.
    fn plain(&mut self, data: &[u8], out: &mut Vec<Event>) -> bool {
        let Ok(Object(chunk)) = serde_json::from_slice::<Object<PlainChunk<'_>>>(data) else {
            return false;
        };
        let choices = chunk.choices.unwrap_or_default();
        let simple = chunk.error.is_none()
            && chunk.usage.is_none()
            && choices.iter().all(|Object(c)| {
                c.finish_reason.as_deref().is_none_or(str::is_empty)
                    && c.delta
                        .as_ref()
                        .is_none_or(|Object(d)| d.tool_calls.is_none() && d.function_call.is_none())
            });
        let id = chunk.id.unwrap_or_default();
        if !simple || (!self.started && (id.is_empty() || choices.is_empty())) {
            return false;
        }
        if !self.started {
            self.started = true;
            self.id = id.into_owned();
            out.push(Event::Start {
                id: self.id.clone(),
                model: chunk.model.unwrap_or_default().into_owned(),
            });
        }
        for Object(choice) in choices {
            if choice.index.unwrap_or(0) != 0 {
                tracing::debug!("a chunk of a second choice: dropped");
                continue;
            }
            let Some(Object(mut d)) = choice.delta else {
                continue;
            };
            if let Some(text) = d.take_reasoning() {
                out.push(Event::Reasoning(text.into_owned()));
            }
            if let Some(text) = d.content.filter(|t| !t.is_empty()) {
                out.push(Event::Text(text.into_owned()));
            }
            if let Some(text) = d.refusal.filter(|t| !t.is_empty()) {
                self.refused = true;
                out.push(Event::Text(text.into_owned()));
            }
        }
        true
    }

    /// The upstream's stream ended: a Chat stream says everything in its chunks.
    pub fn finish(&mut self, _out: &mut Vec<Event>) {}

    fn delta(&mut self, d: &Fields, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if let Some(text) = reasoning_text(d)? {
            out.push(Event::Reasoning(text.to_owned()));
        }
        if let Some(text) = d.str("content")?.filter(|t| !t.is_empty()) {
            out.push(Event::Text(text.to_owned()));
        }
        if let Some(text) = d.str("refusal")?.filter(|t| !t.is_empty()) {
            self.refused = true;
            out.push(Event::Text(text.to_owned()));
        }
        for call in d.items("tool_calls")? {
            let func = call.obj("function")?;
            let wire = call.u64("index")?.unwrap_or(0);
            self.fragment(wire, call.str("id")?, func.as_ref(), out)?;
        }
        if let Some(func) = d.obj("function_call")? {
            self.fragment(0, None, Some(&func), out)?;
        }
        Ok(())
    }

    /// One fragment of a call. A call begins with an id never seen before (some servers send
    /// every call at wire index 0, told apart by their ids), or, without an id, with the first
    /// fragment at a wire index (its id is then made from the answer's); a fragment repeating
    /// a known id, or without one, continues the call.
    fn fragment(
        &mut self,
        wire: u64,
        id: Option<&str>,
        func: Option<&Fields>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let id = id.filter(|i| !i.is_empty());
        let known = match id {
            Some(id) => self.calls.iter().position(|(_, c)| c == id),
            None => self.calls.iter().rposition(|(w, _)| *w == wire),
        };
        let name = match func {
            Some(f) => f.str("name")?,
            None => None,
        };
        let index = match known {
            Some(index) => index,
            None => {
                let index = self.calls.len();
                let id = id.map_or_else(|| format!("{}_{index}", self.id), str::to_owned);
                self.calls.push((wire, id.clone()));
                let name = name.unwrap_or_default().to_owned();
                out.push(Event::ToolCallStart { index, id, name });
                index
            }
        };
        let args = match func {
            Some(f) => f.str("arguments")?.filter(|a| !a.is_empty()),
            None => None,
        };
        if let Some(fragment) = args {
            let fragment = fragment.to_owned();
            out.push(Event::ToolCallArgs { index, fragment });
        }
        Ok(())
    }
}

/// The fields of a text-only chunk ([`StreamDecoder::plain`]); a present `error`, `usage`,
/// tool call or finish reason sends the chunk to the general reader.
#[derive(Deserialize)]
struct PlainChunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Object<PlainChoice<'a>>>>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PlainChoice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<Object<Message<'a>>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

/// Writes a caller's stream of `chat.completion.chunk`s, `data: [DONE]` last.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// The first chunk (`role: assistant`) was written.
    opened: bool,
    /// A tool call was written (the finish reason is then `tool_calls`).
    called: bool,
    /// The chunk with the finish reason was written.
    stopped: bool,
    /// The latest usage report, written after the finish reason when the caller asked.
    usage: Option<TokenUsage>,
    /// An error or `[DONE]` was written: nothing more is.
    ended: bool,
}

impl StreamEncoder {
    /// An encoder for the request `ctx` describes.
    pub fn new(ctx: &AnswerContext) -> Self {
        Self {
            id: String::new(),
            model: ctx.model.clone(),
            created: ctx.created,
            include_usage: ctx.include_usage,
            opened: false,
            called: false,
            stopped: false,
            usage: None,
            ended: false,
        }
    }

    /// Appends the chunk that says `event` (if any).
    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match event {
            Event::Start { id, model } => {
                if !self.opened {
                    self.id = id;
                    if !model.is_empty() {
                        self.model = model;
                    }
                }
                self.open(out);
            }
            Event::Text(t) if !t.is_empty() => self.delta(json!({"content": t}), out),
            Event::Reasoning(t) if !t.is_empty() => {
                self.delta(json!({"reasoning_content": t}), out);
            }
            Event::Text(_) | Event::Reasoning(_) => {}
            Event::ReasoningSignature(_) => {
                tracing::debug!("a reasoning signature has no chat chunk: dropped");
            }
            Event::ToolCallStart { index, id, name } => {
                self.called = true;
                let function = json!({"name": name, "arguments": ""});
                let call =
                    json!({"index": index, "id": id, "type": "function", "function": function});
                self.delta(json!({"tool_calls": [call]}), out);
            }
            Event::ToolCallArgs { index, fragment } => {
                let call = json!({"index": index, "function": {"arguments": fragment}});
                self.delta(json!({"tool_calls": [call]}), out);
            }
            Event::Usage(usage) => self.usage = Some(usage),
            Event::Stop(reason) => self.stop(&reason, out),
            Event::Error { status, message } => {
                let kind = kind_for_status(status);
                let op = Some(Operation::ChatCompletions);
                let event = crate::wire::errors::stream_error_event(
                    Protocol::OpenAi,
                    op,
                    kind,
                    status,
                    &message,
                );
                out.extend_from_slice(&event);
                self.ended = true;
            }
        }
    }

    /// The stream ended: the finish reason if none was written, the usage report when the
    /// caller asked for it, then `[DONE]` (nothing after an error).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.stop(&StopReason::EndTurn, out);
        if let (true, Some(usage)) = (self.include_usage, self.usage) {
            self.chunk(json!([]), Some(usage_json(&usage)), out);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        if !self.opened {
            self.opened = true;
            self.delta(json!({"role": "assistant", "content": ""}), out);
        }
    }

    fn delta(&mut self, delta: Value, out: &mut Vec<u8>) {
        self.open(out);
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null});
        self.chunk(json!([choice]), None, out);
    }

    fn stop(&mut self, reason: &StopReason, out: &mut Vec<u8>) {
        if self.stopped {
            return;
        }
        self.open(out);
        self.stopped = true;
        let finish = finish_reason(reason, self.called);
        let choice = json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish});
        self.chunk(json!([choice]), None, out);
    }

    fn chunk(&self, choices: Value, usage: Option<UsageJson>, out: &mut Vec<u8>) {
        let chunk = ChunkJson {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        sse(out, None, &chunk, "\n\n");
    }
}

/// One `chat.completion.chunk` as written (straight from these fields: no map is built).
#[derive(Serialize)]
struct ChunkJson<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageJson>,
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
