//! Anthropic Messages requests: a caller's body read into the canonical [`Request`], and a
//! canonical request written for an Anthropic backend (the module above lists what is dropped
//! and refused).

use serde_json::{Value, json};

use super::{decode_common_block, encode_common_part, image_source};
use crate::translate::TranslateError;
use crate::translate::fields::{
    Fields, IMAGE_URL, Members, image_from_url, is_image_type, parse, unsupported,
};
use crate::translate::model::{
    DEFAULT_MAX_TOKENS, Image, Message, Part, ReasoningConfig, Request, ResponseFormat, Role, Tool,
    ToolChoice, ToolResult,
};

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The top-level fields this codec reads; any other is dropped with a debug log.
const READ_FIELDS: &[&str] = &[
    "model",
    "system",
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "output_format",
];

/// Reads a caller's request body: the usual requests on the typed hot path
/// ([`super::plain_request`]), any other by the field reader.
pub fn decode_request(body: &[u8]) -> Result<Request, TranslateError> {
    match super::plain_request::decode(body) {
        Some(req) => Ok(req),
        None => decode_general(body),
    }
}

/// Reads a caller's request body through a JSON tree, naming the field at fault.
pub(super) fn decode_general(body: &[u8]) -> Result<Request, TranslateError> {
    let value = parse(body, "the request body", TranslateError::Invalid)?;
    let top = Fields::of(&value, "", TranslateError::Invalid)?;
    for key in top
        .map
        .keys()
        .filter(|k| !READ_FIELDS.contains(&k.as_str()))
    {
        tracing::debug!(field = %key, "Anthropic request field dropped in translation");
    }
    let stream = top.bool("stream")?.unwrap_or(false);
    let mut system_turns = Vec::new();
    let mut req = Request {
        model: top.str("model")?.unwrap_or_default().to_owned(),
        system: decode_system(&top, "system")?,
        messages: decode_messages(&top, &mut system_turns)?,
        max_tokens: top.u64("max_tokens")?,
        temperature: top.f64("temperature")?,
        top_p: top.f64("top_p")?,
        top_k: top.u64("top_k")?,
        stop: top.strings("stop_sequences")?,
        stream,
        // Anthropic streams always end with a usage report.
        include_usage: stream,
        user: match top.obj("metadata")? {
            Some(m) => m.str("user_id")?.map(Into::into),
            None => None,
        },
        ..Request::default()
    };
    req.system.append(&mut system_turns);
    req.tools = decode_tools(&top)?;
    decode_tool_choice(&top, &mut req)?;
    decode_output(&top, &mut req)?;
    Ok(req)
}

/// A system prompt at `top.key`: a string or text blocks.
fn decode_system(top: &Fields<'_>, key: &str) -> Result<Vec<String>, TranslateError> {
    match top.get(key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(_)) => top
            .items(key)?
            .iter()
            .map(|block| match block.req_str("type")? {
                "text" => Ok(block.req_str("text")?.to_owned()),
                _ => Err(block.wrong("type", "\"text\"")),
            })
            .collect(),
        Some(_) => Err(top.wrong(key, "a string or an array of text blocks")),
    }
}

/// The conversation; a `system` turn inside it (the Messages API takes them, and Claude Code
/// sends one with its environment for models it does not know) joins `system_turns`, as the
/// chat codec does with a mid-conversation system message.
fn decode_messages(
    top: &Fields<'_>,
    system_turns: &mut Vec<String>,
) -> Result<Vec<Message>, TranslateError> {
    if top.get("messages").is_none() {
        return Err(top.wrong("messages", "an array of messages"));
    }
    let mut messages = Vec::new();
    for msg in top.items("messages")? {
        let role = match msg.req_str("role")? {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => {
                tracing::debug!("a system turn inside the conversation joins the system prompt");
                system_turns.extend(decode_system(&msg, "content")?);
                continue;
            }
            _ => return Err(msg.wrong("role", "\"user\", \"assistant\" or \"system\"")),
        };
        let content = match msg.get("content") {
            Some(Value::String(s)) => vec![Part::Text(s.clone())],
            Some(Value::Array(_)) => decode_blocks(&msg, "content", false)?,
            _ => return Err(msg.wrong("content", "a string or an array of blocks")),
        };
        messages.push(Message { role, content });
    }
    Ok(messages)
}

