//! What the four codecs share in reading and writing wire JSON: [`Fields`], the reader of a
//! JSON object whose errors name the field (`` `messages[2].role` must be a string ``) and are
//! of one kind (`Invalid` for a caller's request, `Upstream` for a backend's answer); [`parse`]
//! for a whole body; and small writers every dialect needs ([`put`], [`data_url`],
//! [`image_url`], [`arguments_object`], [`sse`] — one stream event, serialised straight into
//! the output without an intermediate string).
//!
//! JSON `null` counts as absent everywhere: the SDKs send it for unset fields.

use serde_json::{Map, Value, json};

use super::TranslateError;
use super::json_text;
use super::model::Image;

/// A whole body as JSON text, written straight into bytes (not through `Display`, which goes
/// through the formatting machinery a piece at a time), long strings escaped a word at a time.
pub(super) use super::json_text::to_json;

/// A JSON object an encoder writes whole: members in the order they are set, under the codec's
/// own keys, none of which is copied or hashed (a `Map` does both for each member); setting a
/// key again replaces its value where it stands, as a `Map` does.
#[derive(Default)]
pub(super) struct Members(Vec<(&'static str, Member)>);

/// A member's value: a JSON value, or JSON text already written from a typed struct.
enum Member {
    Value(Value),
    Written(Vec<u8>),
}

impl Members {
    /// Sets `key` to `value`.
    pub(super) fn insert(&mut self, key: &'static str, value: Value) {
        self.set(key, Member::Value(value));
    }

    /// Sets `key` to `value` when there is one.
    pub(super) fn put(&mut self, key: &'static str, value: Option<impl serde::Serialize>) {
        if let Some(v) = value {
            self.insert(key, json!(v));
        }
    }

    /// Sets `key` to `value` written as JSON text now: a typed struct needs no `Value` built.
    /// `size` is about how long the text will be (room reserved for it at once).
    pub(super) fn insert_written(
        &mut self,
        key: &'static str,
        value: &impl serde::Serialize,
        size: usize,
    ) {
        let mut text = Vec::with_capacity(size);
        json_text::write_into(&mut text, value);
        self.set(key, Member::Written(text));
    }

    /// The object as JSON text, written members copied in as they are.
    pub(super) fn to_json(&self) -> Vec<u8> {
        let written: usize = self.0.iter().map(|(_, m)| m.written_len()).sum();
        let mut out = Vec::with_capacity(written + 256);
        out.push(b'{');
        for (i, (key, member)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_text::write_into(&mut out, key);
            out.push(b':');
            match member {
                Member::Value(v) => json_text::write_into(&mut out, v),
                Member::Written(text) => out.extend_from_slice(text),
            }
        }
        out.push(b'}');
        out
    }

    fn set(&mut self, key: &'static str, member: Member) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = member,
            None => self.0.push((key, member)),
        }
    }
}

impl Member {
    fn written_len(&self) -> usize {
        match self {
            Member::Value(_) => 0,
            Member::Written(text) => text.len(),
        }
    }
}

/// A member read into a typed struct only when it is a JSON object. Derived `Deserialize`
/// impls also take an array, member by member in order (`[1, 2]` as a usage object), which the
/// field reader refuses; the typed hot paths wrap their structs in this so that they take no
/// body the field reader would refuse.
pub(super) struct Object<T>(pub(super) T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

struct ObjectVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
    }
}

/// Appends one SSE event: `event: <kind>` (when given), `data: <json>`, then `end` (`\n\n`, or
/// Gemini's `\r\n\r\n`).
pub(super) fn sse<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    kind: Option<&str>,
    data: &T,
    end: &str,
) {
    if let Some(kind) = kind {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Serialising a `Value` or a struct of strings and numbers into a Vec cannot fail.
    if let Err(e) = serde_json::to_writer(&mut *out, data) {
        tracing::error!(error = %e, "a stream event could not be written");
    }
    out.extend_from_slice(end.as_bytes());
}

/// The error a defect is: `TranslateError::Invalid` in a caller's request,
/// `TranslateError::Upstream` in a backend's answer.
pub(super) type Blame = fn(String) -> TranslateError;

/// A JSON object's fields, with where the object is (for messages) and whom its defects blame.
#[derive(Clone)]
pub(super) struct Fields<'a> {
    /// The object's members.
    pub(super) map: &'a Map<String, Value>,
    /// Where the object is (`""` for the body itself).
    at: String,
    err: Blame,
    /// The other spelling a key may have (Gemini: the snake_case form of a camelCase key).
    alias: Option<fn(&str) -> String>,
}

