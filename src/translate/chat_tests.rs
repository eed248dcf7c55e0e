//! Tests of the Chat Completions request and answer codec: documented bodies, round trips,
//! each refusal and each malformed input (streams: `chat/stream_tests.rs`).

use serde_json::{Value, json};

use super::*;
use crate::translate::model::{
    Message, ReasoningConfig, Request, ResponseFormat, Role, Tool, ToolChoice,
};
use crate::translate::test_util::*;

const REQUEST: &str = include_str!("../../tests/fixtures/translate/chat/request.json");
const TOOL_ANSWER: &str =
    include_str!("../../tests/fixtures/translate/chat/response_tool_call.json");

fn user(content: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        content,
    }
}

fn assistant(content: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        content,
    }
}

fn png() -> Image {
    Image::Base64 {
        media_type: "image/png".into(),
        data: "iVBORw0KGgo=".into(),
    }
}

fn url_image(url: &str) -> Part {
    Part::Image(Image::Url {
        url: url.into(),
        media_type: None,
    })
}

fn tool(name: &str, description: Option<&str>, strict: Option<bool>) -> Tool {
    Tool {
        name: name.into(),
        description: description.map(Into::into),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict,
        freeform: false,
    }
}

/// A valid request with `patch`'s fields set over a one-message conversation.
fn with(patch: Value) -> Result<Request, TranslateError> {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in patch.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    decode_request(body.to_string().as_bytes())
}

