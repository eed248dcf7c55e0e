//! The Gemini `generateContent` / `streamGenerateContent?alt=sse` codec: Google's request,
//! answer and stream shapes to and from the intermediate shape ([`super::model`]).
//!
//! The model and streaming are in the URL (`models/{m}:generateContent`), so
//! [`decode_request`] leaves `model` empty and `stream` false and [`encode_request`] writes
//! neither. The REST API accepts every field in camelCase or snake_case; so does the decoder.
//!
//! | Gemini field | decoding a caller's request | encoding for a Gemini backend |
//! |---|---|---|
//! | `systemInstruction.parts[].text` | `system` (non-text parts refused) | written |
//! | `contents[].role` `user`/`function`, `model` | user, assistant | `user`, `model` |
//! | `text` + `thought: true` | reasoning | reasoning text is written as a thought part |
//! | `thoughtSignature` | on a thought: its signature; elsewhere an empty reasoning part (signature only) before the part it was on | written back on the same part; a function call without one gets `skip_thought_signature_validator` (first call of a turn) |
//! | `inlineData` / `fileData` | images (base64 / URL); other media refused | images |
//! | `functionCall{id,name,args}` | tool call (no id: `call_<n>`) | written, args parsed (not an object: `{}`, warned) |
//! | `functionResponse{id,name,response}` | tool result (no id: the earliest unanswered call of that name); `{"output": s}` → `s`, `{"error": e}` → error result, else the JSON text; `parts[].inlineData` → images | `{"output": text}` (`{"error": text}` when failed), a JSON-object text as itself; images follow as `inlineData` parts |
//! | `executableCode`, `codeExecutionResult` | dropped (debug): provider-hosted tool traces | — |
//! | `tools[].functionDeclarations` | tools; OpenAPI `parameters` normalised to JSON Schema, `parametersJsonSchema` as is | `parametersJsonSchema` |
//! | `googleSearch`, `codeExecution`, `urlContext`, other hosted tools | dropped (debug) | — |
//! | `toolConfig.functionCallingConfig` | `AUTO`/`VALIDATED` → auto, `NONE`, `ANY` → required (one allowed name: that function) | `AUTO`, `NONE`, `ANY` (+ `allowedFunctionNames`) |
//! | `generationConfig.temperature/topP/topK/seed/presencePenalty/frequencyPenalty/maxOutputTokens/stopSequences` | kept | written |
//! | `generationConfig.responseMimeType` (+ `responseSchema`/`responseJsonSchema`) | `text/plain` text, `application/json` JSON (with schema: JSON schema); `text/x.enum` and others refused | written (`responseJsonSchema`) |
//! | `generationConfig.thinkingConfig` | `thinkingBudget` (−1: dynamic, none), `thinkingLevel` → effort, `includeThoughts` | `thinkingLevel` for an effort on `gemini-3*`, else `thinkingBudget`; `includeThoughts` |
//! | `candidateCount` > 1, `responseModalities` other than `TEXT`, `responseLogprobs: true`, `cachedContent` | refused | — |
//! | `safetySettings`, `labels`, `logprobs`, `mediaResolution`, `speechConfig`, `imageConfig` | dropped (debug) | — |
//! | `parallel_tool_calls`, `user`, tool `strict`, reasoning `encrypted` | — | dropped (debug): Gemini has no such field |
//!
//! Answers: `finishReason` `STOP` is end of turn (tool use when the content holds function
//! calls), `MAX_TOKENS`, the safety family (`SAFETY`, `RECITATION`, `BLOCKLIST`,
//! `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY`) and a `promptFeedback.blockReason` without
//! candidates are content filters, anything else is kept as its word. `usageMetadata`: input
//! is `promptTokenCount` (+ `toolUsePromptTokenCount`), output is `candidatesTokenCount` +
//! `thoughtsTokenCount`, cached is `cachedContentTokenCount`, reasoning `thoughtsTokenCount`.
//! Streams: each `data:` is a whole answer chunk; a function call arrives whole (one arguments
//! fragment), and the encoder writes a call once its arguments are complete.

mod answer;
mod parts;
mod stream;

