//! When the mock calls a tool, and with what: the protocol-independent half of the tool-call
//! flow. Each protocol handler reads its request's tools, tool choice and trailing tool results
//! here ([`answer`]) and renders the [`Answer`] in its own wire shape.
//!
//! A request that declares tools gets tool calls when `x-mock: tool=<name>` asks (`*`: the first
//! declared tool; `tool_calls=<n>`: n calls to the next declared tools in order, cycling) or when
//! its tool choice forces one (a named function, or OpenAI's `required` / Anthropic's `any` /
//! Gemini's `ANY`: the first tool) — unless its last message is a tool result, which is answered
//! with the text `Tool result received: <the result's first 200 chars>` (or `reply=`), or the
//! tool choice is `none`. Arguments are `tool_args=` or an instance of the tool's parameter schema
//! (`schema.rs`); a freeform (Responses `custom`) tool gets `tool_input=` or [`DEFAULT_INPUT`].

use std::borrow::Cow;

use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::MockReq;
use super::directives::Directives;
use super::errors::{Proto, error_response};
use super::schema;

/// Longest part of a tool result quoted back in the answer text, in characters.
const QUOTED_CHARS: usize = 200;
/// The input of a call to a freeform tool when no `tool_input` directive gives one.
pub(crate) const DEFAULT_INPUT: &str = "echo 'Hello from portcullis-mock.'";
/// The text that opens the answer to a tool result.
pub(crate) const RESULT_PREFIX: &str = "Tool result received: ";

/// The request shapes whose tools the mock reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI Responses.
    Responses,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
}

/// A tool the request declares.
struct Tool {
    name: String,
    parameters: Option<Value>,
    /// A Responses `custom` tool: called with freeform text, not JSON arguments.
    freeform: bool,
}

/// What the request's tool choice asks.
#[derive(PartialEq, Eq)]
enum Choice {
    Auto,
    None,
    /// Some tool must be called: the mock calls the first.
    Required,
    Named(String),
}

/// One tool call of the answer.
pub(crate) struct Call {
    /// The called tool's name.
    pub(crate) name: String,
    /// The arguments object (empty for a freeform call).
    pub(crate) args: Map<String, Value>,
    /// The arguments as compact JSON text, or a freeform call's input.
    pub(crate) input: String,
    /// A call to a freeform (custom) tool.
    pub(crate) freeform: bool,
}

/// What the mock answers a completion request.
pub(crate) enum Answer<'d> {
    /// Assistant text.
    Text(Cow<'d, str>),
    /// Tool calls (at least one).
    Calls(Vec<Call>),
}

/// The parts of any protocol's request body that decide tool calls.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default, alias = "toolConfig", alias = "tool_config")]
    tool_choice: Option<Value>,
    #[serde(default, borrow, alias = "input", alias = "contents")]
    messages: Option<&'a RawValue>,
}

/// Decides the answer to `req` under directives `d` (text or tool calls); a 400 in the
/// protocol's shape when the body or a named tool does not fit.
#[allow(clippy::result_large_err)] // the error is the ready response, returned as is
pub(crate) fn answer<'d>(
    req: &MockReq,
    dialect: Dialect,
    d: &'d Directives,
) -> Result<Answer<'d>, Response> {
    let proto = match dialect {
        Dialect::Chat | Dialect::Responses => Proto::OpenAi,
        Dialect::Anthropic => Proto::Anthropic,
        Dialect::Gemini => Proto::Google,
    };
    decide(&req.body, dialect, d)
        .map_err(|msg| error_response(proto, StatusCode::BAD_REQUEST, &msg, None))
}

fn decide<'d>(body: &[u8], dialect: Dialect, d: &'d Directives) -> Result<Answer<'d>, String> {
    let body: Body<'_> =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let text = || Answer::Text(Cow::Borrowed(d.text()));
    if let Some(result) = body.messages.and_then(|m| tool_results(m, dialect)) {
        if d.reply.is_some() {
            return Ok(text());
        }
        let quoted: String = result.chars().take(QUOTED_CHARS).collect();
        return Ok(Answer::Text(Cow::Owned(format!("{RESULT_PREFIX}{quoted}"))));
    }
    let tools = declared(body.tools.as_deref().unwrap_or_default(), dialect);
    let choice = body.tool_choice.as_ref().map_or(Choice::Auto, choice);
    if tools.is_empty() || choice == Choice::None {
        return Ok(text());
    }
    let named = |name: &str| {
        tools
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| format!("mock: tool {name:?} is not among the request's tools"))
    };
    let first = match (d.tool.as_deref(), &choice) {
        (Some("*"), _) | (None, Choice::Required) => 0,
        (Some(name), _) => named(name)?,
        (None, Choice::Named(name)) => named(name)?,
        (None, _) => return Ok(text()),
    };
    let calls = (0..d.tool_calls)
        .map(|i| call(&tools[(first + i) % tools.len()], d))
        .collect();
    Ok(Answer::Calls(calls))
}