/// The JSON `encode_request` writes for `req`.
fn encoded(req: &Request) -> Value {
    let bytes = encode_request(req).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn the_documented_request_decodes_to_the_canonical_shape() {
    let req = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(req.model, "gpt-4.1");
    assert_eq!(req.system, ["You are a travel assistant. Answer briefly."]);
    assert_eq!(req.messages.len(), 5);
    let Part::Image(Image::Base64 { media_type, data }) = &req.messages[0].content[1] else {
        panic!("not an inline image: {:?}", req.messages[0]);
    };
    assert_eq!(media_type, "image/png");
    assert!(data.starts_with("iVBORw0KGgo"));
    let weather = r#"{"city":"Bergen","unit":"celsius"}"#;
    assert_eq!(
        req.messages[1].content[1],
        call("call_wx1", "get_weather", weather)
    );
    let results = user(vec![
        result(
            "call_wx1",
            vec![text(r#"{"temperature":11,"conditions":"rain"}"#)],
            false,
        ),
        result("call_tz1", vec![text("14:05 CEST")], false),
    ]);
    assert_eq!(req.messages[2], results);
    let photo = url_image("https://upload.example.org/photos/fjord.jpg");
    assert_eq!(
        req.messages[4],
        user(vec![text("Compare with this one."), photo])
    );
    assert_eq!(req.tools.len(), 2);
    assert_eq!(
        (req.tools[0].strict, req.tools[1].strict),
        (Some(true), None)
    );
    assert_eq!(req.tools[1].description, None);
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, Some(true));
    assert_eq!(req.max_tokens, Some(512));
    assert_eq!((req.temperature, req.top_p), (Some(0.3), Some(0.9)));
    assert_eq!(req.stop, ["\n\nUser:"]);
    assert_eq!(req.seed, Some(42));
    assert_eq!(
        (req.presence_penalty, req.frequency_penalty),
        (Some(0.1), Some(0.2))
    );
    assert_eq!(req.user.as_deref(), Some("user-1234"));
    assert!(req.stream && req.include_usage);
}

/// A request the dialect carries whole (encode → decode gives it back).
fn full_request() -> Request {
    Request {
        model: "gpt-4.1".into(),
        system: vec!["Be terse.".into()],
        messages: vec![
            user(vec![
                text("What is in these?"),
                Part::Image(png()),
                url_image("https://x.test/a.jpg"),
            ]),
            assistant(vec![
                text("Let me look."),
                call("c1", "lookup", r#"{"q":"a"}"#),
                call("c2", "lookup", "{}"),
            ]),
            user(vec![
                result("c1", vec![text("a cat")], false),
                result("c2", vec![text("a dog")], false),
                text("Thanks."),
            ]),
            assistant(vec![call("c3", "lookup", r#"{"q":"b"}"#)]),
            user(vec![result("c3", vec![text("a fox")], false)]),
        ],
        tools: vec![
            tool("lookup", Some("Looks things up."), Some(true)),
            tool("other", None, None),
        ],
        tool_choice: Some(ToolChoice::Function("lookup".into())),
        parallel_tool_calls: Some(false),
        max_tokens: Some(300),
        temperature: Some(0.5),
        top_p: Some(0.8),
        stop: vec!["END".into(), "STOP".into()],
        seed: Some(-7),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        stream: true,
        include_usage: true,
        response_format: Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            strict: Some(true),
        }),
        user: Some("u-1".into()),
        ..Default::default()
    }
}

#[test]
fn requests_the_dialect_carries_survive_a_round_trip() {
    let plain = full_request();
    assert_eq!(
        decode_request(&encode_request(&plain).unwrap()).unwrap(),
        plain
    );
    let reasoning = Request {
        tool_choice: Some(ToolChoice::Required),
        response_format: Some(ResponseFormat::JsonObject),
        reasoning: Some(ReasoningConfig {
            effort: Some("high".into()),
            budget_tokens: None,
            include: true,
        }),
        stream: false,
        include_usage: false,
        ..full_request()
    };
    assert_eq!(
        decode_request(&encode_request(&reasoning).unwrap()).unwrap(),
        reasoning
    );
    let choices = [ToolChoice::Auto, ToolChoice::None, ToolChoice::Required];
    for choice in choices {
        let req = Request {
            tool_choice: Some(choice),
            ..full_request()
        };
        assert_eq!(decode_request(&encode_request(&req).unwrap()).unwrap(), req);
    }
}

#[test]
fn encoding_writes_what_chat_servers_expect() {
    let plain = encoded(&full_request());
    assert_eq!(plain["max_tokens"], 300);
    assert!(plain.get("max_completion_tokens").is_none());
    assert_eq!(plain["stream_options"], json!({"include_usage": true}));
    assert_eq!(plain["messages"][6]["content"], Value::Null, "{plain}");
    assert_eq!(plain["messages"][5]["role"], "user");
    assert_eq!(plain["messages"][5]["content"], "Thanks.");
    let req = Request {
        system: vec!["One.".into(), "Two.".into()],
        messages: vec![
            assistant(vec![
                Part::Reasoning(Reasoning {
                    text: "hmm".into(),
                    ..Default::default()
                }),
                call("c1", "shot", "{}"),
            ]),
            user(vec![
                result("c1", vec![text("no screen"), Part::Image(png())], true),
                text("Go on."),
            ]),
        ],
        top_k: Some(40),
        reasoning: Some(ReasoningConfig {
            budget_tokens: Some(8000),
            ..Default::default()
        }),
        ..full_request()
    };
    let body = encoded(&req);
    assert_eq!(body["max_completion_tokens"], 300);
    assert_eq!(body["reasoning_effort"], "medium");
    assert!(body.get("max_tokens").is_none() && body.get("top_k").is_none());
    let toolless = encoded(&Request {
        tools: Vec::new(),
        ..req.clone()
    });
    assert!(toolless.get("tool_choice").is_none() && toolless.get("parallel_tool_calls").is_none());
    let expected = json!([
        {"role": "system", "content": "One.\n\nTwo."},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Error: no screen"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "Go on."}]},
    ]);
    assert_eq!(body["messages"], expected);
    // Members in the order written above (equal `Value`s do not say so), `model` first.
    let written = String::from_utf8(encode_request(&req).unwrap()).unwrap();
    let messages = format!(r#"{{"model":"{}","messages":{expected},"#, req.model);
    assert!(written.starts_with(&messages), "{written}");
}

#[test]
fn tools_are_written_in_openai_s_member_order() {
    let req = Request {
        model: "m".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![text("Hi")],
        }],
        tools: vec![
            tool("a", Some("Does \"a\".\n"), Some(true)),
            tool("b", None, None),
        ],
        ..Request::default()
    };
    let written = String::from_utf8(encode_request(&req).unwrap()).unwrap();
    let schema = serde_json::to_string(&req.tools[0].parameters).unwrap();
    let tools = format!(
        r#""tools":[{{"type":"function","function":{{"name":"a","description":"Does \"a\".\n","parameters":{schema},"strict":true}}}},{{"type":"function","function":{{"name":"b","parameters":{schema}}}}}]"#
    );
    assert!(written.contains(&tools), "{written}");
}

#[test]
fn extensions_and_alternatives_of_the_dialect_are_read() {
    let req = with(json!({
        "max_tokens": 10, "max_completion_tokens": 20, "top_k": 5,
        "stop": "END", "safety_identifier": "sid",
        "reasoning": {"max_tokens": 2000, "exclude": true},
        "tools": [{"type": "function", "function": {"name": "a"}},
                  {"type": "function", "function": {"name": "b"}}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required",
            "tools": [{"type": "function", "function": {"name": "b"}}]}},
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Rule one."}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Rule two."},
            {"role": "assistant", "reasoning_content": "thinking", "content": "",
             "refusal": "I can't.", "tool_calls": [{"id": "c", "type": "function",
             "function": {"name": "b", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "c", "name": "b", "content": "ok"},
            {"role": "user", "content": "next"},
        ],
    }))
    .unwrap();
    assert_eq!((req.max_tokens, req.top_k), (Some(20), Some(5)));
    assert_eq!(req.stop, ["END"]);
    assert_eq!(req.user.as_deref(), Some("sid"));
    let reasoning = req.reasoning.unwrap();
    assert_eq!(
        (reasoning.budget_tokens, reasoning.include),
        (Some(2000), false)
    );
    assert_eq!(req.tools.len(), 1);
    assert_eq!(
        req.tools[0].parameters,
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.system, ["Rule one.", "Rule two."]);
    let thought = Part::Reasoning(Reasoning {
        text: "thinking".into(),
        ..Default::default()
    });
    assert_eq!(
        req.messages[1],
        assistant(vec![thought, text("I can't."), call("c", "b", "{}")])
    );
    let Part::ToolResult(r) = &req.messages[2].content[0] else {
        panic!("not a result: {:?}", req.messages[2]);
    };
    assert_eq!(r.name.as_deref(), Some("b"));
    assert_eq!(req.messages[2].content[1], text("next"));
    let effort = with(json!({"reasoning_effort": "low"}))
        .unwrap()
        .reasoning
        .unwrap();
    assert_eq!(
        (effort.effort.as_deref(), effort.include),
        (Some("low"), true)
    );
    assert_eq!(
        with(json!({"reasoning": {"enabled": false}}))
            .unwrap()
            .reasoning,
        None
    );
}

#[test]
fn harmless_fields_are_dropped_and_the_rest_kept() {
    let patch = json!({
        "n": 1, "logprobs": false, "top_logprobs": 0, "logit_bias": {}, "modalities": ["text"],
        "metadata": {"k": "v"}, "store": true, "service_tier": "auto", "web_search_options": {},
        "prediction": {"type": "content", "content": "x"}, "verbosity": "low", "temperature": 1.5,
        "stream_options": null, "messages": [{"role": "user", "name": "ann", "content": [
            {"type": "image_url", "image_url": {"url": "https://x.test/i.png", "detail": "high"}}]}],
    });
    let req = with(patch).unwrap();
    assert_eq!(req.temperature, Some(1.5));
    assert_eq!(
        req.messages,
        [user(vec![url_image("https://x.test/i.png")])]
    );
}

#[test]
fn what_would_change_the_answer_is_refused() {
    let part = |p: Value| json!([{"role": "user", "content": [p]}]);
    let said = |m: Value| json!([{"role": "user", "content": "hi"}, m]);
    let cases = [
        (json!({"n": 2}), "n:"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"top_logprobs": 2}), "top_logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (json!({"modalities": ["text", "audio"]}), "modalities[1]"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (
            json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type `custom`",
        ),
        (
            json!({"tool_choice": {"type": "custom", "custom": {"name": "x"}}}),
            "tool_choice.type",
        ),
        (
            json!({"messages": part(json!({"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}))}),
            "messages[0].content[0].type `input_audio`",
        ),
        (
            json!({"messages": part(json!({"type": "file", "file": {"file_id": "file-1"}}))}),
            "`file`",
        ),
        (
            json!({"messages": said(json!({"role": "function", "name": "f", "content": "1"}))}),
            "messages[1].role",
        ),
        (
            json!({"messages": said(json!({"role": "assistant", "audio": {"id": "audio_1"}}))}),
            "messages[1].audio",
        ),
        (
            json!({"messages": said(json!({"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}))}),
            "messages[1].function_call",
        ),
        (
            json!({"messages": said(json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x", "input": "y"}}]}))}),
            "messages[1].tool_calls[0].type",
        ),
    ];
    for (patch, field) in cases {
        match with(patch.clone()) {
            Err(TranslateError::Unsupported(m)) => {
                assert!(
                    m.contains(field) && m.ends_with("use a backend of the same protocol"),
                    "{m}"
                );
            }
            other => panic!("{patch} gave {other:?}"),
        }
    }
}

#[test]
fn malformed_requests_are_invalid_and_name_the_field() {
    let cases: [(&[u8], &str); 3] = [
        (b"{not json", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (br#"{"model": "m"}"#, "`messages` is required"),
    ];
    for (body, says) in cases {
        let err = decode_request(body).unwrap_err();
        assert!(
            matches!(&err, TranslateError::Invalid(m) if m.contains(says)),
            "{err:?}"
        );
    }
    let one = |m: Value| json!({"messages": [m]});
    let patches = [
        (json!({"model": 3}), "`model` must be a string"),
        (
            one(json!({"role": "wizard", "content": "x"})),
            "`messages[0].role`: unknown role `wizard`",
        ),
        (
            one(json!({"content": "x"})),
            "`messages[0].role` is required",
        ),
        (
            one(json!({"role": "tool", "content": "x"})),
            "`messages[0].tool_call_id` is required",
        ),
        (
            one(json!({"role": "user", "content": 7})),
            "`messages[0].content` must be a string",
        ),
        (
            one(
                json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/svg+xml,<svg/>"}}]}),
            ),
            "`messages[0].content[0].image_url.url` must be an http(s) URL or a data:",
        ),
        (
            one(
                json!({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}),
            ),
            "`messages[0].content[0].type`: no `image_url` parts",
        ),
        (
            one(
                json!({"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}),
            ),
            "`messages[0].tool_calls[0].id` is required",
        ),
        (json!({"messages": {}}), "`messages` must be an array"),
        (json!({"stop": 5}), "`stop` must be a string or an array"),
        (
            json!({"stop": ["a", 1]}),
            "`stop` must be an array of strings",
        ),
        (
            json!({"temperature": "hot"}),
            "`temperature` must be a number",
        ),
        (
            json!({"max_tokens": -1}),
            "`max_tokens` must be a non-negative integer",
        ),
        (
            json!({"response_format": {"type": "yaml"}}),
            "`response_format.type`: unknown format",
        ),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "`response_format.json_schema` is required",
        ),
        (
            json!({"tool_choice": "sometimes"}),
            "`tool_choice`: unknown mode",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"description": "x"}}]}),
            "`tools[0].function.name` is required",
        ),
    ];
    for (patch, says) in patches {
        match with(patch.clone()) {
            Err(TranslateError::Invalid(m)) => assert!(m.contains(says), "{m} (wanted {says})"),
            other => panic!("{patch} gave {other:?}"),
        }
    }
}

#[test]
fn the_documented_tool_call_answer_decodes() {
    let resp = decode_response(TOOL_ANSWER.as_bytes()).unwrap();
    let expected = Response {
        id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".into(),
        model: "gpt-4.1-2025-04-14".into(),
        created: 1741569952,
        content: vec![call(
            "call_62136354",
            "get_weather",
            r#"{"city":"Paris","unit":"celsius"}"#,
        )],
        stop: StopReason::ToolUse,
        usage: TokenUsage {
            input: 82,
            output: 17,
            cached_input: Some(64),
            cache_creation: None,
            reasoning: Some(0),
        },
    };
    assert_eq!(resp, expected);
}

/// An answer whose one choice has `message` and `finish_reason`, plus `extra` fields.
fn answer(message: Value, finish: Value, choice_extra: Value) -> Result<Response, TranslateError> {
    let mut choice = json!({"index": 0, "message": message, "finish_reason": finish});
    for (k, v) in choice_extra.as_object().into_iter().flatten() {
        choice[k] = v.clone();
    }
    let body = json!({"id": "r1", "model": "m", "choices": [choice],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_cache_hit_tokens": 8}});
    decode_response(body.to_string().as_bytes())
}

#[test]
fn answers_of_compatible_servers_keep_their_meaning() {
    let refusal = answer(
        json!({"role": "assistant", "content": null, "refusal": "No."}),
        json!("stop"),
        json!({}),
    )
    .unwrap();
    assert_eq!(
        (refusal.content, refusal.stop),
        (vec![text("No.")], StopReason::ContentFilter)
    );
    let calls = json!({"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f"}}]});
    let called = answer(calls, json!("stop"), json!({})).unwrap();
    assert_eq!(
        (called.content, called.stop),
        (vec![call("r1_0", "f", "{}")], StopReason::ToolUse)
    );
    let matched = answer(
        json!({"content": "a"}),
        json!("stop"),
        json!({"stop_reason": "END"}),
    )
    .unwrap();
    assert_eq!(matched.stop, StopReason::StopSequence(Some("END".into())));
    assert_eq!(matched.usage.cached_input, Some(8));
    let thought = answer(
        json!({"reasoning": "hm", "content": [{"type": "text", "text": "b"}]}),
        json!("length"),
        json!({}),
    )
    .unwrap();
    let reasoning = Part::Reasoning(Reasoning {
        text: "hm".into(),
        ..Default::default()
    });
    assert_eq!(
        (thought.content, thought.stop),
        (vec![reasoning, text("b")], StopReason::MaxTokens)
    );
    let other = answer(json!({"content": "c"}), json!("error"), json!({})).unwrap();
    assert_eq!(other.stop, StopReason::Other("error".into()));
    let legacy = answer(
        json!({"function_call": {"name": "g", "arguments": "{\"x\":1}"}}),
        json!("function_call"),
        json!({}),
    )
    .unwrap();
    assert_eq!(
        (legacy.content, legacy.stop),
        (vec![call("r1_fc", "g", "{\"x\":1}")], StopReason::ToolUse)
    );
}

#[test]
fn bad_answers_are_upstream_errors() {
    let cases: [(&[u8], &str); 5] = [
        (b"<html>", "not valid JSON"),
        (br#"{"id": "x"}"#, "`choices` is required"),
        (br#"{"choices": []}"#, "`choices`: empty"),
        (
            br#"{"choices": [{"index": 0}]}"#,
            "`choices[0].message` is required",
        ),
        (
            br#"{"error": {"message": "quota", "code": 429}}"#,
            "error (429): quota",
        ),
    ];
    for (body, says) in cases {
        let err = decode_response(body).unwrap_err();
        assert!(
            matches!(&err, TranslateError::Upstream(m) if m.contains(says)),
            "{err:?}"
        );
    }
}

fn ctx() -> AnswerContext {
    AnswerContext {
        model: "asked-model".into(),
        created: 1_700_000_000,
        ..Default::default()
    }
}

#[test]
fn huge_usage_counts_saturate_in_every_dialect() {
    // Found by the `translate` fuzz target: a Gemini stream reported a prompt count near
    // `u64::MAX`, and the Chat encoder's total overflowed.
    let resp = Response {
        id: "msg_1".into(),
        model: String::new(),
        created: 0,
        content: vec![],
        stop: StopReason::EndTurn,
        usage: TokenUsage {
            input: u64::MAX,
            output: 25,
            ..Default::default()
        },
    };
    use crate::translate::Dialect;
    for dialect in [
        Dialect::Chat,
        Dialect::Responses,
        Dialect::Anthropic,
        Dialect::Gemini,
    ] {
        let body: Value =
            serde_json::from_slice(&crate::translate::encode_response(dialect, &resp, &ctx()))
                .unwrap();
        let total = body["usage"]["total_tokens"]
            .as_u64()
            .or(body["usageMetadata"]["totalTokenCount"].as_u64());
        if dialect != Dialect::Anthropic {
            assert_eq!(total, Some(u64::MAX), "{dialect:?}: {body}");
        }
    }
}

#[test]
fn answers_are_written_as_chat_completions() {
    let resp = Response {
        id: "msg_1".into(),
        model: String::new(),
        created: 0,
        content: vec![
            Part::Reasoning(Reasoning {
                text: "plan".into(),
                ..Default::default()
            }),
            call("c1", "f", "{}"),
        ],
        stop: StopReason::EndTurn,
        usage: TokenUsage {
            input: 7,
            output: 3,
            ..Default::default()
        },
    };
    let written = encode_response(&resp, &ctx());
    let body: Value = serde_json::from_slice(&written).unwrap();
    let expected = json!({
        "id": "msg_1", "object": "chat.completion", "created": 1_700_000_000, "model": "asked-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            "reasoning_content": "plan"}, "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    });
    assert_eq!(body, expected);
    // Members in OpenAI's order (equal `Value`s do not say so).
    assert_eq!(std::str::from_utf8(&written).unwrap(), expected.to_string());
}

#[test]
fn answers_the_dialect_carries_survive_a_round_trip() {
    let usage = TokenUsage {
        input: 100,
        output: 40,
        cached_input: Some(60),
        cache_creation: None,
        reasoning: Some(12),
    };
    let thought = Part::Reasoning(Reasoning {
        text: "first".into(),
        ..Default::default()
    });
    let answers = [
        (
            vec![
                thought,
                text("Calling."),
                call("a", "f", r#"{"x":1}"#),
                call("b", "g", "{}"),
            ],
            StopReason::ToolUse,
        ),
        (vec![text("cut sh")], StopReason::MaxTokens),
        (vec![text("fine")], StopReason::EndTurn),
        (vec![text("withheld")], StopReason::ContentFilter),
    ];
    for (content, stop) in answers {
        let resp = Response {
            id: "r".into(),
            model: "m".into(),
            created: 5,
            content,
            stop,
            usage,
        };
        assert_eq!(
            decode_response(&encode_response(&resp, &ctx())).unwrap(),
            resp
        );
    }
}
