//! Tests of the Kiro codec: request bodies against the shapes of the CodeWhisperer streaming
//! client, the public gateways' rules (system prompt, merging, empty contents), refusals, and
//! answer streams built with the event-stream encoder, cut anywhere.

use serde_json::{Value, json};

use super::*;
use crate::translate::model::{
    Event, Image, Reasoning, ReasoningConfig, StopReason, TokenUsage, ToolResult,
};
use crate::translate::test_util::*;
use crate::wire::event_stream::{self, Header};

fn msg(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

fn tool(name: &str, description: Option<&str>) -> Tool {
    Tool {
        name: name.into(),
        description: description.map(Into::into),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
        freeform: false,
    }
}

fn png(data: &str) -> Part {
    Part::Image(Image::Base64 {
        media_type: "image/png".into(),
        data: data.into(),
    })
}

fn request(messages: Vec<Message>) -> Request {
    Request {
        model: "claude-sonnet-4-5".into(),
        messages,
        ..Request::default()
    }
}

fn fixed() -> Envelope {
    Envelope {
        profile_arn: None,
        conversation_id: Some("c0ffee00-0000-4000-8000-000000000000".into()),
    }
}

fn encoded(req: &Request) -> Value {
    serde_json::from_slice(&encode_request(req, &fixed()).unwrap()).unwrap()
}

fn refusal(req: &Request) -> String {
    match encode_request(req, &fixed()) {
        Err(TranslateError::Unsupported(m)) => m,
        other => panic!("not refused as unsupported: {other:?}"),
    }
}

#[test]
fn a_single_turn_carries_the_system_prompt_in_the_current_message() {
    let mut req = request(vec![msg(Role::User, vec![text("Hello")])]);
    req.system = vec!["Be brief.".into(), "Answer in French.".into()];
    let envelope = Envelope {
        profile_arn: Some(
            "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK".into(),
        ),
        conversation_id: Some("conv-1".into()),
    };
    let body: Value = serde_json::from_slice(&encode_request(&req, &envelope).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "conversationState": {
                "chatTriggerType": "MANUAL",
                "conversationId": "conv-1",
                "currentMessage": {"userInputMessage": {
                    "content": "Be brief.\n\nAnswer in French.\n\nHello",
                    "modelId": "claude-sonnet-4.5",
                    "origin": "AI_EDITOR",
                }},
            },
            "profileArn": "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
        })
    );
}