fn call(tool: &Tool, d: &Directives) -> Call {
    if tool.freeform {
        let input = d.tool_input.as_deref().unwrap_or(DEFAULT_INPUT);
        return Call {
            name: tool.name.clone(),
            args: Map::new(),
            input: input.to_owned(),
            freeform: true,
        };
    }
    let args = d
        .tool_args
        .clone()
        .unwrap_or_else(|| schema::arguments(tool.parameters.as_ref()));
    Call {
        name: tool.name.clone(),
        input: Value::Object(args.clone()).to_string(),
        args,
        freeform: false,
    }
}

/// The function tools a request declares (and the Responses API's freeform `custom` tools);
/// built-in tools (web search and the like) are left out.
fn declared(tools: &[Value], dialect: Dialect) -> Vec<Tool> {
    let tool = |name: &Value, parameters: &Value, freeform| {
        Some(Tool {
            name: name.as_str()?.to_owned(),
            parameters: Some(parameters.clone()).filter(|p| !p.is_null()),
            freeform,
        })
    };
    let mut out = Vec::new();
    for t in tools {
        let kind = t["type"].as_str();
        let found = match (dialect, kind) {
            (Dialect::Chat, Some("function")) => {
                tool(&t["function"]["name"], &t["function"]["parameters"], false)
            }
            (Dialect::Responses, Some("function")) => tool(&t["name"], &t["parameters"], false),
            (Dialect::Responses, Some("custom")) => tool(&t["name"], &Value::Null, true),
            (Dialect::Anthropic, None | Some("custom")) => {
                tool(&t["name"], &t["input_schema"], false)
            }
            (Dialect::Gemini, _) => {
                let decls = t
                    .get("functionDeclarations")
                    .or(t.get("function_declarations"));
                for f in decls.and_then(Value::as_array).into_iter().flatten() {
                    let json_schema = f.get("parametersJsonSchema");
                    let parameters = json_schema.unwrap_or(&f["parameters"]);
                    out.extend(tool(&f["name"], parameters, false));
                }
                None
            }
            _ => None,
        };
        out.extend(found);
    }
    out
}

/// Reads any protocol's tool choice: OpenAI's `"none"`/`"required"`/`{type:function,…}`,
/// Responses' `{type:function|custom,name}`, Anthropic's `{type:auto|any|none|tool}`, Gemini's
/// `toolConfig.functionCallingConfig{mode,allowedFunctionNames}`.
fn choice(v: &Value) -> Choice {
    if let Some(config) = v.get("functionCallingConfig") {
        let first = config["allowedFunctionNames"][0].as_str();
        return match (config["mode"].as_str(), first) {
            (Some("ANY"), Some(name)) => Choice::Named(name.to_owned()),
            (Some("ANY"), None) => Choice::Required,
            (Some("NONE"), _) => Choice::None,
            _ => Choice::Auto,
        };
    }
    let word = v.as_str().or(v["type"].as_str());
    match word {
        Some("none") => Choice::None,
        Some("required" | "any") => Choice::Required,
        Some("function" | "custom" | "tool") => {
            let name = v["name"].as_str().or(v["function"]["name"].as_str());
            name.map_or(Choice::Auto, |n| Choice::Named(n.to_owned()))
        }
        _ => Choice::Auto,
    }
}

