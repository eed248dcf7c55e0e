//! Chat Completions request bodies to and from the canonical [`Request`] (what is dropped and
//! refused: the table in [`super`]).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use super::{TEXT_JOINER, call_json, image_json, reasoning_text};
use crate::translate::TranslateError;
use crate::translate::fields::{Fields, Members, parse, unsupported};
use crate::translate::model::{
    Image, Message, Part, Reasoning, ReasoningConfig, Request, ResponseFormat, Role, Tool,
    ToolChoice, ToolResult,
};

/// The fields [`decode_request`] reads or refuses; any other is dropped with a debug log.
const READ: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stream",
    "stream_options",
    "response_format",
    "reasoning_effort",
    "reasoning",
    "user",
    "safety_identifier",
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "modalities",
    "functions",
    "function_call",
];

/// Reads a caller's Chat Completions request.
pub fn decode_request(body: &[u8]) -> Result<Request, TranslateError> {
    let root = parse(body, "the request body", TranslateError::Invalid)?;
    let f = Fields::of(&root, "", TranslateError::Invalid)?;
    refuse(&f)?;
    for (key, value) in f.map {
        if !value.is_null() && !READ.contains(&key.as_str()) {
            tracing::debug!(field = %key, "a chat request field with no translation: dropped");
        }
    }
    let mut system = Vec::new();
    let messages = decode_messages(&f, &mut system)?;
    let mut tools = decode_tools(&f)?;
    let tool_choice = decode_tool_choice(&f, &mut tools)?;
    let options = f.obj("stream_options")?;
    let include_usage = match &options {
        Some(o) => o.bool("include_usage")?.unwrap_or(false),
        None => false,
    };
    Ok(Request {
        model: f.req_str("model")?.to_owned(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: f.bool("parallel_tool_calls")?,
        max_tokens: f.u64("max_completion_tokens")?.or(f.u64("max_tokens")?),
        temperature: f.f64("temperature")?,
        top_p: f.f64("top_p")?,
        top_k: f.u64("top_k")?,
        stop: decode_stop(&f)?,
        seed: f.i64("seed")?,
        presence_penalty: f.f64("presence_penalty")?,
        frequency_penalty: f.f64("frequency_penalty")?,
        stream: f.bool("stream")?.unwrap_or(false),
        include_usage,
        response_format: decode_format(&f)?,
        reasoning: decode_reasoning(&f)?,
        user: f
            .str("user")?
            .or(f.str("safety_identifier")?)
            .map(str::to_owned),
    })
}

/// Refuses the top-level fields whose loss would change the answer.
fn refuse(f: &Fields) -> Result<(), TranslateError> {
    if f.u64("n")?.is_some_and(|n| n > 1) {
        return Err(unsupported(
            "n",
            "several choices per request do not translate",
        ));
    }
    if f.bool("logprobs")? == Some(true) || f.u64("top_logprobs")?.is_some_and(|n| n > 0) {
        let why = "token log probabilities do not translate";
        return Err(unsupported("logprobs/top_logprobs", why));
    }
    if f.obj("logit_bias")?.is_some_and(|b| !b.map.is_empty()) {
        let why = "token biases are tied to OpenAI's tokenizer";
        return Err(unsupported("logit_bias", why));
    }
    if f.get("audio").is_some() {
        return Err(unsupported("audio", "audio answers do not translate"));
    }
    for (i, m) in f.array("modalities")?.iter().enumerate() {
        if m.as_str() != Some("text") {
            let field = format!("modalities[{i}] {m}");
            return Err(unsupported(&field, "only text answers translate"));
        }
    }
    if f.get("functions").is_some() || f.get("function_call").is_some() {
        let why = "the deprecated function-calling fields do not translate (send `tools`)";
        return Err(unsupported("functions/function_call", why));
    }
    Ok(())
}

fn decode_stop(f: &Fields) -> Result<Vec<String>, TranslateError> {
    match f.get("stop") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(_)) => f.strings("stop"),
        Some(_) => Err(f.wrong("stop", "a string or an array of strings")),
    }
}

fn decode_format(f: &Fields) -> Result<Option<ResponseFormat>, TranslateError> {
    let Some(rf) = f.obj("response_format")? else {
        return Ok(None);
    };
    Ok(Some(match rf.req_str("type")? {
        "text" => ResponseFormat::Text,
        "json_object" => ResponseFormat::JsonObject,
        "json_schema" => {
            let js = rf.req_obj("json_schema")?;
            if js.get("description").is_some() {
                tracing::debug!("response_format.json_schema.description: dropped");
            }
            ResponseFormat::JsonSchema {
                name: js.str("name")?.unwrap_or("response").to_owned(),
                schema: js.get("schema").cloned().unwrap_or_else(|| json!({})),
                strict: js.bool("strict")?,
            }
        }
        other => return Err(rf.fault("type", &format!("unknown format `{other}`"))),
    }))
}

