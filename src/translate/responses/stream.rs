//! Responses API streams: reading a backend's typed events into [`Event`]s, and writing a
//! caller's event sequence the way OpenAI does (Codex and the `openai` SDK's `responses.stream()`
//! rely on it).
//!
//! Written sequence: `response.created`, `response.in_progress`; per output item
//! `response.output_item.added`, its deltas (`output_text`, `reasoning_summary_text`,
//! `function_call_arguments`), their `.done` events and `response.output_item.done`; last
//! `response.completed` — or `response.incomplete` for the token limit, a content filter, or an
//! upstream that stopped without saying why — carrying the whole response (items, usage). Every
//! event has `type` and an increasing `sequence_number`. The final event waits for
//! [`StreamEncoder::finish`] so that a usage report after the stop reason lands in it. A freeform
//! tool's input is written whole when its call closes (canonical fragments are pieces of a
//! JSON object, not of the text). An error ends the stream with `response.failed`.

use serde_json::{Map, Value, json};

use super::answer::{
    Head, call_item, freeform_input, item_id, message_item, output_item_parts, read_usage,
    reasoning_item, response_id, stop_reason, text_part,
};
use super::read_call;
use crate::protocol::{Operation, Protocol};
use crate::translate::fields::{Fields, parse, sse};
use crate::translate::model::{Event, Part, Reasoning, StopReason, TokenUsage, ToolCall};
use crate::translate::{AnswerContext, TranslateError, kind_for_status};
use crate::wire::errors::stream_error_event;

/// A call item being read: its output index, whether it is freeform, whether deltas came.
#[derive(Debug)]
struct ReadCall {
    output_index: u64,
    custom: bool,
    streamed: bool,
}

/// Reads a Responses API stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    failed: bool,
    calls: Vec<ReadCall>,
    /// Output indices of message and reasoning items whose text came as deltas.
    streamed: Vec<u64>,
    /// The (output index, summary index) of the last reasoning delta.
    last_summary: Option<(u64, u64)>,
    refusal: bool,
}

