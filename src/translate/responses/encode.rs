//! Writing a canonical request as a Responses API body, for a backend that speaks it: the
//! first system block is `instructions`, the others `developer` messages; each canonical
//! message becomes items (text and images in a `message`, then one item per call, result or
//! reasoning); freeform tools and their calls are written back as `custom` tools and
//! `custom_tool_call` items. Stop sequences are refused; `top_k`, `seed`, the penalties and a
//! tool result's error flag are dropped (the dialect has none). `store: false` is always
//! written (a translated conversation is not kept upstream), with `include:
//! ["reasoning.encrypted_content"]` when reasoning is configured so that reasoning can be
//! sent back.

use serde_json::{Map, Value, json};

use super::{GRAMMAR_HEAD, GRAMMAR_TAIL, answer};
use crate::translate::TranslateError;
use crate::translate::fields::{image_url, to_json};
use crate::translate::model::{
    FREEFORM_INPUT, Image, Message, Part, Request, ResponseFormat, Role, Tool, ToolCall,
    ToolChoice, ToolResult,
};

/// Writes `req` as a `POST /v1/responses` body.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, TranslateError> {
    Ok(to_json(&request_body(req)?))
}

/// `req` as the members of a Responses API body (the Codex connector adjusts them).
pub(crate) fn request_body(req: &Request) -> Result<Map<String, Value>, TranslateError> {
    if !req.stop.is_empty() {
        return Err(TranslateError::Unsupported(
            "stop sequences cannot be translated: the OpenAI Responses API has none, use a \
             backend of the same protocol"
                .into(),
        ));
    }
    if req.top_k.is_some()
        || req.seed.is_some()
        || req.presence_penalty.is_some()
        || req.frequency_penalty.is_some()
    {
        tracing::debug!("top_k, seed and penalties dropped: the Responses API has none");
    }
    let freeform: Vec<&str> = req
        .tools
        .iter()
        .filter(|t| t.freeform)
        .map(|t| t.name.as_str())
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    if let Some(first) = req.system.first() {
        body.insert("instructions".into(), json!(first));
    }
    let mut input: Vec<Value> = req.system[req.system.len().min(1)..]
        .iter()
        .map(|s| json!({"type": "message", "role": "developer", "content": s}))
        .collect();
    write_messages(&req.messages, &freeform, &mut input);
    body.insert("input".into(), Value::Array(input));
    if !req.tools.is_empty() {
        body.insert("tools".into(), req.tools.iter().map(write_tool).collect());
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("tool_choice".into(), write_choice(choice, &freeform));
    }
    let mut optional = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            body.insert(key.into(), v);
        }
    };
    optional(
        "parallel_tool_calls",
        req.parallel_tool_calls.map(Value::from),
    );
    optional("max_output_tokens", req.max_tokens.map(Value::from));
    optional("temperature", req.temperature.map(Value::from));
    optional("top_p", req.top_p.map(Value::from));
    optional("safety_identifier", req.user.clone().map(Value::from));
    optional(
        "text",
        req.response_format
            .as_ref()
            .map(|f| json!({ "format": write_format(f) })),
    );
    if let Some(r) = &req.reasoning {
        let mut reasoning = Map::new();
        if let Some(effort) = r.effort() {
            reasoning.insert("effort".into(), json!(effort));
        }
        if r.include {
            reasoning.insert("summary".into(), json!("auto"));
        }
        body.insert("reasoning".into(), Value::Object(reasoning));
        body.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    body.insert("stream".into(), json!(req.stream));
    body.insert("store".into(), json!(false));
    Ok(body)
}