pub use answer::{decode_response, encode_response};
pub use stream::{StreamDecoder, StreamEncoder};

use serde_json::{Map, Value, json};

use super::TranslateError;
use super::fields::{Blame, Fields, parse, put, to_json, unsupported};
use super::model::{Message, ReasoningConfig, Request, ResponseFormat, Role, Tool, ToolChoice};
use parts::{PartReader, normalise_schema};

/// `v` as a Gemini object at `at` (`""`: the body): its keys are read in camelCase or in
/// their snake_case spelling, as Google's REST API accepts both.
fn object(v: &Value, at: impl Into<String>, err: Blame) -> Result<Fields<'_>, TranslateError> {
    Ok(Fields::of(v, at, err)?.with_alias(snake))
}

/// A whole-number member as proto3 JSON may write it ([`as_u64`]).
fn whole(o: &Fields<'_>, key: &str) -> Result<Option<u64>, TranslateError> {
    o.typed(key, "a non-negative integer", as_u64)
}

/// An integer member, also written as a string (proto3 JSON prints 64-bit integers so).
fn integer(o: &Fields<'_>, key: &str) -> Result<Option<i64>, TranslateError> {
    o.typed(key, "an integer", |v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

/// A whole number, also written as `40.0` or `"40"` (proto3 JSON prints 64-bit integers as
/// strings).
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
}

/// `systemInstruction` → `system_instruction`.
fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn invalid(msg: String) -> TranslateError {
    TranslateError::Invalid(msg)
}

/// Reads a caller's `generateContent` body.
pub fn decode_request(body: &[u8]) -> Result<Request, TranslateError> {
    let v = parse(body, "the request body", invalid)?;
    let top = object(&v, "", invalid)?;
    if top.get("cachedContent").is_some() {
        return Err(unsupported(
            "cachedContent",
            "a Gemini context cache exists only on Google's side",
        ));
    }
    for key in ["safetySettings", "labels"] {
        if top.get(key).is_some() {
            tracing::debug!(field = key, "gemini request field dropped in translation");
        }
    }
    let mut req = Request {
        system: decode_system(&top)?,
        ..Request::default()
    };
    let mut reader = PartReader::new("call_".into(), false);
    for content in top.items("contents")? {
        let role = match content.str("role")? {
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(invalid(format!(
                    "`{}` `{other}` is not `user`, `model` or `function`",
                    content.path("role")
                )));
            }
        };
        let content = reader.read(&content, role)?;
        if !content.is_empty() {
            req.messages.push(Message { role, content });
        }
    }
    req.tools = decode_tools(&top)?;
    if let Some(tc) = top.obj("toolConfig")? {
        req.tool_choice = decode_tool_config(&tc)?;
    }
    if let Some(gc) = top.obj("generationConfig")? {
        decode_generation_config(&gc, &mut req)?;
    }
    Ok(req)
}

fn decode_system(top: &Fields<'_>) -> Result<Vec<String>, TranslateError> {
    if let Some(s) = top.get("systemInstruction").and_then(Value::as_str) {
        return Ok(vec![s.to_owned()]);
    }
    let Some(si) = top.obj("systemInstruction")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in si.items("parts")? {
        match p.str("text")? {
            Some(t) => out.push(t.to_owned()),
            None => {
                return Err(unsupported(
                    p.at(),
                    "a system instruction translates as text only",
                ));
            }
        }
    }
    Ok(out)
}

fn decode_tools(top: &Fields<'_>) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for tool in top.items("tools")? {
        for key in tool.map.keys() {
            if key != "functionDeclarations" && key != "function_declarations" {
                tracing::debug!(tool = %key, "provider-hosted Gemini tool dropped in translation");
            }
        }
        for f in tool.items("functionDeclarations")? {
            out.push(decode_function(&f)?);
        }
    }
    Ok(out)
}