impl<'a> Fields<'a> {
    /// `value` as an object at `at` (`""`: the body), or the error saying it is not one.
    pub(super) fn of(
        value: &'a Value,
        at: impl Into<String>,
        err: Blame,
    ) -> Result<Self, TranslateError> {
        let at = at.into();
        match value.as_object() {
            Some(map) => Ok(Self {
                map,
                at,
                err,
                alias: None,
            }),
            None if at.is_empty() => Err(err("the body must be a JSON object".into())),
            None => Err(err(format!("`{at}` must be an object"))),
        }
    }

    /// The same object, its keys also looked up as `alias(key)`; objects read from it inherit
    /// the alias.
    pub(super) fn with_alias(self, alias: fn(&str) -> String) -> Self {
        Self {
            alias: Some(alias),
            ..self
        }
    }

    /// Where the object is (`""` for the body).
    pub(super) fn at(&self) -> &str {
        &self.at
    }

    /// The error kind of this object's defects.
    pub(super) fn blame(&self) -> Blame {
        self.err
    }

    /// The path of member `key` (`messages[2].role`).
    pub(super) fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// `` `path` must be {what} `` about member `key`.
    pub(super) fn wrong(&self, key: &str, what: &str) -> TranslateError {
        (self.err)(format!("`{}` must be {what}", self.path(key)))
    }

    /// `` `path`: {why} `` about member `key`.
    pub(super) fn fault(&self, key: &str, why: &str) -> TranslateError {
        (self.err)(format!("`{}`: {why}", self.path(key)))
    }

    /// Member `key` (or its alias), `None` when absent or `null`.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        let alias = || member(self.map, &(self.alias?)(key));
        member(self.map, key)
            .or_else(alias)
            .filter(|v| !v.is_null())
    }

    /// `value`, or the error that required member `key` is missing.
    pub(super) fn need<T>(&self, key: &str, value: Option<T>) -> Result<T, TranslateError> {
        value.ok_or_else(|| (self.err)(format!("`{}` is required", self.path(key))))
    }

    /// Member `key` read by `read`, or the error that it must be `what`.
    pub(super) fn typed<T>(
        &self,
        key: &str,
        what: &str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, TranslateError> {
        self.get(key)
            .map(|v| read(v).ok_or_else(|| self.wrong(key, what)))
            .transpose()
    }

    /// A string member.
    pub(super) fn str(&self, key: &str) -> Result<Option<&'a str>, TranslateError> {
        self.typed(key, "a string", Value::as_str)
    }

    /// A required string member.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, TranslateError> {
        self.need(key, self.str(key)?)
    }

    /// A non-negative integer member.
    pub(super) fn u64(&self, key: &str) -> Result<Option<u64>, TranslateError> {
        self.typed(key, "a non-negative integer", Value::as_u64)
    }

    /// An integer member.
    pub(super) fn i64(&self, key: &str) -> Result<Option<i64>, TranslateError> {
        self.typed(key, "an integer", Value::as_i64)
    }

    /// A number member.
    pub(super) fn f64(&self, key: &str) -> Result<Option<f64>, TranslateError> {
        self.typed(key, "a number", Value::as_f64)
    }

    /// A boolean member.
    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, TranslateError> {
        self.typed(key, "true or false", Value::as_bool)
    }

    /// An array member, empty when absent.
    pub(super) fn array(&self, key: &str) -> Result<&'a [Value], TranslateError> {
        Ok(self.opt_array(key)?.unwrap_or_default())
    }

    /// An array member, `None` when absent.
    pub(super) fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>, TranslateError> {
        self.typed(key, "an array", |v| v.as_array().map(Vec::as_slice))
    }

    /// An array-of-strings member, empty when absent.
    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>, TranslateError> {
        let items = self.array(key)?.iter();
        items
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| self.wrong(key, "an array of strings"))
    }

    /// An image member given by address: a `data:image/<type>;base64,<data>` URL inline, any
    /// other address as it is.
    pub(super) fn image(&self, key: &str) -> Result<Option<Image>, TranslateError> {
        self.typed(key, IMAGE_URL, |v| image_from_url(v.as_str()?, None))
    }

    /// An object member.
    pub(super) fn obj(&self, key: &str) -> Result<Option<Fields<'a>>, TranslateError> {
        self.get(key)
            .map(|v| self.nested(v, self.path(key)))
            .transpose()
    }

    /// A required object member.
    pub(super) fn req_obj(&self, key: &str) -> Result<Fields<'a>, TranslateError> {
        self.need(key, self.obj(key)?)
    }

    /// The objects of array member `key` (empty when absent), each at `key[i]`.
    pub(super) fn items(&self, key: &str) -> Result<Vec<Fields<'a>>, TranslateError> {
        let items = self.array(key)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at = self.path(key);
        let each = items.iter().enumerate();
        each.map(|(i, v)| self.nested(v, format!("{at}[{i}]")))
            .collect()
    }

    /// `value` as an object at `at`, with this object's blame and alias.
    pub(super) fn nested(
        &self,
        value: &'a Value,
        at: String,
    ) -> Result<Fields<'a>, TranslateError> {
        let fields = Fields::of(value, at, self.err)?;
        Ok(Fields {
            alias: self.alias,
            ..fields
        })
    }
}

