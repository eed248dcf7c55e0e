//! Gemini `streamGenerateContent?alt=sse` streams: each `data:` payload is a whole
//! `GenerateContentResponse` chunk. The decoder turns chunks into [`Event`]s as they come; the
//! encoder writes a chunk per text or reasoning event and a function call whole once its
//! arguments are complete (Gemini has no argument fragments), and holds the `finishReason`
//! chunk until the usage report (or the end) so the last chunk carries both, as Google's does.

use serde_json::{Value, json};

use super::answer::{Chunk, answer_json, call_prefix, read_chunk};
use super::parts::{PartReader, call_part, finish_word};
use crate::protocol::{Operation, Protocol};
use crate::translate::fields::{parse, sse};
use crate::translate::model::{Event, Part, TokenUsage};
use crate::translate::{AnswerContext, TranslateError, kind_for_status};
use crate::wire::errors::stream_error_event;

/// The id of an answer whose chunks carry no `responseId`.
const NO_ID: &str = "gemini-response";

/// Reads a Gemini stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Made on the first chunk (call ids derive from its `responseId`).
    reader: Option<PartReader>,
    /// Function calls so far.
    calls: usize,
    /// The latest usage not yet reported (Gemini repeats it on every chunk: it is reported
    /// after the stop, or at the end).
    usage: Option<TokenUsage>,
    /// A `finishReason` was seen.
    stopped: bool,
    /// An error was reported: nothing more.
    failed: bool,
}

impl StreamDecoder {
    /// Decodes one `data:` payload.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if self.failed {
            return Ok(());
        }
        let v = parse(data, "a stream chunk", TranslateError::Upstream)?;
        let first = self.reader.is_none();
        let reader = self.reader.get_or_insert_with(|| {
            let id = v.get("responseId").and_then(Value::as_str).unwrap_or("");
            PartReader::new(call_prefix(id), true)
        });
        let chunk = match read_chunk(&v, reader)? {
            Ok(chunk) => chunk,
            Err((status, message)) => {
                self.failed = true;
                out.push(Event::Error { status, message });
                return Ok(());
            }
        };
        let saw_call = reader.saw_call;
        if first {
            out.push(Event::Start {
                id: chunk.id.clone().unwrap_or_else(|| NO_ID.to_owned()),
                model: chunk.model.clone().unwrap_or_default(),
            });
        }
        self.events(chunk, saw_call, out);
        Ok(())
    }

    fn events(&mut self, chunk: Chunk, saw_call: bool, out: &mut Vec<Event>) {
        for part in chunk.parts {
            match part {
                Part::Text(t) => out.push(Event::Text(t)),
                Part::Reasoning(r) => {
                    if !r.text.is_empty() {
                        out.push(Event::Reasoning(r.text));
                    }
                    out.extend(r.signature.map(Event::ReasoningSignature));
                }
                Part::ToolCall(c) => {
                    let index = self.calls;
                    self.calls += 1;
                    out.push(Event::ToolCallStart {
                        index,
                        id: c.id,
                        name: c.name,
                    });
                    out.push(Event::ToolCallArgs {
                        index,
                        fragment: c.arguments,
                    });
                }
                Part::Image(_) | Part::ToolResult(_) => {}
            }
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if let Some(f) = chunk.finish {
            out.push(Event::Stop(super::parts::read_finish(&f, saw_call)));
            self.stopped = true;
        }
        if self.stopped {
            out.extend(self.usage.take().map(Event::Usage));
        }
    }

    /// The stream ended: the last usage report, if not yet given.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.failed {
            out.extend(self.usage.take().map(Event::Usage));
        }
    }
}

/// A tool call being collected until its arguments are complete.
#[derive(Debug)]
struct OpenCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
    signature: Option<String>,
}

/// Writes a Gemini stream.
#[derive(Debug)]
pub struct StreamEncoder {
    /// `responseId` of every chunk.
    id: String,
    /// `modelVersion` of every chunk.
    model: String,
    /// Calls whose arguments may still grow.
    calls: Vec<OpenCall>,
    /// A thought signature for the next part.
    signature: Option<String>,
    /// The `finishReason` waiting for the usage report.
    stop: Option<&'static str>,
    /// The `finishReason` already written.
    stopped: Option<&'static str>,
    /// The latest usage.
    usage: Option<TokenUsage>,
    /// The usage was written since it last changed.
    usage_written: bool,
    /// An error or the end was written: nothing more.
    done: bool,
}