/// The text of the tool results that end the conversation, joined by newlines; `None` when its
/// last message is not a tool result.
fn tool_results(messages: &RawValue, dialect: Dialect) -> Option<String> {
    let items: Vec<&RawValue> = serde_json::from_str(messages.get()).ok()?;
    let mut texts = Vec::new();
    for item in items.iter().rev() {
        let Ok(item) = serde_json::from_str::<Value>(item.get()) else {
            break;
        };
        let Some(text) = result_text(&item, dialect) else {
            break;
        };
        texts.push(text);
    }
    texts.reverse();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The result text of one message or input item, if it is a tool result.
fn result_text(item: &Value, dialect: Dialect) -> Option<String> {
    let joined = |parts: &[Value], pick: &dyn Fn(&Value) -> Option<String>| {
        let texts: Vec<String> = parts.iter().filter_map(pick).collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    };
    match dialect {
        Dialect::Chat => (item["role"] == "tool").then(|| content_text(&item["content"])),
        Dialect::Responses => {
            let kind = item["type"].as_str()?;
            let result = matches!(kind, "function_call_output" | "custom_tool_call_output");
            result.then(|| content_text(&item["output"]))
        }
        Dialect::Anthropic if item["role"] == "user" => {
            let blocks = item["content"].as_array()?;
            joined(blocks, &|b| {
                (b["type"] == "tool_result").then(|| content_text(&b["content"]))
            })
        }
        Dialect::Gemini => {
            let parts = item["parts"].as_array()?;
            joined(parts, &|p| {
                let response = p.get("functionResponse")?.get("response")?;
                Some(response_text(response))
            })
        }
        Dialect::Anthropic => None,
    }
}

/// A result's content as text: a string as is, the `text` of a list of parts, else its JSON.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A Gemini `functionResponse.response` as text: its only field when that is a string
/// (`{"output": "…"}`), else its JSON.
fn response_text(v: &Value) -> String {
    match v
        .as_object()
        .map(|o| o.values().collect::<Vec<_>>())
        .as_deref()
    {
        Some([Value::String(s)]) => s.clone(),
        _ => v.to_string(),
    }
}

/// Deterministic ids: `<prefix><request number>_<call index>` (`call_mock_3_0`).
pub(crate) fn id(prefix: &str, seq: u64, i: usize) -> String {
    format!("{prefix}mock_{seq}_{i}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn calls(body: Value, dialect: Dialect, mock: &str) -> Vec<(String, Value)> {
        let d = Directives::parse(Some(mock.as_bytes())).unwrap();
        let body = serde_json::to_vec(&body).unwrap();
        match decide(&body, dialect, &d).unwrap() {
            Answer::Calls(c) => c
                .into_iter()
                .map(|c| (c.name, Value::Object(c.args)))
                .collect(),
            Answer::Text(t) => vec![(t.into_owned(), Value::Null)],
        }
    }

    #[test]
    fn choices_of_every_protocol() {
        let named = |n: &str| Choice::Named(n.to_owned());
        let cases = [
            (json!("required"), Choice::Required),
            (json!("none"), Choice::None),
            (
                json!({"type": "function", "function": {"name": "a"}}),
                named("a"),
            ),
            (json!({"type": "custom", "name": "b"}), named("b")),
            (json!({"type": "tool", "name": "c"}), named("c")),
            (json!({"type": "any"}), Choice::Required),
            (json!({"type": "auto"}), Choice::Auto),
            (
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["d"]}}),
                named("d"),
            ),
            (
                json!({"functionCallingConfig": {"mode": "NONE"}}),
                Choice::None,
            ),
        ];
        for (v, expected) in cases {
            assert!(choice(&v) == expected, "{v}");
        }
    }

    #[test]
    fn cycles_through_declared_tools_and_rejects_unknown_names() {
        let body = json!({"tools": [{"name": "a"}, {"name": "b", "input_schema": {"type": "object",
            "properties": {"q": {"type": "string"}}, "required": ["q"]}}], "messages": []});
        let got = calls(body.clone(), Dialect::Anthropic, "tool=b; tool_calls=3");
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a", "b"]);
        assert_eq!(got[0].1, json!({"q": "q"}));
        assert_eq!(got[1].1, json!({}));
        let d = Directives::parse(Some(b"tool=zzz")).unwrap();
        let raw = serde_json::to_vec(&body).unwrap();
        assert!(decide(&raw, Dialect::Anthropic, &d).is_err());
        // No directive and no forcing choice: text.
        assert_eq!(calls(body, Dialect::Anthropic, "")[0].1, Value::Null);
    }

    #[test]
    fn trailing_results_are_joined_and_quoted() {
        let body = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "x", "content": [{"type": "text", "text": "one"}]},
            {"role": "tool", "tool_call_id": "y", "content": "two"},
        ], "tools": [{"type": "function", "function": {"name": "f"}}]});
        let got = calls(body, Dialect::Chat, "tool=*");
        assert_eq!(got[0].0, format!("{RESULT_PREFIX}one\ntwo"));
        let long = "x".repeat(500);
        let body = json!({"contents": [{"role": "user", "parts": [{"functionResponse":
            {"name": "f", "response": {"output": long}}}]}]});
        let got = calls(body, Dialect::Gemini, "");
        assert_eq!(got[0].0.len(), RESULT_PREFIX.len() + QUOTED_CHARS);
    }
}
