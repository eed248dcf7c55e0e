//! The hot path against the general reader: whenever it gives an answer, the general reader
//! gives the same one; and the answers Anthropic usually sends take it.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode;
use crate::translate::anthropic::decode_general;
use crate::translate::test_util::{check_hot_path, count, member, object, with_repeated_model};

const TOOL_ANSWER: &str =
    include_str!("../../../tests/fixtures/translate/anthropic/response_tool_use.json");

#[test]
fn the_usual_answers_take_the_hot_path_and_read_as_the_general_reader_reads_them() {
    let text = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "plan", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Hi \"there\" \u{e9}", "citations": null},
            {"type": "tool_use", "id": "t1", "name": "f",
                "input": {"b": 1.50, "a": "\u{e9}", "nested": {"z": [1, 2]}}},
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 2, "service_tier": "standard"},
    });
    // Spacing and escapes the tree rewrites: the call's arguments must come out the same.
    let spaced = r#"{"id":"msg_2","content":[{"type":"tool_use","id":"t","name":"n",
        "input": { "q" : "a\/b\u00e9" , "n" : 1e2 }}],"stop_reason":"stop_sequence",
        "stop_sequence":"END"}"#;
    for body in [text.to_string(), spaced.to_owned(), TOOL_ANSWER.to_owned()] {
        let fast = decode(body.as_bytes()).expect("the hot path takes it");
        assert_eq!(Some(fast), decode_general(body.as_bytes()).ok());
    }
}

#[test]
fn the_hot_path_answers_only_as_the_general_reader_does() {
    check_hot_path(answer(), decode, decode_general);
}

const WORDS: &[&str] = &[
    "",
    "a",
    "said \"hi\"\n",
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "\u{e9}t\u{e9}",
];

/// A block's `type`: mostly one the hot path reads.
fn kind() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        12 => proptest::sample::select(&["text", "thinking", "redacted_thinking", "tool_use"][..])
            .prop_map(|k| Some(json!(k))),
        1 => proptest::sample::select(&["server_tool_use", "document"][..])
            .prop_map(|k| Some(json!(k))),
        1 => member(WORDS),
    ]
}

/// A tool call's `input`: mostly an object, sometimes absent, `null` or another value.
fn input() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        8 => (member(WORDS), count()).prop_map(|(a, n)| Some(object(vec![("a", a), ("n", n)]))),
        1 => Just(Some(json!([1]))),
        1 => Just(Some(json!("{}"))),
    ]
}

fn block() -> impl Strategy<Value = Value> {
    (
        kind(),
        member(WORDS),
        member(WORDS),
        member(WORDS),
        (member(WORDS), member(WORDS), input()),
    )
        .prop_map(|(kind, text, signature, data, (id, name, input))| {
            object(vec![
                ("type", kind),
                ("text", text.clone()),
                ("thinking", text),
                ("signature", signature),
                ("data", data),
                ("id", id),
                ("name", name),
                ("input", input),
            ])
        })
}

fn usage() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(json!([1]))),
        12 => (count(), count(), count(), count()).prop_map(|(i, o, r, c)| Some(object(vec![
            ("input_tokens", i),
            ("output_tokens", o),
            ("cache_read_input_tokens", r),
            ("cache_creation_input_tokens", c),
        ]))),
    ]
}

fn answer() -> impl Strategy<Value = String> {
    let content = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!({}))),
        16 => proptest::collection::vec(block(), 0..4).prop_map(|b| Some(json!(b))),
    ];
    let kind = prop_oneof![
        12 => Just(Some(json!("message"))),
        1 => Just(None),
        1 => Just(Some(json!("error"))),
    ];
    (
        kind,
        member(WORDS),
        member(WORDS),
        content,
        (member(WORDS), member(WORDS)),
        usage(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(kind, id, model, content, (stop, sequence), usage, repeat)| {
                let body = object(vec![
                    ("type", kind),
                    ("id", id),
                    ("model", model),
                    ("content", content),
                    ("stop_reason", stop),
                    ("stop_sequence", sequence),
                    ("usage", usage),
                ])
                .to_string();
                with_repeated_model(body, repeat)
            },
        )
}
