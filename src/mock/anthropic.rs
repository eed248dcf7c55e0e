//! Anthropic endpoints: `POST /v1/messages` (JSON and SSE) and
//! `POST /v1/messages/count_tokens`; also the Anthropic-shaped model list.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::errors::Proto;
use super::stream::Script;
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

#[derive(Serialize)]
struct TextBlock<'a> {
    r#type: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    r#type: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [TextBlock<'a>],
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
        index: u32,
        content_block: TextBlock<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: TextBlock<'a>,
    },
    ContentBlockStop {
        index: u32,
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
    let model = body.model.as_deref().unwrap_or("mock-claude");
    let id = format!("msg_mock_{}", req.seq);
    let input = req.prompt_tokens();
    let output = d.chunks as u64;
    let usage = |output_tokens| Usage {
        input_tokens: input,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens,
    };
    let text = |text| TextBlock {
        r#type: "text",
        text,
    };
    let full = [text(d.text())];
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
        let msg = message(&full, Some("end_turn"), usage(output));
        return Ok(Json(&msg).into_response());
    }
    let mut s = Script::new(&d);
    let message = message(&[], None, usage(1));
    emit(&mut s, &StreamEvent::MessageStart { message });
    let content_block = text("");
    emit(
        &mut s,
        &StreamEvent::ContentBlockStart {
            index: 0,
            content_block,
        },
    );
    emit(&mut s, &StreamEvent::Ping);
    for piece in pieces(d.text(), d.chunks) {
        s.piece(|s| {
            let delta = TextBlock {
                r#type: "text_delta",
                text: piece,
            };
            emit(s, &StreamEvent::ContentBlockDelta { index: 0, delta });
        });
    }
    emit(&mut s, &StreamEvent::ContentBlockStop { index: 0 });
    let delta = StopDelta {
        stop_reason: "end_turn",
        stop_sequence: (),
    };
    let usage = OutputUsage {
        output_tokens: output,
    };
    emit(&mut s, &StreamEvent::MessageDelta { delta, usage });
    emit(&mut s, &StreamEvent::MessageStop);
    Ok(s.into_response(&req.stats, "text/event-stream"))
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
