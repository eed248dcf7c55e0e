//! Tests of the Anthropic Messages codec: golden fixtures in the documented shapes, round trips,
//! the encoder's decisions, and every refusal and malformed input.

use serde_json::{Value, json};

use super::*;
use crate::translate::model::{
    DEFAULT_MAX_TOKENS, Image, Message, Part, Reasoning, ReasoningConfig, Request, Response,
    ResponseFormat, Role, StopReason, TokenUsage, Tool, ToolChoice,
};
use crate::translate::test_util::*;

const REQUEST: &str = include_str!("../../tests/fixtures/translate/anthropic/request.json");
const RESPONSE: &str =
    include_str!("../../tests/fixtures/translate/anthropic/response_tool_use.json");

fn reasoning(text: &str, signature: Option<&str>, encrypted: Option<&str>) -> Part {
    Part::Reasoning(Reasoning {
        text: text.into(),
        signature: signature.map(Into::into),
        encrypted: encrypted.map(Into::into),
    })
}

fn msg(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

fn tool(name: &str, parameters: Value) -> Tool {
    Tool {
        name: name.into(),
        description: None,
        parameters,
        strict: None,
        freeform: false,
    }
}

fn base64_image() -> Part {
    Part::Image(Image::Base64 {
        media_type: "image/png".into(),
        data: "iVBORw0KGgo=".into(),
    })
}

fn decode(body: Value) -> Result<Request, TranslateError> {
    decode_request(body.to_string().as_bytes())
}

fn encoded(req: &Request) -> Value {
    let body = encode_request(req).expect("encodes");
    serde_json::from_slice(&body).expect("JSON")
}

/// A minimal valid request with `extra` fields merged in.
fn minimal(extra: Value) -> Value {
    let mut body =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

/// A request of one user turn saying `hi` with `edit` applied.
fn request(edit: impl FnOnce(&mut Request)) -> Request {
    let mut req = Request {
        model: "claude-x".into(),
        messages: vec![msg(Role::User, vec![text("hi")])],
        ..Request::default()
    };
    edit(&mut req);
    req
}

pub(super) fn usage(
    input: u64,
    output: u64,
    cached: Option<u64>,
    creation: Option<u64>,
) -> TokenUsage {
    TokenUsage {
        input,
        output,
        cached_input: cached,
        cache_creation: creation,
        reasoning: None,
    }
}

#[test]
fn the_documented_request_decodes_to_the_canonical_shape() {
    let fixture: Value = serde_json::from_str(REQUEST).expect("fixture");
    let req = decode_request(REQUEST.as_bytes()).expect("decodes");
    let weather = Tool {
        description: Some("Get the current weather in a given location".into()),
        ..tool("get_weather", fixture["tools"][0]["input_schema"].clone())
    };
    let time = Tool {
        description: Some("Get the current time in a time zone".into()),
        ..tool("get_time", fixture["tools"][1]["input_schema"].clone())
    };
    let (weather_id, time_id) = (
        "toolu_01A09q90qw90lq917835lq9",
        "toolu_01B7hxJ3mZ2sYvVQkV1n4b8c",
    );
    let expected = Request {
        model: "claude-sonnet-4-5".into(),
        system: vec![
            "You are a travel assistant. Answer briefly.".into(),
            "Use the tools when you need live data.".into(),
        ],
        messages: vec![
            msg(
                Role::User,
                vec![
                    Part::Image(Image::Base64 {
                        media_type: "image/jpeg".into(),
                        data: "/9j/4AAQSkZJRgABAQ==".into(),
                    }),
                    text("Where was this photo taken, and what is the weather there now?"),
                ],
            ),
            msg(
                Role::Assistant,
                vec![
                    reasoning(
                        "The photo shows the Golden Gate Bridge.",
                        Some("EqQBCkYIBRgCIkA0"),
                        None,
                    ),
                    text(
                        "That is the Golden Gate Bridge in San Francisco. Let me check the weather.",
                    ),
                    call(
                        weather_id,
                        "get_weather",
                        r#"{"location":"San Francisco, CA","unit":"celsius"}"#,
                    ),
                    call(time_id, "get_time", r#"{"timezone":"America/Los_Angeles"}"#),
                ],
            ),
            msg(
                Role::User,
                vec![
                    result(weather_id, vec![text("15 degrees, fog")], false),
                    result(time_id, vec![text("timezone service unavailable")], true),
                    text("Also show me a webcam picture if you can."),
                ],
            ),
            msg(Role::Assistant, vec![text("Here is the current view:")]),
            msg(
                Role::User,
                vec![
                    Part::Image(Image::Url {
                        url: "https://example.com/webcam/ggb.jpg".into(),
                        media_type: None,
                    }),
                    text("Thanks! Is it a good day for a walk?"),
                ],
            ),
        ],
        // The web search server tool is not offered.
        tools: vec![weather, time],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(false),
        max_tokens: Some(2048),
        temperature: Some(0.7),
        top_k: Some(40),
        stop: vec!["\n\nHuman:".into()],
        stream: true,
        include_usage: true,
        user: Some("user-7f3a2b".into()),
        ..Request::default()
    };
    assert_eq!(req, expected);
}

#[test]
fn the_documented_request_encodes_back_without_what_was_dropped() {
    let mut expected: Value = serde_json::from_str(REQUEST).expect("fixture");
    let req = decode_request(REQUEST.as_bytes()).expect("decodes");
    // What the canonical shape does not hold, and the forms the encoder writes.
    expected
        .as_object_mut()
        .expect("object")
        .remove("service_tier");
    expected["system"][1]
        .as_object_mut()
        .expect("block")
        .remove("cache_control");
    let tools = expected["tools"].as_array_mut().expect("tools");
    tools.pop();
    tools[1]
        .as_object_mut()
        .expect("tool")
        .remove("cache_control");
    tools[1].as_object_mut().expect("tool").remove("type");
    expected["messages"][2]["content"][0]["content"] =
        json!([{"type": "text", "text": "15 degrees, fog"}]);
    expected["messages"][3]["content"] =
        json!([{"type": "text", "text": "Here is the current view:"}]);
    assert_eq!(encoded(&req), expected);
}

#[test]
fn requests_the_dialect_carries_survive_a_round_trip() {
    let schema =
        json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]});
    let thinking = request(|r| {
        r.system = vec!["one".into(), "two".into()];
        r.messages = vec![
            msg(Role::User, vec![text("look"), base64_image()]),
            msg(
                Role::Assistant,
                vec![
                    reasoning("", None, Some("ErcBCkgIAxABGAIiQ")),
                    reasoning("hmm", Some("sig"), None),
                    call("toolu_1", "search", r#"{"q":"rust"}"#),
                ],
            ),
            msg(
                Role::User,
                vec![result(
                    "toolu_1",
                    vec![text("found"), base64_image()],
                    false,
                )],
            ),
        ];
        r.tools = vec![Tool {
            description: Some("Search".into()),
            strict: Some(true),
            ..tool("search", schema.clone())
        }];
        r.tool_choice = Some(ToolChoice::None);
        r.max_tokens = Some(4096);
        r.top_p = Some(0.97);
        r.reasoning = Some(ReasoningConfig {
            budget_tokens: Some(2048),
            include: true,
            ..ReasoningConfig::default()
        });
        r.response_format = Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: schema.clone(),
            strict: Some(true),
        });
        r.user = Some("u-1".into());
    });
    let sampling = request(|r| {
        r.tools = vec![tool("search", schema.clone())];
        r.tool_choice = Some(ToolChoice::Function("search".into()));
        r.parallel_tool_calls = Some(false);
        r.max_tokens = Some(100);
        r.temperature = Some(0.5);
        r.top_k = Some(10);
        r.stop = vec!["END".into()];
        r.stream = true;
        r.include_usage = true;
    });
    for req in [thinking, sampling] {
        let body = encode_request(&req).expect("encodes");
        assert_eq!(decode_request(&body).expect("decodes"), req);
    }
}

