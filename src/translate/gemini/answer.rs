//! Whole Gemini answers (`GenerateContentResponse`) to and from [`Response`].

use serde_json::{Map, Value, json};

use super::parts::{self, PartReader, Signing};
use super::{object, whole};
use crate::translate::fields::{parse, to_json};
use crate::translate::model::{Part, Response, Role, TokenUsage};
use crate::translate::{AnswerContext, TranslateError};

fn upstream(msg: String) -> TranslateError {
    TranslateError::Upstream(msg)
}

/// The prefix of ids made for an answer's function calls that have none.
pub(super) fn call_prefix(response_id: &str) -> String {
    if response_id.is_empty() {
        "call_".to_owned()
    } else {
        format!("call_{response_id}_")
    }
}

/// What one answer chunk (or whole answer) says.
pub(super) struct Chunk {
    /// `responseId`.
    pub(super) id: Option<String>,
    /// `modelVersion`.
    pub(super) model: Option<String>,
    /// The first candidate's parts (none without a candidate).
    pub(super) parts: Vec<Part>,
    /// `finishReason`, or `SAFETY` for a prompt blocked before any candidate.
    pub(super) finish: Option<String>,
    /// `usageMetadata`.
    pub(super) usage: Option<TokenUsage>,
}

/// Reads one `GenerateContentResponse` with `reader` (which makes call ids and remembers
/// whether any call was seen). An `{"error": …}` body is `Err((status, message))`.
pub(super) fn read_chunk(
    v: &Value,
    reader: &mut PartReader,
) -> Result<Result<Chunk, (u16, String)>, TranslateError> {
    let top = object(v, "", upstream)?;
    if let Some(e) = top.obj("error")? {
        let status = whole(&e, "code")?
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let message = e.str("message")?.unwrap_or("upstream error").to_owned();
        return Ok(Err((status, message)));
    }
    let mut chunk = Chunk {
        id: top.str("responseId")?.map(str::to_owned),
        model: top.str("modelVersion")?.map(str::to_owned),
        parts: Vec::new(),
        finish: None,
        usage: None,
    };
    if let Some(u) = top.obj("usageMetadata")? {
        chunk.usage = Some(parts::read_usage(&u)?);
    }
    let candidates = top.array("candidates")?;
    let Some(c) = candidates.first() else {
        if let Some(f) = top.obj("promptFeedback")?
            && let Some(reason) = f.str("blockReason")?
        {
            tracing::debug!(reason, "gemini blocked the prompt");
            chunk.finish = Some("SAFETY".into());
        }
        return Ok(Ok(chunk));
    };
    if candidates.len() > 1 {
        tracing::debug!("gemini candidates after the first dropped");
    }
    let c = top.nested(c, "candidates[0]".into())?;
    chunk.finish = c.str("finishReason")?.map(str::to_owned);
    if let Some(content) = c.obj("content")? {
        chunk.parts = reader.read(&content, Role::Assistant)?;
    }
    Ok(Ok(chunk))
}

/// Reads an upstream's whole `generateContent` answer.
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    let v = parse(body, "the answer", upstream)?;
    let id = v.get("responseId").and_then(Value::as_str).unwrap_or("");
    let mut reader = PartReader::new(call_prefix(id), true);
    let chunk = read_chunk(&v, &mut reader)?
        .map_err(|(status, message)| upstream(format!("error {status}: {message}")))?;
    if chunk.finish.is_none() && chunk.parts.is_empty() && chunk.usage.is_none() {
        return Err(upstream("the answer has no candidate".into()));
    }
    let finish = chunk.finish.as_deref().unwrap_or("STOP");
    Ok(Response {
        id: chunk.id.unwrap_or_default(),
        model: chunk.model.unwrap_or_default(),
        created: 0,
        stop: parts::read_finish(finish, reader.saw_call),
        content: chunk.parts,
        usage: chunk.usage.unwrap_or_default(),
    })
}

/// The answer's JSON around its parts: the one candidate, usage, model and id.
pub(super) fn answer_json(
    parts: Vec<Value>,
    finish: Option<&str>,
    usage: Option<&TokenUsage>,
    model: &str,
    id: &str,
) -> Value {
    let mut candidate = Map::new();
    candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
    if let Some(f) = finish {
        candidate.insert("finishReason".into(), json!(f));
    }
    candidate.insert("index".into(), json!(0));
    let mut top = Map::new();
    top.insert("candidates".into(), json!([candidate]));
    if let Some(u) = usage {
        top.insert("usageMetadata".into(), parts::usage_json(u));
    }
    top.insert("modelVersion".into(), json!(model));
    top.insert("responseId".into(), json!(id));
    Value::Object(top)
}

/// Writes a whole `generateContent` answer.
pub fn encode_response(resp: &Response, ctx: &AnswerContext) -> Vec<u8> {
    let mut signing = Signing::new(false);
    let mut out = Vec::new();
    for (i, part) in resp.content.iter().enumerate() {
        if !signing.holds(part, resp.content.get(i + 1)) {
            out.extend(parts::encode_part(part, &mut signing));
        }
    }
    let model = if resp.model.is_empty() {
        &ctx.model
    } else {
        &resp.model
    };
    let finish = parts::finish_word(&resp.stop);
    let body = answer_json(out, Some(finish), Some(&resp.usage), model, &resp.id);
    to_json(&body)
}
