//! Kiro's answer: the event-stream messages of `generateAssistantResponse` as [`Event`]s, and a
//! whole (buffered) answer as a [`Response`].
//!
//! | message | events |
//! |---|---|
//! | `assistantResponseEvent {content}` | text |
//! | `toolUseEvent {toolUseId, name, input, stop}` | a call starts at its first event; each `input` string is an arguments fragment (an object: its JSON text); `stop: true` ends it (`{}` when it had no input); events of an ended call are repeats, ignored |
//! | `reasoningContentEvent {text, signature}` | reasoning, its signature (`redactedContent` dropped) |
//! | `metadataEvent {tokenUsage}` | usage: input = `uncachedInputTokens` + `cacheReadInputTokens` + `cacheWriteInputTokens`, output = `outputTokens` |
//! | `meteringEvent {usage, unit: credit}`, `contextUsageEvent {contextUsagePercentage}` | dropped (debug): credits and a share of the context window are not token counts |
//! | `messageMetadataEvent`, `followupPromptEvent`, `supplementaryWebLinksEvent`, `codeReferenceEvent`, `citationEvent`, other events | dropped (debug) |
//! | `invalidStateEvent` | dropped (warned): the stream goes on |
//! | `:message-type: exception` | an error ([`exception_status`]); nothing after it |
//! | `:message-type: error` (`:error-code`, `:error-message` headers) | an error, 502 |
//!
//! The stream ends with the stop reason: tool use when the answer called tools, else end of
//! turn (the API does not report one). The payloads are the event's members (`{"content":…}`);
//! a payload wrapped in an object named for the event (`{"assistantResponseEvent":{…}}`), as
//! some gateways write them, is read too.

use serde_json::{Map, Value};

use crate::translate::TranslateError;
use crate::translate::collect::Collector;
use crate::translate::model::{Event, Response, StopReason, TokenUsage};
use crate::wire::event_stream::{self, Message};

/// Reads a Kiro answer stream, from raw bytes ([`StreamDecoder::bytes`]) or from decoded
/// messages ([`StreamDecoder::message`]).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    frames: event_stream::Decoder,
    /// The id [`Event::Start`] carries.
    id: String,
    started: bool,
    /// The calls so far, by ordinal.
    calls: Vec<Call>,
    /// An error was reported: the stream says no more.
    failed: bool,
}

#[derive(Debug)]
struct Call {
    id: String,
    /// Arguments were sent.
    args: bool,
    /// `stop: true` was seen.
    done: bool,
}

impl StreamDecoder {
    /// A decoder whose [`Event::Start`] carries `id` (the API sends no answer id: the
    /// conversation's id serves).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// Decodes the next chunk of the HTTP body, appending the events of the messages it
    /// completes to `out`.
    pub fn bytes(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        self.frames.feed(chunk);
        loop {
            match self.frames.next_message() {
                Ok(Some(m)) => self.message(&m, out)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(TranslateError::Upstream(e.to_string())),
            }
        }
    }