#[test]
fn a_tool_round_trip_becomes_history_tool_uses_and_current_tool_results() {
    let mut req = request(vec![
        msg(Role::User, vec![text("Weather in Paris?")]),
        msg(
            Role::Assistant,
            vec![
                text("Let me look."),
                call("tu_1", "weather", r#"{"city":"Paris"}"#),
            ],
        ),
        msg(Role::User, vec![result("tu_1", vec![text("18°C")], false)]),
    ]);
    req.system = vec!["You are a travel assistant.".into()];
    req.tools = vec![tool("weather", Some("Current weather"))];
    req.tool_choice = Some(ToolChoice::Auto);
    req.max_tokens = Some(1000);
    req.temperature = Some(0.2);
    assert_eq!(
        encoded(&req)["conversationState"],
        json!({
            "chatTriggerType": "MANUAL",
            "conversationId": "c0ffee00-0000-4000-8000-000000000000",
            "currentMessage": {"userInputMessage": {
                "content": "Tool results provided.",
                "modelId": "claude-sonnet-4.5",
                "origin": "AI_EDITOR",
                "userInputMessageContext": {
                    "toolResults": [{
                        "toolUseId": "tu_1",
                        "content": [{"text": "18°C"}],
                        "status": "success",
                    }],
                    "tools": [{"toolSpecification": {
                        "name": "weather",
                        "description": "Current weather",
                        "inputSchema": {"json": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        }},
                    }}],
                },
            }},
            "history": [
                {"userInputMessage": {
                    "content": "You are a travel assistant.\n\nWeather in Paris?",
                    "modelId": "claude-sonnet-4.5",
                    "origin": "AI_EDITOR",
                }},
                {"assistantResponseMessage": {
                    "content": "Let me look.",
                    "toolUses": [{
                        "toolUseId": "tu_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    }],
                }},
            ],
        })
    );
}

#[test]
fn turns_are_merged_and_alternate_from_a_user_turn() {
    let req = request(vec![
        msg(Role::Assistant, vec![call("a", "weather", "")]),
        msg(Role::Assistant, vec![Part::Reasoning(Reasoning::default())]),
        msg(Role::User, vec![result("a", vec![], true)]),
        msg(Role::User, vec![text("one")]),
        msg(Role::User, vec![text("two")]),
    ]);
    let state = &encoded(&req)["conversationState"];
    assert_eq!(
        state["history"],
        json!([
            {"userInputMessage": {"content": "Continue", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
            {"assistantResponseMessage": {
                "content": ".",
                "toolUses": [{"toolUseId": "a", "name": "weather", "input": {}}],
            }},
        ])
    );
    let current = &state["currentMessage"]["userInputMessage"];
    assert_eq!(current["content"], "one\ntwo");
    assert_eq!(
        current["userInputMessageContext"]["toolResults"],
        json!([{"toolUseId": "a", "content": [{"text": ""}], "status": "error"}])
    );
}

#[test]
fn a_leading_assistant_turn_gets_the_system_prompt_as_its_user_turn() {
    let mut req = request(vec![
        msg(Role::Assistant, vec![text("Hi, how can I help?")]),
        msg(Role::User, vec![text("Tell me a joke")]),
    ]);
    req.system = vec!["Be funny.".into()];
    let state = &encoded(&req)["conversationState"];
    assert_eq!(
        state["history"][0]["userInputMessage"]["content"],
        "Be funny."
    );
    assert_eq!(
        state["currentMessage"]["userInputMessage"]["content"],
        "Tell me a joke"
    );
}

#[test]
fn results_of_unknown_calls_and_repeated_results_are_dropped() {
    let req = request(vec![
        msg(Role::User, vec![text("go")]),
        msg(Role::Assistant, vec![call("a", "weather", "{}")]),
        msg(
            Role::User,
            vec![
                result("a", vec![text("first")], false),
                result("a", vec![text("again")], false),
                result("ghost", vec![text("?")], false),
                text("thanks"),
            ],
        ),
    ]);
    let current = &encoded(&req)["conversationState"]["currentMessage"]["userInputMessage"];
    assert_eq!(current["content"], "thanks");
    assert_eq!(
        current["userInputMessageContext"]["toolResults"],
        json!([{"toolUseId": "a", "content": [{"text": "first"}], "status": "success"}])
    );
}

#[test]
fn images_go_inline_with_those_of_tool_results() {
    let req = request(vec![
        msg(Role::User, vec![text("look"), png("AAAA")]),
        msg(Role::Assistant, vec![call("s", "screenshot", "{}")]),
        msg(
            Role::User,
            vec![result("s", vec![text("taken"), png("BBBB")], false)],
        ),
    ]);
    let state = &encoded(&req)["conversationState"];
    assert_eq!(
        state["history"][0]["userInputMessage"]["images"],
        json!([{"format": "png", "source": {"bytes": "AAAA"}}])
    );
    let current = &state["currentMessage"]["userInputMessage"];
    assert_eq!(
        current["images"],
        json!([{"format": "png", "source": {"bytes": "BBBB"}}])
    );
    assert_eq!(
        current["userInputMessageContext"]["toolResults"][0]["content"],
        json!([{"text": "taken"}])
    );

    let url = request(vec![msg(
        Role::User,
        vec![Part::Image(Image::Url {
            url: "https://example.com/a.png".into(),
            media_type: None,
        })],
    )]);
    assert!(refusal(&url).contains("image by URL"));
    let bmp = request(vec![msg(
        Role::User,
        vec![Part::Image(Image::Base64 {
            media_type: "image/bmp".into(),
            data: "Qk0=".into(),
        })],
    )]);
    assert!(refusal(&bmp).contains("image/bmp"));
}

#[test]
fn tools_get_a_description_within_the_limit_and_none_under_tool_choice_none() {
    let long = "é".repeat(6000); // 12,000 bytes
    let mut req = request(vec![msg(Role::User, vec![text("hi")])]);
    req.tools = vec![tool("plain", None), tool("wordy", Some(&long))];
    let tools = encoded(&req)["conversationState"]["currentMessage"]["userInputMessage"]
        ["userInputMessageContext"]["tools"]
        .clone();
    assert_eq!(tools[0]["toolSpecification"]["description"], "Tool: plain");
    let cut = tools[1]["toolSpecification"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(cut.ends_with("...") && cut.len() <= 10_240, "{}", cut.len());
    assert!(long.starts_with(cut.trim_end_matches("...")));

    req.tool_choice = Some(ToolChoice::None);
    let current = &encoded(&req)["conversationState"]["currentMessage"]["userInputMessage"];
    assert!(
        current.get("userInputMessageContext").is_none(),
        "{current}"
    );
}

#[test]
fn what_kiro_cannot_say_is_refused() {
    let base = request(vec![msg(Role::User, vec![text("hi")])]);
    let prefill = request(vec![
        msg(Role::User, vec![text("hi")]),
        msg(Role::Assistant, vec![text("{")]),
    ]);
    assert!(refusal(&prefill).contains("assistant message"));
    let stop = Request {
        stop: vec!["END".into()],
        ..base.clone()
    };
    assert!(refusal(&stop).contains("stop sequences"));
    let json_format = Request {
        response_format: Some(ResponseFormat::JsonObject),
        ..base.clone()
    };
    assert!(refusal(&json_format).contains("JSON"));
    let forced = Request {
        tools: vec![tool("weather", Some("w"))],
        tool_choice: Some(ToolChoice::Function("weather".into())),
        ..base.clone()
    };
    assert!(refusal(&forced).contains("required tool call"));
    let long_name = Request {
        tools: vec![tool(&"x".repeat(65), Some("w"))],
        ..base.clone()
    };
    assert!(refusal(&long_name).contains("64 characters"));
    assert!(matches!(
        encode_request(&request(vec![]), &fixed()),
        Err(TranslateError::Invalid(_))
    ));
    // What it has no field for is dropped, not refused.
    let dropped = Request {
        reasoning: Some(ReasoningConfig::default()),
        seed: Some(1),
        user: Some("u".into()),
        response_format: Some(ResponseFormat::Text),
        ..base
    };
    assert!(encode_request(&dropped, &fixed()).is_ok());
}

#[test]
fn anthropic_model_names_map_to_kiro_ids_and_others_pass_through() {
    assert_eq!(model_id("claude-sonnet-4-5-20250929"), "claude-sonnet-4.5");
    assert_eq!(model_id("claude-haiku-4-5"), "claude-haiku-4.5");
    assert_eq!(model_id("claude-sonnet-4-20250514"), "claude-sonnet-4");
    for own in [
        "claude-sonnet-4.5",
        "auto",
        "CLAUDE_SONNET_4_20250514_V1_0",
        "x",
    ] {
        assert_eq!(model_id(own), own);
    }
}

#[test]
fn the_derived_conversation_id_is_uuid_shaped_and_stable_across_turns() {
    let mut first = request(vec![msg(Role::User, vec![text("Plan a trip")])]);
    first.system = vec!["sys".into()];
    let mut later = first.clone();
    later
        .messages
        .push(msg(Role::Assistant, vec![text("Where to?")]));
    later.messages.push(msg(Role::User, vec![text("Rome")]));
    let id = conversation_id(&first);
    assert_eq!(id, conversation_id(&later));
    let bytes = id.as_bytes();
    assert_eq!(id.len(), 36);
    assert!([8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-'));
    assert_eq!(bytes[14], b'4', "version 4: {id}");
    assert!(b"89ab".contains(&bytes[19]), "variant: {id}");
    let other = request(vec![msg(Role::User, vec![text("Plan a party")])]);
    assert_ne!(conversation_id(&other), id);
    let body: Value =
        serde_json::from_slice(&encode_request(&first, &Envelope::default()).unwrap()).unwrap();
    assert_eq!(body["conversationState"]["conversationId"], id.as_str());
    assert!(body.get("profileArn").is_none());
}

// ---- answers ----

fn ev(kind: &str, payload: Value) -> Vec<u8> {
    event_stream::event(kind, payload.to_string().as_bytes())
}

/// A text answer that calls a tool, its input in three fragments, then usage.
fn tool_answer() -> Vec<u8> {
    [
        ev(
            "messageMetadataEvent",
            json!({"conversationId": "c", "utteranceId": "u"}),
        ),
        ev("assistantResponseEvent", json!({"content": "Checking"})),
        ev("assistantResponseEvent", json!({"content": " now."})),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "tu_1", "name": "weather", "input": "{\"ci"}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "tu_1", "name": "weather", "input": "ty\":\"Par"}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "tu_1", "name": "weather", "input": "is\"}"}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "tu_1", "name": "weather", "stop": true}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "tu_1", "name": "weather", "input": "{}", "stop": true}),
        ),
        ev(
            "meteringEvent",
            json!({"unit": "credit", "unitPlural": "credits", "usage": 0.42}),
        ),
        ev("contextUsageEvent", json!({"contextUsagePercentage": 1.5})),
        ev(
            "metadataEvent",
            json!({"tokenUsage": {
                "uncachedInputTokens": 100, "cacheReadInputTokens": 20,
                "cacheWriteInputTokens": 5, "outputTokens": 30, "totalTokens": 155,
            }}),
        ),
    ]
    .concat()
}