/// The conversation as input items.
fn write_messages(messages: &[Message], freeform: &[&str], input: &mut Vec<Value>) {
    let mut custom_calls: Vec<&str> = Vec::new();
    for m in messages {
        let (role, text_type) = match m.role {
            Role::User => ("user", "input_text"),
            Role::Assistant => ("assistant", "output_text"),
        };
        let mut parts: Vec<Value> = Vec::new();
        let flush = |parts: &mut Vec<Value>, input: &mut Vec<Value>| {
            if !parts.is_empty() {
                let content = std::mem::take(parts);
                input.push(json!({"type": "message", "role": role, "content": content}));
            }
        };
        for part in &m.content {
            match part {
                Part::Text(text) if m.role == Role::Assistant => {
                    parts.push(json!({"type": text_type, "text": text, "annotations": []}));
                }
                Part::Text(text) => parts.push(json!({"type": text_type, "text": text})),
                Part::Image(image) if m.role == Role::User => parts.push(write_image(image)),
                Part::Image(_) => tracing::debug!("an assistant image dropped"),
                Part::ToolCall(call) => {
                    flush(&mut parts, input);
                    let custom = freeform.contains(&call.name.as_str());
                    if custom {
                        custom_calls.push(&call.id);
                    }
                    input.push(write_call(call, custom));
                }
                Part::ToolResult(result) => {
                    flush(&mut parts, input);
                    input.push(write_result(
                        result,
                        custom_calls.contains(&&*result.call_id),
                    ));
                }
                Part::Reasoning(r) => {
                    flush(&mut parts, input);
                    input.push(answer::reasoning_item(None, r));
                }
            }
        }
        flush(&mut parts, input);
    }
}

fn write_image(image: &Image) -> Value {
    json!({"type": "input_image", "image_url": image_url(image), "detail": "auto"})
}

/// A call as an input item (no item id: the backend makes its own).
fn write_call(call: &ToolCall, custom: bool) -> Value {
    if custom {
        json!({"type": "custom_tool_call", "call_id": call.id, "name": call.name,
               "input": answer::freeform_input(&call.arguments)})
    } else {
        json!({"type": "function_call", "call_id": call.id, "name": call.name,
               "arguments": call.arguments})
    }
}

fn write_result(result: &ToolResult, custom: bool) -> Value {
    if result.is_error {
        tracing::debug!("a tool result's error flag dropped: the Responses API has none");
    }
    let output = match result.content.as_slice() {
        [Part::Text(text)] => json!(text),
        parts => parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(text) => Some(json!({"type": "input_text", "text": text})),
                Part::Image(image) => Some(write_image(image)),
                _ => None,
            })
            .collect(),
    };
    let kind = if custom {
        "custom_tool_call_output"
    } else {
        "function_call_output"
    };
    json!({"type": kind, "call_id": result.call_id, "output": output})
}

fn write_tool(tool: &Tool) -> Value {
    if !tool.freeform {
        let mut t = json!({"type": "function", "name": tool.name, "parameters": tool.parameters});
        if let Some(d) = &tool.description {
            t["description"] = json!(d);
        }
        if let Some(strict) = tool.strict {
            t["strict"] = json!(strict);
        }
        return t;
    }
    let note = tool.parameters["properties"][FREEFORM_INPUT]["description"].as_str();
    let grammar = note
        .and_then(|n| n.strip_prefix(GRAMMAR_HEAD))
        .and_then(|n| n.split_once(GRAMMAR_TAIL));
    let format = match grammar {
        Some((syntax, definition)) => {
            json!({"type": "grammar", "syntax": syntax, "definition": definition})
        }
        None => json!({"type": "text"}),
    };
    let mut t = json!({"type": "custom", "name": tool.name, "format": format});
    if let Some(d) = &tool.description {
        t["description"] = json!(d);
    }
    t
}

fn write_choice(choice: &ToolChoice, freeform: &[&str]) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function(name) if freeform.contains(&name.as_str()) => {
            json!({"type": "custom", "name": name})
        }
        ToolChoice::Function(name) => json!({"type": "function", "name": name}),
    }
}

fn write_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut f = json!({"type": "json_schema", "name": name, "schema": schema});
            if let Some(s) = strict {
                f["strict"] = json!(s);
            }
            f
        }
    }
}
