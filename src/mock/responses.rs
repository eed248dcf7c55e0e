//! OpenAI Responses API: `POST /v1/responses`, as a JSON `response` object
//! or as the official sequence of typed SSE events.
//!
//! Bodies are borrowed `Serialize` structs rather than `serde_json::Value`s:
//! the stream repeats the response object three times and building maps
//! dominated the cost.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::errors::Proto;
use super::stream::Script;
use super::{CREATED, MockReq, pieces};

#[derive(Deserialize)]
struct ResponsesRequest<'a> {
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    instructions: Option<&'a RawValue>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

/// The request's metadata echoed back, or `{}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Metadata<'a> {
    Raw(&'a RawValue),
    Empty(Empty),
}

#[derive(Serialize)]
struct Reasoning {
    effort: (),
    summary: (),
}

#[derive(Serialize)]
struct TextFormat {
    format: TextFormatType,
}

#[derive(Serialize)]
struct TextFormatType {
    r#type: &'static str,
}

#[derive(Serialize)]
struct TextPart<'a> {
    r#type: &'static str,
    text: &'a str,
    annotations: &'static [()],
    logprobs: &'static [()],
}

fn text_part(text: &str) -> TextPart<'_> {
    TextPart {
        r#type: "output_text",
        text,
        annotations: &[],
        logprobs: &[],
    }
}

#[derive(Serialize)]
struct MessageItem<'a> {
    id: &'a str,
    r#type: &'static str,
    status: &'static str,
    role: &'static str,
    content: &'a [TextPart<'a>],
}

fn message<'a>(id: &'a str, status: &'static str, content: &'a [TextPart<'a>]) -> MessageItem<'a> {
    MessageItem {
        id,
        r#type: "message",
        status,
        role: "assistant",
        content,
    }
}

#[derive(Serialize)]
struct InputDetails {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<u64>,
    background: bool,
    error: (),
    incomplete_details: (),
    instructions: Option<&'a RawValue>,
    max_output_tokens: Option<u64>,
    model: &'a str,
    output: &'a [MessageItem<'a>],
    parallel_tool_calls: bool,
    previous_response_id: (),
    reasoning: Reasoning,
    service_tier: &'static str,
    store: bool,
    temperature: f64,
    text: TextFormat,
    tool_choice: &'static str,
    tools: &'static [()],
    top_p: f64,
    truncation: &'static str,
    usage: Option<&'a Usage>,
    user: (),
    metadata: Metadata<'a>,
}

/// A stream event: `type` and `sequence_number`, then the event's fields.
#[derive(Serialize)]
struct Event<'a, T> {
    r#type: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct ResponseField<'a> {
    response: &'a ResponseObject<'a>,
}

#[derive(Serialize)]
struct ItemField<'a> {
    output_index: u32,
    item: MessageItem<'a>,
}

/// Fields locating a content part: `item_id`, `output_index`, `content_index`.
#[derive(Serialize)]
struct PartField<'a, T> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct Part<'a> {
    part: TextPart<'a>,
}

#[derive(Serialize)]
struct Delta<'a> {
    delta: &'a str,
    logprobs: &'static [()],
}

#[derive(Serialize)]
struct TextDone<'a> {
    text: &'a str,
    logprobs: &'static [()],
}

/// `POST /v1/responses`.
pub(crate) async fn create(req: MockReq) -> Response {
    match create_inner(&req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn create_inner(req: &MockReq) -> Result<Response, Response> {
    let d = req.prelude(Proto::OpenAi).await?;
    let body: ResponsesRequest<'_> = req.json(Proto::OpenAi)?;
    let id = format!("resp_mock_{}", req.seq);
    let item_id = format!("msg_mock_{}", req.seq);
    let input = req.prompt_tokens();
    let output = d.chunks as u64;
    let text = d.text();
    let full_text = [text_part(text)];
    let completed_output = [message(&item_id, "completed", &full_text)];
    let usage = Usage {
        input_tokens: input,
        input_tokens_details: InputDetails {
            cached_tokens: 0,
            cache_write_tokens: 0,
        },
        output_tokens: output,
        output_tokens_details: OutputDetails {
            reasoning_tokens: 0,
        },
        total_tokens: input + output,
    };
    let mut response = ResponseObject {
        id: &id,
        object: "response",
        created_at: CREATED,
        status: "in_progress",
        completed_at: None,
        background: false,
        error: (),
        incomplete_details: (),
        instructions: body.instructions,
        max_output_tokens: body.max_output_tokens,
        model: body.model.as_deref().unwrap_or("mock-gpt"),
        output: &[],
        parallel_tool_calls: true,
        previous_response_id: (),
        reasoning: Reasoning {
            effort: (),
            summary: (),
        },
        service_tier: "default",
        store: true,
        temperature: body.temperature.unwrap_or(1.0),
        text: TextFormat {
            format: TextFormatType { r#type: "text" },
        },
        tool_choice: "auto",
        tools: &[],
        top_p: body.top_p.unwrap_or(1.0),
        truncation: "disabled",
        usage: None,
        user: (),
        metadata: body
            .metadata
            .map_or(Metadata::Empty(Empty {}), Metadata::Raw),
    };
    if !body.stream.unwrap_or(false) {
        response.status = "completed";
        response.completed_at = Some(CREATED);
        response.output = &completed_output;
        response.usage = Some(&usage);
        return Ok(Json(&response).into_response());
    }

    let mut s = Script::new(&d);
    let seq = &mut 0u64;
    emit(
        &mut s,
        seq,
        "response.created",
        ResponseField {
            response: &response,
        },
    );
    emit(
        &mut s,
        seq,
        "response.in_progress",
        ResponseField {
            response: &response,
        },
    );
    let item = message(&item_id, "in_progress", &[]);
    emit(
        &mut s,
        seq,
        "response.output_item.added",
        ItemField {
            output_index: 0,
            item,
        },
    );
    let part = Part {
        part: text_part(""),
    };
    emit(
        &mut s,
        seq,
        "response.content_part.added",
        at(&item_id, part),
    );
    for piece in pieces(text, d.chunks) {
        s.piece(|s| {
            let delta = Delta {
                delta: piece,
                logprobs: &[],
            };
            emit(s, seq, "response.output_text.delta", at(&item_id, delta));
        });
    }
    let done = TextDone {
        text,
        logprobs: &[],
    };
    emit(&mut s, seq, "response.output_text.done", at(&item_id, done));
    let part = Part {
        part: text_part(text),
    };
    emit(
        &mut s,
        seq,
        "response.content_part.done",
        at(&item_id, part),
    );
    let item = message(&item_id, "completed", &full_text);
    emit(
        &mut s,
        seq,
        "response.output_item.done",
        ItemField {
            output_index: 0,
            item,
        },
    );
    response.status = "completed";
    response.completed_at = Some(CREATED);
    response.output = &completed_output;
    response.usage = Some(&usage);
    emit(
        &mut s,
        seq,
        "response.completed",
        ResponseField {
            response: &response,
        },
    );
    Ok(s.into_response(&req.stats, "text/event-stream"))
}

/// Locates `fields` in the single content part of the single output item.
fn at<T>(item_id: &str, fields: T) -> PartField<'_, T> {
    PartField {
        item_id,
        output_index: 0,
        content_index: 0,
        fields,
    }
}

/// Appends one numbered event of type `kind`.
fn emit<T: Serialize>(s: &mut Script, seq: &mut u64, kind: &str, fields: T) {
    let event = Event {
        r#type: kind,
        sequence_number: *seq,
        fields,
    };
    *seq += 1;
    s.sse(Some(kind), &event);
}
