//! Builders of intermediate-shape values the codecs' tests share, and the check of a typed hot
//! path against its dialect's general reader.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use super::TranslateError;
use super::model::{Event, Part, ToolCall, ToolResult};

/// A text part.
pub(crate) fn text(t: &str) -> Part {
    Part::Text(t.into())
}

/// A tool call part.
pub(crate) fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    })
}

/// A tool result part without a function name.
pub(crate) fn result(call_id: &str, content: Vec<Part>, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: call_id.into(),
        name: None,
        content,
        is_error,
    })
}

/// Tool call `index` begins.
pub(crate) fn call_start(index: usize, id: &str, name: &str) -> Event {
    Event::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

/// More of tool call `index`'s arguments.
pub(crate) fn args(index: usize, fragment: &str) -> Event {
    Event::ToolCallArgs {
        index,
        fragment: fragment.into(),
    }
}

/// A string member: mostly a string (empty, plain, escaped, non-ASCII), sometimes absent,
/// `null`, or of another type.
pub(crate) fn member(strings: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
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
pub(crate) fn count() -> impl Strategy<Value = Option<Value>> {
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

/// An object of the members that are present.
pub(crate) fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = members
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    Value::Object(map)
}

/// Checks a typed hot path (`hot`) against its general reader on 2,000 generated bodies:
/// whenever the hot path gives an answer, the general reader gives the same one. And, so that
/// this says something, that the hot path takes at least a fifth of them.
pub(crate) fn check_hot_path<T: PartialEq + std::fmt::Debug>(
    answers: impl Strategy<Value = String>,
    hot: fn(&[u8]) -> Option<T>,
    general: fn(&[u8]) -> Result<T, TranslateError>,
) {
    let config = Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    };
    let outcome = TestRunner::new(config).run(&answers, |body| {
        if let Some(fast) = hot(body.as_bytes()) {
            let read = general(body.as_bytes());
            prop_assert!(
                read.is_ok(),
                "{body}: the general reader refuses it: {read:?}"
            );
            prop_assert_eq!(Some(fast), read.ok());
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let mut runner = TestRunner::deterministic();
    let taken = (0..2000)
        .filter(|_| {
            let body = answers.new_tree(&mut runner).expect("a value").current();
            hot(body.as_bytes()).is_some()
        })
        .count();
    assert!(
        (400..1900).contains(&taken),
        "{taken} of 2000 took the hot path"
    );
}

/// `body` (a JSON object's text) with `model` given a second time when `repeat`: the general
/// reader keeps the last, a typed hot path steps aside.
pub(crate) fn with_repeated_model(body: String, repeat: bool) -> String {
    match (repeat, body.strip_suffix('}')) {
        (true, Some(open)) if open.len() > 1 => format!(r#"{open},"model":"again"}}"#),
        _ => body,
    }
}
