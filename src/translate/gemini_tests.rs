//! Tests of the Gemini codec: golden fixtures shaped like Google's documented examples, round
//! trips through the intermediate shape, stream orderings, refusals and malformed input.

use serde_json::{Value, json};

use super::*;
use crate::translate::model::{
    Event, Image, Part, Reasoning, Response, StopReason, TokenUsage, ToolResult,
};
use crate::translate::test_util::*;
use crate::translate::{AnswerContext, TranslateError};
use crate::wire::sse::DataLineScanner;

const REQUEST: &str = include_str!("../../tests/fixtures/translate/gemini/request.json");
const RESPONSE: &str =
    include_str!("../../tests/fixtures/translate/gemini/response_tool_call.json");
const STREAM: &str = include_str!("../../tests/fixtures/translate/gemini/stream_tool_call.sse");
const STREAM_ERROR: &str = include_str!("../../tests/fixtures/translate/gemini/stream_error.sse");

fn text(s: &str) -> Part {
    Part::Text(s.into())
}

fn signature(s: &str) -> Part {
    Part::Reasoning(Reasoning {
        text: String::new(),
        signature: Some(s.into()),
        encrypted: None,
    })
}

fn result(id: &str, name: Option<&str>, content: Vec<Part>, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: id.into(),
        name: name.map(Into::into),
        content,
        is_error,
    })
}

fn msg(role: Role, content: Vec<Part>) -> Message {
    Message { role, content }
}

fn ctx() -> AnswerContext {
    AnswerContext {
        model: "asked-model".into(),
        created: 1_700_000_000,
        ..Default::default()
    }
}

fn decode(v: Value) -> Result<Request, TranslateError> {
    decode_request(v.to_string().as_bytes())
}

fn encoded(req: &Request) -> Value {
    serde_json::from_slice(&encode_request(req).unwrap()).unwrap()
}

/// Every event a stream decoder makes of SSE text (its end included).
fn decode_stream(sse: &str) -> Vec<Event> {
    let mut scanner = DataLineScanner::default();
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    scanner.feed(sse.as_bytes(), |data| {
        decoder.data(data, &mut events).unwrap();
    });
    decoder.finish(&mut events);
    events
}