fn decode_function(f: &Fields<'_>) -> Result<Tool, TranslateError> {
    let name = f.req_str("name")?;
    let parameters = match (f.get("parametersJsonSchema"), f.get("parameters")) {
        (Some(schema), _) => schema.clone(),
        (None, Some(openapi)) => normalise_schema(openapi),
        (None, None) => json!({"type": "object", "properties": {}}),
    };
    if f.get("response").is_some() || f.get("responseJsonSchema").is_some() {
        tracing::debug!(function = name, "gemini function response schema dropped");
    }
    Ok(Tool {
        name: name.to_owned(),
        description: f.str("description")?.map(str::to_owned),
        parameters,
        strict: None,
        freeform: false,
    })
}

fn decode_tool_config(tc: &Fields<'_>) -> Result<Option<ToolChoice>, TranslateError> {
    let Some(fc) = tc.obj("functionCallingConfig")? else {
        return Ok(None);
    };
    let names = fc.strings("allowedFunctionNames")?;
    Ok(match fc.str("mode")? {
        None | Some("MODE_UNSPECIFIED") => None,
        Some("AUTO" | "VALIDATED") => {
            if !names.is_empty() {
                tracing::debug!("gemini allowedFunctionNames without mode ANY dropped");
            }
            Some(ToolChoice::Auto)
        }
        Some("NONE") => Some(ToolChoice::None),
        Some("ANY") => match <[String; 1]>::try_from(names) {
            Ok([name]) => Some(ToolChoice::Function(name)),
            Err(names) => {
                if !names.is_empty() {
                    tracing::debug!(?names, "gemini ANY among several functions: any tool");
                }
                Some(ToolChoice::Required)
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "`toolConfig.functionCallingConfig.mode` `{other}` is not AUTO, ANY, NONE or VALIDATED"
            )));
        }
    })
}

fn decode_generation_config(gc: &Fields<'_>, req: &mut Request) -> Result<(), TranslateError> {
    if whole(gc, "candidateCount")?.is_some_and(|n| n > 1) {
        return Err(unsupported(
            "generationConfig.candidateCount > 1",
            "one answer translates",
        ));
    }
    if gc.bool("responseLogprobs")? == Some(true) {
        return Err(unsupported(
            "generationConfig.responseLogprobs",
            "log probabilities do not translate",
        ));
    }
    for (i, m) in gc.strings("responseModalities")?.iter().enumerate() {
        if !m.eq_ignore_ascii_case("TEXT") {
            let field = format!("generationConfig.responseModalities[{i}] {m}");
            return Err(unsupported(&field, "only text answers translate"));
        }
    }
    for key in ["logprobs", "mediaResolution", "speechConfig", "imageConfig"] {
        if gc.get(key).is_some() {
            tracing::debug!(field = key, "gemini generationConfig field dropped");
        }
    }
    req.temperature = gc.f64("temperature")?;
    req.top_p = gc.f64("topP")?;
    req.top_k = whole(gc, "topK")?;
    req.max_tokens = whole(gc, "maxOutputTokens")?;
    req.stop = gc.strings("stopSequences")?;
    req.seed = integer(gc, "seed")?;
    req.presence_penalty = gc.f64("presencePenalty")?;
    req.frequency_penalty = gc.f64("frequencyPenalty")?;
    req.response_format = decode_response_format(gc)?;
    if let Some(tc) = gc.obj("thinkingConfig")? {
        req.reasoning = Some(decode_thinking(&tc)?);
    }
    Ok(())
}

fn decode_response_format(gc: &Fields<'_>) -> Result<Option<ResponseFormat>, TranslateError> {
    let schema = gc
        .get("responseJsonSchema")
        .or_else(|| gc.get("_responseJsonSchema"))
        .cloned()
        .or_else(|| gc.get("responseSchema").map(normalise_schema));
    Ok(match gc.str("responseMimeType")? {
        None => {
            if schema.is_some() {
                tracing::debug!("gemini response schema without responseMimeType dropped");
            }
            None
        }
        Some("text/plain") => Some(ResponseFormat::Text),
        Some("application/json") => Some(match schema {
            Some(schema) => ResponseFormat::JsonSchema {
                name: "response".into(),
                schema,
                strict: None,
            },
            None => ResponseFormat::JsonObject,
        }),
        Some(other) => {
            let field = format!("generationConfig.responseMimeType {other}");
            return Err(unsupported(&field, "only text and JSON answers translate"));
        }
    })
}

