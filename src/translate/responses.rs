//! The OpenAI Responses API codec (`POST /v1/responses`, what Codex CLI and the `openai` SDK's
//! `client.responses.*` speak): requests here, whole answers in [`answer`], streams in
//! [`stream`].
//!
//! The Responses API is item-based: a request's `input` is a list of items (messages, function
//! calls, their outputs, reasoning), an answer's `output` is another. Consecutive items of one
//! side merge into one canonical message (a reasoning item, the assistant's text and its
//! function calls become one assistant message; function call outputs and the user text after
//! them one user message). `instructions` is the first system block, then `system`/`developer`
//! messages in their order (wherever they stand in `input`).
//!
//! What does not translate, caller side (decoding a request):
//!
//! | field | treatment |
//! |---|---|
//! | `previous_response_id`, `conversation`, `input[].type: item_reference` | refused: needs a backend that stores responses |
//! | `background: true`, `prompt` (stored template), `top_logprobs` > 0 | refused |
//! | `input_image.file_id`, `input_file`, `input_audio` content | refused: no file store on the other side |
//! | `tool_choice` naming a hosted tool | refused |
//! | hosted tools (`web_search*`, `file_search`, `code_interpreter`, `image_generation`, `computer_use_preview`, `mcp`, `local_shell`) | dropped: the model is not offered them |
//! | hosted tool call records in `input` (`web_search_call`, `mcp_call`, `computer_call*`, …) | dropped |
//! | `local_shell_call` / `local_shell_call_output` | kept as a call of a function `local_shell` (arguments: the action) and its result |
//! | `store`, `include`, `metadata`, `prompt_cache_key`, `service_tier`, `truncation`, `text.verbosity`, `stream_options`, `max_tool_calls`, `input_image.detail`, `background: false`, unknown fields | dropped (debug log) |
//! | `safety_identifier` (else `user`) | → `Request::user` |
//! | `tool_choice: {type: allowed_tools}` | the tools list is cut to the allowed ones, its `mode` becomes the choice |
//! | `tools[].type: custom` | a freeform tool: one string parameter `input`, its grammar in the parameter's description |
//!
//! Backend side (encoding a request): stop sequences are refused (the dialect has none);
//! `top_k`, `seed` and the penalties are dropped (debug); a tool result's error flag is dropped
//! (the dialect has none); `store: false` is always written, with `include:
//! ["reasoning.encrypted_content"]` when reasoning is configured.

mod answer;
mod encode;
mod stream;

pub use answer::{decode_response, encode_response};
pub use encode::encode_request;
pub(crate) use encode::request_body;
pub use stream::{StreamDecoder, StreamEncoder};

use serde_json::{Value, json};

use super::TranslateError;
use super::fields::{Fields, parse, unsupported};
use super::model::{
    FREEFORM_INPUT, Image, Message, Part, Reasoning, ReasoningConfig, Request, ResponseFormat,
    Role, Tool, ToolCall, ToolChoice, ToolResult,
};

/// The function a `local_shell_call` item becomes.
const LOCAL_SHELL: &str = "local_shell";

/// The description of a freeform tool's `input` when its format is plain text.
const FREEFORM_TEXT: &str = "The tool's input, as plain text.";

/// How a freeform tool's grammar is told to a model that sees it as a function:
/// `<GRAMMAR_HEAD><syntax><GRAMMAR_TAIL><definition>`.
const GRAMMAR_HEAD: &str = "The input must match this ";
const GRAMMAR_TAIL: &str = " grammar:\n";

/// Appends `part` to the last message when it has `role`, else starts a message.
fn push(messages: &mut Vec<Message>, role: Role, part: Part) {
    match messages.last_mut() {
        Some(m) if m.role == role => m.content.push(part),
        _ => messages.push(Message {
            role,
            content: vec![part],
        }),
    }
}

