//! Gemini content parts to and from canonical parts, shared by requests and answers; the
//! OpenAPI-subset schema normaliser; `usageMetadata` and `finishReason`.

use serde_json::{Map, Value, json};

use super::{invalid, unsupported, whole};
use crate::translate::TranslateError;
use crate::translate::fields::{Fields, arguments_object, data_url, image_from_url, is_image_type};
use crate::translate::model::{
    Image, Message, Part, Reasoning, Role, StopReason, TokenUsage, ToolCall, ToolResult,
};

/// The signature Google documents for function calls whose real one is unknown (history
/// written by another model, or by hand): Gemini 3 refuses a turn's first function call
/// without a signature, and accepts this one instead.
pub(super) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Reads parts of successive contents, making ids for calls that have none and pairing
/// function responses without an id with the call they answer.
#[derive(Debug)]
pub(super) struct PartReader {
    /// Prefix of made-up call ids.
    prefix: String,
    /// Made-up ids so far.
    made: usize,
    /// Calls seen: (id, name, answered).
    calls: Vec<(String, String, bool)>,
    /// Reading an upstream answer (errors are the upstream's; what does not translate is
    /// dropped, not refused).
    answer: bool,
    /// A function call was read.
    pub(super) saw_call: bool,
}

impl PartReader {
    /// A reader whose made-up call ids are `<prefix><n>`.
    pub(super) fn new(prefix: String, answer: bool) -> Self {
        Self {
            prefix,
            made: 0,
            calls: Vec::new(),
            answer,
            saw_call: false,
        }
    }

    /// A fresh id for a call without one.
    pub(super) fn make_id(&mut self) -> String {
        let id = format!("{}{}", self.prefix, self.made);
        self.made += 1;
        id
    }

    /// The canonical parts of one content's `parts`, said by `role`.
    pub(super) fn read(
        &mut self,
        content: &Fields<'_>,
        role: Role,
    ) -> Result<Vec<Part>, TranslateError> {
        let mut out = Vec::new();
        for p in content.items("parts")? {
            self.read_part(&p, role, &mut out)?;
        }
        Ok(out)
    }

    fn read_part(
        &mut self,
        p: &Fields<'_>,
        role: Role,
        out: &mut Vec<Part>,
    ) -> Result<(), TranslateError> {
        // The placeholder the encoder writes for a call that came without one is no signature.
        let signature = p
            .str("thoughtSignature")?
            .filter(|s| *s != SKIP_SIGNATURE)
            .map(str::to_owned);
        if let Some(text) = p.str("text")? {
            if p.bool("thought")? == Some(true) {
                out.push(Part::Reasoning(Reasoning {
                    text: text.to_owned(),
                    signature,
                    encrypted: None,
                }));
            } else {
                push_signature(out, signature);
                if !text.is_empty() {
                    out.push(Part::Text(text.to_owned()));
                }
            }
        } else if let Some(call) = p.obj("functionCall")? {
            let call = self.read_call(&call)?;
            push_signature(out, signature);
            out.push(Part::ToolCall(call));
        } else if let Some(resp) = p.obj("functionResponse")? {
            let result = self.read_result(&resp)?;
            if self.answer || role == Role::Assistant {
                tracing::debug!("gemini function response in a model turn dropped");
            } else {
                out.push(Part::ToolResult(result));
            }
        } else if let Some(blob) = p.obj("inlineData")? {
            self.keep_image(read_blob(&blob)?, blob.at(), out)?;
        } else if let Some(file) = p.obj("fileData")? {
            self.keep_image(read_file(&file)?, file.at(), out)?;
        } else if p.get("executableCode").is_some() || p.get("codeExecutionResult").is_some() {
            tracing::debug!("gemini code execution part dropped (provider-hosted tool)");
        } else {
            let keys: Vec<&String> = p.map.keys().collect();
            tracing::debug!(
                ?keys,
                path = p.at(),
                "gemini part of an unknown kind dropped"
            );
        }
        Ok(())
    }

    /// Keeps an image in a request; refuses other media there (`None`: not an image every
    /// dialect can carry), drops them from answers.
    fn keep_image(
        &self,
        (image, mime): (Option<Image>, Option<String>),
        path: &str,
        out: &mut Vec<Part>,
    ) -> Result<(), TranslateError> {
        if self.answer {
            tracing::debug!(?mime, "media in a gemini answer dropped");
        } else if let Some(image) = image {
            out.push(Part::Image(image));
        } else {
            let field = format!("{path} {}", mime.unwrap_or_default());
            return Err(unsupported(&field, "only images translate"));
        }
        Ok(())
    }