/// Server tools' history blocks: dropped with the server tools themselves.
fn is_server_tool_block(kind: &str) -> bool {
    matches!(
        kind,
        "server_tool_use" | "mcp_tool_use" | "mcp_tool_result" | "container_upload"
    ) || kind.ends_with("_tool_result")
}

/// The blocks of `parent.key`; `in_result`: inside a `tool_result` (text and images only).
fn decode_blocks(
    parent: &Fields<'_>,
    key: &str,
    in_result: bool,
) -> Result<Vec<Part>, TranslateError> {
    let mut parts = Vec::new();
    for block in parent.items(key)? {
        let path = block.at();
        let kind = block.req_str("type")?;
        if (!in_result || kind == "text")
            && let Some(part) = decode_common_block(&block, kind)?
        {
            parts.push(part);
            continue;
        }
        match kind {
            "image" => parts.push(Part::Image(decode_image(&block)?)),
            "tool_result" if !in_result => {
                parts.push(Part::ToolResult(decode_tool_result(&block)?))
            }
            _ if !in_result && is_server_tool_block(kind) => {
                tracing::debug!(kind, "server tool history block dropped in translation");
            }
            _ => {
                return Err(unsupported(
                    &format!("`{path}.type` \"{kind}\""),
                    "this content cannot be translated",
                ));
            }
        }
    }
    Ok(parts)
}

fn decode_image(block: &Fields<'_>) -> Result<Image, TranslateError> {
    let source = block.req_obj("source")?;
    match source.req_str("type")? {
        "base64" => Ok(Image::Base64 {
            media_type: match source.req_str("media_type")? {
                m if is_image_type(m) => m.to_owned(),
                _ => return Err(source.wrong("media_type", "an image type (image/png, …)")),
            },
            data: source.req_str("data")?.to_owned(),
        }),
        "url" => image_from_url(source.req_str("url")?, None)
            .ok_or_else(|| source.wrong("url", IMAGE_URL)),
        other => Err(unsupported(
            &format!("`{}` \"{other}\"", source.path("type")),
            "only base64 and URL images translate",
        )),
    }
}

fn decode_tool_result(block: &Fields<'_>) -> Result<ToolResult, TranslateError> {
    let content = match block.get("content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(Value::Array(_)) => decode_blocks(block, "content", true)?,
        Some(_) => return Err(block.wrong("content", "a string or an array of blocks")),
    };
    Ok(ToolResult {
        call_id: block.req_str("tool_use_id")?.to_owned(),
        name: None,
        content,
        is_error: block.bool("is_error")?.unwrap_or(false),
    })
}

fn decode_tools(top: &Fields<'_>) -> Result<Vec<Tool>, TranslateError> {
    let mut tools = Vec::new();
    for tool in top.items("tools")? {
        match tool.str("type")? {
            None | Some("custom") => {}
            Some(kind) => {
                tracing::debug!(kind, "server tool dropped in translation");
                continue;
            }
        }
        let parameters = match tool.get("input_schema") {
            Some(schema) if schema.is_object() => schema.clone(),
            Some(_) => return Err(tool.wrong("input_schema", "a JSON Schema object")),
            None => json!({"type": "object", "properties": {}}),
        };
        tools.push(Tool {
            name: tool.req_str("name")?.to_owned(),
            description: tool.str("description")?.map(Into::into),
            parameters,
            strict: tool.bool("strict")?,
            freeform: false,
        });
    }
    if top.get("mcp_servers").is_some() {
        tracing::debug!("mcp_servers dropped in translation (the model is not offered them)");
    }
    Ok(tools)
}

fn decode_tool_choice(top: &Fields<'_>, req: &mut Request) -> Result<(), TranslateError> {
    let Some(choice) = top.obj("tool_choice")? else {
        return Ok(());
    };
    req.tool_choice = Some(match choice.req_str("type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Function(choice.req_str("name")?.to_owned()),
        _ => return Err(choice.wrong("type", "auto, any, tool or none")),
    });
    if choice.bool("disable_parallel_tool_use")? == Some(true) {
        req.parallel_tool_calls = Some(false);
    }
    Ok(())
}