/// Reads a caller's `POST /v1/responses` body.
pub fn decode_request(body: &[u8]) -> Result<Request, TranslateError> {
    let value = parse(body, "the request body", TranslateError::Invalid)?;
    let o = Fields::of(&value, "", TranslateError::Invalid)?;
    check_fields(&o)?;
    let mut req = Request {
        model: o.str("model")?.unwrap_or_default().to_owned(),
        stream: o.bool("stream")?.unwrap_or(false),
        parallel_tool_calls: o.bool("parallel_tool_calls")?,
        max_tokens: o.u64("max_output_tokens")?,
        temperature: o.f64("temperature")?,
        top_p: o.f64("top_p")?,
        user: o
            .str("safety_identifier")?
            .or(o.str("user")?)
            .map(str::to_owned),
        ..Default::default()
    };
    if let Some(instructions) = o.str("instructions")?.filter(|s| !s.is_empty()) {
        req.system.push(instructions.to_owned());
    }
    match o.get("input") {
        None => {}
        Some(Value::String(text)) => push(&mut req.messages, Role::User, Part::Text(text.clone())),
        Some(Value::Array(_)) => {
            for item in o.items("input")? {
                read_input_item(&item, &mut req)?;
            }
        }
        Some(_) => return Err(o.wrong("input", "a string or an array of items")),
    }
    read_tools(&o, &mut req)?;
    if let Some(text) = o.obj("text")? {
        req.response_format = text.obj("format")?.map(|f| read_format(&f)).transpose()?;
        if text.get("verbosity").is_some() {
            tracing::debug!("text.verbosity dropped: the backend's dialect has no such setting");
        }
    }
    if let Some(r) = o.obj("reasoning")? {
        let effort = r.str("effort")?.map(str::to_owned);
        let summary = r.str("summary")?.or(r.str("generate_summary")?);
        let include = summary.is_some_and(|s| s != "none");
        if effort.is_some() || include {
            req.reasoning = Some(ReasoningConfig {
                effort,
                budget_tokens: None,
                include,
            });
        }
    }
    Ok(req)
}

/// Refuses the fields whose loss would change the answer; logs the dropped ones.
fn check_fields(o: &Fields) -> Result<(), TranslateError> {
    const STORED: &str = "it needs a backend that stores responses (an OpenAI backend)";
    for (key, value) in o.map {
        match key.as_str() {
            _ if value.is_null() => {}
            "model"
            | "input"
            | "instructions"
            | "tools"
            | "tool_choice"
            | "parallel_tool_calls"
            | "max_output_tokens"
            | "temperature"
            | "top_p"
            | "text"
            | "reasoning"
            | "stream"
            | "user"
            | "safety_identifier" => {}
            "previous_response_id" | "conversation" => return Err(unsupported(key, STORED)),
            "background" if value.as_bool() == Some(true) => {
                return Err(unsupported(
                    key,
                    "a translated answer cannot run in the background",
                ));
            }
            "prompt" => {
                return Err(unsupported(
                    key,
                    "a stored prompt template lives with OpenAI",
                ));
            }
            "top_logprobs" if value.as_u64() != Some(0) => {
                return Err(unsupported(
                    key,
                    "the backend's dialect has no log probabilities",
                ));
            }
            "store" => tracing::debug!("store dropped: a translated answer is never stored"),
            _ => tracing::debug!(field = %key, "dropped: the backend's dialect has no such field"),
        }
    }
    Ok(())
}

/// One `input` item into `req`.
fn read_input_item(it: &Fields, req: &mut Request) -> Result<(), TranslateError> {
    match it.str("type")?.unwrap_or("message") {
        "message" => read_message(it, req),
        "reasoning" => {
            let r = read_reasoning(it)?;
            push(&mut req.messages, Role::Assistant, Part::Reasoning(r));
            Ok(())
        }
        "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
            let result = ToolResult {
                call_id: it.req_str("call_id")?.to_owned(),
                name: None,
                content: read_tool_output(it)?,
                is_error: false,
            };
            push(&mut req.messages, Role::User, Part::ToolResult(result));
            Ok(())
        }
        "item_reference" => Err(unsupported(
            &it.path("type: item_reference"),
            "it needs a backend that stores responses (an OpenAI backend)",
        )),
        kind => match read_call(it, kind)? {
            Some(call) => {
                push(&mut req.messages, Role::Assistant, Part::ToolCall(call));
                Ok(())
            }
            None if is_hosted_record(kind) => {
                tracing::debug!(item = kind, "hosted tool record dropped from the input");
                Ok(())
            }
            None => Err(unsupported(
                &format!("{} of type {kind}", it.at()),
                "the backend's dialect has no such item",
            )),
        },
    }
}