    fn read_call(&mut self, c: &Fields<'_>) -> Result<ToolCall, TranslateError> {
        let name = c.req_str("name")?;
        let id = match c.str("id")? {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => self.make_id(),
        };
        let arguments = match c.get("args") {
            Some(args) if args.is_object() => args.to_string(),
            Some(_) => return Err(c.wrong("args", "a JSON object")),
            None => "{}".to_owned(),
        };
        self.calls.push((id.clone(), name.to_owned(), false));
        self.saw_call = true;
        Ok(ToolCall {
            id,
            name: name.to_owned(),
            arguments,
        })
    }

    fn read_result(&mut self, r: &Fields<'_>) -> Result<ToolResult, TranslateError> {
        let name = r.req_str("name")?;
        let call_id = match r.str("id")? {
            Some(id) if !id.is_empty() => {
                if let Some(c) = self.calls.iter_mut().find(|c| c.0 == id) {
                    c.2 = true;
                }
                id.to_owned()
            }
            _ => match self.calls.iter_mut().find(|c| !c.2 && c.1 == name) {
                Some(c) => {
                    c.2 = true;
                    c.0.clone()
                }
                None => {
                    tracing::debug!(function = name, "gemini function response answers no call");
                    self.make_id()
                }
            },
        };
        let (text, is_error) = response_text(r.get("response"));
        let mut content = vec![Part::Text(text)];
        for p in r.items("parts")? {
            match p.obj("inlineData")? {
                Some(blob) => self.keep_image(read_blob(&blob)?, blob.at(), &mut content)?,
                None => tracing::debug!(path = p.at(), "gemini function response part dropped"),
            }
        }
        Ok(ToolResult {
            call_id,
            name: Some(name.to_owned()),
            content,
            is_error,
        })
    }
}

/// A signature not on a thought travels as an empty reasoning part before what carried it.
fn push_signature(out: &mut Vec<Part>, signature: Option<String>) {
    if let Some(signature) = signature {
        out.push(Part::Reasoning(Reasoning {
            text: String::new(),
            signature: Some(signature),
            encrypted: None,
        }));
    }
}

/// A function response as text: `{"output": s}` is `s`, `{"error": e}` an error, anything
/// else its JSON.
fn response_text(response: Option<&Value>) -> (String, bool) {
    let Some(response) = response else {
        return (String::new(), false);
    };
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match response.as_object() {
        Some(m) if m.len() == 1 && m.get("output").is_some_and(Value::is_string) => {
            (text(&m["output"]), false)
        }
        Some(m) if m.len() == 1 && m.contains_key("error") => (text(&m["error"]), true),
        _ => (response.to_string(), false),
    }
}

/// Inline media: an image when its type is one, with the type.
fn read_blob(b: &Fields<'_>) -> Result<(Option<Image>, Option<String>), TranslateError> {
    let mime = b.req_str("mimeType")?;
    let data = b.req_str("data")?;
    let image = is_image_type(mime).then(|| Image::Base64 {
        media_type: mime.to_owned(),
        data: data.to_owned(),
    });
    Ok((image, Some(mime.to_owned())))
}

/// Media by address: an image unless its type says otherwise or it is a `data:` address that
/// is not an inline image, with the type.
fn read_file(f: &Fields<'_>) -> Result<(Option<Image>, Option<String>), TranslateError> {
    let mime = f.str("mimeType")?;
    let url = f.req_str("fileUri")?;
    let image = match mime {
        Some(m) if !is_image_type(m) => None,
        _ => image_from_url(url, mime),
    };
    Ok((image, mime.map(str::to_owned)))
}

