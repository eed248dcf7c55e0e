//! The Kiro codec: Amazon's Kiro IDE asks CodeWhisperer's `generateAssistantResponse`, whose
//! body is a `conversationState` (the history plus the current user message, which carries
//! the tools and the tool results) and whose answer is an AWS event stream
//! ([`crate::wire::event_stream`]) of JSON events, read by [`StreamDecoder`]. Kiro is a backend
//! only: no caller speaks it, so there is no request decoder nor answer encoder.
//!
//! The shapes are those of the open-source `amzn-codewhisperer-streaming-client` crate
//! (aws/amazon-q-developer-cli); the rules it does not state — where the system prompt goes,
//! which empty contents are refused — follow the public Kiro gateways (AIClient-2-API,
//! CLIProxyAPIPlus):
//!
//! | intermediate shape | `generateAssistantResponse` |
//! |---|---|
//! | `system` | no field: the blocks (joined by blank lines) open the first user message's `content`, followed by a blank line |
//! | consecutive messages of one role | merged into one turn (history alternates user / assistant, starts with the user) |
//! | a conversation starting with the assistant | a user turn is put first (the system prompt, else `Continue`) |
//! | last message | must be the user's (`currentMessage.userInputMessage`); an assistant prefill is refused |
//! | text parts | `content`, joined by newlines; empty user content is `Tool results provided.` (with results) or `Continue`, empty assistant content `.` |
//! | images (base64 png, jpeg, gif, webp) | `images[{format, source.bytes}]`, also those of tool results; URLs and other types refused |
//! | tool calls | `assistantResponseMessage.toolUses[{toolUseId, name, input}]`, the arguments as an object |
//! | tool results | `userInputMessageContext.toolResults[{toolUseId, content[{text}], status success/error}]`, first of each id only, results of unknown calls dropped |
//! | `tools` | `currentMessage…userInputMessageContext.tools[{toolSpecification{name, description, inputSchema{json}}}]`; names over 64 characters refused, missing descriptions `Tool: <name>`, longer than 10,237 bytes cut with `...` |
//! | `tool_choice` | auto: as is; none: no tools sent; required or one function: refused |
//! | `model` | `modelId`, after [`model_id`]'s table |
//! | reasoning in history | dropped (debug) |
//! | `stop`, `response_format` JSON | refused |
//! | `max_tokens`, sampling, `seed`, penalties, `user`, `parallel_tool_calls`, `reasoning` | dropped (debug): the API has no such field |
//!
//! `conversationId` is the caller's ([`Envelope::conversation_id`]) or a UUID-shaped BLAKE3
//! digest of the system prompt and the first message, so every turn of one conversation
//! carries the same id without the gateway keeping state. `profileArn` is sent when the
//! credential has one (social logins; AWS Builder ID tokens have none).

mod stream;

pub use stream::{StreamDecoder, decode_events, decode_response};

use serde_json::{Map, Value, json};

use super::TranslateError;
use super::fields::{arguments_object, to_json, unsupported};
use super::model::{Image, Message, Part, Request, ResponseFormat, Role, Tool, ToolChoice};

/// What goes around the conversation: the credential's profile and the conversation's id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The CodeWhisperer profile ARN of the credential (`profileArn`), when it has one.
    pub profile_arn: Option<String>,
    /// The conversation's id; `None`: derived from the request ([`conversation_id`]).
    pub conversation_id: Option<String>,
}

/// `origin` of every user message: the Kiro IDE's.
const ORIGIN: &str = "AI_EDITOR";
/// Content of a user turn with tool results and no text.
const RESULTS_ONLY: &str = "Tool results provided.";
/// Content of a user turn with nothing else to say.
const CONTINUE: &str = "Continue";
/// Content of an assistant turn without text.
const NO_TEXT: &str = ".";
/// The longest tool name the API accepts.
const MAX_TOOL_NAME: usize = 64;
/// The longest tool description kept (the API's 10,240-byte limit, less `...`).
const MAX_TOOL_DESCRIPTION: usize = 10_237;

