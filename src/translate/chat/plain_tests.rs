//! The hot path against the general reader: whenever it gives an answer, the general reader
//! gives the same one; and the answers backends usually send take it.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode;
use crate::translate::chat::decode_general;
use crate::translate::test_util::{check_hot_path, count, member, object, with_repeated_model};

const TOOL_ANSWER: &str =
    include_str!("../../../tests/fixtures/translate/chat/response_tool_call.json");

#[test]
fn the_usual_answers_take_the_hot_path_and_read_as_the_general_reader_reads_them() {
    let text = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_735_689_600, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi \"there\" \u{e9}",
            "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0}},
        "system_fingerprint": "fp",
    });
    let reasoning = json!({
        "id": "r", "choices": [{"message": {"content": "", "reasoning_content": "think",
            "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": ""}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "prompt_cache_hit_tokens": 1},
    });
    for body in [
        text.to_string(),
        reasoning.to_string(),
        TOOL_ANSWER.to_owned(),
    ] {
        let fast = decode(body.as_bytes()).expect("the hot path takes it");
        assert_eq!(Some(fast), decode_general(body.as_bytes()).ok());
    }
}

const WORDS: &[&str] = &[
    "",
    "a",
    "said \"hi\"\n",
    "stop",
    "length",
    "tool_calls",
    "\u{e9}t\u{e9}",
];

fn call() -> impl Strategy<Value = Value> {
    (
        member(WORDS),
        member(WORDS),
        member(WORDS),
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(id, name, arguments, with_function)| {
            let function = object(vec![("name", name), ("arguments", arguments)]);
            let function = with_function.then_some(function);
            object(vec![
                ("id", id),
                ("type", Some(json!("function"))),
                ("function", function),
            ])
        })
}

fn usage() -> impl Strategy<Value = Option<Value>> {
    let details = |key: &'static str| {
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(Value::Null)),
            8 => count()
                .prop_map(move |c| Some(object(vec![(key, c), ("audio_tokens", Some(json!(0)))])))
        ]
    };
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(json!([1]))),
        12 => (
            count(),
            count(),
            count(),
            details("cached_tokens"),
            details("reasoning_tokens")
        )
            .prop_map(|(p, c, hit, pd, cd)| Some(object(vec![
                ("prompt_tokens", p),
                ("completion_tokens", c),
                ("prompt_cache_hit_tokens", hit),
                ("prompt_tokens_details", pd),
                ("completion_tokens_details", cd),
            ]))),
    ]
}

fn answer() -> impl Strategy<Value = String> {
    let message = (
        member(WORDS),
        member(WORDS),
        member(WORDS),
        member(WORDS),
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(Value::Null)),
            8 => proptest::collection::vec(call(), 0..3).prop_map(|c| Some(json!(c)))
        ],
        prop_oneof![8 => Just(None), 1 => call().prop_map(|c| Some(c["function"].clone()))],
    )
        .prop_map(
            |(content, reasoning_content, reasoning, refusal, tool_calls, function_call)| {
                object(vec![
                    ("role", Some(json!("assistant"))),
                    ("content", content),
                    ("reasoning_content", reasoning_content),
                    ("reasoning", reasoning),
                    ("refusal", refusal),
                    ("tool_calls", tool_calls),
                    ("function_call", function_call),
                ])
            },
        );
    let choice = (
        prop_oneof![1 => Just(None), 1 => Just(Some(Value::Null)), 16 => message.prop_map(Some)],
        member(WORDS),
        member(WORDS),
    )
        .prop_map(|(message, finish_reason, stop_reason)| {
            object(vec![
                ("index", Some(json!(0))),
                ("message", message),
                ("finish_reason", finish_reason),
                ("stop_reason", stop_reason),
            ])
        });
    let choices = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!([]))),
        1 => Just(Some(json!({}))),
        16 => proptest::collection::vec(choice, 1..3).prop_map(|c| Some(json!(c))),
    ];
    (
        member(WORDS),
        member(WORDS),
        count(),
        choices,
        usage(),
        prop_oneof![
            8 => Just(None),
            1 => Just(Some(Value::Null)),
            1 => Just(Some(json!({"message": "no"})))
        ],
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(id, model, created, choices, usage, error, repeat)| {
            let body = object(vec![
                ("id", id),
                ("object", Some(json!("chat.completion"))),
                ("model", model),
                ("created", created),
                ("choices", choices),
                ("usage", usage),
                ("error", error),
            ])
            .to_string();
            with_repeated_model(body, repeat)
        })
}

#[test]
fn the_hot_path_answers_only_as_the_general_reader_does() {
    check_hot_path(answer(), decode, decode_general);
}