/// Normalises Gemini's OpenAPI-subset schema (`"type": "STRING"`, `nullable`,
/// `propertyOrdering`) to JSON Schema.
pub(crate) fn normalise_schema(schema: &Value) -> Value {
    let Some(m) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    let nullable = m.get("nullable").and_then(Value::as_bool) == Some(true);
    for (k, v) in m {
        let v = match k.as_str() {
            "nullable" | "propertyOrdering" | "property_ordering" => continue,
            "type" => match v.as_str().map(str::to_ascii_lowercase) {
                Some(t) if t == "type_unspecified" => continue,
                Some(t) if nullable => json!([t, "null"]),
                Some(t) => json!(t),
                None => v.clone(),
            },
            "properties" => match v.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(n, s)| (n.clone(), normalise_schema(s)))
                        .collect(),
                ),
                None => v.clone(),
            },
            "items" => normalise_schema(v),
            "anyOf" | "any_of" => match v.as_array() {
                Some(items) => Value::Array(items.iter().map(normalise_schema).collect()),
                None => v.clone(),
            },
            _ => v.clone(),
        };
        let key = if k == "any_of" { "anyOf" } else { k.as_str() };
        out.insert(key.to_owned(), v);
    }
    Value::Object(out)
}

/// Writes canonical messages as `contents`.
pub(super) fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, TranslateError> {
    let names: Vec<(&str, &str)> = messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some((c.id.as_str(), c.name.as_str())),
            _ => None,
        })
        .collect();
    let mut contents = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let mut parts = Vec::new();
        let mut signing = Signing::new(m.role == Role::Assistant);
        for (j, part) in m.content.iter().enumerate() {
            if signing.holds(part, m.content.get(j + 1)) {
                continue;
            }
            match part {
                Part::ToolResult(r) => encode_result(r, &names, i, &mut parts)?,
                other => parts.extend(encode_part(other, &mut signing)),
            }
        }
        if parts.is_empty() {
            tracing::debug!(
                message = i,
                "an empty message is left out of the Gemini request"
            );
            continue;
        }
        let role = if m.role == Role::Assistant {
            "model"
        } else {
            "user"
        };
        contents.push(json!({"role": role, "parts": parts}));
    }
    Ok(contents)
}

/// Which thought signature the next part carries.
pub(super) struct Signing {
    /// A signature waiting for the part it belongs to.
    pending: Option<String>,
    /// Give the first function call the placeholder signature when it has none (requests).
    placeholder: bool,
}

impl Signing {
    /// `placeholder`: a request's model turn (Gemini 3 checks its first call's signature).
    pub(super) fn new(placeholder: bool) -> Self {
        Self {
            pending: None,
            placeholder,
        }
    }

    /// Takes a signature-only reasoning part that a text or call follows (it goes on that
    /// part); false for any other part, which is written.
    pub(super) fn holds(&mut self, part: &Part, next: Option<&Part>) -> bool {
        let Part::Reasoning(r) = part else {
            return false;
        };
        let carried = matches!(next, Some(Part::Text(_) | Part::ToolCall(_)));
        if r.text.is_empty() && r.encrypted.is_none() && r.signature.is_some() && carried {
            self.pending = r.signature.clone();
            return true;
        }
        false
    }

    /// The signature of the next text part.
    fn text(&mut self) -> Option<String> {
        self.pending.take()
    }

    /// The signature of the next function call.
    pub(super) fn call(&mut self) -> Option<String> {
        let sig = self.pending.take();
        if self.placeholder {
            self.placeholder = false;
            return sig.or_else(|| Some(SKIP_SIGNATURE.to_owned()));
        }
        sig
    }
}

/// One non-result part as Gemini parts (none when it does not translate).
pub(super) fn encode_part(part: &Part, signing: &mut Signing) -> Option<Value> {
    match part {
        Part::Text(t) => Some(signed(json!({"text": t}), signing.text())),
        Part::Image(image) => Some(image_part(image)),
        Part::ToolCall(c) => Some(call_part(&c.id, &c.name, &c.arguments, signing.call())),
        Part::Reasoning(r) => {
            if r.encrypted.is_some() {
                tracing::debug!("encrypted reasoning dropped: Gemini cannot read it");
            }
            if r.text.is_empty() && r.signature.is_none() {
                return None;
            }
            let part = if r.text.is_empty() {
                json!({"text": ""})
            } else {
                json!({"text": r.text, "thought": true})
            };
            Some(signed(part, r.signature.clone()))
        }
        Part::ToolResult(_) => None,
    }
}

fn signed(mut part: Value, signature: Option<String>) -> Value {
    if let (Some(sig), Some(m)) = (signature, part.as_object_mut()) {
        m.insert("thoughtSignature".into(), json!(sig));
    }
    part
}

