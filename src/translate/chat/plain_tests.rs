//! The hot path against the general reader: whenever it gives an answer, the general reader
//! gives the same one; and the answers backends usually send take it.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Map, Value, json};

use super::decode;
use crate::translate::chat::decode_general;

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

/// A string member: mostly a string (empty, plain, escaped, non-ASCII), sometimes absent,
/// `null`, or of another type.
fn member(strings: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        40 => proptest::sample::select(strings).prop_map(|s| Some(json!(s))),
        1 => prop_oneof![
            (0u64..3).prop_map(|n| Some(json!(n))),
            Just(Some(json!(["x"]))),
            Just(Some(json!({"text": "x"}))),
        ],
    ]
}

/// A count member: mostly a non-negative integer, sometimes absent, `null`, negative, a
/// fraction or a string.
fn count() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        24 => (0u64..50).prop_map(|n| Some(json!(n))),
        1 => prop_oneof![
            Just(Some(json!(-1))),
            Just(Some(json!(1.5))),
            Just(Some(json!("7"))),
        ],
    ]
}

fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = members
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    Value::Object(map)
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
            // A repeated member: the general reader keeps the last, the hot path steps aside.
            match (repeat, body.strip_suffix('}')) {
                (true, Some(open)) if open.len() > 1 => format!(r#"{open},"model":"again"}}"#),
                _ => body,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_hot_path_answers_only_as_the_general_reader_does(body in answer()) {
        if let Some(fast) = decode(body.as_bytes()) {
            let general = decode_general(body.as_bytes());
            prop_assert!(general.is_ok(), "{body}: the general reader refuses it: {general:?}");
            prop_assert_eq!(Some(fast), general.ok());
        }
    }
}

#[test]
fn the_generated_answers_reach_both_paths() {
    // The property above says something only if the hot path takes some of its answers.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = answer();
    let taken = (0..2000)
        .filter(|_| {
            let body = strategy.new_tree(&mut runner).expect("a value").current();
            decode(body.as_bytes()).is_some()
        })
        .count();
    assert!(
        (400..1900).contains(&taken),
        "{taken} of 2000 took the hot path"
    );
}
