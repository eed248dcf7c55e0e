//! Tests of the Chat Completions stream codec: documented streams, the tool-call shapes of
//! compatible servers, the chunks written for each event order, and round trips.

use serde_json::{Value, json};

use super::*;
use crate::translate::test_util::*;
use crate::translate::{Dialect, StreamTranslator};

const TEXT_AND_TOOL: &str =
    include_str!("../../../tests/fixtures/translate/chat/stream_text_tool.sse");
const MID_STREAM_ERROR: &str =
    include_str!("../../../tests/fixtures/translate/chat/stream_error.sse");

/// The `data:` payloads of an SSE text, `[DONE]` left out.
fn payloads(sse: &str) -> Vec<&str> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .collect()
}

fn decode(sse: &str) -> Vec<Event> {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    for data in payloads(sse) {
        decoder.data(data.as_bytes(), &mut events).unwrap();
    }
    decoder.finish(&mut events);
    events
}

fn decode_chunks(chunks: &[Value]) -> Vec<Event> {
    let sse: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    decode(&sse)
}

fn ctx(include_usage: bool) -> AnswerContext {
    AnswerContext {
        model: "asked".into(),
        created: 1_700_000_000,
        include_usage,
        ..Default::default()
    }
}

fn encode(events: &[Event], include_usage: bool) -> String {
    let mut encoder = StreamEncoder::new(&ctx(include_usage));
    let mut out = Vec::new();
    for e in events {
        encoder.event(e.clone(), &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out).unwrap()
}

fn start() -> Event {
    Event::Start {
        id: "chatcmpl-1".into(),
        model: "m".into(),
    }
}

fn usage() -> TokenUsage {
    TokenUsage {
        input: 81,
        output: 21,
        cached_input: Some(0),
        cache_creation: None,
        reasoning: Some(0),
    }
}

#[test]
fn the_documented_stream_decodes_event_by_event() {
    let expected = vec![
        Event::Start {
            id: "chatcmpl-7xq".into(),
            model: "gpt-4.1-2025-04-14".into(),
        },
        Event::Text("Checking".into()),
        Event::Text(" the weather.".into()),
        call_start(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather"),
        args(0, "{\""),
        args(0, "city\":\"Par"),
        args(0, "is\"}"),
        Event::Stop(StopReason::ToolUse),
        Event::Usage(usage()),
    ];
    assert_eq!(decode(TEXT_AND_TOOL), expected);
}

#[test]
fn an_error_inside_the_stream_becomes_an_error_event() {
    let events = decode(MID_STREAM_ERROR);
    let message = "The server had an error while processing your request. Sorry about that!";
    let error = Event::Error {
        status: 502,
        message: message.into(),
    };
    assert_eq!(events[1..], [Event::Text("The answer is".into()), error]);
    let limited = decode_chunks(&[json!({"error": {"message": "slow down", "code": "429"}})]);
    assert_eq!(
        limited,
        [Event::Error {
            status: 429,
            message: "slow down".into()
        }]
    );
    let mut decoder = StreamDecoder::default();
    let err = decoder
        .data(b"{\"choices\": 3}", &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(&err, TranslateError::Upstream(m) if m.contains("choices")),
        "{err:?}"
    );
    assert!(decoder.data(b"not json", &mut Vec::new()).is_err());
}

/// A chunk whose one choice has `delta` (and a finish reason).
fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c9", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn call_delta(index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    json!({"tool_calls": [call]})
}

#[test]
fn tool_calls_of_compatible_servers_get_their_own_ordinals() {
    // Gemini's OpenAI endpoint: every call at index 0, whole, told apart by its id.
    let gemini = decode_chunks(&[
        chunk(call_delta(0, Some("a"), Some("f"), "{\"x\":1}"), None),
        chunk(call_delta(0, Some("b"), Some("g"), "{}"), Some("stop")),
    ]);
    let expected = [
        call_start(0, "a", "f"),
        args(0, "{\"x\":1}"),
        call_start(1, "b", "g"),
        args(1, "{}"),
    ];
    assert_eq!(gemini[1..5], expected);
    assert_eq!(gemini[5], Event::Stop(StopReason::ToolUse));
    // The id repeated on each fragment; a call without an id; a second wire index.
    let mixed = decode_chunks(&[
        chunk(call_delta(0, Some("a"), Some("f"), "{"), None),
        chunk(call_delta(0, Some("a"), None, "}"), None),
        chunk(call_delta(1, None, Some("g"), ""), None),
        chunk(call_delta(1, None, None, "[]"), Some("tool_calls")),
    ]);
    let expected = [
        call_start(0, "a", "f"),
        args(0, "{"),
        args(0, "}"),
        call_start(1, "c9_1", "g"),
        args(1, "[]"),
        Event::Stop(StopReason::ToolUse),
    ];
    assert_eq!(mixed[1..], expected);
    // The deprecated `function_call` delta: one call, named in its first fragment.
    let legacy = decode_chunks(&[
        chunk(
            json!({"function_call": {"name": "h", "arguments": "{"}}),
            None,
        ),
        chunk(
            json!({"function_call": {"arguments": "}"}}),
            Some("function_call"),
        ),
    ]);
    let expected = [call_start(0, "c9_0", "h"), args(0, "{"), args(0, "}")];
    assert_eq!(legacy[1..4], expected);
    // Azure opens with a chunk of filter results only: the answer starts with the next one.
    let azure = json!({"id": "", "model": "", "choices": [], "prompt_filter_results": []});
    let events = decode_chunks(&[azure, chunk(json!({"content": "x"}), None)]);
    let started = Event::Start {
        id: "c9".into(),
        model: "m".into(),
    };
    assert_eq!(events, [started, Event::Text("x".into())]);
}

#[test]
fn reasoning_refusals_and_stop_strings_are_read() {
    let events = decode_chunks(&[
        chunk(json!({"reasoning_content": "a", "reasoning": "a"}), None),
        chunk(json!({"reasoning": "b", "content": "c"}), None),
        chunk(json!({"refusal": "no"}), Some("stop")),
        json!({"choices": [{"index": 1, "delta": {"content": "other choice"}}]}),
    ]);
    let expected = [
        Event::Reasoning("a".into()),
        Event::Reasoning("b".into()),
        Event::Text("c".into()),
        Event::Text("no".into()),
        Event::Stop(StopReason::ContentFilter),
    ];
    assert_eq!(events[1..], expected);
    let matched = chunk(json!({}), Some("stop"));
    let mut vllm = matched.clone();
    vllm["choices"][0]["stop_reason"] = json!("###");
    let stops = decode_chunks(&[matched, vllm, chunk(json!({}), Some("length"))]);
    let expected = [
        Event::Stop(StopReason::EndTurn),
        Event::Stop(StopReason::StopSequence(Some("###".into()))),
        Event::Stop(StopReason::MaxTokens),
    ];
    assert_eq!(stops[1..], expected);
}

fn chunks(sse: &str) -> Vec<Value> {
    payloads(sse)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn every_event_is_written_as_a_complete_chunk() {
    let events = [
        start(),
        Event::Reasoning("think".into()),
        Event::Text("Hi".into()),
        call_start(0, "call_a", "f"),
        args(0, "{}"),
        Event::Usage(usage()),
        Event::ReasoningSignature("sig".into()),
        Event::Stop(StopReason::EndTurn),
    ];
    let sse = encode(&events, true);
    assert!(sse.ends_with("\n\ndata: [DONE]\n\n"), "{sse}");
    let written = chunks(&sse);
    for c in &written {
        assert_eq!(
            (c["id"].as_str(), c["object"].as_str()),
            (Some("chatcmpl-1"), Some("chat.completion.chunk"))
        );
        assert_eq!(
            (c["created"].as_u64(), c["model"].as_str()),
            (Some(1_700_000_000), Some("m"))
        );
    }
    let deltas: Vec<&Value> = written.iter().map(|c| &c["choices"][0]["delta"]).collect();
    let call = json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}});
    let expected = [
        json!({"role": "assistant", "content": ""}),
        json!({"reasoning_content": "think"}),
        json!({"content": "Hi"}),
        json!({"tool_calls": [call]}),
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        json!({}),
        Value::Null,
    ];
    assert_eq!(deltas, expected.iter().collect::<Vec<_>>());
    assert_eq!(written[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(written[6]["choices"], json!([]));
    assert_eq!(written[6]["usage"]["total_tokens"], 102);
    assert_eq!(written[1]["choices"][0]["finish_reason"], Value::Null);
}

#[test]
fn closing_copes_with_any_legal_order() {
    // Usage after the stop, not asked for: no usage chunk.
    let quiet = chunks(&encode(
        &[
            start(),
            Event::Text("a".into()),
            Event::Stop(StopReason::MaxTokens),
            Event::Usage(usage()),
        ],
        false,
    ));
    assert_eq!(quiet.len(), 3);
    assert_eq!(quiet[2]["choices"][0]["finish_reason"], "length");
    // The upstream was cut: finish writes the finish reason, the usage, then [DONE].
    let cut = encode(
        &[start(), Event::Usage(usage()), call_start(0, "c", "f")],
        true,
    );
    let cut_chunks = chunks(&cut);
    assert_eq!(cut_chunks[2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(cut_chunks[3]["usage"]["prompt_tokens"], 81);
    assert!(cut.ends_with("data: [DONE]\n\n"));
    // Nothing at all: a well-formed empty answer.
    let empty = chunks(&encode(&[], false));
    assert_eq!(empty.len(), 2);
    assert_eq!(empty[1]["model"], "asked");
}

#[test]
fn after_an_error_nothing_more_is_written() {
    let events = [
        start(),
        Event::Text("a".into()),
        Event::Error {
            status: 429,
            message: "slow down".into(),
        },
        Event::Text("b".into()),
    ];
    let sse = encode(&events, true);
    assert!(!sse.contains("[DONE]"), "{sse}");
    let last = chunks(&sse).pop().unwrap();
    assert_eq!(last["error"]["message"], "slow down");
    assert_eq!(last["error"]["type"], "rate_limit_exceeded");
}

#[test]
fn written_streams_decode_to_the_same_events() {
    let events = vec![
        start(),
        Event::Reasoning("think".into()),
        Event::Text("Hi".into()),
        call_start(0, "call_a", "f"),
        args(0, "{\"a\""),
        args(0, ":1}"),
        call_start(1, "call_b", "g"),
        args(1, "{}"),
        Event::Text("after the calls".into()),
        Event::Stop(StopReason::ToolUse),
        Event::Usage(usage()),
    ];
    assert_eq!(decode(&encode(&events, true)), events);
    let error = Event::Error {
        status: 429,
        message: "slow down".into(),
    };
    let failed = vec![start(), Event::Text("x".into()), error];
    assert_eq!(decode(&encode(&failed, false)), failed);
}

#[test]
fn the_documented_stream_passes_through_the_translator_unchanged_in_meaning() {
    let mut translator = StreamTranslator::new(Dialect::Chat, Dialect::Chat, &ctx(true));
    let mut out = Vec::new();
    for piece in TEXT_AND_TOOL.as_bytes().chunks(37) {
        out.extend(translator.feed(piece));
    }
    out.extend(translator.finish());
    let sse = String::from_utf8(out).unwrap();
    assert_eq!(decode(&sse), decode(TEXT_AND_TOOL));
    assert!(sse.ends_with("data: [DONE]\n\n"));
}

/// The text-only fast path gives exactly the events of the general reader, chunk by chunk,
/// including the chunks it leaves to the general reader and the oddities of compatible servers.
#[test]
fn the_fast_path_reads_what_the_general_reader_reads() {
    let chunks: Vec<Value> = vec![
        json!({"id": "", "choices": [], "prompt_filter_results": []}),
        json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"reasoning_content": "think"}}], "usage": null}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"reasoning": "more", "content": "Hel\"lo\u{e9}"}}]}),
        json!({"id": "c1", "choices": [{"index": 1, "delta": {"content": "second choice"}}]}),
        json!({"id": "c1", "choices": [{"delta": {"refusal": "no"}, "finish_reason": ""}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": null}]}),
        json!({"id": "c1", "choices": null}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{"}}]}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": 5}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
    ];
    let mut fast = StreamDecoder::default();
    let mut general = StreamDecoder::default();
    for chunk in &chunks {
        let data = chunk.to_string();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = fast
            .data(data.as_bytes(), &mut a)
            .map_err(|e| e.to_string());
        let rb = general
            .general(data.as_bytes(), &mut b)
            .map_err(|e| e.to_string());
        assert_eq!(ra, rb, "{data}");
        assert_eq!(a, b, "{data}");
    }
    assert!(fast.plain(chunks[3].to_string().as_bytes(), &mut Vec::new()));
    assert!(!fast.plain(chunks[8].to_string().as_bytes(), &mut Vec::new()));
}