/// A `functionCall` part; arguments that are not a JSON object become `{}`.
pub(super) fn call_part(id: &str, name: &str, arguments: &str, signature: Option<String>) -> Value {
    let args = arguments_object(name, arguments);
    signed(
        json!({"functionCall": {"id": id, "name": name, "args": args}}),
        signature,
    )
}

fn image_part(image: &Image) -> Value {
    match image {
        Image::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        Image::Url { url, media_type } => {
            if let Some((mime, data)) = data_url(url) {
                return json!({"inlineData": {"mimeType": mime, "data": data}});
            }
            let mut file = Map::new();
            if let Some(m) = media_type {
                file.insert("mimeType".into(), json!(m));
            }
            file.insert("fileUri".into(), json!(url));
            json!({"fileData": file})
        }
    }
}

/// A tool result as a `functionResponse` part, its images as parts after it.
fn encode_result(
    r: &ToolResult,
    names: &[(&str, &str)],
    message: usize,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let name = match &r.name {
        Some(n) => n.as_str(),
        None => names
            .iter()
            .rev()
            .find(|(id, _)| *id == r.call_id)
            .map(|(_, n)| *n)
            .ok_or_else(|| {
                invalid(format!(
                    "messages[{message}]: the result of call `{}` names no function and answers no call of the conversation (Gemini needs the name)",
                    r.call_id
                ))
            })?,
    };
    let texts: Vec<&str> = r
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let text = texts.join("\n");
    let object = serde_json::from_str::<Value>(&text)
        .ok()
        .filter(|v| v.is_object());
    let response = match object {
        Some(v) if r.is_error => json!({"error": v}),
        None if r.is_error => json!({"error": text}),
        // An object that would read back as an error or a bare output is wrapped.
        Some(v) if !looks_wrapped(&v) => v,
        _ => json!({"output": text}),
    };
    out.push(json!({"functionResponse": {"id": r.call_id, "name": name, "response": response}}));
    out.extend(r.content.iter().filter_map(|p| match p {
        Part::Image(image) => Some(image_part(image)),
        _ => None,
    }));
    Ok(())
}

fn looks_wrapped(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.len() == 1 && (m.contains_key("error") || m.get("output").is_some_and(Value::is_string))
    })
}

/// Reads `usageMetadata`.
pub(super) fn read_usage(u: &Fields<'_>) -> Result<TokenUsage, TranslateError> {
    let count = |k: &str| whole(u, k);
    let thoughts = count("thoughtsTokenCount")?;
    Ok(TokenUsage {
        // Saturating: the counts come from the upstream (found by the `translate` fuzz target).
        input: count("promptTokenCount")?
            .unwrap_or(0)
            .saturating_add(count("toolUsePromptTokenCount")?.unwrap_or(0)),
        output: count("candidatesTokenCount")?
            .unwrap_or(0)
            .saturating_add(thoughts.unwrap_or(0)),
        cached_input: count("cachedContentTokenCount")?,
        cache_creation: None,
        reasoning: thoughts,
    })
}

/// Writes `usageMetadata`.
pub(super) fn usage_json(u: &TokenUsage) -> Value {
    let thoughts = u.reasoning.unwrap_or(0).min(u.output);
    let mut m = Map::new();
    m.insert("promptTokenCount".into(), json!(u.input));
    m.insert("candidatesTokenCount".into(), json!(u.output - thoughts));
    if let Some(c) = u.cached_input {
        m.insert("cachedContentTokenCount".into(), json!(c));
    }
    if let Some(r) = u.reasoning {
        m.insert("thoughtsTokenCount".into(), json!(r));
    }
    m.insert("totalTokenCount".into(), json!(u.total()));
    Value::Object(m)
}

/// A `finishReason` as a stop reason (`calls`: the answer holds function calls).
pub(super) fn read_finish(reason: &str, calls: bool) -> StopReason {
    match reason {
        "STOP" if calls => StopReason::ToolUse,
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        other => StopReason::Other(other.to_owned()),
    }
}

/// Gemini's other finish reasons, written back as themselves.
const OTHER_REASONS: &[&str] = &[
    "OTHER",
    "LANGUAGE",
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "FINISH_REASON_UNSPECIFIED",
];

/// A stop reason as a `finishReason`.
pub(super) fn finish_word(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::ToolUse | StopReason::StopSequence(_) => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other(w) => OTHER_REASONS
            .iter()
            .find(|r| **r == w.as_str())
            .copied()
            .unwrap_or("OTHER"),
    }
}
