//! The hot path for a whole Anthropic answer (`type: message`), as [`crate::translate::chat`]'s
//! `plain` is for Chat's: read into borrowed, typed fields in one pass, without a JSON tree. It
//! takes text, thinking, redacted thinking and tool use blocks, the stop and the usage, and
//! returns `None` for anything else — an error, a block of another type, a member of an
//! unexpected type or missing, a repeated member —, which goes through the general reader
//! ([`super::decode_response`]): it gives the same answer where this one gives one, and names
//! the defect where there is one.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{UsageCounts, decode_stop};
use crate::translate::fields::Object;
use crate::translate::model::{Part, Reasoning, Response, TokenUsage, ToolCall, ToolResult};

/// The answer as [`super::decode_response`] reads it, or `None` when it needs that reader.
pub(super) fn decode(body: &[u8]) -> Option<Response> {
    let Object(answer) = serde_json::from_slice::<Object<Answer<'_>>>(body).ok()?;
    if answer.kind.as_deref() == Some("error") {
        return None;
    }
    let mut content = Vec::new();
    for Object(block) in answer.content.unwrap_or_default() {
        content.push(block.part()?);
    }
    Some(Response {
        id: answer.id.into_owned(),
        model: answer.model.unwrap_or_default().into_owned(),
        created: 0,
        content,
        stop: decode_stop(
            answer.stop_reason.as_deref(),
            answer.stop_sequence.as_deref(),
        ),
        usage: answer
            .usage
            .map(|Object(counts)| {
                let mut usage = TokenUsage::default();
                counts.add_to(&mut usage);
                usage
            })
            .unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<Object<Block<'a>>>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_sequence: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Object<UsageCounts>>,
}

/// A content block's members, whatever its type (each type reads its own); a request's blocks
/// ([`super::plain_request`]) also carry tool results.
#[derive(Deserialize)]
pub(super) struct Block<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<OneOrMany<Object<Block<'a>>>>,
    #[serde(default)]
    is_error: Option<bool>,
}

impl Block<'_> {
    /// The part, as the general reader's `decode_common_block` reads it; `None` for a block it
    /// would refuse or drop.
    fn part(self) -> Option<Part> {
        Some(match self.kind.as_ref() {
            "text" => Part::Text(self.text?.into_owned()),
            "thinking" => Part::Reasoning(Reasoning {
                text: self.thinking?.into_owned(),
                signature: self
                    .signature
                    .filter(|s| !s.is_empty())
                    .map(Cow::into_owned),
                encrypted: None,
            }),
            "redacted_thinking" => Part::Reasoning(Reasoning {
                encrypted: Some(self.data?.into_owned()),
                ..Reasoning::default()
            }),
            "tool_use" => {
                // Written again from its tree, as the general reader does (whitespace, escapes
                // and number forms as serde_json writes them).
                let arguments = match self.input.map(|i| serde_json::from_str(i.get())) {
                    None | Some(Ok(Value::Null)) => "{}".to_owned(),
                    Some(Ok(input @ Value::Object(_))) => input.to_string(),
                    Some(_) => return None,
                };
                Part::ToolCall(ToolCall {
                    id: self.id?.into_owned(),
                    name: self.name?.into_owned(),
                    arguments,
                })
            }
            _ => return None,
        })
    }

    /// A request's part, as the general reader's `decode_blocks` reads it: a common block or a
    /// tool result whose content is a string or text blocks; `None` for anything else.
    pub(super) fn request_part(self) -> Option<Part> {
        if self.kind != "tool_result" {
            return self.part();
        }
        let content = match self.content {
            None => Vec::new(),
            Some(OneOrMany::One(text)) => vec![Part::Text(text)],
            Some(OneOrMany::Many(blocks)) => blocks
                .into_iter()
                .map(|Object(b)| (b.kind == "text").then_some(Part::Text(b.text?.into_owned())))
                .collect::<Option<_>>()?,
        };
        Some(Part::ToolResult(ToolResult {
            call_id: self.tool_use_id?.into_owned(),
            name: None,
            content,
            is_error: self.is_error.unwrap_or(false),
        }))
    }
}

/// A member that is a string or an array of `T`.
pub(super) enum OneOrMany<T> {
    One(String),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

struct OneOrManyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
    type Value = OneOrMany<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or an array")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(OneOrMany::One(s.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(OneOrMany::One(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OneOrMany::Many(items))
    }
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