impl StreamEncoder {
    /// An encoder for the answer to the request `ctx` describes.
    pub fn new(ctx: &AnswerContext) -> Self {
        Self {
            id: NO_ID.to_owned(),
            model: ctx.model.clone(),
            calls: Vec::new(),
            signature: None,
            stop: None,
            stopped: None,
            usage: None,
            usage_written: false,
            done: false,
        }
    }

    /// Appends the SSE bytes of `event`.
    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match event {
            Event::Start { id, model } => {
                self.id = id;
                if !model.is_empty() {
                    self.model = model;
                }
            }
            Event::Text(t) => self.content(json!({"text": t}), out),
            Event::Reasoning(t) => self.content(json!({"text": t, "thought": true}), out),
            Event::ReasoningSignature(s) => {
                if let Some(part) = self.signature_part() {
                    self.flush_calls(out);
                    self.write(vec![part], None, None, out);
                }
                self.signature = Some(s);
            }
            Event::ToolCallStart { index, id, name } => self.calls.push(OpenCall {
                index,
                id,
                name,
                arguments: String::new(),
                signature: self.signature.take(),
            }),
            Event::ToolCallArgs { index, fragment } => {
                match self.calls.iter_mut().find(|c| c.index == index) {
                    Some(c) => c.arguments.push_str(&fragment),
                    None => {
                        tracing::warn!(index, "arguments of a tool call already written dropped")
                    }
                }
            }
            Event::Usage(u) => {
                self.usage = Some(u);
                self.usage_written = false;
                if self.stop.is_some() || self.stopped.is_some() {
                    self.close(out);
                }
            }
            Event::Stop(reason) => {
                self.flush_calls(out);
                self.stop = Some(finish_word(&reason));
            }
            Event::Error { status, message } => {
                let kind = kind_for_status(status);
                let op = Some(Operation::StreamGenerateContent);
                out.extend_from_slice(&stream_error_event(
                    Protocol::Gemini,
                    op,
                    kind,
                    status,
                    &message,
                ));
                self.done = true;
            }
        }
    }

    /// The stream ended: the held calls, signature, finish reason and usage.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.close(out);
        self.done = true;
    }

    /// Writes what is held: calls, then a last chunk with any pending signature, the finish
    /// reason and the usage (when any of them is there to write).
    fn close(&mut self, out: &mut Vec<u8>) {
        self.flush_calls(out);
        let signature = self.signature_part();
        let newly_stopped = self.stop.take();
        let fresh_usage = self.usage.is_some() && !self.usage_written;
        if signature.is_none() && newly_stopped.is_none() && !fresh_usage {
            return;
        }
        let finish = newly_stopped.or(self.stopped);
        let parts = signature.into_iter().collect();
        self.write(parts, finish, self.usage.as_ref(), out);
        self.stopped = finish;
        self.usage_written = self.usage.is_some();
    }

    /// A text or thought part: held calls first, a held signature on it.
    fn content(&mut self, part: Value, out: &mut Vec<u8>) {
        if part["text"].as_str().is_some_and(str::is_empty) {
            return;
        }
        self.flush_calls(out);
        let mut parts = Vec::new();
        let mut part = part;
        if let Some(sig) = self.signature.take() {
            if part.get("thought").is_some() {
                // A signature before a thought belongs to what came earlier: its own part.
                parts.push(json!({"text": "", "thoughtSignature": sig}));
            } else {
                part["thoughtSignature"] = json!(sig);
            }
        }
        parts.push(part);
        self.write(parts, None, None, out);
    }

    fn signature_part(&mut self) -> Option<Value> {
        let sig = self.signature.take()?;
        Some(json!({"text": "", "thoughtSignature": sig}))
    }

    /// Writes the calls collected so far, together in one chunk (as Gemini sends parallel
    /// calls).
    fn flush_calls(&mut self, out: &mut Vec<u8>) {
        if self.calls.is_empty() {
            return;
        }
        let parts = self
            .calls
            .drain(..)
            .map(|c| call_part(&c.id, &c.name, &c.arguments, c.signature))
            .collect();
        self.write(parts, None, None, out);
    }

    fn write(
        &self,
        mut parts: Vec<Value>,
        finish: Option<&str>,
        usage: Option<&TokenUsage>,
        out: &mut Vec<u8>,
    ) {
        if parts.is_empty() {
            parts.push(json!({"text": ""}));
        }
        let chunk = answer_json(parts, finish, usage, &self.model, &self.id);
        sse(out, None, &chunk, "\r\n\r\n");
    }
}