#[test]
fn the_thinking_budget_fits_under_max_tokens() {
    let cases = [
        // (max_tokens, budget, effort) → (thinking budget, max_tokens)
        ((None, None, Some("medium")), (Some(8192), 16384)),
        ((Some(4000), Some(500), None), (Some(1024), 4000)),
        ((Some(4000), Some(8000), None), (Some(3999), 4000)),
        ((Some(1000), Some(2000), None), (None, 1000)),
        ((None, None, Some("minimal")), (None, DEFAULT_MAX_TOKENS)),
        ((None, None, None), (None, DEFAULT_MAX_TOKENS)),
    ];
    for ((max, budget, effort), (want_budget, want_max)) in cases {
        let req = request(|r| {
            r.max_tokens = max;
            r.reasoning = Some(ReasoningConfig {
                budget_tokens: budget,
                effort: effort.map(Into::into),
                include: true,
            });
        });
        let body = encoded(&req);
        assert_eq!(
            body["max_tokens"], want_max,
            "{max:?} {budget:?} {effort:?}"
        );
        assert_eq!(body["thinking"]["budget_tokens"].as_u64(), want_budget);
    }
}

#[test]
fn sampling_is_cut_to_what_anthropic_accepts() {
    let hot = encoded(&request(|r| {
        r.temperature = Some(1.8);
        r.top_p = Some(0.9);
        r.seed = Some(7);
        r.presence_penalty = Some(0.5);
    }));
    assert_eq!(hot["temperature"], 1.0);
    assert!(hot.get("top_p").is_none() && hot.get("seed").is_none());
    assert!(hot.get("presence_penalty").is_none());
    let thinking = encoded(&request(|r| {
        r.temperature = Some(0.2);
        r.top_k = Some(5);
        r.top_p = Some(0.9);
        r.reasoning = Some(ReasoningConfig {
            effort: Some("low".into()),
            ..ReasoningConfig::default()
        });
    }));
    assert_eq!(
        thinking["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    for field in ["temperature", "top_k", "top_p"] {
        assert!(thinking.get(field).is_none(), "{field}");
    }
    // A forced tool call and thinking cannot go together: thinking goes.
    let forced = encoded(&request(|r| {
        r.tools = vec![tool("t", json!({}))];
        r.tool_choice = Some(ToolChoice::Required);
        r.reasoning = Some(ReasoningConfig {
            budget_tokens: Some(4096),
            ..ReasoningConfig::default()
        });
    }));
    assert!(forced.get("thinking").is_none());
    assert_eq!(forced["tool_choice"], json!({"type": "any"}));
    // A schema without a type gets Anthropic's required `object`.
    assert_eq!(
        forced["tools"][0]["input_schema"],
        json!({"type": "object"})
    );
}

#[test]
fn tool_choice_and_parallel_calls_map_to_anthropic_forms() {
    let cases = [
        (
            None,
            Some(false),
            Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
        ),
        (
            Some(ToolChoice::None),
            Some(false),
            Some(json!({"type": "none"})),
        ),
        (Some(ToolChoice::Auto), None, Some(json!({"type": "auto"}))),
        (
            Some(ToolChoice::Function("t".into())),
            Some(true),
            Some(json!({"type": "tool", "name": "t"})),
        ),
        (None, None, None),
    ];
    for (choice, parallel, want) in cases {
        let body = encoded(&request(|r| {
            r.tools = vec![tool("t", json!({"type": "object"}))];
            r.tool_choice = choice.clone();
            r.parallel_tool_calls = parallel;
        }));
        assert_eq!(
            body.get("tool_choice"),
            want.as_ref(),
            "{choice:?} {parallel:?}"
        );
    }
    let no_tools = encoded(&request(|r| r.tool_choice = Some(ToolChoice::Required)));
    assert!(no_tools.get("tool_choice").is_none() && no_tools.get("tools").is_none());
}

#[test]
fn history_is_reshaped_the_way_anthropic_wants_it() {
    let req = request(|r| {
        r.messages = vec![
            msg(Role::User, vec![text("weather and time?")]),
            msg(
                Role::Assistant,
                vec![
                    text(""),
                    reasoning("unsigned summary", None, None),
                    reasoning("signed by stream", None, Some("sig-from-stream")),
                    call("c1", "weather", "{}"),
                    call("c2", "time", "not json"),
                ],
            ),
            // Chat's tool messages arrive one per user turn, sometimes after text.
            msg(
                Role::User,
                vec![text("also this"), result("c1", vec![], false)],
            ),
            msg(Role::User, vec![result("c2", vec![text("")], true)]),
            msg(Role::Assistant, vec![reasoning("lost", None, None)]),
            msg(
                Role::User,
                vec![Part::Image(Image::Url {
                    url: "data:image/gif;base64,R0lGOD==".into(),
                    media_type: None,
                })],
            ),
        ];
    });
    let body = encoded(&req);
    let expected = json!([
        {"role": "user", "content": [{"type": "text", "text": "weather and time?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "signed by stream", "signature": "sig-from-stream"},
            {"type": "tool_use", "id": "c1", "name": "weather", "input": {}},
            {"type": "tool_use", "id": "c2", "name": "time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1"},
            {"type": "tool_result", "tool_use_id": "c2", "is_error": true},
            {"type": "text", "text": "also this"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGOD=="}},
        ]},
    ]);
    assert_eq!(body["messages"], expected);
}

#[test]
fn what_anthropic_cannot_carry_is_refused_when_encoding() {
    let json_object = request(|r| r.response_format = Some(ResponseFormat::JsonObject));
    let err = encode_request(&json_object).expect_err("refused");
    assert!(
        matches!(&err, TranslateError::Unsupported(m) if m.contains("json_object")),
        "{err}"
    );
    let text_format = encoded(&request(|r| r.response_format = Some(ResponseFormat::Text)));
    assert!(text_format.get("output_config").is_none());
}

#[test]
fn caller_options_outside_the_canonical_shape_decode_or_drop() {
    let req = decode(minimal(json!({
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "medium"},
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}],
        "container": "cntr_1",
        "tools": [{"type": "bash_20250124", "name": "bash"}, {"type": "computer_20250124", "name": "computer"}],
    })))
    .expect("decodes");
    assert_eq!(
        req.reasoning,
        Some(ReasoningConfig {
            effort: Some("medium".into()),
            budget_tokens: None,
            include: false,
        })
    );
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    assert!(req.tools.is_empty());
    let disabled = decode(minimal(json!({"thinking": {"type": "disabled"}}))).expect("decodes");
    assert_eq!(disabled.reasoning, None);
    let effort_only =
        decode(minimal(json!({"output_config": {"effort": "low"}}))).expect("decodes");
    assert_eq!(
        effort_only.reasoning.and_then(|r| r.effort),
        Some("low".into())
    );
    let history = decode(minimal(json!({"messages": [{"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "text", "text": "found", "citations": [], "cache_control": {"type": "ephemeral"}},
    ]}]})))
    .expect("decodes");
    assert_eq!(
        history.messages[0].content,
        vec![reasoning("", None, Some("EmwKAhgB")), text("found"),]
    );
}