/// The SSE text an encoder writes for `events` (its end included).
fn encode_stream(events: &[Event]) -> String {
    let mut encoder = StreamEncoder::new(&ctx());
    let mut out = Vec::new();
    for e in events {
        encoder.event(e.clone(), &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out).unwrap()
}

/// The JSON payloads of SSE text.
fn chunks(sse: &str) -> Vec<Value> {
    sse.split("\r\n\r\n")
        .filter_map(|c| c.trim().strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn start() -> Event {
    Event::Start {
        id: "r1".into(),
        model: "gemini-2.5-pro".into(),
    }
}

fn usage(input: u64, output: u64, reasoning: Option<u64>) -> TokenUsage {
    TokenUsage {
        input,
        output,
        reasoning,
        ..Default::default()
    }
}

#[test]
fn the_documented_request_decodes_with_every_field() {
    let req = decode_request(REQUEST.as_bytes()).unwrap();
    assert_eq!(req.model, "");
    assert!(!req.stream);
    assert_eq!(
        req.system,
        [
            "You are a travel assistant.",
            "Answer in one short paragraph."
        ]
    );
    assert_eq!(req.messages.len(), 5);
    let jpeg = Part::Image(Image::Base64 {
        media_type: "image/jpeg".into(),
        data: "/9j/4AAQSkZJRgABAQ==".into(),
    });
    assert_eq!(req.messages[0].content[1], jpeg);
    assert_eq!(
        req.messages[1],
        msg(
            Role::Assistant,
            vec![
                signature("CiQBVKhc7sig1"),
                call("call_0", "get_weather", r#"{"city":"Lisbon"}"#),
                call(
                    "call_1",
                    "get_weather",
                    r#"{"city":"Paris","unit":"celsius"}"#
                ),
            ]
        )
    );
    // Responses without ids answer the earliest unanswered call of their function.
    let weather = Some("get_weather");
    let lisbon = result("call_0", weather, vec![text("21°C, sunny")], false);
    let paris = vec![text(r#"{"temperature":14,"sky":"overcast"}"#)];
    assert_eq!(
        req.messages[2].content,
        [lisbon, result("call_1", weather, paris, false)]
    );
    let Part::Image(Image::Url { url, media_type }) = &req.messages[4].content[0] else {
        panic!("not a URL image: {:?}", req.messages[4]);
    };
    assert!(url.ends_with("files/abc123"));
    assert_eq!(media_type.as_deref(), Some("image/png"));
    // The hosted search tool is dropped; the OpenAPI schema becomes JSON Schema.
    assert_eq!(req.tools.len(), 1);
    assert_eq!(
        req.tools[0].parameters,
        json!({"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]})
    );
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Function("get_weather".into()))
    );
    assert_eq!(
        (req.temperature, req.top_p, req.top_k, req.max_tokens),
        (Some(0.7), Some(0.95), Some(40), Some(1024))
    );
    assert_eq!(req.stop, ["END"]);
    assert_eq!(
        (req.seed, req.presence_penalty, req.frequency_penalty),
        (Some(7), Some(0.1), Some(0.2))
    );
    let reasoning = req.reasoning.unwrap();
    assert_eq!(
        (reasoning.budget_tokens, reasoning.include),
        (Some(2048), true)
    );
}

/// A request holding everything the Gemini dialect carries.
fn full_request() -> Request {
    let png = Image::Base64 {
        media_type: "image/png".into(),
        data: "iVBORw0KGgo=".into(),
    };
    Request {
        system: vec!["Be brief.".into(), "Use tools.".into()],
        messages: vec![
            msg(Role::User, vec![text("Hi"), Part::Image(png.clone())]),
            msg(
                Role::Assistant,
                vec![
                    Part::Reasoning(Reasoning {
                        text: "Need the tool.".into(),
                        signature: None,
                        encrypted: None,
                    }),
                    signature("sig-1"),
                    call("c1", "lookup", r#"{"q":"x"}"#),
                    call("c2", "lookup", r#"{"q":"y"}"#),
                ],
            ),
            msg(
                Role::User,
                vec![
                    result("c1", Some("lookup"), vec![text("found")], false),
                    result("c2", Some("lookup"), vec![text("boom")], true),
                ],
            ),
            msg(Role::Assistant, vec![signature("sig-2"), text("Done.")]),
        ],
        tools: vec![Tool {
            name: "lookup".into(),
            description: Some("Looks things up.".into()),
            parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            strict: None,
            freeform: false,
        }],
        tool_choice: Some(ToolChoice::Required),
        max_tokens: Some(500),
        temperature: Some(1.5),
        top_p: Some(0.9),
        top_k: Some(20),
        stop: vec!["STOP!".into()],
        seed: Some(-3),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
            strict: None,
        }),
        reasoning: Some(ReasoningConfig {
            effort: None,
            budget_tokens: Some(1024),
            include: true,
        }),
        ..Default::default()
    }
}

#[test]
fn a_request_the_dialect_carries_survives_a_round_trip() {
    let req = full_request();
    let back = decode_request(&encode_request(&req).unwrap()).unwrap();
    assert_eq!(back, req);
    for format in [ResponseFormat::Text, ResponseFormat::JsonObject] {
        let req = Request {
            response_format: Some(format),
            ..full_request()
        };
        assert_eq!(decode_request(&encode_request(&req).unwrap()).unwrap(), req);
    }
}

#[test]
fn the_encoded_request_has_googles_shape() {
    let mut req = full_request();
    req.messages[1].content.remove(1); // the first call loses its signature
    req.messages[2].content.push(Part::Image(Image::Url {
        url: "data:image/gif;base64,R0lGOD".into(),
        media_type: None,
    }));
    if let Part::ToolResult(r) = &mut req.messages[2].content[0] {
        r.name = None; // found from the call
        r.content = vec![text(r#"{"rows": 2}"#)];
    }
    req.tool_choice = Some(ToolChoice::Function("lookup".into()));
    let v = encoded(&req);
    assert_eq!(
        v["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Use tools."}]})
    );
    let model = &v["contents"][1]["parts"];
    assert_eq!(model[0], json!({"text": "Need the tool.", "thought": true}));
    assert_eq!(
        model[1]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert_eq!(
        model[1]["functionCall"],
        json!({"id": "c1", "name": "lookup", "args": {"q": "x"}})
    );
    assert!(model[2].get("thoughtSignature").is_none());
    let results = &v["contents"][2]["parts"];
    assert_eq!(
        results[0]["functionResponse"]["response"],
        json!({"rows": 2})
    );
    assert_eq!(results[0]["functionResponse"]["name"], "lookup");
    assert_eq!(
        results[1]["functionResponse"]["response"],
        json!({"error": "boom"})
    );
    assert_eq!(
        results[2],
        json!({"inlineData": {"mimeType": "image/gif", "data": "R0lGOD"}})
    );
    assert_eq!(
        v["contents"][3]["parts"][0],
        json!({"text": "Done.", "thoughtSignature": "sig-2"})
    );
    assert_eq!(
        v["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["type"],
        "object"
    );
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}})
    );
    let gc = &v["generationConfig"];
    assert_eq!(gc["responseMimeType"], "application/json");
    assert_eq!(
        gc["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert!(v.get("model").is_none() && v.get("stream").is_none());
}

#[test]
fn an_effort_is_a_level_for_gemini_3_and_a_budget_before() {
    let reasoning = Some(ReasoningConfig {
        effort: Some("high".into()),
        ..Default::default()
    });
    let for_model = |model: &str| {
        let req = Request {
            model: model.into(),
            reasoning: reasoning.clone(),
            ..Default::default()
        };
        encoded(&req)["generationConfig"]["thinkingConfig"].clone()
    };
    assert_eq!(
        for_model("gemini-3-pro-preview"),
        json!({"thinkingLevel": "high"})
    );
    assert_eq!(
        for_model("gemini-2.5-flash"),
        json!({"thinkingBudget": 24576})
    );
    let level =
        json!({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}});
    assert_eq!(
        decode(level).unwrap().reasoning.unwrap().effort.as_deref(),
        Some("low")
    );
}

#[test]
fn a_result_without_a_name_or_call_is_refused_by_the_encoder() {
    let req = Request {
        messages: vec![msg(Role::User, vec![result("nope", None, vec![], false)])],
        ..Default::default()
    };
    assert!(matches!(encode_request(&req), Err(TranslateError::Invalid(m)) if m.contains("nope")));
}

#[test]
fn snake_case_fields_and_other_tool_modes_decode() {
    let req = decode(json!({
        "contents": [{"parts": [{"text": "hi"}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["a", "b"]}},
        "generation_config": {"max_output_tokens": 9, "top_k": 3.0, "response_mime_type": "application/json",
            "response_schema": {"type": "ARRAY", "items": {"type": "INTEGER"}}},
    }))
    .unwrap();
    assert_eq!(req.messages[0].role, Role::User);
    assert_eq!((req.max_tokens, req.top_k), (Some(9), Some(3)));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    let Some(ResponseFormat::JsonSchema { schema, .. }) = req.response_format else {
        panic!("no schema");
    };
    assert_eq!(
        schema,
        json!({"type": "array", "items": {"type": "integer"}})
    );
    for (mode, choice) in [("NONE", ToolChoice::None), ("VALIDATED", ToolChoice::Auto)] {
        let v = json!({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": mode}}});
        assert_eq!(decode(v).unwrap().tool_choice, Some(choice));
    }
}

#[test]
fn code_execution_parts_are_dropped_and_error_responses_flagged() {
    let req = decode(json!({"contents": [
        {"role": "model", "parts": [{"executableCode": {"language": "PYTHON", "code": "1+1"}},
            {"functionCall": {"id": "x9", "name": "f"}}]},
        {"role": "function", "parts": [{"functionResponse": {"name": "f", "response": {"error": "denied"},
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}}]},
    ]}))
    .unwrap();
    assert_eq!(req.messages[0].content, [call("x9", "f", "{}")]);
    let png = Part::Image(Image::Base64 {
        media_type: "image/png".into(),
        data: "AAAA".into(),
    });
    assert_eq!(
        req.messages[1].content,
        [result("x9", Some("f"), vec![text("denied"), png], true)]
    );
}

#[test]
fn what_would_change_the_answer_is_refused() {
    let refused = [
        json!({"contents": [], "cachedContent": "cachedContents/x"}),
        json!({"contents": [], "generationConfig": {"candidateCount": 2}}),
        json!({"contents": [], "generationConfig": {"responseLogprobs": true}}),
        json!({"contents": [], "generationConfig": {"responseModalities": ["TEXT", "AUDIO"]}}),
        json!({"contents": [], "generationConfig": {"responseMimeType": "text/x.enum"}}),
        json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]}]}),
        json!({"contents": [{"parts": [{"fileData": {"mimeType": "video/mp4", "fileUri": "gs://b/v"}}]}]}),
        json!({"contents": [], "systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}}),
        // Not inline images, whatever the address claims (found by the `translate` fuzz target:
        // a `data:` address of another type came back as `inlineData` no decoder takes).
        json!({"contents": [{"parts": [{"fileData": {"fileUri": "data:text/plain;base64,AAAA"}}]}]}),
        json!({"contents": [{"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "data:image/png,raw"}}]}]}),
    ];
    for body in refused {
        match decode(body.clone()) {
            Err(TranslateError::Unsupported(m)) => {
                assert!(m.ends_with("use a backend of the same protocol"), "{m}");
            }
            other => panic!("{body} gave {other:?}"),
        }
    }
}

#[test]
fn malformed_requests_name_the_field() {
    let cases = [
        (json!([1]), "the body must be a JSON object"),
        (
            json!({"contents": {"parts": []}}),
            "`contents` must be an array",
        ),
        (
            json!({"contents": [{"role": "system", "parts": []}]}),
            "contents[0].role",
        ),
        (
            json!({"contents": [{"parts": [{"functionCall": {"name": "f", "args": [1]}}]}]}),
            "args",
        ),
        (
            json!({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}),
            "functionCall.name",
        ),
        (
            json!({"contents": [], "generationConfig": {"topK": "many"}}),
            "generationConfig.topK",
        ),
        (
            json!({"contents": [], "generationConfig": {"temperature": "hot"}}),
            "temperature",
        ),
        (
            json!({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": "SOME"}}}),
            "mode",
        ),
        (
            json!({"contents": [], "tools": [{"functionDeclarations": [{"description": "x"}]}]}),
            "name",
        ),
    ];
    for (body, field) in cases {
        match decode(body.clone()) {
            Err(TranslateError::Invalid(m)) => assert!(m.contains(field), "{body}: {m}"),
            other => panic!("{body} gave {other:?}"),
        }
    }
    assert!(matches!(
        decode_request(b"{not json"),
        Err(TranslateError::Invalid(_))
    ));
}

#[test]
fn the_documented_answer_with_a_tool_call_decodes() {
    let resp = decode_response(RESPONSE.as_bytes()).unwrap();
    assert_eq!(
        (resp.id.as_str(), resp.model.as_str(), resp.created),
        ("mBDRaJjhNqKxz7IPv", "gemini-2.5-flash", 0)
    );
    assert_eq!(resp.stop, StopReason::ToolUse);
    let thought = Part::Reasoning(Reasoning {
        text: "The user wants the weather in Tokyo; I should call the tool.".into(),
        signature: None,
        encrypted: None,
    });
    let expected = [
        thought,
        text("Let me check."),
        signature("EpYBCpMBAb4+9vu"),
        call(
            "call_mBDRaJjhNqKxz7IPv_0",
            "get_weather",
            r#"{"city":"Tokyo"}"#,
        ),
    ];
    assert_eq!(resp.content, expected);
    let expected = TokenUsage {
        input: 120,
        output: 70,
        cached_input: Some(64),
        cache_creation: None,
        reasoning: Some(52),
    };
    assert_eq!(resp.usage, expected);
}

#[test]
fn an_answer_survives_a_round_trip_and_fills_the_model() {
    let resp = decode_response(RESPONSE.as_bytes()).unwrap();
    let back = decode_response(&encode_response(&resp, &ctx())).unwrap();
    assert_eq!(back, resp);
    let bare = Response {
        id: "r".into(),
        model: String::new(),
        created: 5,
        content: vec![text("hi")],
        stop: StopReason::MaxTokens,
        usage: usage(3, 4, None),
    };
    let v: Value = serde_json::from_slice(&encode_response(&bare, &ctx())).unwrap();
    assert_eq!(v["modelVersion"], "asked-model");
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7})
    );
}

#[test]
fn finish_reasons_map_both_ways() {
    let answer = |reason: &str| {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        decode_response(body.to_string().as_bytes()).unwrap().stop
    };
    assert_eq!(answer("STOP"), StopReason::EndTurn);
    assert_eq!(answer("MAX_TOKENS"), StopReason::MaxTokens);
    assert_eq!(answer("RECITATION"), StopReason::ContentFilter);
    assert_eq!(
        answer("MALFORMED_FUNCTION_CALL"),
        StopReason::Other("MALFORMED_FUNCTION_CALL".into())
    );
    // Counts near u64::MAX saturate (found by the `translate` fuzz target: the sums overflowed).
    let huge = json!({"candidates": [], "usageMetadata": {"promptTokenCount": u64::MAX,
        "toolUsePromptTokenCount": 5, "candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 7}});
    let resp = decode_response(huge.to_string().as_bytes()).unwrap();
    assert_eq!((resp.usage.input, resp.usage.output), (u64::MAX, u64::MAX));
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}});
    let resp = decode_response(blocked.to_string().as_bytes()).unwrap();
    assert_eq!(
        (resp.stop, resp.content.len(), resp.usage.input),
        (StopReason::ContentFilter, 0, 4)
    );
    let word = |stop| parts::finish_word(&stop);
    assert_eq!(word(StopReason::ContentFilter), "SAFETY");
    assert_eq!(word(StopReason::Other("LANGUAGE".into())), "LANGUAGE");
    assert_eq!(word(StopReason::Other("length".into())), "OTHER");
}

#[test]
fn bad_answers_are_upstream_errors() {
    for body in [
        &b"<html>"[..],
        b"[]",
        br#"{"candidates": 3}"#,
        br#"{}"#,
        br#"{"error": {"code": 400, "message": "bad"}}"#,
    ] {
        assert!(
            matches!(decode_response(body), Err(TranslateError::Upstream(_))),
            "{body:?}"
        );
    }
}

#[test]
fn the_documented_stream_decodes_event_by_event() {
    let events = decode_stream(STREAM);
    let expected = [
        Event::Start {
            id: "Xk3QaPq8".into(),
            model: "gemini-2.5-flash".into(),
        },
        Event::Text("Checking the".into()),
        Event::Text(" forecast.".into()),
        Event::ReasoningSignature("CsIBAVSoXO4".into()),
        call_start(0, "call_Xk3QaPq8_0", "get_weather"),
        args(0, r#"{"city":"Oslo","days":3}"#),
        call_start(1, "call_Xk3QaPq8_1", "get_time"),
        args(1, r#"{"tz":"Europe/Oslo"}"#),
        Event::Stop(StopReason::ToolUse),
        Event::Usage(usage(40, 56, Some(31))),
    ];
    assert_eq!(events, expected);
}

#[test]
fn an_error_inside_the_stream_becomes_an_error_event() {
    let events = decode_stream(STREAM_ERROR);
    assert_eq!(events.len(), 3);
    assert_eq!(events[1], Event::Text("Once upon".into()));
    let message = "The model is overloaded. Please try again later.".to_owned();
    assert_eq!(
        events[2],
        Event::Error {
            status: 503,
            message
        }
    );
}

/// A stream using every event, in an order a Gemini upstream produces.
fn stream_events() -> Vec<Event> {
    vec![
        start(),
        Event::Reasoning("Thinking".into()),
        Event::ReasoningSignature("s1".into()),
        Event::Text("Calling.".into()),
        Event::ReasoningSignature("s2".into()),
        call_start(0, "a", "f"),
        args(0, r#"{"x":1}"#),
        call_start(1, "b", "g"),
        args(1, "{}"),
        Event::Stop(StopReason::ToolUse),
        Event::Usage(usage(10, 20, Some(5))),
    ]
}

#[test]
fn a_stream_survives_a_round_trip() {
    let events = stream_events();
    assert_eq!(decode_stream(&encode_stream(&events)), events);
}

#[test]
fn the_encoder_writes_calls_whole_and_holds_the_finish_for_the_usage() {
    let events = [
        start(),
        call_start(0, "a", "f"),
        args(0, r#"{"ci"#),
        call_start(1, "b", "g"),
        args(0, r#"ty":"Rome"}"#),
        args(1, "not json"),
        Event::Text("after the calls".into()),
        Event::Usage(usage(1, 2, None)),
        Event::Stop(StopReason::EndTurn),
    ];
    let sse = encode_stream(&events);
    assert!(sse.starts_with("data: {") && sse.ends_with("}\r\n\r\n"));
    let c = chunks(&sse);
    assert_eq!(c.len(), 3);
    let calls = &c[0]["candidates"][0]["content"]["parts"];
    assert_eq!(
        calls[0]["functionCall"],
        json!({"id": "a", "name": "f", "args": {"city": "Rome"}})
    );
    assert_eq!(calls[1]["functionCall"]["args"], json!({}));
    assert_eq!(
        c[1]["candidates"][0]["content"]["parts"][0]["text"],
        "after the calls"
    );
    assert_eq!(
        (c[1]["responseId"].as_str(), c[1]["modelVersion"].as_str()),
        (Some("r1"), Some("gemini-2.5-pro"))
    );
    assert!(c[1]["candidates"][0].get("finishReason").is_none());
    assert_eq!(c[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(c[2]["usageMetadata"]["totalTokenCount"], 3);
    assert_eq!(c[2]["candidates"][0]["content"]["role"], "model");
}

#[test]
fn a_cut_stream_ends_with_its_calls_and_usage_and_no_finish_reason() {
    let sse = encode_stream(&[
        start(),
        Event::Usage(usage(1, 1, None)),
        call_start(0, "a", "f"),
    ]);
    let c = chunks(&sse);
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({})
    );
    assert!(c[1]["candidates"][0].get("finishReason").is_none());
    assert_eq!(c[1]["usageMetadata"]["promptTokenCount"], 1);
    assert_eq!(encode_stream(&[start()]), "");
}

#[test]
fn after_an_error_the_encoder_writes_nothing_more() {
    let error = Event::Error {
        status: 429,
        message: "slow down".into(),
    };
    let sse = encode_stream(&[
        start(),
        Event::Text("a".into()),
        error,
        Event::Text("b".into()),
        Event::Stop(StopReason::EndTurn),
    ]);
    let c = chunks(&sse.replace("\n\n", "\r\n\r\n"));
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[1]["error"],
        json!({"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"})
    );
    assert!(decode_stream(&sse).ends_with(&[Event::Error {
        status: 429,
        message: "slow down".into()
    }]));
}

#[test]
fn bad_stream_chunks_are_upstream_errors() {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    assert!(matches!(
        decoder.data(b"{oops", &mut events),
        Err(TranslateError::Upstream(_))
    ));
    assert!(matches!(
        decoder.data(br#"{"candidates": {}}"#, &mut events),
        Err(TranslateError::Upstream(_))
    ));
}