/// `reasoning_effort`, and OpenRouter's `reasoning{effort, max_tokens, exclude, enabled}`.
fn decode_reasoning(f: &Fields) -> Result<Option<ReasoningConfig>, TranslateError> {
    let effort = f.str("reasoning_effort")?.map(str::to_owned);
    let extension = f.obj("reasoning")?;
    let mut config = ReasoningConfig {
        effort,
        budget_tokens: None,
        include: true,
    };
    if let Some(r) = extension {
        if r.bool("enabled")? == Some(false) && config.effort.is_none() {
            return Ok(None);
        }
        config.effort = config.effort.or(r.str("effort")?.map(str::to_owned));
        config.budget_tokens = r.u64("max_tokens")?;
        config.include = r.bool("exclude")? != Some(true);
    } else if config.effort.is_none() {
        return Ok(None);
    }
    Ok(Some(config))
}

fn decode_tools(f: &Fields) -> Result<Vec<Tool>, TranslateError> {
    let mut tools = Vec::new();
    for t in f.items("tools")? {
        let kind = t.str("type")?.unwrap_or("function");
        if kind != "function" {
            let field = format!("{} `{kind}`", t.path("type"));
            return Err(unsupported(&field, "only function tools translate"));
        }
        let func = t.req_obj("function")?;
        let parameters = func.get("parameters").cloned();
        tools.push(Tool {
            name: func.req_str("name")?.to_owned(),
            description: func.str("description")?.map(str::to_owned),
            parameters: parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            strict: func.bool("strict")?,
            freeform: false,
        });
    }
    Ok(tools)
}

/// `tool_choice`; `allowed_tools` narrows `tools` to the allowed ones.
fn decode_tool_choice(
    f: &Fields,
    tools: &mut Vec<Tool>,
) -> Result<Option<ToolChoice>, TranslateError> {
    let mode = |s: &str| match s {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Required),
        other => Err(f.fault("tool_choice", &format!("unknown mode `{other}`"))),
    };
    if let Some(Value::String(s)) = f.get("tool_choice") {
        return mode(s).map(Some);
    }
    let Some(c) = f.obj("tool_choice")? else {
        return Ok(None);
    };
    match c.req_str("type")? {
        "function" => {
            let func = c.req_obj("function")?;
            let name = func.req_str("name")?;
            Ok(Some(ToolChoice::Function(name.to_owned())))
        }
        "allowed_tools" => {
            let allowed = c.req_obj("allowed_tools")?;
            let mut names = Vec::new();
            for t in allowed.items("tools")? {
                let func = t.req_obj("function")?;
                names.push(func.req_str("name")?);
            }
            tools.retain(|t| names.contains(&t.name.as_str()));
            mode(allowed.str("mode")?.unwrap_or("auto")).map(Some)
        }
        other => {
            let field = format!("tool_choice.type `{other}`");
            Err(unsupported(&field, "only function tools translate"))
        }
    }
}

/// The conversation; system and developer messages go to `system`.
fn decode_messages(f: &Fields, system: &mut Vec<String>) -> Result<Vec<Message>, TranslateError> {
    f.need("messages", f.opt_array("messages")?)?;
    let mut out: Vec<Message> = Vec::new();
    // The last canonical message was made of tool messages: a user message joins it.
    let mut results_open = false;
    for m in f.items("messages")? {
        match m.req_str("role")? {
            "system" | "developer" => {
                if !out.is_empty() {
                    tracing::debug!(
                        "a system message inside the conversation joins the system prompt"
                    );
                }
                for part in content_parts(&m, false)? {
                    if let Part::Text(t) = part {
                        system.push(t);
                    }
                }
            }
            "user" => {
                let parts = content_parts(&m, true)?;
                match out.last_mut() {
                    Some(last) if results_open => last.content.extend(parts),
                    _ => out.push(message(Role::User, parts)),
                }
                results_open = false;
            }
            "assistant" => {
                out.push(decode_assistant(&m)?);
                results_open = false;
            }
            "tool" => {
                let result = Part::ToolResult(ToolResult {
                    call_id: m.req_str("tool_call_id")?.to_owned(),
                    name: m.str("name")?.map(str::to_owned),
                    content: content_parts(&m, true)?,
                    is_error: false,
                });
                match out.last_mut() {
                    Some(last) if results_open => last.content.push(result),
                    _ => out.push(message(Role::User, vec![result])),
                }
                results_open = true;
            }
            "function" => {
                let why =
                    "the deprecated function messages do not translate (send `tool` messages)";
                return Err(unsupported(&m.path("role"), why));
            }
            other => return Err(m.fault("role", &format!("unknown role `{other}`"))),
        }
    }
    Ok(out)
}