/// `thinking`, `output_config` (effort, format) and the beta `output_format`.
fn decode_output(top: &Fields<'_>, req: &mut Request) -> Result<(), TranslateError> {
    let config = top.obj("output_config")?;
    let effort = match &config {
        Some(c) => c.str("effort")?.map(String::from),
        None => None,
    };
    let format = match config.map(|c| c.obj("format")).transpose()?.flatten() {
        Some(f) => Some(f),
        None => top.obj("output_format")?,
    };
    if let Some(format) = format {
        if format.req_str("type")? != "json_schema" {
            return Err(format.wrong("type", "\"json_schema\""));
        }
        let schema = format
            .get("schema")
            .filter(|s| s.is_object())
            .ok_or_else(|| format.wrong("schema", "a JSON Schema object"))?;
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: schema.clone(),
            // Anthropic's JSON outputs are always constrained to the schema.
            strict: Some(true),
        });
    }
    let Some(thinking) = top.obj("thinking")? else {
        req.reasoning = effort.map(|e| ReasoningConfig {
            effort: Some(e),
            ..ReasoningConfig::default()
        });
        return Ok(());
    };
    let include = thinking.str("display")? != Some("omitted");
    req.reasoning = match thinking.req_str("type")? {
        "enabled" => Some(ReasoningConfig {
            effort,
            budget_tokens: Some(thinking.need("budget_tokens", thinking.u64("budget_tokens")?)?),
            include,
        }),
        "adaptive" => Some(ReasoningConfig {
            // Anthropic's default effort.
            effort: Some(effort.unwrap_or_else(|| "high".into())),
            budget_tokens: None,
            include,
        }),
        "disabled" => effort.map(|e| ReasoningConfig {
            effort: Some(e),
            ..ReasoningConfig::default()
        }),
        _ => return Err(thinking.wrong("type", "enabled, adaptive or disabled")),
    };
    Ok(())
}

/// Writes a request body for an Anthropic backend.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, TranslateError> {
    let mut body = Members::default();
    body.insert("model", json!(req.model));
    let (budget, max_tokens) = thinking_budget(req);
    body.insert("max_tokens", json!(max_tokens));
    let system: Vec<&String> = req.system.iter().filter(|s| !s.is_empty()).collect();
    match system.as_slice() {
        [] => {}
        [one] => {
            body.insert("system", json!(one));
        }
        many => {
            let blocks = many.iter().map(|s| json!({"type": "text", "text": s}));
            body.insert("system", Value::Array(blocks.collect()));
        }
    }
    body.insert("messages", encode_messages(&req.messages));
    encode_tools(req, &mut body);
    encode_sampling(req, budget.is_some(), &mut body);
    if !req.stop.is_empty() {
        body.insert("stop_sequences", json!(req.stop));
    }
    if req.stream {
        body.insert("stream", json!(true));
    }
    if let Some(user) = &req.user {
        body.insert("metadata", json!({"user_id": user}));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            return Err(unsupported(
                "response_format json_object",
                "Anthropic Messages constrains answers to a JSON schema only, not to any JSON object",
            ));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            let format = json!({"type": "json_schema", "schema": schema});
            body.insert("output_config", json!({ "format": format }));
        }
    }
    if let Some(budget) = budget {
        let thinking = json!({"type": "enabled", "budget_tokens": budget});
        body.insert("thinking", thinking);
    }
    if req.seed.is_some() || req.presence_penalty.is_some() || req.frequency_penalty.is_some() {
        tracing::debug!("seed and penalties dropped: Anthropic Messages has none");
    }
    Ok(body.to_json())
}

/// The thinking budget (`None`: no thinking) and `max_tokens`, which must exceed it.
fn thinking_budget(req: &Request) -> (Option<u64>, u64) {
    let forced = matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Function(_))
    );
    // `budget_tokens` first: `ReasoningConfig::budget` misses it when no effort is set.
    let mut budget = req
        .reasoning
        .as_ref()
        .and_then(|r| r.budget_tokens.or_else(|| r.budget()));
    if forced && budget.is_some_and(|b| b > 0) {
        tracing::debug!("thinking dropped: Anthropic rejects it with a forced tool call");
        budget = None;
    }
    let budget = budget
        .filter(|&b| b > 0)
        .map(|b| b.max(MIN_THINKING_BUDGET));
    match (budget, req.max_tokens) {
        (None, max) => (None, max.unwrap_or(DEFAULT_MAX_TOKENS)),
        (Some(b), None) => (Some(b), b + DEFAULT_MAX_TOKENS),
        (Some(b), Some(max)) if b < max => (Some(b), max),
        (Some(_), Some(max)) if max > MIN_THINKING_BUDGET => {
            tracing::debug!(max, "thinking budget lowered below max_tokens");
            (Some(max - 1), max)
        }
        (Some(_), Some(max)) => {
            tracing::debug!(max, "thinking dropped: max_tokens leaves no room for it");
            (None, max)
        }
    }
}

