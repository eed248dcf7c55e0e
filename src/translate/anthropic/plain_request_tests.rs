//! The typed hot path of Anthropic requests reads what the general reader reads.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::decode;
use crate::translate::anthropic::request::decode_general;
use crate::translate::test_util::{check_hot_path, count, member, object, with_repeated_model};

const MESSAGES_REQUEST: &str =
    include_str!("../../../tests/fixtures/translate/anthropic/request.json");

/// A coding agent's turn: text blocks with cache marks, tools with schemas, a call and its
/// result (as text and as text blocks), escapes and non-ASCII text everywhere.
fn agent_turn() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "temperature": 1,
        "stream": true,
        "metadata": {"user_id": "user_abc_account_def_session_0"},
        "system": [
            {"type": "text", "text": "You are Claude Code.\n\t\"quoted\" caf\u{e9}",
                "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Environment:\n- cwd: /work"}
        ],
        "tools": [
            {"name": "Read", "description": "Reads a file.\n\nUsage:\n- absolute paths",
                "input_schema": {"type": "object", "properties": {"file_path": {"type": "string",
                "description": "The path"}, "limit": {"type": "number"}}, "required": ["file_path"],
                "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#"}},
            {"name": "Bash", "input_schema": {"type": "object", "properties": {}}, "strict": true},
            {"type": "custom", "name": "Edit", "description": null},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "messages": [
            {"role": "user", "content": "Fix the \"bug\" in src/\u{e9}.rs\n"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look first.", "signature": "sig=="},
                {"type": "text", "text": "Reading it."},
                {"type": "tool_use", "id": "toolu_01", "name": "Read",
                    "input": {"file_path": "/work/src/\u{e9}.rs", "limit": 2.0e2}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01",
                    "content": "     1\tfn main() {\n     2\t    println!(\"hi\");\n"},
                {"type": "text", "text": "Go on.", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": true,
                    "content": [{"type": "text", "text": "exit 1"}]},
                {"type": "tool_result", "tool_use_id": "toolu_03", "content": null}
            ]}
        ]
    })
}

#[test]
fn the_usual_requests_take_the_hot_path_and_read_as_the_general_reader_reads_them() {
    // Spacing, escapes and number forms the tree rewrites: schemas and inputs must come out
    // the same.
    let spaced = r#"{ "model" : "m", "max_tokens" : 10, "system" : "be \u0062rief",
        "messages" : [ { "role" : "user", "content" : [ { "type" : "tool_result",
        "tool_use_id" : "t", "content" : [ ] } ] }, { "role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "n", "input": { "q" : "a\/b", "n" : 1e2 }} ] } ],
        "tools" : [ { "name" : "n", "input_schema" : { "type" : "object", "x" : 1.50 } } ],
        "stop_sequences": ["END", "\n\n"], "top_p": 0.5, "top_k": 3 }"#;
    for body in [agent_turn().to_string(), spaced.to_owned()] {
        let fast = decode(body.as_bytes()).expect("the hot path takes it");
        assert_eq!(Some(fast), decode_general(body.as_bytes()).ok(), "{body}");
    }
}

#[test]
fn what_the_hot_path_leaves_to_the_general_reader() {
    let with = |key: &str, value: Value| {
        let mut body = agent_turn();
        body[key] = value;
        let body = body.to_string();
        assert_eq!(decode(body.as_bytes()), None, "{key}");
    };
    with("tool_choice", json!({"type": "auto"}));
    with(
        "thinking",
        json!({"type": "enabled", "budget_tokens": 2048}),
    );
    with("output_config", json!({"effort": "low"}));
    with(
        "output_format",
        json!({"type": "json_schema", "schema": {}}),
    );
    with(
        "messages",
        json!([{"role": "user", "content": [{"type": "image",
        "source": {"type": "url", "url": "https://example.com/a.png"}}]}]),
    );
    with("messages", json!([{"role": "system", "content": "x"}]));
    with("messages", json!(null));
    with("system", json!([{"type": "image"}]));
    with("metadata", json!(["user"]));
    with("tools", json!([{"name": "n", "input_schema": []}]));
    // The documented example holds an image.
    assert_eq!(decode(MESSAGES_REQUEST.as_bytes()), None);
    assert!(decode_general(MESSAGES_REQUEST.as_bytes()).is_ok());
    // A repeated member: the tree keeps the last, the hot path steps aside.
    let body = with_repeated_model(agent_turn().to_string(), true);
    assert_eq!(decode(body.as_bytes()), None);
    assert!(decode_general(body.as_bytes()).is_ok());
}

#[test]
fn the_hot_path_reads_requests_only_as_the_general_reader_does() {
    check_hot_path(request(), decode, decode_general);
}

const WORDS: &[&str] = &[
    "",
    "a",
    "said \"hi\"\n",
    "\u{e9}t\u{e9} \u{2192} done",
    "user",
    "text",
    "a longer text that runs past the word search's first words, \"quoted\"\n\tand indented",
];

/// A member that is mostly `value`, sometimes absent, `null` or of another type.
fn usually(value: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        60 => Just(Some(value)),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!("x"))),
        1 => Just(Some(json!([1]))),
    ]
}