fn message(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

/// A message's `content` (a string or parts); `images`: `image_url` parts are allowed.
fn content_parts(m: &Fields, images: bool) -> Result<Vec<Part>, TranslateError> {
    match m.get("content") {
        None | Some(Value::Array(_)) => {}
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(vec![Part::Text(s.clone())]),
        Some(_) => return Err(m.wrong("content", "a string or an array of parts")),
    }
    let mut parts = Vec::new();
    for p in m.items("content")? {
        match p.req_str("type")? {
            kind @ ("text" | "refusal") => {
                let text = p.req_str(kind)?;
                if !text.is_empty() {
                    parts.push(Part::Text(text.to_owned()));
                }
            }
            "image_url" if images => {
                let image = p.req_obj("image_url")?;
                let url = image.need("url", image.image("url")?)?;
                if image.get("detail").is_some() {
                    tracing::debug!("image_url.detail: dropped");
                }
                parts.push(Part::Image(url));
            }
            kind @ ("input_audio" | "file") => {
                let field = format!("{} `{kind}`", p.path("type"));
                return Err(unsupported(&field, "only text and images translate"));
            }
            other => {
                return Err(p.fault("type", &format!("no `{other}` parts in this message")));
            }
        }
    }
    Ok(parts)
}

fn decode_assistant(m: &Fields) -> Result<Message, TranslateError> {
    for legacy in ["function_call", "audio"] {
        if m.get(legacy).is_some() {
            let why = "deprecated function calls and audio answers do not translate";
            return Err(unsupported(&m.path(legacy), why));
        }
    }
    let mut content = Vec::new();
    if let Some(text) = reasoning_text(m)? {
        content.push(Part::Reasoning(Reasoning {
            text: text.to_owned(),
            ..Default::default()
        }));
    }
    content.extend(content_parts(m, false)?);
    let refusal = m.str("refusal")?.filter(|r| !r.is_empty());
    content.extend(refusal.map(|r| Part::Text(r.to_owned())));
    for c in m.items("tool_calls")? {
        let kind = c.str("type")?.unwrap_or("function");
        if kind != "function" {
            let field = format!("{} `{kind}`", c.path("type"));
            return Err(unsupported(&field, "only function calls translate"));
        }
        let func = c.req_obj("function")?;
        let id = c.req_str("id")?.to_owned();
        content.push(Part::ToolCall(super::tool_call(&func, id)?));
    }
    Ok(message(Role::Assistant, content))
}

/// Writes `req` as a Chat Completions request for a backend.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, TranslateError> {
    let mut body = Members::default();
    body.insert("model", json!(req.model));
    body.insert_written("messages", &encode_messages(req), messages_len(req));
    if req.tools.is_empty() {
        // OpenAI refuses `tool_choice` and `parallel_tool_calls` without `tools`.
        if req.tool_choice.is_some() || req.parallel_tool_calls.is_some() {
            tracing::debug!("tool_choice/parallel_tool_calls without tools: dropped");
        }
    } else {
        let tools: Vec<ToolJson<'_>> = req.tools.iter().map(ToolJson::new).collect();
        body.insert_written("tools", &tools, 1024 * tools.len());
        let choice = req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        });
        body.put("tool_choice", choice);
        body.put("parallel_tool_calls", req.parallel_tool_calls);
    }
    match &req.reasoning {
        Some(r) => {
            body.put("max_completion_tokens", req.max_tokens);
            body.put("reasoning_effort", r.effort());
        }
        None => body.put("max_tokens", req.max_tokens),
    }
    body.put("temperature", req.temperature);
    body.put("top_p", req.top_p);
    if req.top_k.is_some() {
        tracing::debug!("top_k has no Chat Completions field: dropped");
    }
    body.put("stop", (!req.stop.is_empty()).then_some(&req.stop));
    body.put("seed", req.seed);
    body.put("presence_penalty", req.presence_penalty);
    body.put("frequency_penalty", req.frequency_penalty);
    let format = req.response_format.as_ref().map(|f| match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut inner = json!({"name": name, "schema": schema});
            if let Some(strict) = strict {
                inner["strict"] = json!(strict);
            }
            json!({"type": "json_schema", "json_schema": inner})
        }
    });
    body.put("response_format", format);
    body.put("user", req.user.as_ref());
    if req.stream {
        body.insert("stream", json!(true));
        body.insert("stream_options", json!({"include_usage": true}));
    }
    Ok(body.to_json())
}

/// A tool as Chat Completions declares it, written from the request's own schema (no copy).
#[derive(Serialize)]
struct ToolJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionJson<'a>,
}

