//! Writing translated bodies as JSON text: serde_json's writer, except for long strings, which
//! are escaped eight bytes at a time. serde_json looks up every byte of a string in a table
//! before copying it out; a coding agent's request carries ~100 KB of prompts, tool schemas
//! and file contents, and escaping them that way was a fifth of a translated request's
//! instructions (bench/PROFILE.md §16). [`to_json`] wraps serde_json's serializer in
//! [`Fast`], which hands every value to it unchanged but writes a string of at least
//! [`LONG`] bytes itself: runs without a byte to escape copied whole, the same escapes as
//! serde_json (`\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`, `\u00XX` for the other control
//! bytes), then given to serde_json as finished JSON text the way `RawValue` gives its own.

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// The name under which serde_json's serializer takes finished JSON text (`RawValue` serialises
/// itself as a one-field struct of this name; serde_json 1's `raw::TOKEN`). The tests compare
/// every output with serde_json's own, so a version that stopped honouring it would fail them.
const RAW: &str = "$serde_json::private::RawValue";

/// Strings shorter than this go to serde_json as they are: finding the escapes a word at a
/// time pays only past a few words.
pub(super) const LONG: usize = 64;

/// `body` as JSON text, written straight into bytes.
pub(super) fn to_json<T: Serialize + ?Sized>(body: &T) -> Vec<u8> {
    // Serialising a `Value` or a struct of strings and numbers cannot fail.
    serde_json::to_vec(&Wrap(body)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a body could not be written");
        Vec::new()
    })
}

/// Appends `value` as JSON text to `out`.
pub(super) fn write_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serialising a `Value` or a struct of strings and numbers into a Vec cannot fail.
    if let Err(e) = serde_json::to_writer(out, &Wrap(value)) {
        tracing::error!(error = %e, "a member could not be written");
    }
}

/// Gives serde_json `text` to write as it is: JSON text this module wrote.
fn write_raw<S: Serializer>(serializer: S, text: &str) -> Result<S::Ok, S::Error> {
    let mut raw = serializer.serialize_struct(RAW, 1)?;
    raw.serialize_field(RAW, text)?;
    raw.end()
}

/// Appends `s` as a JSON string, quotes included, escaped as serde_json escapes it.
pub(super) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    // Runs end before an ASCII byte to escape: always at a character boundary.
    let push_run = |out: &mut String, from: usize, to: usize| {
        if let Some(run) = s.get(from..to) {
            out.push_str(run);
        }
    };
    let mut run = 0;
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let hits = to_escape(u64::from_le_bytes(w));
        if hits == 0 {
            i += 8;
            continue;
        }
        // The lowest flagged byte is exact (higher ones may be false).
        let at = i + (hits.trailing_zeros() / 8) as usize;
        push_run(out, run, at);
        escape_byte(out, bytes[at]);
        i = at + 1;
        run = i;
    }
    for (at, &b) in bytes.iter().enumerate().skip(i) {
        if needs_escape(b) {
            push_run(out, run, at);
            escape_byte(out, b);
            run = at + 1;
        }
    }
    push_run(out, run, bytes.len());
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The high bit of the lowest byte of `w` that needs escaping set (and maybe of higher bytes,
/// through borrows: only the lowest set bit is exact), or 0 when none does.
fn to_escape(w: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const SPACES: u64 = u64::from_le_bytes([0x20; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_le_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_le_bytes([b'\\'; 8]);
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (w.wrapping_sub(SPACES) & !w | zero(w ^ QUOTES) | zero(w ^ BACKSLASHES)) & HIGHS
}

fn escape_byte(out: &mut String, b: u8) {
    let escape = match b {
        b'"' => "\\\"",
        b'\\' => "\\\\",
        _ => CONTROL.get(usize::from(b)).copied().unwrap_or_default(),
    };
    out.push_str(escape);
}

/// How serde_json writes each control byte.
const CONTROL: [&str; 0x20] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// `Serializer` methods that take a plain value, handed to serde_json as they are.
macro_rules! forward_values {
    ($($method:ident: $t:ty,)*) => {$(
        fn $method(self, v: $t) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        }
    )*};
}

/// The compound parts whose elements are values: each element through [`Fast`].
macro_rules! forward_elements {
    ($($part:ident::$method:ident,)*) => {$(
        impl<S: $part> $part for Fast<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
                self.0.$method(&Wrap(v))
            }
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

/// A serializer (or one of its compound parts) whose long strings are escaped here; every
/// value inside a compound is serialised through `Fast` too.
pub(super) struct Fast<S>(pub(super) S);

/// A value to serialise through [`Fast`].
struct Wrap<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Fast(serializer))
    }
}

/// A struct's fields through [`Fast`], unless the struct is finished JSON text (`RawValue`'s
/// one field is the text itself: it must reach serde_json as it is).
pub(super) struct FastStruct<S> {
    inner: S,
    raw: bool,
}

impl<S: Serializer> Serializer for Fast<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Fast<S::SerializeSeq>;
    type SerializeTuple = Fast<S::SerializeTuple>;
    type SerializeTupleStruct = Fast<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Fast<S::SerializeTupleVariant>;
    type SerializeMap = Fast<S::SerializeMap>;
    type SerializeStruct = FastStruct<S::SerializeStruct>;
    type SerializeStructVariant = Fast<S::SerializeStructVariant>;

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        if v.len() < LONG {
            return self.0.serialize_str(v);
        }
        let mut text = String::new();
        escape_into(&mut text, v);
        write_raw(self.0, &text)
    }

    forward_values! {
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_char: char,
        serialize_bytes: &[u8],
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Wrap(v))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Wrap(v))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Wrap(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Fast)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Fast)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Fast)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Fast)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Fast)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.0.serialize_struct(name, len)?;
        Ok(FastStruct {
            inner,
            raw: name == RAW,
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Fast)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

forward_elements! {
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
}

impl<S: SerializeMap> SerializeMap for Fast<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    /// Keys go as they are: serde_json's key writer takes strings only, and keys are short.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), S::Error> {
        self.0.serialize_key(k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Wrap(v))
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        k: &K,
        v: &V,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(k, &Wrap(v))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for FastStruct<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        if self.raw {
            self.inner.serialize_field(key, v)
        } else {
            self.inner.serialize_field(key, &Wrap(v))
        }
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Fast<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Wrap(v))
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.0.skip_field(key)
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

#[cfg(test)]
#[path = "json_text_tests.rs"]
mod tests;