impl StreamDecoder {
    /// One `data:` payload.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if self.failed {
            return Ok(());
        }
        let value = parse(data, "a stream event", TranslateError::Upstream)?;
        let o = Fields::of(&value, "event", TranslateError::Upstream)?;
        let kind = o.str("type")?.unwrap_or_default();
        if kind == "error" || (kind.is_empty() && o.get("error").is_some()) {
            let error = o.obj("error")?.unwrap_or_else(|| o.clone());
            return self.error(&error, out);
        }
        if !self.started {
            self.started = true;
            let response = o.obj("response")?;
            let field = |key| response.as_ref().map(|r| r.str(key)).transpose();
            out.push(Event::Start {
                id: field("id")?.flatten().unwrap_or_default().to_owned(),
                model: field("model")?.flatten().unwrap_or_default().to_owned(),
            });
        }
        let index = || Ok::<_, TranslateError>(o.u64("output_index")?.unwrap_or(0));
        let delta = || Ok::<_, TranslateError>(o.str("delta")?.unwrap_or_default().to_owned());
        match kind {
            "response.output_item.added" => {
                if let Some(item) = o.obj("item")? {
                    self.call_started(&item, index()?, out)?;
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.refusal |= kind == "response.refusal.delta";
                self.mark_streamed(index()?);
                out.push(Event::Text(delta()?));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let at = (
                    index()?,
                    o.u64("summary_index")?.or(o.u64("content_index")?),
                );
                let at = (at.0, at.1.unwrap_or(0));
                if self
                    .last_summary
                    .is_some_and(|(i, s)| i == at.0 && s != at.1)
                {
                    out.push(Event::Reasoning("\n\n".into()));
                }
                self.last_summary = Some(at);
                self.mark_streamed(at.0);
                out.push(Event::Reasoning(delta()?));
            }
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                let output_index = index()?;
                if let Some(i) = self
                    .calls
                    .iter()
                    .position(|c| c.output_index == output_index)
                {
                    let call = &mut self.calls[i];
                    let mut fragment = delta()?;
                    if call.custom {
                        let quoted = json!(fragment).to_string();
                        fragment = quoted[1..quoted.len() - 1].to_owned();
                        if !call.streamed {
                            fragment.insert_str(0, "{\"input\":\"");
                        }
                    }
                    call.streamed = true;
                    out.push(Event::ToolCallArgs { index: i, fragment });
                }
            }
            "response.output_item.done" => {
                if let Some(item) = o.obj("item")? {
                    self.item_done(&item, item.req_str("type")?, index()?, out)?;
                }
            }
            "response.completed" | "response.incomplete" => {
                let Some(response) = o.obj("response")? else {
                    return Err(TranslateError::Upstream(format!("{kind} has no response")));
                };
                if let Some(usage) = read_usage(&response)? {
                    out.push(Event::Usage(usage));
                }
                let stop = stop_reason(&response, !self.calls.is_empty(), self.refusal)?;
                out.push(Event::Stop(stop));
            }
            "response.failed" => {
                let response = o.obj("response")?;
                let error = response.map(|r| r.obj("error")).transpose()?.flatten();
                return self.error(&error.unwrap_or(o), out);
            }
            _ => {}
        }
        Ok(())
    }

    /// Notes that output item `index` had text deltas (its `.done` repeats them).
    fn mark_streamed(&mut self, index: u64) {
        if !self.streamed.contains(&index) {
            self.streamed.push(index);
        }
    }

    /// End of the upstream stream: a Responses stream says its stop reason itself, so nothing
    /// is left unsaid (a cut stream has none).
    pub fn finish(&mut self, _out: &mut Vec<Event>) {}

    fn error(&mut self, error: &Fields, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        self.failed = true;
        let status = match error.str("code")?.or(error.str("type")?) {
            Some("rate_limit_exceeded" | "insufficient_quota") => 429,
            Some("context_length_exceeded" | "invalid_prompt" | "invalid_request_error") => 400,
            Some("server_is_overloaded" | "slow_down") => 503,
            _ => 500,
        };
        let message = error
            .str("message")?
            .unwrap_or("the backend's stream failed");
        out.push(Event::Error {
            status,
            message: message.to_owned(),
        });
        Ok(())
    }

    fn call_started(
        &mut self,
        item: &Fields,
        output_index: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let kind = item.req_str("type")?;
        if !matches!(
            kind,
            "function_call" | "custom_tool_call" | "local_shell_call"
        ) {
            return Ok(());
        }
        self.calls.push(ReadCall {
            output_index,
            custom: kind == "custom_tool_call",
            streamed: false,
        });
        out.push(Event::ToolCallStart {
            index: self.calls.len() - 1,
            id: item.req_str("call_id")?.to_owned(),
            name: match kind {
                "local_shell_call" => super::LOCAL_SHELL,
                _ => item.req_str("name")?,
            }
            .to_owned(),
        });
        Ok(())
    }

    fn item_done(
        &mut self,
        item: &Fields,
        kind: &str,
        output_index: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        if let Some(call) = read_call(item, kind)? {
            let known = self.calls.iter().any(|c| c.output_index == output_index);
            if !known {
                self.call_started(item, output_index, out)?;
            }
            let index = self
                .calls
                .iter()
                .rposition(|c| c.output_index == output_index);
            if let Some(index) = index {
                let fragment = match &self.calls[index] {
                    c if !c.streamed => call.arguments,
                    c if c.custom => "\"}".to_owned(),
                    _ => return Ok(()),
                };
                out.push(Event::ToolCallArgs { index, fragment });
            }
            return Ok(());
        }
        let streamed = self.streamed.contains(&output_index);
        let mut parts = Vec::new();
        output_item_parts(item, &mut parts, &mut self.refusal)?;
        for part in parts {
            match part {
                Part::Text(text) if !streamed => out.push(Event::Text(text)),
                Part::Reasoning(r) => {
                    if !streamed && !r.text.is_empty() {
                        out.push(Event::Reasoning(r.text));
                    }
                    if let Some(blob) = r.encrypted {
                        out.push(Event::ReasoningSignature(blob));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The message or reasoning item being written.
#[derive(Debug)]
struct OpenText {
    index: usize,
    id: String,
    text: String,
    /// Reasoning: its summary part was announced.
    part_open: bool,
    encrypted: Option<String>,
}

/// A call item being written.
#[derive(Debug)]
struct OpenCall {
    index: usize,
    id: String,
    /// The canonical call ordinal.
    ordinal: usize,
    call: ToolCall,
    custom: bool,
}

/// Numbers and writes events.
#[derive(Debug, Default)]
struct Writer {
    sequence: u64,
}

impl Writer {
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, body: Value) {
        let mut event = Map::new();
        event.insert("type".into(), json!(kind));
        event.insert("sequence_number".into(), json!(self.sequence));
        if let Value::Object(members) = body {
            event.extend(members);
        }
        self.sequence += 1;
        sse(out, Some(kind), &event, "\n\n");
    }

    /// An event about output item `index` (`item_id`, `output_index`, and `more`).
    fn item_event(&mut self, out: &mut Vec<u8>, kind: &str, id: &str, index: usize, more: Value) {
        let mut body = json!({"item_id": id, "output_index": index});
        if let (Value::Object(b), Value::Object(m)) = (&mut body, more) {
            b.extend(m);
        }
        self.emit(out, kind, body);
    }
}

/// Writes a Responses API stream (its state boxed: the translator's encoder enum stays small).
#[derive(Debug)]
pub struct StreamEncoder {
    state: Box<Encoder>,
}

impl StreamEncoder {
    /// For the request `ctx` describes.
    pub fn new(ctx: &AnswerContext) -> Self {
        Self {
            state: Box::new(Encoder::new(ctx)),
        }
    }

    /// One event.
    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        self.state.event(event, out);
    }

    /// End of stream: closes what is open and writes the final event.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.state.finish(out);
    }
}

/// The encoder's state.
#[derive(Debug)]
struct Encoder {
    head: Head,
    freeform: Vec<String>,
    writer: Writer,
    started: bool,
    /// An error was written, or the final event: nothing more.
    closed: bool,
    /// Output items so far (complete ones), with their output indices.
    done: Vec<(usize, Value)>,
    next_index: usize,
    message: Option<OpenText>,
    reasoning: Option<OpenText>,
    calls: Vec<OpenCall>,
    usage: Option<TokenUsage>,
    stop: Option<StopReason>,
}

impl Encoder {
    fn new(ctx: &AnswerContext) -> Self {
        Self {
            head: Head {
                id: response_id(""),
                model: ctx.model.clone(),
                created: ctx.created,
            },
            freeform: ctx.freeform_tools.clone(),
            writer: Writer::default(),
            started: false,
            closed: false,
            done: Vec::new(),
            next_index: 0,
            message: None,
            reasoning: None,
            calls: Vec::new(),
            usage: None,
            stop: None,
        }
    }

    fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match event {
            Event::Start { id, model } => self.start(&id, &model, out),
            Event::Text(text) => {
                self.start("", "", out);
                self.close_reasoning(out);
                self.close_calls(out);
                self.text(text, out);
            }
            Event::Reasoning(text) => {
                self.start("", "", out);
                self.close_message(out);
                self.close_calls(out);
                self.reasoning_text(text, out);
            }
            Event::ReasoningSignature(blob) => {
                self.start("", "", out);
                self.close_message(out);
                self.close_calls(out);
                self.open_reasoning(out).encrypted = Some(blob);
            }
            Event::ToolCallStart { index, id, name } => {
                self.start("", "", out);
                self.close_message(out);
                self.close_reasoning(out);
                self.open_call(index, id, name, out);
            }
            Event::ToolCallArgs { index, fragment } => self.call_args(index, &fragment, out),
            Event::Usage(usage) => self.usage = Some(usage),
            Event::Stop(stop) => {
                self.close_all(out);
                self.stop = Some(stop);
            }
            Event::Error { status, message } => {
                self.closed = true;
                let kind = kind_for_status(status);
                let operation = Some(Operation::Responses);
                out.extend_from_slice(&stream_error_event(
                    Protocol::OpenAi,
                    operation,
                    kind,
                    status,
                    &message,
                ));
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.start("", "", out);
        self.close_all(out);
        self.closed = true;
        let mut done = std::mem::take(&mut self.done);
        done.sort_by_key(|(index, _)| *index);
        let output = done.into_iter().map(|(_, item)| item).collect();
        let response = self
            .head
            .response(self.stop.as_ref(), true, output, self.usage.as_ref());
        let kind = match response["status"].as_str() {
            Some("completed") => "response.completed",
            _ => "response.incomplete",
        };
        self.writer.emit(out, kind, json!({ "response": response }));
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.head.id = response_id(id);
        if !model.is_empty() {
            self.head.model = model.to_owned();
        }
        let response = self.head.response(None, false, Vec::new(), None);
        let body = json!({ "response": response });
        self.writer.emit(out, "response.created", body.clone());
        self.writer.emit(out, "response.in_progress", body);
    }

    fn next_item(&mut self, prefix: &str) -> (usize, String) {
        let index = self.next_index;
        self.next_index += 1;
        (index, item_id(&self.head.id, prefix, index))
    }

    fn added(&mut self, index: usize, item: Value, out: &mut Vec<u8>) {
        let body = json!({"output_index": index, "item": item});
        self.writer.emit(out, "response.output_item.added", body);
    }

    fn item_done(&mut self, index: usize, item: Value, out: &mut Vec<u8>) {
        let body = json!({"output_index": index, "item": item.clone()});
        self.writer.emit(out, "response.output_item.done", body);
        self.done.push((index, item));
    }

    fn text(&mut self, text: String, out: &mut Vec<u8>) {
        if self.message.is_none() {
            let (index, id) = self.next_item("msg");
            self.added(index, message_item(&id, "in_progress", Vec::new()), out);
            let part = json!({"content_index": 0, "part": text_part("")});
            self.writer
                .item_event(out, "response.content_part.added", &id, index, part);
            self.message = Some(open_text(index, id));
        }
        let Some(m) = self.message.as_mut() else {
            return;
        };
        let delta = json!({"content_index": 0, "delta": text, "logprobs": []});
        self.writer
            .item_event(out, "response.output_text.delta", &m.id, m.index, delta);
        m.text.push_str(&text);
    }

    fn close_message(&mut self, out: &mut Vec<u8>) {
        let Some(m) = self.message.take() else {
            return;
        };
        let (id, index) = (m.id.as_str(), m.index);
        let text = json!({"content_index": 0, "text": m.text, "logprobs": []});
        self.writer
            .item_event(out, "response.output_text.done", id, index, text);
        let part = json!({"content_index": 0, "part": text_part(&m.text)});
        self.writer
            .item_event(out, "response.content_part.done", id, index, part);
        let item = message_item(id, "completed", vec![text_part(&m.text)]);
        self.item_done(index, item, out);
    }

    fn open_reasoning(&mut self, out: &mut Vec<u8>) -> &mut OpenText {
        if self.reasoning.is_none() {
            let (index, id) = self.next_item("rs");
            self.added(
                index,
                json!({"id": id, "type": "reasoning", "summary": []}),
                out,
            );
            self.reasoning = Some(open_text(index, id));
        }
        self.reasoning
            .get_or_insert_with(|| open_text(0, String::new()))
    }

    fn reasoning_text(&mut self, text: String, out: &mut Vec<u8>) {
        let r = self.open_reasoning(out);
        let (id, index, announce) = (r.id.clone(), r.index, !r.part_open);
        r.part_open = true;
        r.text.push_str(&text);
        let summary = |more: Value| {
            let mut body = json!({"summary_index": 0});
            if let (Value::Object(b), Value::Object(m)) = (&mut body, more) {
                b.extend(m);
            }
            body
        };
        if announce {
            let part = summary(json!({"part": {"type": "summary_text", "text": ""}}));
            self.writer.item_event(
                out,
                "response.reasoning_summary_part.added",
                &id,
                index,
                part,
            );
        }
        let delta = summary(json!({ "delta": text }));
        self.writer.item_event(
            out,
            "response.reasoning_summary_text.delta",
            &id,
            index,
            delta,
        );
    }

    fn close_reasoning(&mut self, out: &mut Vec<u8>) {
        let Some(r) = self.reasoning.take() else {
            return;
        };
        let (id, index) = (r.id.as_str(), r.index);
        if r.part_open {
            let text = json!({"summary_index": 0, "text": r.text});
            self.writer
                .item_event(out, "response.reasoning_summary_text.done", id, index, text);
            let part = json!({"summary_index": 0,
                              "part": {"type": "summary_text", "text": r.text}});
            self.writer
                .item_event(out, "response.reasoning_summary_part.done", id, index, part);
        }
        let reasoning = Reasoning {
            text: r.text.clone(),
            signature: None,
            encrypted: r.encrypted.clone(),
        };
        self.item_done(index, reasoning_item(Some(id), &reasoning), out);
    }

    fn open_call(&mut self, ordinal: usize, call_id: String, name: String, out: &mut Vec<u8>) {
        let custom = self.freeform.contains(&name);
        let (index, id) = self.next_item(if custom { "ctc" } else { "fc" });
        let item = if custom {
            json!({"id": id, "type": "custom_tool_call", "status": "in_progress",
                   "call_id": call_id, "name": name, "input": ""})
        } else {
            json!({"id": id, "type": "function_call", "status": "in_progress",
                   "call_id": call_id, "name": name, "arguments": ""})
        };
        self.added(index, item, out);
        self.calls.push(OpenCall {
            index,
            id,
            ordinal,
            call: ToolCall {
                id: call_id,
                name,
                arguments: String::new(),
            },
            custom,
        });
    }

    fn call_args(&mut self, ordinal: usize, fragment: &str, out: &mut Vec<u8>) {
        let Some(c) = self.calls.iter_mut().find(|c| c.ordinal == ordinal) else {
            tracing::debug!(ordinal, "arguments of a call that is not open dropped");
            return;
        };
        c.call.arguments.push_str(fragment);
        if !c.custom {
            let delta = json!({ "delta": fragment });
            self.writer.item_event(
                out,
                "response.function_call_arguments.delta",
                &c.id,
                c.index,
                delta,
            );
        }
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for mut c in std::mem::take(&mut self.calls) {
            if c.call.arguments.is_empty() {
                c.call.arguments = "{}".to_owned();
            }
            if c.custom {
                let input = freeform_input(&c.call.arguments);
                let (delta, done) = (json!({ "delta": input }), json!({ "input": input }));
                self.writer.item_event(
                    out,
                    "response.custom_tool_call_input.delta",
                    &c.id,
                    c.index,
                    delta,
                );
                self.writer.item_event(
                    out,
                    "response.custom_tool_call_input.done",
                    &c.id,
                    c.index,
                    done,
                );
            } else {
                let done = json!({"name": c.call.name, "arguments": c.call.arguments});
                self.writer.item_event(
                    out,
                    "response.function_call_arguments.done",
                    &c.id,
                    c.index,
                    done,
                );
            }
            let item = call_item(&self.head.id, c.index, &c.call, c.custom);
            self.item_done(c.index, item, out);
        }
    }

    fn close_all(&mut self, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        self.close_message(out);
        self.close_calls(out);
    }
}

fn open_text(index: usize, id: String) -> OpenText {
    OpenText {
        index,
        id,
        text: String::new(),
        part_open: false,
        encrypted: None,
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
