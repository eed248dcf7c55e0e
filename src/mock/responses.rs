//! OpenAI Responses API: `POST /v1/responses`, as a JSON `response` object
//! or as the official sequence of typed SSE events. The output is a `message`, or
//! `function_call` / `custom_tool_call` items (`tools.rs` decides), after a `reasoning` item
//! with a summary when `x-mock: reasoning=` asks.
//!
//! Bodies are borrowed `Serialize` structs rather than `serde_json::Value`s:
//! the stream repeats the response object three times and building maps
//! dominated the cost.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::errors::Proto;
use super::openai::token_count;
use super::stream::Script;
use super::tools::{self, Answer, Call, Dialect};
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

/// One item of the response's `output`.
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Message(MessageItem<'a>),
    Call(CallItem<'a>),
    Reasoning(ReasoningItem<'a>),
}

/// A `function_call` (`arguments`) or `custom_tool_call` (`input`) item.
#[derive(Serialize)]
struct CallItem<'a> {
    id: &'a str,
    r#type: &'static str,
    status: &'static str,
    call_id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
}

/// The ids of one call: the item's (`fc_…`/`ctc_…`) and the call's (`call_…`).
struct CallIds {
    item: String,
    call: String,
}

fn call_item<'a>(call: &'a Call, ids: &'a CallIds, done: bool) -> CallItem<'a> {
    let text = if done { call.input.as_str() } else { "" };
    CallItem {
        id: &ids.item,
        r#type: if call.freeform {
            "custom_tool_call"
        } else {
            "function_call"
        },
        status: if done { "completed" } else { "in_progress" },
        call_id: &ids.call,
        name: &call.name,
        arguments: (!call.freeform).then_some(text),
        input: call.freeform.then_some(text),
    }
}

#[derive(Serialize)]
struct ReasoningItem<'a> {
    id: &'a str,
    r#type: &'static str,
    summary: &'a [SummaryText<'a>],
}

#[derive(Serialize)]
struct SummaryText<'a> {
    r#type: &'static str,
    text: &'a str,
}

fn summary_text(text: &str) -> SummaryText<'_> {
    SummaryText {
        r#type: "summary_text",
        text,
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
    output: &'a [Item<'a>],
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
    item: Item<'a>,
}

/// Fields locating an event in an output item: `item_id`, `output_index`.
#[derive(Serialize)]
struct Located<'a, T> {
    item_id: &'a str,
    output_index: u32,
    #[serde(flatten)]
    fields: T,
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
    let answer = tools::answer(req, Dialect::Responses, &d)?;
    let id = format!("resp_mock_{}", req.seq);
    let item_id = format!("msg_mock_{}", req.seq);
    let reasoning_id = format!("rs_mock_{}", req.seq);
    let reasoning = d.reasoning.as_deref();
    let reasoning_tokens = reasoning.map_or(0, token_count);
    let input = req.prompt_tokens();
    let output = d.chunks as u64 + reasoning_tokens;
    let (text, calls): (&str, &[Call]) = match &answer {
        Answer::Text(text) => (text, &[]),
        Answer::Calls(calls) => ("", calls),
    };
    let call_ids: Vec<CallIds> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| CallIds {
            item: tools::id(if c.freeform { "ctc_" } else { "fc_" }, req.seq, i),
            call: tools::id("call_", req.seq, i),
        })
        .collect();
    let full_text = [text_part(text)];
    let full_summary = reasoning.map(|r| [summary_text(r)]);
    let mut completed_output: Vec<Item<'_>> = Vec::new();
    if let Some(summary) = &full_summary {
        completed_output.push(reasoning_item(&reasoning_id, summary));
    }
    if calls.is_empty() {
        completed_output.push(Item::Message(message(&item_id, "completed", &full_text)));
    }
    for (call, ids) in calls.iter().zip(&call_ids) {
        completed_output.push(Item::Call(call_item(call, ids, true)));
    }
    let usage = Usage {
        input_tokens: input,
        input_tokens_details: InputDetails {
            cached_tokens: 0,
            cache_write_tokens: 0,
        },
        output_tokens: output,
        output_tokens_details: OutputDetails { reasoning_tokens },
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

    let mut st = Stream {
        s: Script::new(&d),
        seq: 0,
        chunks: d.chunks,
    };
    for kind in ["response.created", "response.in_progress"] {
        let response = &response;
        st.emit(kind, ResponseField { response });
    }
    let mut index = 0;
    if let Some(r) = reasoning {
        st.reasoning(index, &reasoning_id, r);
        index += 1;
    }
    if calls.is_empty() {
        st.message(index, &item_id, text);
    }
    for (call, ids) in calls.iter().zip(&call_ids) {
        st.call(index, call, ids);
        index += 1;
    }
    response.status = "completed";
    response.completed_at = Some(CREATED);
    response.output = &completed_output;
    response.usage = Some(&usage);
    let response = &response;
    st.emit("response.completed", ResponseField { response });
    Ok(st.s.into_response(&req.stats, "text/event-stream"))
}

