//! Editing one member of a client's JSON object while keeping every other member as the client
//! wrote it — its text, order and repetitions. Nothing else is decoded and re-encoded, so a
//! number no `f64` holds (`1e400`, a 30-digit integer), an escape such as a lone surrogate in a
//! field the gateway does not read, or white space inside a value reaches the upstream unchanged,
//! and an edit accepts whatever the request probe accepted.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object in order, each value as its raw text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Collect;
        impl<'de> Visitor<'de> for Collect {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Collect)
    }
}

/// `body` (a JSON object) with the member `key` set to `value` (JSON text): in the place of the
/// first `key` (later repetitions dropped), else last. Every other member is copied as written.
pub fn replace_member(body: &[u8], key: &str, value: &RawValue) -> serde_json::Result<Vec<u8>> {
    let Members(members) = serde_json::from_slice(body)?;
    let mut out = Vec::with_capacity(body.len() + value.get().len() + key.len() + 4);
    out.push(b'{');
    let mut placed = false;
    let put = |out: &mut Vec<u8>, k: &str, v: &str| -> serde_json::Result<()> {
        if out.len() > 1 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k)?;
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        Ok(())
    };
    for (k, v) in &members {
        if k == key {
            if !placed {
                put(&mut out, k, value.get())?;
                placed = true;
            }
        } else {
            put(&mut out, k, v.get())?;
        }
    }
    if !placed {
        put(&mut out, key, value.get())?;
    }
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(body: &str, key: &str, value: &str) -> String {
        let value = RawValue::from_string(value.to_owned()).unwrap();
        String::from_utf8(replace_member(body.as_bytes(), key, &value).unwrap()).unwrap()
    }

    #[test]
    fn other_members_keep_their_text_order_and_repetitions() {
        // Found by the `probe` fuzz target: a number no f64 holds made the rewrite refuse a body
        // the probe had accepted; re-encoding also turned big integers into floats.
        assert_eq!(
            replaced(
                r#" {"n":1e400,"model":"a:b","big":123456789012345678901234567890,"x":"\ud800","x":[ 1 ]}"#,
                "model",
                r#""b""#
            ),
            r#"{"n":1e400,"model":"b","big":123456789012345678901234567890,"x":"\ud800","x":[ 1 ]}"#
        );
    }

    #[test]
    fn the_first_of_repeated_members_is_replaced_and_a_missing_one_appended() {
        assert_eq!(
            replaced(r#"{"model":"a","k":1,"model":"c"}"#, "model", r#""b""#),
            r#"{"model":"b","k":1}"#
        );
        assert_eq!(
            replaced(r#"{"k\n":1}"#, "model", r#""b""#),
            r#"{"k\n":1,"model":"b"}"#
        );
        assert_eq!(replaced("{}", "model", "null"), r#"{"model":null}"#);
    }

    #[test]
    fn what_is_no_json_object_is_refused() {
        let v = RawValue::from_string("1".to_owned()).unwrap();
        for bad in [&b"[1]"[..], b"{\"a\":", b"{\"a\":1} x", b"{\"a\":\"\xff\"}"] {
            assert!(replace_member(bad, "model", &v).is_err());
        }
    }
}