fn tool_answer_events() -> Vec<Event> {
    vec![
        Event::Start {
            id: "conv".into(),
            model: String::new(),
        },
        Event::Text("Checking".into()),
        Event::Text(" now.".into()),
        call_start(0, "tu_1", "weather"),
        args(0, "{\"ci"),
        args(0, "ty\":\"Par"),
        args(0, "is\"}"),
        Event::Usage(TokenUsage {
            input: 125,
            output: 30,
            cached_input: Some(20),
            cache_creation: Some(5),
            reasoning: None,
        }),
        Event::Stop(StopReason::ToolUse),
    ]
}

fn stream_events(chunks: &[&[u8]]) -> Vec<Event> {
    let mut d = StreamDecoder::new("conv");
    let mut out = Vec::new();
    for c in chunks {
        d.bytes(c, &mut out).unwrap();
    }
    d.finish(&mut out);
    out
}

#[test]
fn a_tool_answer_streams_as_text_call_fragments_usage_and_tool_use() {
    let body = tool_answer();
    assert_eq!(stream_events(&[&body]), tool_answer_events());
}

#[test]
fn every_cut_of_the_body_yields_the_same_events() {
    let body = tool_answer();
    for i in (0..=body.len()).step_by(3) {
        assert_eq!(
            stream_events(&[&body[..i], &body[i..]]),
            tool_answer_events(),
            "cut at {i}"
        );
    }
}

