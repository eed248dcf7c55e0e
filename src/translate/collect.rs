//! A whole answer from a stream's events: for backends that only stream (the Codex and Kiro
//! connectors) answering a caller that asked for one JSON answer. The events are read in order
//! into one [`Response`]: consecutive text (and reasoning) deltas join, tool calls collect their
//! argument fragments by index, the last usage report and stop reason win, and an error event
//! fails the answer.

use super::model::{Event, Part, Reasoning, Response, StopReason, ToolCall};

/// An error the upstream reported inside the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFailure {
    /// The HTTP status it stands for.
    pub status: u16,
    /// The upstream's words.
    pub message: String,
}

/// Builds a [`Response`] from stream events.
#[derive(Debug, Default)]
pub struct Collector {
    response: Response,
    /// Where each tool call (by its stream index) sits in `response.content`.
    calls: Vec<(usize, usize)>,
    stopped: bool,
    failed: Option<StreamFailure>,
}

impl Collector {
    /// The answer `events` tell, or the error one of them reports.
    pub fn collect(events: impl IntoIterator<Item = Event>) -> Result<Response, StreamFailure> {
        let mut c = Collector::default();
        for e in events {
            c.event(e);
        }
        c.finish()
    }

    /// Reads one event.
    pub fn event(&mut self, event: Event) {
        if self.failed.is_some() {
            return;
        }
        let content = &mut self.response.content;
        match event {
            Event::Start { id, model } => {
                self.response.id = id;
                self.response.model = model;
            }
            Event::Text(text) => match content.last_mut() {
                Some(Part::Text(t)) => t.push_str(&text),
                _ => content.push(Part::Text(text)),
            },
            Event::Reasoning(text) => match content.last_mut() {
                Some(Part::Reasoning(r)) if r.signature.is_none() => r.text.push_str(&text),
                _ => content.push(Part::Reasoning(Reasoning {
                    text,
                    signature: None,
                    encrypted: None,
                })),
            },
            Event::ReasoningSignature(signature) => match content.last_mut() {
                Some(Part::Reasoning(r)) => r.signature = Some(signature),
                _ => content.push(Part::Reasoning(Reasoning {
                    text: String::new(),
                    signature: Some(signature),
                    encrypted: None,
                })),
            },
            Event::ToolCallStart { index, id, name } => {
                self.calls.push((index, content.len()));
                content.push(Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                }));
            }
            Event::ToolCallArgs { index, fragment } => {
                let at = self
                    .calls
                    .iter()
                    .rev()
                    .find(|(i, _)| *i == index)
                    .map(|(_, at)| *at);
                if let Some(Part::ToolCall(call)) = at.and_then(|at| content.get_mut(at)) {
                    call.arguments.push_str(&fragment);
                }
            }
            Event::Usage(usage) => self.response.usage = usage,
            Event::Stop(stop) => {
                self.response.stop = stop;
                self.stopped = true;
            }
            Event::Error { status, message } => {
                self.failed = Some(StreamFailure { status, message })
            }
        }
    }

    /// The answer, once the stream ended; an error when the stream reported one.
    pub fn finish(mut self) -> Result<Response, StreamFailure> {
        if let Some(failure) = self.failed {
            return Err(failure);
        }
        for part in &mut self.response.content {
            if let Part::ToolCall(call) = part
                && call.arguments.is_empty()
            {
                call.arguments.push_str("{}");
            }
        }
        if !self.stopped
            && self
                .response
                .content
                .iter()
                .any(|p| matches!(p, Part::ToolCall(_)))
        {
            self.response.stop = StopReason::ToolUse;
        }
        Ok(self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::model::TokenUsage;

    #[test]
    fn deltas_join_and_calls_gather_their_arguments() {
        let mut c = Collector::default();
        for e in [
            Event::Start {
                id: "r1".into(),
                model: "m".into(),
            },
            Event::Reasoning("think".into()),
            Event::Reasoning("ing".into()),
            Event::Text("Hel".into()),
            Event::Text("lo".into()),
            Event::ToolCallStart {
                index: 0,
                id: "c0".into(),
                name: "f".into(),
            },
            Event::ToolCallStart {
                index: 1,
                id: "c1".into(),
                name: "g".into(),
            },
            Event::ToolCallArgs {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            Event::ToolCallArgs {
                index: 1,
                fragment: "{}".into(),
            },
            Event::ToolCallArgs {
                index: 0,
                fragment: "1}".into(),
            },
            Event::Usage(TokenUsage {
                input: 3,
                output: 1,
                ..Default::default()
            }),
            Event::Usage(TokenUsage {
                input: 3,
                output: 9,
                ..Default::default()
            }),
        ] {
            c.event(e);
        }
        let r = c.finish().unwrap();
        assert_eq!(r.id, "r1");
        assert_eq!(r.model, "m");
        assert_eq!(r.usage.output, 9);
        assert_eq!(r.stop, StopReason::ToolUse, "calls without a stop event");
        assert_eq!(r.content.len(), 4);
        assert!(matches!(&r.content[0], Part::Reasoning(x) if x.text == "thinking"));
        assert!(matches!(&r.content[1], Part::Text(t) if t == "Hello"));
        assert!(matches!(&r.content[2], Part::ToolCall(x) if x.arguments == "{\"a\":1}"));
        assert!(matches!(&r.content[3], Part::ToolCall(x) if x.name == "g" && x.arguments == "{}"));
    }

    #[test]
    fn an_error_event_fails_the_answer_and_a_stop_is_kept() {
        let mut c = Collector::default();
        c.event(Event::Text("partial".into()));
        c.event(Event::Error {
            status: 429,
            message: "slow down".into(),
        });
        let e = c.finish().unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (429, "slow down"));

        let mut c = Collector::default();
        c.event(Event::Text("x".into()));
        c.event(Event::Stop(StopReason::MaxTokens));
        assert_eq!(c.finish().unwrap().stop, StopReason::MaxTokens);
    }
}