/// A tool call's input or a tool's schema: mostly an object.
fn object_member() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        24 => (member(WORDS), count())
            .prop_map(|(a, n)| Some(object(vec![("a", a), ("n", n), ("type", Some(json!("object")))]))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!([1]))),
    ]
}

fn text_block() -> impl Strategy<Value = Value> {
    (member(WORDS), usually(json!({"type": "ephemeral"}))).prop_map(|(text, cache)| {
        object(vec![
            ("type", Some(json!("text"))),
            ("text", text),
            ("cache_control", cache),
        ])
    })
}

/// A string or an array of `blocks`, sometimes absent, `null` or another value.
fn one_or_many(blocks: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        4 => member(WORDS),
        8 => proptest::collection::vec(blocks, 0..3).prop_map(|b| Some(json!(b))),
        1 => Just(Some(json!({"type": "text"}))),
    ]
    .boxed()
}

fn block() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => text_block(),
        2 => (member(WORDS), member(WORDS)).prop_map(|(thinking, signature)| object(vec![
            ("type", Some(json!("thinking"))),
            ("thinking", thinking),
            ("signature", signature),
        ])),
        1 => member(WORDS).prop_map(|data| object(vec![
            ("type", Some(json!("redacted_thinking"))),
            ("data", data),
        ])),
        4 => (member(WORDS), member(WORDS), object_member()).prop_map(|(id, name, input)| {
            object(vec![
                ("type", Some(json!("tool_use"))),
                ("id", id),
                ("name", name),
                ("input", input),
            ])
        }),
        4 => (member(WORDS), one_or_many(text_block()), usually(json!(true))).prop_map(
            |(id, content, is_error)| object(vec![
                ("type", Some(json!("tool_result"))),
                ("tool_use_id", id),
                ("content", content),
                ("is_error", is_error),
            ])
        ),
        1 => member(&["image", "document", "server_tool_use", "web_search_tool_result", ""])
            .prop_map(|kind| object(vec![("type", kind), ("text", Some(json!("x")))])),
    ]
}

fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        12 => proptest::sample::select(&["user", "assistant"][..]).prop_map(|r| Some(json!(r))),
        1 => member(&["system", "tool", ""]),
    ];
    (role, one_or_many(block()))
        .prop_map(|(role, content)| object(vec![("role", role), ("content", content)]))
}

fn tool() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        8 => Just(None),
        1 => Just(Some(json!("custom"))),
        1 => Just(Some(json!("bash_20250124"))),
        1 => Just(Some(json!(3))),
    ];
    (
        kind,
        member(WORDS),
        member(WORDS),
        object_member(),
        usually(json!(false)),
    )
        .prop_map(|(kind, name, description, schema, strict)| {
            object(vec![
                ("type", kind),
                ("name", name),
                ("description", description),
                ("input_schema", schema),
                ("strict", strict),
            ])
        })
}

fn request() -> impl Strategy<Value = String> {
    let system = one_or_many(text_block());
    let messages = prop_oneof![
        16 => proptest::collection::vec(message(), 0..4).prop_map(|m| Some(json!(m))),
        1 => Just(None),
        1 => Just(Some(json!({}))),
    ];
    let tools = prop_oneof![
        4 => Just(None),
        8 => proptest::collection::vec(tool(), 0..3).prop_map(|t| Some(json!(t))),
        1 => Just(Some(json!("tools"))),
    ];
    let rare = prop_oneof![
        24 => Just(None),
        1 => Just(Some(("tool_choice", json!({"type": "any"})))),
        1 => Just(Some(("thinking", json!({"type": "adaptive"})))),
        1 => Just(Some(("mcp_servers", json!([])))),
        1 => Just(Some(("unknown", json!({"x": 1})))),
    ];
    let sampling = (
        count(),
        usually(json!(0.5)),
        usually(json!(1)),
        count(),
        usually(json!(["END", "\u{e9}"])),
    );
    (
        member(WORDS),
        system,
        messages,
        tools,
        sampling,
        (usually(json!(true)), usually(json!({"user_id": "u"}))),
        rare,
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(model, system, messages, tools, sampling, (stream, metadata), rare, repeat)| {
                let (max_tokens, temperature, top_p, top_k, stop) = sampling;
                let mut body = object(vec![
                    ("model", model),
                    ("system", system),
                    ("messages", messages),
                    ("tools", tools),
                    ("max_tokens", max_tokens),
                    ("temperature", temperature),
                    ("top_p", top_p),
                    ("top_k", top_k),
                    ("stop_sequences", stop),
                    ("stream", stream),
                    ("metadata", metadata),
                ]);
                if let Some((key, value)) = rare {
                    body[key] = value;
                }
                with_repeated_model(body.to_string(), repeat)
            },
        )
}