#[test]
fn a_whole_answer_decodes_to_a_response() {
    let r = decode_response(&tool_answer()).unwrap();
    assert_eq!(
        r.content,
        [
            text("Checking now."),
            call("tu_1", "weather", r#"{"city":"Paris"}"#)
        ]
    );
    assert_eq!(r.stop, StopReason::ToolUse);
    assert_eq!(r.usage.input, 125);
    let plain = decode_response(&ev("assistantResponseEvent", json!({"content": "Hi"}))).unwrap();
    assert_eq!(plain.content, [text("Hi")]);
    assert_eq!(plain.stop, StopReason::EndTurn);
    assert_eq!(plain.usage, TokenUsage::default());
}

#[test]
fn an_exception_is_an_error_with_its_status_and_ends_the_stream() {
    let body = [
        ev("assistantResponseEvent", json!({"content": "Hi"})),
        event_stream::exception(
            "ThrottlingException",
            json!({"message": "Too many requests, please wait before trying again.", "reason": "MONTHLY_REQUEST_COUNT"})
                .to_string()
                .as_bytes(),
        ),
        ev("assistantResponseEvent", json!({"content": "ignored"})),
    ]
    .concat();
    let events = stream_events(&[&body]);
    let error = Event::Error {
        status: 429,
        message: "ThrottlingException: Too many requests, please wait before trying again. (MONTHLY_REQUEST_COUNT)".into(),
    };
    assert_eq!(events.last(), Some(&error));
    assert_eq!(events.len(), 3, "{events:?}");
    let failure =
        crate::translate::collect::Collector::collect(decode_events(&body).unwrap()).unwrap_err();
    assert_eq!(failure.status, 429);
    match decode_response(&body) {
        Err(TranslateError::Upstream(m)) => assert!(m.contains("status 429"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exception_types_map_to_statuses() {
    let none = serde_json::Map::new();
    let too_long = json!({"reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"});
    let cases = [
        ("ThrottlingException", 429),
        (
            "com.amazon.aws.codewhisperer#ServiceQuotaExceededException",
            429,
        ),
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ResourceNotFoundException", 404),
        ("ConflictException", 409),
        ("ServiceUnavailableException", 503),
        ("InternalServerException", 500),
        ("error", 500),
        ("SomethingNew", 502),
    ];
    for (kind, status) in cases {
        assert_eq!(stream::exception_status(kind, &none), status, "{kind}");
    }
    let Value::Object(p) = too_long else { panic!() };
    assert_eq!(stream::exception_status("ValidationException", &p), 413);
}

#[test]
fn a_stream_error_message_and_a_truncated_body_are_errors() {
    let error = event_stream::encode(
        &[
            Header::string(":message-type", "error"),
            Header::string(":error-code", "InternalFailure"),
            Header::string(":error-message", "boom"),
        ],
        b"",
    );
    assert_eq!(
        stream_events(&[&error]).last(),
        Some(&Event::Error {
            status: 502,
            message: "InternalFailure: boom".into()
        })
    );
    let body = ev("assistantResponseEvent", json!({"content": "Hi"}));
    let cut = &body[..body.len() - 3];
    let events = stream_events(&[cut]);
    assert!(
        matches!(events.last(), Some(Event::Error { status: 502, message }) if message.contains("ended inside")),
        "{events:?}"
    );
}

#[test]
fn reasoning_wrapped_payloads_object_inputs_and_bare_stops_decode() {
    let body = [
        ev(
            "reasoningContentEvent",
            json!({"text": "Think", "signature": "sig"}),
        ),
        ev(
            "assistantResponseEvent",
            json!({"assistantResponseEvent": {"content": "Done"}}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "a", "name": "now", "stop": true}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "b", "name": "put", "input": {"k": 1}, "stop": true}),
        ),
        ev(
            "toolUseEvent",
            json!({"toolUseId": "c", "name": "cut", "input": "{\"x\""}),
        ),
        ev(
            "followupPromptEvent",
            json!({"followupPrompt": {"content": "More?"}}),
        ),
        ev(
            "invalidStateEvent",
            json!({"reason": "INVALID_TASK_ASSIST_PLAN", "message": "m"}),
        ),
    ]
    .concat();
    assert_eq!(
        stream_events(&[&body]),
        vec![
            Event::Start {
                id: "conv".into(),
                model: String::new()
            },
            Event::Reasoning("Think".into()),
            Event::ReasoningSignature("sig".into()),
            Event::Text("Done".into()),
            call_start(0, "a", "now"),
            args(0, "{}"),
            call_start(1, "b", "put"),
            args(1, r#"{"k":1}"#),
            call_start(2, "c", "cut"),
            args(2, "{\"x\""),
            Event::Stop(StopReason::ToolUse),
        ]
    );
    let r = decode_response(&body).unwrap();
    assert_eq!(
        r.content[0],
        Part::Reasoning(Reasoning {
            text: "Think".into(),
            signature: Some("sig".into()),
            encrypted: None
        })
    );
}

#[test]
fn malformed_events_are_upstream_errors() {
    let mut d = StreamDecoder::default();
    let mut out = Vec::new();
    let cases = [
        event_stream::event("assistantResponseEvent", b"not json"),
        event_stream::event("assistantResponseEvent", b"[1]"),
        ev("assistantResponseEvent", json!({"content": 7})),
        ev("toolUseEvent", json!({"name": "x"})),
        ev("toolUseEvent", json!({"toolUseId": "new"})),
        event_stream::encode(&[Header::string(":message-type", "surprise")], b"{}"),
    ];
    for case in cases {
        assert!(
            matches!(d.bytes(&case, &mut out), Err(TranslateError::Upstream(_))),
            "{case:?}"
        );
    }
    let mut corrupt = ev("assistantResponseEvent", json!({"content": "x"}));
    let at = corrupt.len() - 1;
    corrupt[at] ^= 1;
    assert!(matches!(
        StreamDecoder::default().bytes(&corrupt, &mut out),
        Err(TranslateError::Upstream(m)) if m.contains("CRC")
    ));
}

#[test]
fn an_empty_body_is_an_empty_answer_and_tool_results_keep_their_type() {
    assert_eq!(
        stream_events(&[]),
        vec![
            Event::Start {
                id: "conv".into(),
                model: String::new()
            },
            Event::Stop(StopReason::EndTurn)
        ]
    );
    // The model's ToolResult with a name: the name is not part of Kiro's result shape.
    let req = request(vec![
        msg(Role::User, vec![text("go")]),
        msg(Role::Assistant, vec![call("a", "f", "{}")]),
        msg(
            Role::User,
            vec![Part::ToolResult(ToolResult {
                call_id: "a".into(),
                name: Some("f".into()),
                content: vec![text("ok")],
                is_error: false,
            })],
        ),
    ]);
    let results = &encoded(&req)["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["toolResults"][0];
    assert!(results.get("name").is_none());
}