#[test]
fn content_that_would_change_the_answer_is_refused() {
    let pdf = json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}});
    let search =
        json!({"type": "search_result", "source": "https://x", "title": "t", "content": []});
    let file_image = json!({"type": "image", "source": {"type": "file", "file_id": "file_01"}});
    let in_result = json!({"type": "tool_result", "tool_use_id": "t", "content": [pdf.clone()]});
    let cases = [
        (pdf, "messages[0].content[0].type"),
        (search, "\"search_result\""),
        (file_image, "messages[0].content[0].source.type"),
        (in_result, "messages[0].content[0].content[0].type"),
        (json!({"type": "audio"}), "\"audio\""),
    ];
    for (block, needle) in cases {
        let body = minimal(json!({"messages": [{"role": "user", "content": [block]}]}));
        let err = decode(body).expect_err("refused");
        let TranslateError::Unsupported(m) = &err else {
            panic!("not a refusal: {err:?}")
        };
        assert!(m.contains(needle) && m.contains("same protocol"), "{m}");
    }
}

#[test]
fn a_system_turn_in_the_conversation_joins_the_system_prompt() {
    // Claude Code sends its environment this way for models it does not know.
    let req = decode(json!({
        "model": "m", "max_tokens": 10, "system": "You are Claude Code.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
        ],
    }))
    .unwrap();
    assert_eq!(req.system, ["You are Claude Code.", "# Environment"]);
    assert_eq!(req.messages.len(), 1);
    let bad = decode(minimal(
        json!({"messages": [{"role": "system", "content": 5}]}),
    ));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("`messages[0].content`")
    );
}