fn reasoning_item<'a>(id: &'a str, summary: &'a [SummaryText<'a>]) -> Item<'a> {
    Item::Reasoning(ReasoningItem {
        id,
        r#type: "reasoning",
        summary,
    })
}

/// A response's event stream under construction.
struct Stream {
    s: Script,
    /// The next event's `sequence_number`.
    seq: u64,
    /// How many pieces a streamed text is cut into.
    chunks: usize,
}

impl Stream {
    /// Appends one numbered event of type `kind`.
    fn emit<T: Serialize>(&mut self, kind: &str, fields: T) {
        let event = Event {
            r#type: kind,
            sequence_number: self.seq,
            fields,
        };
        self.seq += 1;
        self.s.sse(Some(kind), &event);
    }

    /// `response.output_item.added` or `.done` (`done`) of `item` at `output_index`.
    fn item(&mut self, done: bool, output_index: u32, item: Item<'_>) {
        let kind = if done {
            "response.output_item.done"
        } else {
            "response.output_item.added"
        };
        self.emit(kind, ItemField { output_index, item });
    }

    /// Emits `text` in pieces as events `kind` built by `fields` (each a scripted piece).
    fn pieces<'t, T: Serialize>(
        &mut self,
        kind: &str,
        text: &'t str,
        fields: impl Fn(&'t str) -> T,
    ) {
        for piece in pieces(text, self.chunks) {
            let fields = fields(piece);
            self.s.piece(|s| {
                let event = Event {
                    r#type: kind,
                    sequence_number: self.seq,
                    fields,
                };
                s.sse(Some(kind), &event);
            });
            self.seq += 1;
        }
    }

    /// The assistant message item with its one `output_text` part.
    fn message(&mut self, index: u32, item_id: &str, text: &str) {
        self.item(
            false,
            index,
            Item::Message(message(item_id, "in_progress", &[])),
        );
        let part = |text| Part {
            part: text_part(text),
        };
        self.emit("response.content_part.added", at(item_id, index, part("")));
        self.pieces("response.output_text.delta", text, |delta| {
            let delta = Delta {
                delta,
                logprobs: &[],
            };
            at(item_id, index, delta)
        });
        let done = TextDone {
            text,
            logprobs: &[],
        };
        self.emit("response.output_text.done", at(item_id, index, done));
        self.emit("response.content_part.done", at(item_id, index, part(text)));
        let full = [text_part(text)];
        self.item(
            true,
            index,
            Item::Message(message(item_id, "completed", &full)),
        );
    }

    /// A `function_call` item with its argument deltas, or a `custom_tool_call` item with its
    /// input deltas.
    fn call(&mut self, index: u32, call: &Call, ids: &CallIds) {
        self.item(false, index, Item::Call(call_item(call, ids, false)));
        let (kind, done) = if call.freeform {
            (
                "response.custom_tool_call_input",
                json!({"input": call.input}),
            )
        } else {
            (
                "response.function_call_arguments",
                json!({"arguments": call.input}),
            )
        };
        let at = |fields| Located {
            item_id: &ids.item,
            output_index: index,
            fields,
        };
        let delta_kind = format!("{kind}.delta");
        self.pieces(&delta_kind, &call.input, |d| at(json!({"delta": d})));
        self.emit(&format!("{kind}.done"), at(done));
        self.item(true, index, Item::Call(call_item(call, ids, true)));
    }

    /// A `reasoning` item whose one summary part streams `text`.
    fn reasoning(&mut self, index: u32, item_id: &str, text: &str) {
        self.item(false, index, reasoning_item(item_id, &[]));
        let at = |fields: Value| Located {
            item_id,
            output_index: index,
            fields: SummaryIndex {
                summary_index: 0,
                fields,
            },
        };
        let part = |text| json!({"part": summary_text(text)});
        self.emit("response.reasoning_summary_part.added", at(part("")));
        let delta_kind = "response.reasoning_summary_text.delta";
        self.pieces(delta_kind, text, |d| at(json!({"delta": d})));
        self.emit(
            "response.reasoning_summary_text.done",
            at(json!({"text": text})),
        );
        self.emit("response.reasoning_summary_part.done", at(part(text)));
        let full = [summary_text(text)];
        self.item(true, index, reasoning_item(item_id, &full));
    }
}

/// A reasoning summary event's `summary_index` before its own fields.
#[derive(Serialize)]
struct SummaryIndex<T> {
    summary_index: u32,
    #[serde(flatten)]
    fields: T,
}

/// Locates `fields` in the single content part of output item `output_index`.
fn at<T>(item_id: &str, output_index: u32, fields: T) -> PartField<'_, T> {
    PartField {
        item_id,
        output_index,
        content_index: 0,
        fields,
    }
}