/// Anthropic API model names and the names Kiro gives the same models; any other name (Kiro's
/// own — `claude-sonnet-4.5`, `auto`, `CLAUDE_SONNET_4_20250514_V1_0` — or one this table does
/// not know yet) is sent as the caller wrote it.
const MODEL_IDS: &[(&str, &str)] = &[
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-sonnet-4-5", "claude-sonnet-4.5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
    ("claude-sonnet-4-6", "claude-sonnet-4.6"),
    ("claude-haiku-4-5", "claude-haiku-4.5"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
    ("claude-opus-4-5", "claude-opus-4.5"),
    ("claude-opus-4-5-20251101", "claude-opus-4.5"),
    ("claude-opus-4-6", "claude-opus-4.6"),
    ("claude-opus-4-7", "claude-opus-4.7"),
];

/// The `modelId` Kiro knows `model` by.
pub fn model_id(model: &str) -> &str {
    MODEL_IDS
        .iter()
        .find(|(anthropic, _)| *anthropic == model)
        .map_or(model, |(_, kiro)| kiro)
}

/// A UUID-shaped id (version 4 and variant bits set) digested from the system prompt and the
/// first message: the same for every turn of a conversation.
pub fn conversation_id(req: &Request) -> String {
    let mut h = blake3::Hasher::new();
    for block in &req.system {
        h.update(&(block.len() as u64).to_le_bytes());
        h.update(block.as_bytes());
    }
    h.update(b"\0first");
    if let Some(first) = req.messages.first() {
        h.update(&[first.role as u8]);
        for text in texts(&first.content) {
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize().as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn texts(parts: &[Part]) -> impl Iterator<Item = &str> {
    parts.iter().filter_map(|p| match p {
        Part::Text(t) => Some(t.as_str()),
        _ => None,
    })
}

/// Writes `req` as a `generateAssistantResponse` body.
pub fn encode_request(req: &Request, envelope: &Envelope) -> Result<Vec<u8>, TranslateError> {
    refuse_unsayable(req)?;
    drop_unsayable(req);
    let model = model_id(&req.model);
    let turns = turns(req);
    let Some((current, history)) = turns.split_last() else {
        return Err(TranslateError::Invalid(
            "the request has no messages".into(),
        ));
    };
    if current.role != Role::User {
        return Err(unsupported(
            "a conversation ending with an assistant message",
            "Kiro answers only a user message (no prefill)",
        ));
    }
    let system = req.system.join("\n\n");
    let mut called: Vec<&str> = Vec::new();
    let mut items = Vec::with_capacity(history.len());
    for (i, turn) in history.iter().enumerate() {
        let prefix = (i == 0).then_some(system.as_str());
        items.push(match turn.role {
            Role::User => json!({"userInputMessage": user_message(turn, prefix, model, &called)?}),
            Role::Assistant => {
                json!({"assistantResponseMessage": assistant_message(turn, &mut called)})
            }
        });
    }
    let prefix = history.is_empty().then_some(system.as_str());
    let mut current_message = user_message(current, prefix, model, &called)?;
    let tools: Vec<Value> = match req.tool_choice {
        Some(ToolChoice::None) => Vec::new(),
        _ => req.tools.iter().map(tool_spec).collect(),
    };
    if !tools.is_empty() {
        let context = current_message
            .entry("userInputMessageContext")
            .or_insert_with(|| json!({}));
        if let Some(c) = context.as_object_mut() {
            c.insert("tools".into(), Value::Array(tools));
        }
    }
    let mut state = Map::new();
    state.insert("chatTriggerType".into(), json!("MANUAL"));
    let id = envelope
        .conversation_id
        .clone()
        .unwrap_or_else(|| conversation_id(req));
    state.insert("conversationId".into(), json!(id));
    state.insert(
        "currentMessage".into(),
        json!({"userInputMessage": current_message}),
    );
    if !items.is_empty() {
        state.insert("history".into(), Value::Array(items));
    }
    let mut body = Map::new();
    body.insert("conversationState".into(), Value::Object(state));
    if let Some(arn) = &envelope.profile_arn {
        body.insert("profileArn".into(), json!(arn));
    }
    Ok(to_json(&Value::Object(body)))
}

/// Refuses what Kiro cannot say and dropping would change.
fn refuse_unsayable(req: &Request) -> Result<(), TranslateError> {
    if !req.stop.is_empty() {
        return Err(unsupported("stop sequences", "Kiro has no stop sequences"));
    }
    if let Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) =
        &req.response_format
    {
        return Err(unsupported("a JSON response format", "Kiro answers text"));
    }
    if let Some(ToolChoice::Required | ToolChoice::Function(_)) = &req.tool_choice {
        return Err(unsupported(
            "a required tool call",
            "Kiro lets the model decide",
        ));
    }
    if let Some(t) = req
        .tools
        .iter()
        .find(|t| t.name.chars().count() > MAX_TOOL_NAME)
    {
        return Err(unsupported(
            &format!("tool `{}`", t.name),
            "Kiro takes tool names of at most 64 characters",
        ));
    }
    Ok(())
}

/// Logs what Kiro has no field for.
fn drop_unsayable(req: &Request) {
    let dropped = [
        ("max_tokens", req.max_tokens.is_some()),
        ("temperature", req.temperature.is_some()),
        ("top_p", req.top_p.is_some()),
        ("top_k", req.top_k.is_some()),
        ("seed", req.seed.is_some()),
        (
            "penalties",
            req.presence_penalty.is_some() || req.frequency_penalty.is_some(),
        ),
        ("user", req.user.is_some()),
        ("parallel_tool_calls", req.parallel_tool_calls.is_some()),
        ("reasoning", req.reasoning.is_some()),
        ("tool strict", req.tools.iter().any(|t| t.strict.is_some())),
    ];
    for (field, present) in dropped {
        if present {
            tracing::debug!(
                field,
                "dropped: Kiro's generateAssistantResponse has no such field"
            );
        }
    }
}

/// One side's consecutive messages, merged.
struct Turn<'a> {
    role: Role,
    parts: Vec<&'a Part>,
}

/// The conversation as alternating turns, the user's first.
fn turns(req: &Request) -> Vec<Turn<'_>> {
    let mut out: Vec<Turn<'_>> = Vec::new();
    for Message { role, content } in &req.messages {
        match out.last_mut() {
            Some(last) if last.role == *role => last.parts.extend(content),
            _ => out.push(Turn {
                role: *role,
                parts: content.iter().collect(),
            }),
        }
    }
    if out.first().is_some_and(|t| t.role == Role::Assistant) {
        out.insert(
            0,
            Turn {
                role: Role::User,
                parts: Vec::new(),
            },
        );
    }
    out
}

/// A `userInputMessage` (without tools), `prefix` (the system prompt) opening its content.
fn user_message(
    turn: &Turn<'_>,
    prefix: Option<&str>,
    model: &str,
    called: &[&str],
) -> Result<Map<String, Value>, TranslateError> {
    let mut text = Vec::new();
    let mut images = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    let mut answered: Vec<&str> = Vec::new();
    for part in &turn.parts {
        match part {
            Part::Text(t) => text.push(t.as_str()),
            Part::Image(image) => images.push(image_block(image)?),
            Part::ToolResult(r) => {
                if !called.contains(&r.call_id.as_str()) {
                    tracing::debug!(call = %r.call_id, "a result of no earlier tool call dropped");
                    continue;
                }
                if answered.contains(&r.call_id.as_str()) {
                    tracing::debug!(call = %r.call_id, "a second result of one tool call dropped");
                    continue;
                }
                answered.push(&r.call_id);
                let mut output = Vec::new();
                for p in &r.content {
                    match p {
                        Part::Text(t) => output.push(t.as_str()),
                        Part::Image(image) => images.push(image_block(image)?),
                        _ => tracing::debug!("a non-text, non-image tool result part dropped"),
                    }
                }
                results.push(json!({
                    "toolUseId": r.call_id,
                    "content": [{"text": output.join("\n")}],
                    "status": if r.is_error { "error" } else { "success" },
                }));
            }
            Part::ToolCall(_) | Part::Reasoning(_) => {
                tracing::debug!("a tool call or reasoning in a user message dropped");
            }
        }
    }
    let text = text.join("\n");
    let content = match (prefix.filter(|p| !p.is_empty()), text.is_empty()) {
        (Some(p), true) => p.to_owned(),
        (Some(p), false) => format!("{p}\n\n{text}"),
        (None, false) => text,
        (None, true) if results.is_empty() => CONTINUE.to_owned(),
        (None, true) => RESULTS_ONLY.to_owned(),
    };
    let mut m = Map::new();
    m.insert("content".into(), json!(content));
    m.insert("modelId".into(), json!(model));
    m.insert("origin".into(), json!(ORIGIN));
    if !images.is_empty() {
        m.insert("images".into(), Value::Array(images));
    }
    if !results.is_empty() {
        m.insert(
            "userInputMessageContext".into(),
            json!({"toolResults": results}),
        );
    }
    Ok(m)
}

/// An `assistantResponseMessage`; its calls' ids are added to `called`.
fn assistant_message<'a>(turn: &Turn<'a>, called: &mut Vec<&'a str>) -> Value {
    let mut text = Vec::new();
    let mut uses = Vec::new();
    for part in &turn.parts {
        match part {
            Part::Text(t) => text.push(t.as_str()),
            Part::ToolCall(c) => {
                called.push(&c.id);
                uses.push(json!({
                    "toolUseId": c.id,
                    "name": c.name,
                    "input": arguments_object(&c.name, &c.arguments),
                }));
            }
            Part::Reasoning(_) => tracing::debug!("reasoning in history dropped for Kiro"),
            Part::Image(_) | Part::ToolResult(_) => {
                tracing::debug!("an image or tool result in an assistant message dropped");
            }
        }
    }
    let text = text.join("\n");
    let mut m = Map::new();
    m.insert(
        "content".into(),
        json!(if text.is_empty() { NO_TEXT } else { &text }),
    );
    if !uses.is_empty() {
        m.insert("toolUses".into(), Value::Array(uses));
    }
    Value::Object(m)
}