#[test]
fn malformed_requests_name_the_field() {
    let cases = [
        (minimal(json!({"messages": "hi"})), "`messages`"),
        (json!({"model": "m"}), "`messages`"),
        (
            minimal(json!({"messages": [{"role": "tool", "content": "x"}]})),
            "`messages[0].role`",
        ),
        (
            minimal(json!({"messages": [{"role": "user", "content": 5}]})),
            "`messages[0].content`",
        ),
        (
            minimal(json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]})),
            "`messages[0].content[0].type`",
        ),
        (
            minimal(json!({"messages": [{"role": "user", "content": [{"type": "image"}]}]})),
            "`messages[0].content[0].source`",
        ),
        // Only images are images (the `translate` fuzz target: another type reached Gemini
        // as `inlineData`, which its decoder refuses).
        (
            minimal(
                json!({"messages": [{"role": "user", "content": [{"type": "image",
                "source": {"type": "base64", "media_type": "text/plain", "data": "AAAA"}}]}]}),
            ),
            "`messages[0].content[0].source.media_type` must be an image type",
        ),
        (
            minimal(
                json!({"messages": [{"role": "user", "content": [{"type": "image",
                "source": {"type": "url", "url": "data:text/plain;base64,AAAA"}}]}]}),
            ),
            "`messages[0].content[0].source.url` must be an http(s) URL or a data:image/",
        ),
        (minimal(json!({"max_tokens": -1})), "`max_tokens`"),
        (minimal(json!({"temperature": "hot"})), "`temperature`"),
        (
            minimal(json!({"system": [{"type": "image"}]})),
            "`system[0].type`",
        ),
        (minimal(json!({"system": 3})), "`system`"),
        (minimal(json!({"stop_sequences": [1]})), "`stop_sequences`"),
        (
            minimal(json!({"tools": [{"input_schema": {}}]})),
            "`tools[0].name`",
        ),
        (
            minimal(json!({"tools": [{"name": "t", "input_schema": "x"}]})),
            "`tools[0].input_schema`",
        ),
        (
            minimal(json!({"tool_choice": {"type": "some"}})),
            "`tool_choice.type`",
        ),
        (
            minimal(json!({"tool_choice": {"type": "tool"}})),
            "`tool_choice.name`",
        ),
        (
            minimal(json!({"thinking": {"type": "enabled"}})),
            "`thinking.budget_tokens`",
        ),
        (
            minimal(json!({"thinking": {"type": "max"}})),
            "`thinking.type`",
        ),
        (
            minimal(json!({"output_config": {"format": {"type": "regex"}}})),
            "`output_config.format.type`",
        ),
        (
            minimal(json!({"output_format": {"type": "json_schema"}})),
            "`output_format.schema`",
        ),
        (
            minimal(json!({"metadata": {"user_id": 1}})),
            "`metadata.user_id`",
        ),
        (json!([1]), "the body must be a JSON object"),
    ];
    for (body, needle) in cases {
        let err = decode(body.clone()).expect_err("invalid");
        assert!(
            matches!(&err, TranslateError::Invalid(m) if m.contains(needle)),
            "{body}: {err:?}"
        );
    }
    let err = decode_request(b"{not json").expect_err("invalid");
    assert!(matches!(err, TranslateError::Invalid(m) if m.contains("JSON")));
}