#[derive(Serialize)]
struct FunctionJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl<'a> ToolJson<'a> {
    fn new(t: &'a Tool) -> Self {
        ToolJson {
            kind: "function",
            function: FunctionJson {
                name: &t.name,
                description: t.description.as_deref(),
                parameters: &t.parameters,
                strict: t.strict,
            },
        }
    }
}

/// About how long the messages' JSON text is: their texts, arguments and image data with an
/// eighth more for escapes, and room for each part's members (reserved at once rather than
/// grown by doubling: an agent's conversation is 50–200 KB).
fn messages_len(req: &Request) -> usize {
    fn part_len(part: &Part) -> usize {
        64 + match part {
            Part::Text(t) => t.len(),
            Part::Reasoning(r) => r.text.len(),
            Part::ToolCall(c) => c.id.len() + c.name.len() + c.arguments.len(),
            Part::ToolResult(r) => r.call_id.len() + r.content.iter().map(part_len).sum::<usize>(),
            Part::Image(Image::Base64 { data, .. }) => data.len(),
            Part::Image(Image::Url { url, .. }) => url.len(),
        }
    }
    let system: usize = req.system.iter().map(String::len).sum();
    let parts = req.messages.iter().flat_map(|m| &m.content).map(part_len);
    let text = system + parts.sum::<usize>();
    text + text / 8 + 64
}

fn encode_messages(req: &Request) -> Vec<MessageJson<'_>> {
    let mut out = Vec::new();
    if !req.system.is_empty() {
        let text = req.system.join(TEXT_JOINER);
        out.push(MessageJson::new("system", Content::Text(text.into())));
    }
    for m in &req.messages {
        match m.role {
            Role::User => encode_user(m, &mut out),
            Role::Assistant => out.push(encode_assistant(m)),
        }
    }
    out
}

/// One Chat message as written (straight from these fields: no map is built per message).
#[derive(Serialize)]
struct MessageJson<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    content: Content<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
}

impl<'a> MessageJson<'a> {
    fn new(role: &'static str, content: Content<'a>) -> Self {
        Self {
            role,
            tool_call_id: None,
            content,
            tool_calls: Vec::new(),
        }
    }
}

/// A message's `content`: text, content parts, or `null` (an assistant turn of calls only).
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Value>),
    Null,
}

/// One `tool` message per result, then a `user` message with the results' images and the
/// message's other parts.
fn encode_user<'a>(m: &'a Message, out: &mut Vec<MessageJson<'a>>) {
    let mut result_images = Vec::new();
    // The message's own parts: its text (kept borrowed: a lone text part is the content
    // itself) and images.
    let mut rest: Vec<Result<&str, Value>> = Vec::new();
    for part in &m.content {
        match part {
            Part::Text(t) => rest.push(Ok(t)),
            Part::Image(i) => rest.push(Err(image_json(i))),
            Part::ToolResult(r) => {
                let mut texts = Vec::new();
                for p in &r.content {
                    match p {
                        Part::Text(t) => texts.push(t.as_str()),
                        Part::Image(i) => result_images.push(image_json(i)),
                        _ => tracing::debug!(
                            "a tool result part that is neither text nor image: dropped"
                        ),
                    }
                }
                let text = texts.join(TEXT_JOINER);
                let text = if r.is_error {
                    format!("Error: {text}")
                } else {
                    text
                };
                out.push(MessageJson {
                    tool_call_id: Some(&r.call_id),
                    ..MessageJson::new("tool", Content::Text(text.into()))
                });
            }
            Part::ToolCall(_) | Part::Reasoning(_) => {
                tracing::debug!("a call or reasoning in a user message: dropped");
            }
        }
    }
    let content = match (result_images.as_slice(), rest.as_slice()) {
        ([], []) => return,
        ([], [Ok(text)]) => Content::Text(Cow::Borrowed(text)),
        _ => {
            let rest = rest.into_iter().map(|p| match p {
                Ok(text) => json!({"type": "text", "text": text}),
                Err(image) => image,
            });
            result_images.extend(rest);
            Content::Parts(result_images)
        }
    };
    out.push(MessageJson::new("user", content));
}

fn encode_assistant(m: &Message) -> MessageJson<'_> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for part in &m.content {
        match part {
            Part::Text(t) => texts.push(t.as_str()),
            Part::ToolCall(c) => calls.push(call_json(c)),
            Part::Reasoning(_) => tracing::debug!("reasoning in the history: dropped"),
            Part::Image(_) | Part::ToolResult(_) => {
                tracing::debug!("an image or tool result in an assistant message: dropped");
            }
        }
    }
    let content = match (texts.is_empty(), calls.is_empty()) {
        (true, false) => Content::Null,
        _ => Content::Text(texts.join(TEXT_JOINER).into()),
    };
    MessageJson {
        tool_calls: calls,
        ..MessageJson::new("assistant", content)
    }
}
