//! Tests of the Responses API codec: documented-shape fixtures, round trips, refusals and
//! malformed input, and the stream event sequence a real SDK expects.

use serde_json::{Value, json};

use super::*;
use crate::translate::AnswerContext;
use crate::translate::model::{Event, Response, StopReason, TokenUsage};
use crate::translate::test_util::*;
use crate::wire::sse::DataLineScanner;

const REQUEST: &str = include_str!("../../tests/fixtures/translate/responses/request.json");
const RESPONSE: &str =
    include_str!("../../tests/fixtures/translate/responses/response_tool_call.json");
const STREAM: &str = include_str!("../../tests/fixtures/translate/responses/stream_text_tool.sse");
const STREAM_ERROR: &str =
    include_str!("../../tests/fixtures/translate/responses/stream_error.sse");

fn result(call_id: &str, content: Vec<Part>) -> Part {
    Part::ToolResult(ToolResult {
        call_id: call_id.into(),
        name: None,
        content,
        is_error: false,
    })
}

fn reasoning(t: &str, encrypted: &str) -> Part {
    Part::Reasoning(Reasoning {
        text: t.into(),
        signature: None,
        encrypted: Some(encrypted.into()),
    })
}

fn msg(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

fn decode(body: Value) -> Result<Request, TranslateError> {
    decode_request(body.to_string().as_bytes())
}

/// Decodes `{"model":"m", "input":"hi"}` with `extra` merged in.
fn decode_with(extra: Value) -> Result<Request, TranslateError> {
    let mut body = json!({"model": "m", "input": "hi"});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    decode(body)
}

fn assert_refused(extra: Value, field: &str) {
    match decode_with(extra) {
        Err(TranslateError::Unsupported(m)) => {
            assert!(m.contains(field), "{m}");
            assert!(m.contains("use a backend of the same protocol"), "{m}");
        }
        other => panic!("{field}: expected a refusal, got {other:?}"),
    }
}

fn assert_invalid(extra: Value, mention: &str) {
    match decode_with(extra) {
        Err(TranslateError::Invalid(m)) => assert!(m.contains(mention), "{m}"),
        other => panic!("{mention}: expected Invalid, got {other:?}"),
    }
}

fn expected_fixture_request() -> Request {
    let weather_args = r#"{"city":"Paris","unit":"celsius"}"#;
    let patch = "*** Begin Patch\n*** Update File: a.rs\n-x\n+y\n*** End Patch";
    let diff = Image::Url {
        url: "https://example.com/diff.png".into(),
        media_type: None,
    };
    Request {
        model: "gpt-5-codex".into(),
        system: vec![
            "You are a coding agent working in a terminal.".into(),
            "The repository is /repo.".into(),
        ],
        messages: vec![
            msg(
                Role::User,
                vec![
                    text("What does this screenshot show?"),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBORw0KGgoAAAANSUhEUg==".into(),
                    }),
                ],
            ),
            msg(
                Role::Assistant,
                vec![
                    reasoning(
                        "**Reading the screenshot**\n\nThen the weather in Paris.",
                        "gAAAAABo-encrypted-blob",
                    ),
                    text("A failing test run. Let me check the weather and fix the test."),
                    call("call_weather_1", "get_weather", weather_args),
                    call(
                        "call_patch_1",
                        "apply_patch",
                        &json!({"input": patch}).to_string(),
                    ),
                ],
            ),
            msg(
                Role::User,
                vec![
                    result(
                        "call_weather_1",
                        vec![text(r#"{"temperature":18,"sky":"clear"}"#)],
                    ),
                    result(
                        "call_patch_1",
                        vec![text("Patch applied."), Part::Image(diff)],
                    ),
                    text("Thanks. Now summarise what you did."),
                ],
            ),
        ],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Current weather for a city.".into()),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                    "required": ["city", "unit"], "additionalProperties": false}),
                strict: Some(true),
                freeform: false,
            },
            Tool {
                name: "apply_patch".into(),
                description: Some("Edit files with a patch.".into()),
                parameters: json!({"type": "object", "properties": {"input": {"type": "string",
                    "description": "The input must match this lark grammar:\nstart: begin_patch hunk+ end_patch"}},
                    "required": ["input"]}),
                strict: None,
                freeform: true,
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(true),
        max_tokens: Some(4096),
        temperature: Some(0.2),
        top_p: Some(0.95),
        stream: true,
        response_format: Some(ResponseFormat::JsonSchema {
            name: "summary".into(),
            schema: json!({"type": "object", "properties": {"summary": {"type": "string"}},
                "required": ["summary"], "additionalProperties": false}),
            strict: Some(true),
        }),
        reasoning: Some(ReasoningConfig {
            effort: Some("medium".into()),
            budget_tokens: None,
            include: true,
        }),
        user: Some("user-42".into()),
        ..Default::default()
    }
}

#[test]
fn documented_request_decodes_to_the_canonical_shape() {
    let req = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(req, expected_fixture_request());
}

#[test]
fn requests_round_trip() {
    let req = expected_fixture_request();
    let body = encode_request(&req).unwrap();
    assert_eq!(decode_request(&body).unwrap(), req);
    let wire: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        wire["instructions"],
        "You are a coding agent working in a terminal."
    );
    assert_eq!(wire["input"][0]["role"], "developer");
    assert_eq!(wire["store"], false);
    assert_eq!(wire["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(wire["tools"][1]["format"]["syntax"], "lark");
    let plain = Request {
        model: "m".into(),
        messages: vec![msg(Role::User, vec![text("hi")])],
        tool_choice: Some(ToolChoice::Function("get_weather".into())),
        response_format: Some(ResponseFormat::JsonObject),
        ..Default::default()
    };
    assert_eq!(
        decode_request(&encode_request(&plain).unwrap()).unwrap(),
        plain
    );
}

#[test]
fn a_string_input_is_one_user_message_and_system_items_join_the_instructions() {
    let req = decode(json!({"model": "m", "instructions": "first", "input": [
        {"role": "user", "content": "q"},
        {"role": "system", "content": "second"},
    ]}))
    .unwrap();
    assert_eq!(req.system, vec!["first", "second"]);
    assert_eq!(req.messages, vec![msg(Role::User, vec![text("q")])]);
    let req = decode_with(json!({})).unwrap();
    assert_eq!(req.messages, vec![msg(Role::User, vec![text("hi")])]);
}

#[test]
fn hosted_tools_and_harmless_fields_are_dropped() {
    let req = decode_with(json!({
        "tools": [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]},
                  {"type": "local_shell"}, {"type": "mcp", "server_label": "x"}],
        "store": true, "background": false, "top_logprobs": 0, "user": "u",
        "input": [{"type": "web_search_call", "id": "ws", "status": "completed"},
                  {"role": "user", "content": "hi"}],
    }))
    .unwrap();
    assert!(req.tools.is_empty());
    assert_eq!(req.user.as_deref(), Some("u"));
    assert_eq!(req.messages, vec![msg(Role::User, vec![text("hi")])]);
}