/// An `ImageBlock`: base64 bytes of a type the API names.
fn image_block(image: &Image) -> Result<Value, TranslateError> {
    match image {
        Image::Base64 { media_type, data } => {
            let format = match media_type.to_ascii_lowercase().as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(unsupported(
                        &format!("an image of type {other}"),
                        "Kiro takes png, jpeg, gif and webp",
                    ));
                }
            };
            Ok(json!({"format": format, "source": {"bytes": data}}))
        }
        Image::Url { .. } => Err(unsupported(
            "an image by URL",
            "Kiro takes images as inline data only",
        )),
    }
}

/// A `Tool` of the current message.
fn tool_spec(t: &Tool) -> Value {
    let description = match t.description.as_deref() {
        Some(d) if !d.trim().is_empty() => {
            if d.len() > MAX_TOOL_DESCRIPTION {
                let mut cut = MAX_TOOL_DESCRIPTION;
                while !d.is_char_boundary(cut) {
                    cut -= 1;
                }
                tracing::debug!(tool = %t.name, "tool description cut to Kiro's limit");
                format!("{}...", &d[..cut])
            } else {
                d.to_owned()
            }
        }
        _ => format!("Tool: {}", t.name),
    };
    json!({"toolSpecification": {
        "name": t.name,
        "description": description,
        "inputSchema": {"json": t.parameters},
    }})
}

#[cfg(test)]
#[path = "kiro_tests.rs"]
mod tests;
