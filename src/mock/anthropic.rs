//! Anthropic endpoints: `POST /v1/messages` (JSON and SSE: `text`, `tool_use` blocks streamed
//! as `input_json_delta`s, a signed `thinking` block first when `x-mock: reasoning=` asks) and
//! `POST /v1/messages/count_tokens`; also the Anthropic-shaped model list.

use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::Proto;
use super::openai::{fnv1a, token_count};
use super::stream::Script;
use super::tools::{self, Answer, Dialect};
use super::{MockReq, pieces};

/// Model ids of the Anthropic-shaped model list.
const MODELS: [(&str, &str); 2] = [
    ("mock-claude", "Mock Claude"),
    ("mock-claude-haiku", "Mock Claude Haiku"),
];

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
}

/// `POST /v1/messages`.
pub(crate) async fn messages(req: MockReq) -> Response {
    match messages_inner(&req).await {
        Ok(r) | Err(r) => r,
    }
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// A content block, in a message or opening a streamed block.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Map<String, Value>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
}

/// The delta of a `content_block_delta` event.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    r#type: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [Block<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: (),
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

impl StreamEvent<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

fn emit(s: &mut Script, event: &StreamEvent<'_>) {
    s.sse(Some(event.name()), event);
}

async fn messages_inner(req: &MockReq) -> Result<Response, Response> {
    let d = req.prelude(Proto::Anthropic).await?;
    let body: MessagesRequest<'_> = req.json(Proto::Anthropic)?;
    let answer = tools::answer(req, Dialect::Anthropic, &d)?;
    let model = body.model.as_deref().unwrap_or("mock-claude");
    let id = format!("msg_mock_{}", req.seq);
    let input = req.prompt_tokens();
    let reasoning = d.reasoning.as_deref();
    let output = d.chunks as u64 + reasoning.map_or(0, token_count);
    let usage = |output_tokens| Usage {
        input_tokens: input,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens,
    };
    let signature = reasoning.map(|r| signature(req.seq, r));
    let (text, calls) = match &answer {
        Answer::Text(text) => (Some(&**text), &[][..]),
        Answer::Calls(calls) => (d.tool_preamble.as_deref(), &calls[..]),
    };
    let call_ids: Vec<String> = (0..calls.len())
        .map(|i| tools::id("toolu_", req.seq, i))
        .collect();
    let mut full = Vec::new();
    if let (Some(thinking), Some(signature)) = (reasoning, &signature) {
        full.push(Block::Thinking {
            thinking,
            signature,
        });
    }
    full.extend(text.map(|text| Block::Text { text }));
    for (call, id) in calls.iter().zip(&call_ids) {
        full.push(Block::ToolUse {
            id,
            name: &call.name,
            input: &call.args,
        });
    }
    let stop_reason = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let message = |content, stop_reason, usage| Message {
        id: &id,
        r#type: "message",
        role: "assistant",
        model,
        content,
        stop_reason,
        stop_sequence: (),
        usage,
    };
    if !body.stream.unwrap_or(false) {
        let msg = message(&full, Some(stop_reason), usage(output));
        return Ok(Json(&msg).into_response());
    }
    let mut s = Script::new(&d);
    let message = message(&[], None, usage(1));
    emit(&mut s, &StreamEvent::MessageStart { message });
    let empty = Map::new();
    for (index, block) in full.iter().enumerate() {
        // Each block opens empty, then its deltas fill it.
        let (content_block, deltas): (Block<'_>, Vec<Delta<'_>>) = match *block {
            Block::Text { text } => {
                let deltas = pieces(text, d.chunks).map(|text| Delta::Text { text });
                (Block::Text { text: "" }, deltas.collect())
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                let deltas =
                    pieces(thinking, d.chunks).map(|thinking| Delta::Thinking { thinking });
                let mut deltas: Vec<Delta<'_>> = deltas.collect();
                deltas.push(Delta::Signature { signature });
                let start = Block::Thinking {
                    thinking: "",
                    signature: "",
                };
                (start, deltas)
            }
            Block::ToolUse { id, name, .. } => {
                let call = calls.iter().zip(&call_ids).find(|(_, i)| *i == id);
                let input = call.map_or("{}", |(c, _)| c.input.as_str());
                // Anthropic's first fragment of a tool's input is an empty string.
                let fragments = std::iter::once("").chain(pieces(input, d.chunks));
                let deltas = fragments.map(|partial_json| Delta::InputJson { partial_json });
                let start = Block::ToolUse {
                    id,
                    name,
                    input: &empty,
                };
                (start, deltas.collect())
            }
        };
        emit(
            &mut s,
            &StreamEvent::ContentBlockStart {
                index,
                content_block,
            },
        );
        if index == 0 {
            emit(&mut s, &StreamEvent::Ping);
        }
        for delta in deltas {
            s.piece(|s| emit(s, &StreamEvent::ContentBlockDelta { index, delta }));
        }
        emit(&mut s, &StreamEvent::ContentBlockStop { index });
    }
    let delta = StopDelta {
        stop_reason,
        stop_sequence: (),
    };
    let usage = OutputUsage {
        output_tokens: output,
    };
    emit(&mut s, &StreamEvent::MessageDelta { delta, usage });
    emit(&mut s, &StreamEvent::MessageStop);
    Ok(s.into_response(&req.stats, "text/event-stream"))
}

/// The `signature` of a thinking block: base64 text, as opaque as Anthropic's, derived from the
/// request number and the thinking.
fn signature(seq: u64, thinking: &str) -> String {
    let seed = fnv1a(thinking.as_bytes());
    let raw = format!("portcullis-mock:{seq}:{seed:016x}");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// `POST /v1/messages/count_tokens`.
pub(crate) async fn count_tokens(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    if let Err(r) = req.json::<serde::de::IgnoredAny>(Proto::Anthropic) {
        return r;
    }
    Json(json!({"input_tokens": req.prompt_tokens()})).into_response()
}

/// The body of `GET /v1/models` in Anthropic's shape.
pub(crate) fn models_list() -> Value {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, name)| {
            json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-01-01T00:00:00Z"})
        })
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": MODELS[0].0,
        "last_id": MODELS[MODELS.len() - 1].0,
    })
}