/// Temperature (at most 1), top-p and top-k, as far as Anthropic accepts them together.
fn encode_sampling(req: &Request, thinking: bool, body: &mut Members) {
    let mut temperature = req.temperature.map(|t| {
        if t > 1.0 {
            tracing::debug!(t, "temperature clamped to Anthropic's 1");
        }
        t.min(1.0)
    });
    let mut top_p = req.top_p;
    let mut top_k = req.top_k;
    if thinking {
        if temperature.is_some() || top_k.is_some() || top_p.is_some_and(|p| p < 0.95) {
            tracing::debug!("temperature, top_k and top_p < 0.95 dropped: thinking is on");
        }
        temperature = None;
        top_k = None;
        top_p = top_p.filter(|&p| p >= 0.95);
    }
    if temperature.is_some() && top_p.take().is_some() {
        tracing::debug!("top_p dropped: Anthropic takes temperature or top_p, not both");
    }
    let pairs = [
        ("temperature", temperature.map(Value::from)),
        ("top_p", top_p.map(Value::from)),
        ("top_k", top_k.map(Value::from)),
    ];
    for (key, value) in pairs {
        if let Some(v) = value {
            body.insert(key, v);
        }
    }
}

fn encode_tools(req: &Request, body: &mut Members) {
    if req.tools.is_empty() {
        if req.tool_choice.is_some() {
            tracing::debug!("tool_choice dropped: no tools");
        }
        return;
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            let mut schema = t.parameters.clone();
            if let Some(obj) = schema.as_object_mut() {
                obj.entry("type").or_insert_with(|| json!("object"));
            }
            let mut tool = json!({"name": t.name, "input_schema": schema});
            if let Some(d) = &t.description {
                tool["description"] = json!(d);
            }
            if t.strict == Some(true) {
                tool["strict"] = json!(true);
            }
            tool
        })
        .collect();
    body.insert("tools", Value::Array(tools));
    let mut choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
        Some(ToolChoice::Required) => Some(json!({"type": "any"})),
        Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
        Some(ToolChoice::None) => Some(json!({"type": "none"})),
    };
    if req.parallel_tool_calls == Some(false) && req.tool_choice != Some(ToolChoice::None) {
        choice.get_or_insert_with(|| json!({"type": "auto"}))["disable_parallel_tool_use"] =
            json!(true);
    }
    if let Some(choice) = choice {
        body.insert("tool_choice", choice);
    }
}

/// The conversation: consecutive turns of one role merged (Anthropic wants them alternating),
/// tool results first in their user turn, empty turns left out.
fn encode_messages(messages: &[Message]) -> Value {
    let mut turns: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in messages {
        let mut blocks: Vec<Value> = m.content.iter().filter_map(encode_part).collect();
        if blocks.is_empty() {
            tracing::debug!("a message with nothing Anthropic can carry left out");
            continue;
        }
        match turns.last_mut() {
            Some((role, last)) if *role == m.role => last.append(&mut blocks),
            _ => turns.push((m.role, blocks)),
        }
    }
    let turns = turns.into_iter().map(|(role, blocks)| {
        let (mut results, others): (Vec<Value>, Vec<Value>) =
            blocks.into_iter().partition(|b| b["type"] == "tool_result");
        results.extend(others);
        let role = match role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        json!({"role": role, "content": results})
    });
    Value::Array(turns.collect())
}

fn encode_part(part: &Part) -> Option<Value> {
    match part {
        Part::Image(image) => Some(json!({"type": "image", "source": image_source(image)})),
        Part::ToolResult(r) => {
            let content: Vec<Value> = r
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) if !t.is_empty() => Some(json!({"type": "text", "text": t})),
                    Part::Image(i) => Some(json!({"type": "image", "source": image_source(i)})),
                    _ => None,
                })
                .collect();
            let mut block = json!({"type": "tool_result", "tool_use_id": r.call_id});
            if !content.is_empty() {
                block["content"] = Value::Array(content);
            }
            if r.is_error {
                block["is_error"] = json!(true);
            }
            Some(block)
        }
        other => encode_common_part(other, false),
    }
}
