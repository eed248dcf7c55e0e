//! `json_text` writes what serde_json writes, byte for byte.

use proptest::prelude::*;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{LONG, escape_into, to_json};

fn escaped(s: &str) -> String {
    let mut out = String::new();
    escape_into(&mut out, s);
    out
}

#[test]
fn every_ascii_byte_at_every_place_is_escaped_as_serde_json_escapes_it() {
    for len in 1..40 {
        for at in 0..len {
            for b in 0u8..0x80 {
                let mut text = vec![b'a'; len];
                text[at] = b;
                // A second special byte further on, as the word search must find both.
                if at + 3 < len {
                    text[len - 1] = b'"';
                }
                let text = String::from_utf8(text).unwrap();
                assert_eq!(
                    escaped(&text),
                    serde_json::to_string(&text).unwrap(),
                    "{len} {at} {b}"
                );
            }
        }
    }
}

#[test]
fn non_ascii_text_and_the_edges_of_the_word_search() {
    for text in [
        "",
        "é",
        "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
        "naïve café → \"quoted\"\n\t\\ 😀 \u{1} \u{1f} done",
        "12345678\n12345678\"1234567\\",
        "\n\n\n\n\n\n\n\n\n",
    ] {
        assert_eq!(
            escaped(text),
            serde_json::to_string(text).unwrap(),
            "{text:?}"
        );
    }
}

/// Strings made of the bytes that matter: escapes, non-ASCII, plain runs of every length.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => "[a-z ]{0,20}",
            1 => Just("\n".to_owned()),
            1 => Just("\"".to_owned()),
            1 => Just("\\".to_owned()),
            1 => "[\u{0}-\u{1f}\u{7f}]",
            1 => "[é→😀\u{80}-\u{7ff}]{1,3}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_string_is_escaped_as_serde_json_escapes_it(s in text()) {
        prop_assert_eq!(escaped(&s), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn any_value_is_written_as_serde_json_writes_it(v in value()) {
        prop_assert_eq!(to_json(&v), serde_json::to_vec(&v).unwrap());
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    Raw { raw: &'a RawValue },
    Pair(Inner<'a>),
}

#[derive(Serialize)]
struct Inner<'a> {
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    absent: Option<u8>,
    list: Vec<(&'a str, f64)>,
    newtype: Newtype<'a>,
    unit: Unit,
    variants: Vec<Variant<'a>>,
}

#[derive(Serialize)]
struct Newtype<'a>(&'a str);

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
enum Variant<'a> {
    Plain,
    Wrapped(&'a str),
    Tuple(&'a str, u8),
    Fields { x: &'a str },
}

#[test]
fn structs_enums_and_finished_json_text_are_written_as_serde_json_writes_them() {
    let long = "line one \"quoted\"\n\tline two \\ naïve → ".repeat(4);
    assert!(long.len() > LONG);
    // Finished JSON text holding escapes: it must reach the output as it is, not escaped again.
    let raw_text = serde_json::to_string(&serde_json::json!({"s": long, "n": [1, 2.5]})).unwrap();
    let raw = RawValue::from_string(raw_text).unwrap();
    let blocks = vec![
        Block::Text { text: &long },
        Block::Raw { raw: &raw },
        Block::Pair(Inner {
            content: Some(&long),
            absent: None,
            list: vec![(&long, 1.5), ("short", -0.0)],
            newtype: Newtype(&long),
            unit: Unit,
            variants: vec![
                Variant::Plain,
                Variant::Wrapped(&long),
                Variant::Tuple(&long, 7),
                Variant::Fields { x: &long },
            ],
        }),
    ];
    let want = serde_json::to_vec(&blocks).unwrap();
    assert_eq!(to_json(&blocks), want);
    assert_eq!(to_json(&raw), raw.get().as_bytes());
    // A long map key goes through serde_json's own key writer.
    let keyed = serde_json::json!({ long.clone(): long });
    assert_eq!(to_json(&keyed), serde_json::to_vec(&keyed).unwrap());
}