fn decode_thinking(tc: &Fields<'_>) -> Result<ReasoningConfig, TranslateError> {
    let budget = integer(tc, "thinkingBudget")?;
    Ok(ReasoningConfig {
        effort: tc.str("thinkingLevel")?.map(str::to_ascii_lowercase),
        // −1 asks for a dynamic budget: the model decides, as without one.
        budget_tokens: budget.and_then(|b| u64::try_from(b).ok()),
        include: tc.bool("includeThoughts")?.unwrap_or(false),
    })
}

/// Writes `req` as a `generateContent` body (the model and streaming go in the URL).
pub fn encode_request(req: &Request) -> Result<Vec<u8>, TranslateError> {
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(parts::encode_messages(&req.messages)?),
    );
    if !req.system.is_empty() {
        let texts: Vec<Value> = req.system.iter().map(|t| json!({"text": t})).collect();
        body.insert("systemInstruction".into(), json!({"parts": texts}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req.tools.iter().map(encode_tool).collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(choice) = &req.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Function(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            };
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
    }
    if req.parallel_tool_calls.is_some() {
        tracing::debug!("parallel_tool_calls dropped: Gemini has no switch for it");
    }
    if req.user.is_some() {
        tracing::debug!("user dropped: Gemini has no end-user field");
    }
    let gc = encode_generation_config(req);
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    Ok(to_json(&Value::Object(body)))
}

fn encode_tool(t: &Tool) -> Value {
    if t.strict.is_some() {
        tracing::debug!(tool = %t.name, "tool strictness dropped: Gemini has no such flag");
    }
    let mut f = Map::new();
    f.insert("name".into(), json!(t.name));
    if let Some(d) = &t.description {
        f.insert("description".into(), json!(d));
    }
    f.insert("parametersJsonSchema".into(), t.parameters.clone());
    Value::Object(f)
}

fn encode_generation_config(req: &Request) -> Map<String, Value> {
    let mut gc = Map::new();
    put(&mut gc, "maxOutputTokens", req.max_tokens);
    put(
        &mut gc,
        "stopSequences",
        (!req.stop.is_empty()).then_some(&req.stop),
    );
    put(&mut gc, "temperature", req.temperature);
    put(&mut gc, "topP", req.top_p);
    put(&mut gc, "topK", req.top_k);
    put(&mut gc, "seed", req.seed);
    put(&mut gc, "presencePenalty", req.presence_penalty);
    put(&mut gc, "frequencyPenalty", req.frequency_penalty);
    match &req.response_format {
        None => {}
        Some(ResponseFormat::Text) => put(&mut gc, "responseMimeType", Some("text/plain")),
        Some(ResponseFormat::JsonObject) => {
            put(&mut gc, "responseMimeType", Some("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put(&mut gc, "responseMimeType", Some("application/json"));
            put(&mut gc, "responseJsonSchema", Some(schema));
        }
    }
    put(
        &mut gc,
        "thinkingConfig",
        req.reasoning
            .as_ref()
            .and_then(|r| encode_thinking(r, &req.model)),
    );
    gc
}

/// `thinkingConfig` for `model`: Gemini 3 models take a level (for an effort), older ones a
/// budget; the two cannot be combined.
fn encode_thinking(r: &ReasoningConfig, model: &str) -> Option<Value> {
    let mut tc = Map::new();
    let level = r.effort.as_deref().filter(|_| r.budget_tokens.is_none());
    match level {
        Some(effort) if model.contains("gemini-3") => {
            let level = if effort == "none" { "minimal" } else { effort };
            tc.insert("thinkingLevel".into(), json!(level));
        }
        _ => {
            // `budget_tokens` first: `ReasoningConfig::budget` returns None without an effort.
            if let Some(b) = r.budget_tokens.or_else(|| r.budget()) {
                tc.insert("thinkingBudget".into(), json!(b));
            }
        }
    }
    if r.include {
        tc.insert("includeThoughts".into(), json!(true));
    }
    (!tc.is_empty()).then_some(Value::Object(tc))
}

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