#[test]
fn local_shell_calls_become_a_local_shell_function() {
    let req = decode_with(json!({"input": [
        {"type": "local_shell_call", "id": "ls", "call_id": "c", "status": "completed",
         "action": {"type": "exec", "command": ["ls"]}},
        {"type": "local_shell_call_output", "call_id": "c", "output": "a.rs"},
    ]}))
    .unwrap();
    let args = json!({"type": "exec", "command": ["ls"]}).to_string();
    assert_eq!(
        req.messages[0].content,
        vec![call("c", "local_shell", &args)]
    );
    assert_eq!(
        req.messages[1].content,
        vec![result("c", vec![text("a.rs")])]
    );
}

#[test]
fn allowed_tools_cut_the_tool_list() {
    let f = |name: &str| json!({"type": "function", "name": name});
    let req = decode_with(json!({"tools": [f("a"), f("b")], "tool_choice":
        {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}}))
    .unwrap();
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "b");
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    let custom = decode_with(json!({"tool_choice": {"type": "custom", "name": "apply_patch"}}));
    assert_eq!(
        custom.unwrap().tool_choice,
        Some(ToolChoice::Function("apply_patch".into()))
    );
}

#[test]
fn fields_that_would_change_the_answer_are_refused() {
    assert_refused(
        json!({"previous_response_id": "resp_1"}),
        "previous_response_id",
    );
    assert_refused(json!({"conversation": "conv_1"}), "conversation");
    assert_refused(json!({"background": true}), "background");
    assert_refused(json!({"prompt": {"id": "pmpt_1"}}), "prompt");
    assert_refused(json!({"top_logprobs": 3}), "top_logprobs");
    assert_refused(
        json!({"tool_choice": {"type": "web_search_preview"}}),
        "tool_choice",
    );
    assert_refused(
        json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
        "item_reference",
    );
    assert_refused(json!({"input": [{"type": "mystery_call"}]}), "mystery_call");
    let part = |p: Value| json!({"input": [{"role": "user", "content": [p]}]});
    assert_refused(
        part(json!({"type": "input_image", "file_id": "file_1"})),
        "file_id",
    );
    assert_refused(
        part(json!({"type": "input_file", "file_id": "file_1"})),
        "input_file",
    );
    assert_refused(part(json!({"type": "input_audio"})), "input_audio");
    let stop = Request {
        stop: vec!["END".into()],
        ..Default::default()
    };
    assert!(matches!(
        encode_request(&stop),
        Err(TranslateError::Unsupported(_))
    ));
}