#[test]
fn the_documented_tool_use_answer_decodes_and_encodes_back() {
    let resp = decode_response(RESPONSE.as_bytes()).expect("decodes");
    let expected = Response {
        id: "msg_01Aq9w938a90dw8q".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        created: 0,
        content: vec![
            reasoning(
                "The user wants the weather; I should call the tool.",
                Some("EuYBCkQYAiJAgCs1"),
                None,
            ),
            text("I'll check the current weather in San Francisco for you."),
            call(
                "toolu_01A09q90qw90lq917835lq9",
                "get_weather",
                r#"{"location":"San Francisco, CA","unit":"celsius"}"#,
            ),
        ],
        stop: StopReason::ToolUse,
        // Canonical input counts the cache's reads and writes.
        usage: usage(2620, 89, Some(2048), Some(100)),
    };
    assert_eq!(resp, expected);
    let mut fixture: Value = serde_json::from_str(RESPONSE).expect("fixture");
    fixture["usage"]
        .as_object_mut()
        .expect("usage")
        .remove("service_tier");
    let body = encode_response(&resp, &AnswerContext::default());
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("JSON"),
        fixture
    );
    // Members in the documented order, as the fixture has them (equal `Value`s do not say so).
    assert_eq!(
        std::str::from_utf8(&body).expect("UTF-8"),
        fixture.to_string()
    );
    assert_eq!(decode_response(&body).expect("decodes"), resp);
}