/// Objects up to this many members are searched key by key rather than by hash.
const SCAN_MEMBERS: usize = 16;

/// Member `key` of `map`. A small object's keys are compared in turn: the map's hash (SipHash
/// over the key) costs more than a dozen comparisons, most of which end at the length. A JSON
/// object read into a `Map` holds each key once (a repeated key's last value), so both ways
/// find the same member.
fn member<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCAN_MEMBERS {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// The refusal of `field`, which the other dialect cannot carry (`why`): the caller should
/// ask a backend of its own protocol.
pub(super) fn unsupported(field: &str, why: &str) -> TranslateError {
    TranslateError::Unsupported(format!(
        "{field}: {why}, use a backend of the same protocol"
    ))
}

/// A body as JSON; `what` names it in the error (`the request body is not valid JSON: …`).
pub(super) fn parse(body: &[u8], what: &str, err: Blame) -> Result<Value, TranslateError> {
    serde_json::from_slice(body).map_err(|e| err(format!("{what} is not valid JSON: {e}")))
}

/// Sets `key` to `value` when there is one.
pub(super) fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl serde::Serialize>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), json!(v));
    }
}

/// The media type and base64 data of a `data:<type>;base64,<data>` address.
pub(super) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    Some((head.strip_suffix(";base64")?, data))
}

/// What an image address must be, for errors.
pub(super) const IMAGE_URL: &str = "an http(s) URL or a data:image/<type>;base64,<data> URL";

/// Whether a media type names an image (`image/png`, `IMAGE/JPEG`): the only inline media
/// every dialect carries (Gemini's `inlineData` takes others, which no other dialect has).
pub(super) fn is_image_type(media_type: &str) -> bool {
    media_type
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("image/"))
}

/// An image from its address: a `data:image/<type>;base64,<data>` URL inline, any other
/// address as it is (with the media type given beside it, if any); `None` for a `data:` URL of
/// another form or media type. Every decoder builds URL images here, so no [`Image::Url`] holds
/// a `data:` URL that another dialect would refuse.
pub(super) fn image_from_url(url: &str, media_type: Option<&str>) -> Option<Image> {
    if !url.starts_with("data:") {
        let url = url.to_owned();
        let media_type = media_type.map(str::to_owned);
        return Some(Image::Url { url, media_type });
    }
    let (media_type, data) = data_url(url).filter(|(m, _)| is_image_type(m))?;
    Some(Image::Base64 {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

/// An image as an address: its own, or a `data:` URL holding it.
pub(super) fn image_url(image: &Image) -> String {
    match image {
        Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Image::Url { url, .. } => url.clone(),
    }
}

/// A tool call's arguments (JSON text) as the object Anthropic's `input` and Gemini's `args`
/// hold: `{}` when they are not a JSON object (arguments cut short by the token limit; warned).
pub(super) fn arguments_object(function: &str, arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v) if v.is_object() => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => {
            tracing::warn!(
                function,
                "tool call arguments are not a JSON object: sent as {{}}"
            );
            json!({})
        }
    }
}