#[test]
fn malformed_requests_are_invalid_and_name_the_field() {
    assert!(matches!(
        decode_request(b"{"),
        Err(TranslateError::Invalid(_))
    ));
    assert!(matches!(
        decode_request(b"[1]"),
        Err(TranslateError::Invalid(_))
    ));
    assert_invalid(json!({"input": 7}), "`input`");
    assert_invalid(json!({"temperature": "hot"}), "`temperature`");
    assert_invalid(json!({"max_output_tokens": -1}), "`max_output_tokens`");
    assert_invalid(
        json!({"input": [{"content": "x"}]}),
        "`input[0].role` is required",
    );
    assert_invalid(
        json!({"input": [{"role": "tool", "content": "x"}]}),
        "input[0].role",
    );
    assert_invalid(json!({"input": [{"role": "user"}]}), "input[0].content");
    assert_invalid(
        json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
        "input[0].call_id",
    );
    assert_invalid(
        json!({"input": [{"role": "user", "content": [{"type": "video"}]}]}),
        "unknown content type `video`",
    );
    assert_invalid(
        json!({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png,abc"}]}]}),
        "image_url",
    );
    assert_invalid(
        json!({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:application/pdf;base64,JVBE"}]}]}),
        "must be an http(s) URL or a data:image/<type>;base64,<data> URL",
    );
    assert_invalid(json!({"tools": [{"name": "f"}]}), "tools[0].type");
    assert_invalid(json!({"tool_choice": "sometimes"}), "tool_choice");
    assert_invalid(
        json!({"text": {"format": {"type": "yaml"}}}),
        "text.format.type",
    );
}

/// The answer context of the tests (`apply_patch` is freeform).
pub(super) fn ctx() -> AnswerContext {
    AnswerContext {
        model: "caller-model".into(),
        created: 1_700_000_000,
        include_usage: false,
        freeform_tools: vec!["apply_patch".into()],
    }
}

fn usage() -> TokenUsage {
    TokenUsage {
        input: 291,
        output: 84,
        cached_input: Some(128),
        cache_creation: None,
        reasoning: Some(64),
    }
}

#[test]
fn documented_response_decodes() {
    let resp = decode_response(RESPONSE.as_bytes()).unwrap();
    assert_eq!(resp.id, "resp_67ccd3a9da748190baa7f1570fe91ac6");
    assert_eq!(resp.model, "gpt-5-2025-08-07");
    assert_eq!(resp.created, 1_741_476_777);
    assert_eq!(resp.stop, StopReason::ToolUse);
    assert_eq!(resp.usage, usage());
    assert_eq!(
        resp.content,
        vec![
            reasoning(
                "The user wants the weather; call the tool.",
                "gAAAAABo-enc-2"
            ),
            text("Let me look that up."),
            call(
                "call_12345xyz",
                "get_weather",
                r#"{"location":"Paris, France"}"#
            ),
        ]
    );
}

fn answer(content: Vec<Part>, stop: StopReason) -> Response {
    Response {
        id: "resp_abc".into(),
        model: "gpt-x".into(),
        created: 1_741_000_000,
        content,
        stop,
        usage: usage(),
    }
}

#[test]
fn responses_round_trip_and_carry_what_the_sdk_requires() {
    let patch = json!({"input": "*** Begin Patch"}).to_string();
    let resp = answer(
        vec![
            reasoning("think", "enc"),
            text("a"),
            text("b"),
            call("c1", "get_weather", "{}"),
            call("c2", "apply_patch", &patch),
        ],
        StopReason::ToolUse,
    );
    let body = encode_response(&resp, &ctx());
    assert_eq!(decode_response(&body).unwrap(), resp);
    let wire: Value = serde_json::from_slice(&body).unwrap();
    for key in [
        "id",
        "created_at",
        "model",
        "object",
        "output",
        "parallel_tool_calls",
    ] {
        assert!(!wire[key].is_null(), "{key}");
    }
    assert_eq!(wire["tools"], json!([]));
    assert_eq!(wire["tool_choice"], "auto");
    assert_eq!(wire["status"], "completed");
    assert_eq!(wire["usage"]["total_tokens"], 375);
    assert_eq!(wire["output"][1]["id"], "msg_abc_1");
    assert_eq!(wire["output"][1]["content"][1]["text"], "b");
    assert_eq!(wire["output"][2]["type"], "function_call");
    assert_eq!(wire["output"][3]["type"], "custom_tool_call");
    assert_eq!(wire["output"][3]["input"], "*** Begin Patch");
}

#[test]
fn cut_answers_are_incomplete_and_dates_and_models_fall_back_to_the_context() {
    let mut resp = answer(vec![text("partial")], StopReason::MaxTokens);
    resp.created = 0;
    resp.model.clear();
    let wire: Value = serde_json::from_slice(&encode_response(&resp, &ctx())).unwrap();
    assert_eq!(wire["status"], "incomplete");
    assert_eq!(wire["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(wire["created_at"], 1_700_000_000);
    assert_eq!(wire["model"], "caller-model");
    let back = decode_response(wire.to_string().as_bytes()).unwrap();
    assert_eq!(back.stop, StopReason::MaxTokens);
}

#[test]
fn bad_upstream_answers_are_upstream_errors() {
    let failed = json!({"id": "resp_1", "status": "failed", "output": [],
        "error": {"code": "server_error", "message": "boom"}});
    for body in [
        b"not json".to_vec(),
        b"[]".to_vec(),
        json!({"status": "completed", "output": []})
            .to_string()
            .into_bytes(),
        failed.to_string().into_bytes(),
        json!({"id": "r", "status": "in_progress", "output": []})
            .to_string()
            .into_bytes(),
        json!({"id": "r", "output": [{"type": "function_call", "name": "f"}]})
            .to_string()
            .into_bytes(),
    ] {
        assert!(
            matches!(decode_response(&body), Err(TranslateError::Upstream(_))),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Feeds SSE text to a decoder, as the translator does.
fn decode_sse(sse: &str) -> Vec<Event> {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    DataLineScanner::default().feed(sse.as_bytes(), |data| {
        decoder.data(data, &mut events).unwrap();
    });
    decoder.finish(&mut events);
    events
}

fn start(id: &str) -> Event {
    Event::Start {
        id: id.into(),
        model: "gpt-4.1-2025-04-14".into(),
    }
}

fn call_start(index: usize, id: &str, name: &str) -> Event {
    Event::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

#[test]
fn documented_stream_decodes_event_by_event() {
    let events = decode_sse(STREAM);
    let expected = vec![
        start("resp_68a1"),
        Event::Text("Checking the ".into()),
        Event::Text("weather.".into()),
        call_start(0, "call_abc", "get_weather"),
        args(0, "{\"loc"),
        args(0, "ation\":\"Par"),
        args(0, "is\"}"),
        Event::Usage(TokenUsage {
            input: 57,
            output: 21,
            cached_input: Some(0),
            cache_creation: None,
            reasoning: Some(0),
        }),
        Event::Stop(StopReason::ToolUse),
    ];
    assert_eq!(events, expected);
}

#[test]
fn an_error_mid_stream_is_an_error_event_and_the_last_one() {
    let events = decode_sse(STREAM_ERROR);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[1], Event::Text("Partial".into()));
    match &events[2] {
        Event::Error { status, message } => {
            assert_eq!(*status, 429);
            assert!(message.starts_with("Rate limit reached"));
        }
        other => panic!("{other:?}"),
    }
    let mut decoder = StreamDecoder::default();
    let bad = decoder.data(b"{not json", &mut Vec::new());
    assert!(matches!(bad, Err(TranslateError::Upstream(_))));
}