    /// Decodes one event-stream message, appending what it says to `out`.
    pub fn message(&mut self, m: &Message, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if self.failed {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: self.id.clone(),
                model: String::new(),
            });
        }
        let kind = m.kind().unwrap_or_default();
        match m.message_type() {
            Some("event") => self.event(kind, &payload(m, kind)?, out),
            Some("exception") => {
                let p = payload(m, kind)?;
                self.fail(exception_status(kind, &p), describe(kind, &p), out);
                Ok(())
            }
            Some("error") => {
                let code = m.header_str(":error-code").unwrap_or("error");
                let message = m.header_str(":error-message").unwrap_or_default();
                self.fail(502, format!("{code}: {message}"), out);
                Ok(())
            }
            other => Err(TranslateError::Upstream(format!(
                "an event-stream message of type {other:?}"
            ))),
        }
    }

    /// The upstream's stream ended: the stop reason, or an error when it ended inside a
    /// message.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if self.failed {
            return;
        }
        if let Err(e) = self.frames.finish() {
            self.fail(502, e.to_string(), out);
            return;
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: self.id.clone(),
                model: String::new(),
            });
        }
        for (index, c) in self.calls.iter_mut().enumerate() {
            if !c.done && !c.args {
                out.push(Event::ToolCallArgs {
                    index,
                    fragment: "{}".into(),
                });
            }
            c.done = true;
        }
        out.push(Event::Stop(if self.calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        }));
    }

    fn fail(&mut self, status: u16, message: String, out: &mut Vec<Event>) {
        self.failed = true;
        out.push(Event::Error { status, message });
    }

    fn event(
        &mut self,
        kind: &str,
        p: &Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        match kind {
            "assistantResponseEvent" => {
                if let Some(t) = string(p, "content")?.filter(|t| !t.is_empty()) {
                    out.push(Event::Text(t.to_owned()));
                }
            }
            "toolUseEvent" => self.tool_use(p, out)?,
            "reasoningContentEvent" => {
                if let Some(t) = string(p, "text")?.filter(|t| !t.is_empty()) {
                    out.push(Event::Reasoning(t.to_owned()));
                }
                if let Some(s) = string(p, "signature")?.filter(|s| !s.is_empty()) {
                    out.push(Event::ReasoningSignature(s.to_owned()));
                }
                if p.contains_key("redactedContent") {
                    tracing::debug!("kiro redacted reasoning dropped");
                }
            }
            "metadataEvent" => {
                if let Some(Value::Object(u)) = p.get("tokenUsage") {
                    out.push(Event::Usage(usage(u)));
                }
            }
            "invalidStateEvent" => {
                tracing::warn!(event = ?p, "kiro reported an invalid state; the stream goes on");
            }
            other => tracing::debug!(event = other, "kiro stream event dropped"),
        }
        Ok(())
    }

    fn tool_use(
        &mut self,
        p: &Map<String, Value>,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let Some(id) = string(p, "toolUseId")? else {
            return Err(TranslateError::Upstream(
                "a toolUseEvent without a toolUseId".into(),
            ));
        };
        let index = match self.calls.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
                let Some(name) = string(p, "name")?.filter(|n| !n.is_empty()) else {
                    return Err(TranslateError::Upstream(format!(
                        "tool call {id} starts without a name"
                    )));
                };
                self.calls.push(Call {
                    id: id.to_owned(),
                    args: false,
                    done: false,
                });
                out.push(Event::ToolCallStart {
                    index: self.calls.len() - 1,
                    id: id.to_owned(),
                    name: name.to_owned(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[index];
        if call.done {
            tracing::debug!(
                call = id,
                "a repeated event of an ended kiro tool call ignored"
            );
            return Ok(());
        }
        let fragment = match p.get("input") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        if !fragment.is_empty() {
            call.args = true;
            out.push(Event::ToolCallArgs { index, fragment });
        }
        if p.get("stop").and_then(Value::as_bool) == Some(true) {
            if !call.args {
                out.push(Event::ToolCallArgs {
                    index,
                    fragment: "{}".into(),
                });
                call.args = true;
            }
            call.done = true;
        }
        Ok(())
    }
}

/// The payload as a JSON object (an empty payload: no members), unwrapped from an object
/// named for the event.
fn payload(m: &Message, kind: &str) -> Result<Map<String, Value>, TranslateError> {
    if m.payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_slice(&m.payload).map_err(|e| {
        TranslateError::Upstream(format!("the payload of a kiro {kind} is not JSON: {e}"))
    })?;
    let Value::Object(mut map) = v else {
        return Err(TranslateError::Upstream(format!(
            "the payload of a kiro {kind} is not an object"
        )));
    };
    if map.len() == 1
        && let Some(Value::Object(inner)) = map.remove(kind)
    {
        return Ok(inner);
    }
    Ok(map)
}

/// A string member (absent or null: `None`).
fn string<'a>(p: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, TranslateError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TranslateError::Upstream(format!(
            "`{key}` of a kiro event must be a string"
        ))),
    }
}

/// `TokenUsage` of the API's `tokenUsage`.
fn usage(u: &Map<String, Value>) -> TokenUsage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let read = n("cacheReadInputTokens");
    let write = n("cacheWriteInputTokens");
    TokenUsage {
        input: n("uncachedInputTokens")
            .unwrap_or(0)
            .saturating_add(read.unwrap_or(0))
            .saturating_add(write.unwrap_or(0)),
        output: n("outputTokens").unwrap_or(0),
        cached_input: read,
        cache_creation: write,
        reasoning: None,
    }
}

/// The HTTP status an exception of type `kind` would have had: throttling and exhausted
/// quotas (`ThrottlingException`, `ServiceQuotaExceededException`) 429, validation 400
/// (413 for `CONTENT_LENGTH_EXCEEDS_THRESHOLD`), access denied 403, not found 404, conflict
/// 409, unavailable 503, internal errors (`InternalServerException`, the stream's `error`) 500,
/// anything else 502. `kind` may carry a namespace (`com.amazon…#ThrottlingException`).
pub(crate) fn exception_status(kind: &str, p: &Map<String, Value>) -> u16 {
    let name = kind.rsplit('#').next().unwrap_or(kind);
    let has = |s: &str| name.contains(s);
    if has("Throttling") || has("ServiceQuotaExceeded") {
        429
    } else if has("Validation") {
        if p.get("reason").and_then(Value::as_str) == Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD") {
            413
        } else {
            400
        }
    } else if has("AccessDenied") {
        403
    } else if has("ResourceNotFound") {
        404
    } else if has("Conflict") {
        409
    } else if has("ServiceUnavailable") {
        503
    } else if has("InternalServer") || name == "error" {
        500
    } else {
        502
    }
}

/// `<type>: <message> (<reason>)`.
fn describe(kind: &str, p: &Map<String, Value>) -> String {
    let text = |k: &str| p.get(k).and_then(Value::as_str);
    let message = text("message").or_else(|| text("Message")).unwrap_or("");
    let mut s = format!("{kind}: {message}");
    if let Some(reason) = text("reason") {
        s.push_str(&format!(" ({reason})"));
    }
    s
}

/// Every event of a whole event-stream body (its end included).
pub fn decode_events(body: &[u8]) -> Result<Vec<Event>, TranslateError> {
    let mut d = StreamDecoder::default();
    let mut out = Vec::new();
    d.bytes(body, &mut out)?;
    d.finish(&mut out);
    Ok(out)
}

/// Reads a whole (buffered) Kiro answer. An exception in it is an upstream error (502): the
/// caller wanting its status collects [`decode_events`] itself ([`crate::translate::collect`]).
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    Collector::collect(decode_events(body)?)
        .map_err(|f| TranslateError::Upstream(format!("{} (status {})", f.message, f.status)))
}