#[test]
fn huge_cache_counts_saturate_the_input() {
    // Found with the `translate` fuzz target's overflow: input plus cache reads and writes near
    // `u64::MAX` must not wrap.
    let mut v: Value = serde_json::from_str(RESPONSE).expect("fixture");
    v["usage"]["input_tokens"] = json!(u64::MAX);
    let resp = decode_response(v.to_string().as_bytes()).expect("decodes");
    assert_eq!(resp.usage.input, u64::MAX);
}

#[test]
fn answers_from_other_dialects_get_anthropic_ids_stops_and_models() {
    let resp = Response {
        id: "chatcmpl-9".into(),
        model: String::new(),
        created: 1_700_000_000,
        content: vec![
            reasoning("summary", None, None),
            text("done"),
            base64_image(),
        ],
        stop: StopReason::StopSequence(Some("END".into())),
        usage: usage(10, 5, None, None),
    };
    let ctx = AnswerContext {
        model: "asked".into(),
        ..AnswerContext::default()
    };
    let body: Value = serde_json::from_slice(&encode_response(&resp, &ctx)).expect("JSON");
    assert_eq!(body["id"], "msg_chatcmpl-9");
    assert_eq!(body["model"], "asked");
    assert_eq!(
        (&body["stop_reason"], &body["stop_sequence"]),
        (&json!("stop_sequence"), &json!("END"))
    );
    assert_eq!(
        body["content"],
        json!([
            {"type": "thinking", "thinking": "summary", "signature": ""},
            {"type": "text", "text": "done"},
        ])
    );
    let stops = [
        (StopReason::ContentFilter, "refusal"),
        (StopReason::MaxTokens, "max_tokens"),
        (StopReason::Other("pause_turn".into()), "pause_turn"),
        (StopReason::Other("recitation".into()), "end_turn"),
    ];
    for (stop, want) in stops {
        let body = encode_response(
            &Response {
                stop,
                ..resp.clone()
            },
            &ctx,
        );
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            (&body["stop_reason"], &body["stop_sequence"]),
            (&json!(want), &Value::Null)
        );
    }
}

#[test]
fn malformed_answers_are_the_upstreams_fault() {
    let cases: [&[u8]; 5] = [
        b"<html>",
        br#"{"type":"message","content":[]}"#,
        br#"{"id":"msg_1","content":{}}"#,
        br#"{"id":"msg_1","content":[{"type":"tool_use","id":"t","name":"n","input":[]}]}"#,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ];
    for body in cases {
        let err = decode_response(body).expect_err("refused");
        assert!(matches!(err, TranslateError::Upstream(_)), "{err:?}");
    }
}