/// Items recording a hosted tool's work (the backend cannot run those tools).
fn is_hosted_record(kind: &str) -> bool {
    kind.ends_with("_search_call")
        || kind.starts_with("mcp_")
        || kind.starts_with("computer_call")
        || matches!(kind, "image_generation_call" | "code_interpreter_call")
}

/// A `message` item: system text, or a user or assistant turn.
fn read_message(it: &Fields, req: &mut Request) -> Result<(), TranslateError> {
    let role = match it.req_str("role")? {
        "system" | "developer" => {
            for part in read_content(it)? {
                match part {
                    Part::Text(text) => req.system.push(text),
                    _ => return Err(unsupported(&it.path("content"), "system text only")),
                }
            }
            return Ok(());
        }
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return Err(it.wrong("role", "user, assistant, system or developer")),
    };
    for part in read_content(it)? {
        push(&mut req.messages, role, part);
    }
    Ok(())
}

/// A message's `content`: a string, or text, refusal and image parts.
fn read_content(it: &Fields) -> Result<Vec<Part>, TranslateError> {
    match it.get("content") {
        Some(Value::String(text)) => Ok(vec![Part::Text(text.clone())]),
        Some(Value::Array(_)) => it.items("content")?.iter().map(read_part).collect(),
        _ => Err(it.wrong("content", "a string or an array of content parts")),
    }
}

/// A function call output's `output`: a string, or text and image parts.
fn read_tool_output(it: &Fields) -> Result<Vec<Part>, TranslateError> {
    match it.get("output") {
        Some(Value::String(text)) => Ok(vec![Part::Text(text.clone())]),
        Some(Value::Array(_)) => it.items("output")?.iter().map(read_part).collect(),
        _ => Err(it.wrong("output", "a string or an array of content parts")),
    }
}

fn read_part(p: &Fields) -> Result<Part, TranslateError> {
    match p.req_str("type")? {
        "input_text" | "output_text" => Ok(Part::Text(p.req_str("text")?.to_owned())),
        "refusal" => Ok(Part::Text(p.req_str("refusal")?.to_owned())),
        "input_image" => read_image(p).map(Part::Image),
        kind @ ("input_file" | "input_audio") => Err(unsupported(
            &format!("{} ({kind})", p.at()),
            "files and audio have no equivalent in the backend's dialect",
        )),
        kind => Err((p.blame())(format!(
            "`{}` has an unknown content type `{kind}`",
            p.at()
        ))),
    }
}

fn read_image(p: &Fields) -> Result<Image, TranslateError> {
    if p.get("file_id").is_some() {
        return Err(unsupported(
            &p.path("file_id"),
            "an uploaded file lives with OpenAI",
        ));
    }
    if p.str("detail")?.is_some_and(|d| d != "auto") {
        tracing::debug!("input_image.detail dropped: the backend's dialect has no such setting");
    }
    p.need("image_url", p.image("image_url")?)
}

/// A call item (`function_call`, `custom_tool_call`, `local_shell_call`); `None` for other
/// kinds.
fn read_call(it: &Fields, kind: &str) -> Result<Option<ToolCall>, TranslateError> {
    let (name, arguments) = match kind {
        "function_call" => {
            let args = it.str("arguments")?.filter(|a| !a.is_empty());
            (it.req_str("name")?, args.unwrap_or("{}").to_owned())
        }
        "custom_tool_call" => (it.req_str("name")?, freeform_args(it.req_str("input")?)),
        "local_shell_call" => {
            let action = it.get("action").cloned().unwrap_or_else(|| json!({}));
            (LOCAL_SHELL, action.to_string())
        }
        _ => return Ok(None),
    };
    Ok(Some(ToolCall {
        id: it.req_str("call_id")?.to_owned(),
        name: name.to_owned(),
        arguments,
    }))
}

