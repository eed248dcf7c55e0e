//! The hot path for a whole `chat.completion` answer: read into borrowed, typed fields in one
//! pass, without building a JSON tree (a tree costs a key copy, a hash and a map insertion per
//! member, and most of a translated request's time went there). It takes the answers every
//! backend sends — text, reasoning, a refusal, tool calls, usage — and returns `None` for
//! anything else: an `error` member, no choice, `content` as an array of parts, a member of an
//! unexpected type, a repeated member. Those go through the general reader
//! ([`super::decode_response`]), which gives the same answer where this one gives one, and
//! names the defect where there is one.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::stop_from_wire;
use crate::translate::fields::Object;
use crate::translate::model::{Part, Reasoning, Response, TokenUsage, ToolCall};

/// The answer as [`super::decode_response`] reads it, or `None` when it needs that reader.
pub(super) fn decode(body: &[u8]) -> Option<Response> {
    let Object(answer) = serde_json::from_slice::<Object<Answer<'_>>>(body).ok()?;
    if answer.error.is_some() {
        return None;
    }
    let id = answer.id.unwrap_or_default();
    let Object(choice) = answer.choices?.into_iter().next()?;
    let Object(mut msg) = choice.message?;
    let mut content = Vec::new();
    if let Some(text) = msg.take_reasoning() {
        content.push(Part::Reasoning(Reasoning {
            text: text.into_owned(),
            ..Default::default()
        }));
    }
    if let Some(text) = msg.content.filter(|t| !t.is_empty()) {
        content.push(Part::Text(text.into_owned()));
    }
    let refused = msg.refusal.filter(|r| !r.is_empty());
    let refusal = refused.is_some();
    content.extend(refused.map(|r| Part::Text(r.into_owned())));
    for (i, Object(call)) in msg.tool_calls.unwrap_or_default().into_iter().enumerate() {
        let call_id = call.id.map_or_else(|| format!("{id}_{i}"), Cow::into_owned);
        content.push(Part::ToolCall(call.function.0.call(call_id)));
    }
    if let Some(Object(func)) = msg.function_call {
        content.push(Part::ToolCall(func.call(format!("{id}_fc"))));
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let matched = choice.stop_reason.map(|s| Value::String(s.into_owned()));
    let reason = choice.finish_reason.as_deref();
    let stop = stop_from_wire(reason, matched.as_ref(), refusal, called);
    Some(Response {
        model: answer.model.unwrap_or_default().into_owned(),
        created: answer.created.unwrap_or(0),
        content,
        stop,
        usage: answer.usage.map(|u| u.0.counts()).unwrap_or_default(),
        id: id.into_owned(),
    })
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(borrow, default)]
    choices: Option<Vec<Object<Choice<'a>>>>,
    #[serde(default)]
    usage: Option<Object<Usage>>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Object<Message<'a>>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    /// vLLM's matched stop string (a token id, a number, goes to the general reader).
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

/// An answer's `message`, or a stream chunk's `delta` (whose calls the stream decoder leaves
/// to the general reader).
#[derive(Deserialize)]
pub(super) struct Message<'a> {
    #[serde(borrow, default)]
    pub(super) content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) tool_calls: Option<Vec<Object<Call<'a>>>>,
    #[serde(borrow, default)]
    pub(super) function_call: Option<Object<Function<'a>>>,
}

impl<'a> Message<'a> {
    /// The reasoning text, as the general reader's `reasoning_text` takes it:
    /// `reasoning_content`, else `reasoning`, empty counting as absent.
    pub(super) fn take_reasoning(&mut self) -> Option<Cow<'a, str>> {
        [self.reasoning_content.take(), self.reasoning.take()]
            .into_iter()
            .flatten()
            .find(|t| !t.is_empty())
    }
}

#[derive(Deserialize)]
pub(super) struct Call<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Object<Function<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Function<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

impl Function<'_> {
    /// The call (`"{}"` for empty arguments, as the general reader's `tool_call`).
    fn call(self, id: String) -> ToolCall {
        let arguments = self.arguments.filter(|a| !a.is_empty());
        ToolCall {
            id,
            name: self.name.into_owned(),
            arguments: arguments.map_or_else(|| "{}".to_owned(), Cow::into_owned),
        }
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<Object<Details>>,
    #[serde(default)]
    completion_tokens_details: Option<Object<Details>>,
}

/// Either details object; each is read for its own count only.
#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl Usage {
    /// The canonical counts, as the general reader's `usage_from`.
    fn counts(self) -> TokenUsage {
        let cached = self.prompt_tokens_details.and_then(|p| p.0.cached_tokens);
        TokenUsage {
            input: self.prompt_tokens.unwrap_or(0),
            output: self.completion_tokens.unwrap_or(0),
            cached_input: cached.or(self.prompt_cache_hit_tokens),
            cache_creation: None,
            reasoning: self
                .completion_tokens_details
                .and_then(|c| c.0.reasoning_tokens),
        }
    }
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