/// A freeform tool's input as function arguments: `{"input": "<text>"}`.
fn freeform_args(input: &str) -> String {
    json!({ FREEFORM_INPUT: input }).to_string()
}

/// A `reasoning` item: its summaries (else its raw reasoning text) joined by blank lines, and
/// its encrypted content.
fn read_reasoning(it: &Fields) -> Result<Reasoning, TranslateError> {
    let texts = |key: &str| -> Result<Vec<String>, TranslateError> {
        it.items(key)?
            .iter()
            .map(|p| Ok(p.req_str("text")?.to_owned()))
            .collect()
    };
    let mut parts = texts("summary")?;
    if parts.is_empty() {
        parts = texts("content")?;
    }
    Ok(Reasoning {
        text: parts.join("\n\n"),
        signature: None,
        encrypted: it.str("encrypted_content")?.map(str::to_owned),
    })
}

/// `tools` and `tool_choice`.
fn read_tools(o: &Fields, req: &mut Request) -> Result<(), TranslateError> {
    for t in o.items("tools")? {
        match t.req_str("type")? {
            "function" => req.tools.push(Tool {
                name: t.req_str("name")?.to_owned(),
                description: t.str("description")?.map(str::to_owned),
                parameters: t
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: t.bool("strict")?,
                freeform: false,
            }),
            "custom" => req.tools.push(read_custom_tool(&t)?),
            hosted => tracing::debug!(
                tool = hosted,
                "hosted tool dropped: the backend cannot run it"
            ),
        }
    }
    req.tool_choice = match o.get("tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(o.wrong("tool_choice", "auto, none, required or an object")),
        }),
        Some(_) => o
            .obj("tool_choice")?
            .map(|c| read_choice(&c, req))
            .transpose()?,
    };
    Ok(())
}

/// A `custom` (freeform) tool as a function with one string parameter.
fn read_custom_tool(t: &Fields) -> Result<Tool, TranslateError> {
    let note = match t.obj("format")? {
        Some(f) if f.str("type")? == Some("grammar") => format!(
            "{GRAMMAR_HEAD}{}{GRAMMAR_TAIL}{}",
            f.req_str("syntax")?,
            f.req_str("definition")?
        ),
        _ => FREEFORM_TEXT.to_owned(),
    };
    Ok(Tool {
        name: t.req_str("name")?.to_owned(),
        description: t.str("description")?.map(str::to_owned),
        parameters: json!({
            "type": "object",
            "properties": { FREEFORM_INPUT: { "type": "string", "description": note } },
            "required": [FREEFORM_INPUT],
        }),
        strict: None,
        freeform: true,
    })
}

/// An object `tool_choice`.
fn read_choice(c: &Fields, req: &mut Request) -> Result<ToolChoice, TranslateError> {
    match c.req_str("type")? {
        "function" | "custom" => Ok(ToolChoice::Function(c.req_str("name")?.to_owned())),
        "allowed_tools" => {
            let mut allowed = Vec::new();
            for t in c.items("tools")? {
                if let Some(name) = t.str("name")? {
                    allowed.push(name.to_owned());
                }
            }
            req.tools.retain(|t| allowed.contains(&t.name));
            match c.str("mode")?.unwrap_or("auto") {
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                _ => Err(c.wrong("mode", "auto or required")),
            }
        }
        hosted => Err(unsupported(
            &format!("tool_choice {hosted}"),
            "hosted tools are not offered by the backend",
        )),
    }
}

/// `text.format`.
fn read_format(f: &Fields) -> Result<ResponseFormat, TranslateError> {
    match f.req_str("type")? {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => Ok(ResponseFormat::JsonSchema {
            name: f.str("name")?.unwrap_or("response").to_owned(),
            schema: f
                .get("schema")
                .cloned()
                .ok_or_else(|| f.wrong("schema", "a JSON Schema"))?,
            strict: f.bool("strict")?,
        }),
        _ => Err(f.wrong("type", "text, json_object or json_schema")),
    }
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
