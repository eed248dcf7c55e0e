//! Tests of the Anthropic stream codec: the documented stream and an error inside one, streams
//! the encoder writes read back, events in every legal order, cut and failed streams.

use serde_json::{Value, json};

use super::super::tests::usage;
use super::*;

const STREAM: &str =
    include_str!("../../../tests/fixtures/translate/anthropic/stream_tool_use.sse");
const STREAM_ERROR: &str =
    include_str!("../../../tests/fixtures/translate/anthropic/stream_error.sse");

fn sse_data(sse: &str) -> Vec<&str> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

fn decode_stream(sse: &str) -> Vec<Event> {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    for data in sse_data(sse) {
        decoder.data(data.as_bytes(), &mut events).expect("decodes");
    }
    decoder.finish(&mut events);
    events
}

fn encode_stream(events: Vec<Event>) -> String {
    let mut encoder = StreamEncoder::new(&AnswerContext {
        model: "asked-model".into(),
        ..AnswerContext::default()
    });
    let mut out = Vec::new();
    for e in events {
        encoder.event(e, &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

/// Checks what the SDKs rely on: each `event:` names its data's type, blocks are started at
/// running indexes and stopped once, and `message_stop` (or an error) is last; returns the
/// event names.
fn well_formed(sse: &str) -> Vec<String> {
    let mut names = Vec::new();
    let (mut started, mut stopped) = (Vec::new(), Vec::new());
    for event in sse.split_terminator("\n\n") {
        let (name, data) = event.split_once('\n').expect("two lines");
        let name = name.strip_prefix("event: ").expect("event line");
        let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line"))
            .expect("JSON data");
        assert_eq!(data["type"], name, "{event}");
        match name {
            "content_block_start" => started.push(data["index"].as_u64().expect("index")),
            "content_block_stop" => stopped.push(data["index"].as_u64().expect("index")),
            _ => {}
        }
        names.push(name.to_owned());
    }
    let running: Vec<u64> = (0..started.len() as u64).collect();
    assert_eq!(started, running, "running indexes");
    let last = names.last().map(String::as_str);
    if last != Some("error") {
        assert_eq!(stopped, running, "each block stopped once, in order");
        assert_eq!(last, Some("message_stop"));
    }
    names
}

fn documented_stream_events() -> Vec<Event> {
    let args = |index, fragment: &str| Event::ToolCallArgs {
        index,
        fragment: fragment.into(),
    };
    vec![
        Event::Start {
            id: "msg_014p7gG3wDgGV9EUtLvnow3U".into(),
            model: "claude-sonnet-4-5-20250929".into(),
        },
        Event::Usage(usage(1496, 2, Some(1024), Some(0))),
        Event::Text("Okay, let's check".into()),
        Event::Text(" the weather for San Francisco, CA:".into()),
        Event::ToolCallStart {
            index: 0,
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into(),
        },
        args(0, "{\"location\":"),
        args(0, " \"San Francisc"),
        args(0, "o, CA\", \"unit\": \"fahrenheit\"}"),
        Event::Stop(StopReason::ToolUse),
        Event::Usage(usage(1496, 89, Some(1024), Some(0))),
    ]
}

#[test]
fn the_documented_stream_decodes_event_by_event() {
    assert_eq!(decode_stream(STREAM), documented_stream_events());
}

#[test]
fn an_error_inside_the_stream_becomes_an_error_event() {
    let events = decode_stream(STREAM_ERROR);
    assert_eq!(
        events[1..],
        [
            Event::Usage(usage(12, 1, Some(0), Some(0))),
            Event::Reasoning("Let me work through this step by step.".into()),
            Event::ReasoningSignature("EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()),
            Event::Text("The answer".into()),
            Event::Error {
                status: 529,
                message: "Overloaded".into(),
            },
        ]
    );
    let sse = encode_stream(events.clone());
    assert!(sse.ends_with(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    ));
    assert_eq!(decode_stream(&sse), events);
}

#[test]
fn encoded_streams_decode_to_the_same_events() {
    let sse = encode_stream(documented_stream_events());
    let names = well_formed(&sse);
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(decode_stream(&sse), documented_stream_events());
    let thinking = vec![
        Event::Start {
            id: "msg_2".into(),
            model: "m".into(),
        },
        Event::Usage(usage(7, 0, Some(0), Some(0))),
        Event::ReasoningSignature("redacted-data".into()),
        Event::Reasoning("step one".into()),
        Event::ReasoningSignature("sig".into()),
        Event::Text("answer".into()),
        Event::Stop(StopReason::StopSequence(Some("END".into()))),
        Event::Usage(usage(7, 30, Some(0), Some(0))),
    ];
    let sse = encode_stream(thinking.clone());
    well_formed(&sse);
    assert_eq!(decode_stream(&sse), thinking);
}

#[test]
fn events_in_any_legal_order_make_a_well_formed_stream() {
    let start = |i: usize| Event::ToolCallStart {
        index: i,
        id: format!("call_{i}"),
        name: "f".into(),
    };
    let args = |i: usize, f: &str| Event::ToolCallArgs {
        index: i,
        fragment: f.into(),
    };
    let events = vec![
        Event::Start {
            id: "chatcmpl-1".into(),
            model: "gpt-x".into(),
        },
        Event::Reasoning("think".into()),
        start(0),
        args(0, "{\"a\":"),
        start(1),
        args(1, "{}"),
        // A late fragment of a closed call still reaches its block.
        args(0, "1}"),
        Event::Text("after the tools".into()),
        Event::Usage(usage(40, 2, Some(8), None)),
        Event::Stop(StopReason::ToolUse),
    ];
    let sse = encode_stream(events);
    let names = well_formed(&sse);
    let deltas = names.iter().filter(|n| *n == "content_block_delta").count();
    assert_eq!((names.len(), deltas), (16, 5), "{sse}");
    let data = sse_data(&sse);
    let start: Value = serde_json::from_str(data[0]).expect("JSON");
    assert_eq!(start["message"]["id"], "msg_chatcmpl-1");
    assert_eq!(start["message"]["model"], "gpt-x");
    let late: Value = serde_json::from_str(data[9]).expect("JSON");
    assert_eq!(late["index"], 1, "{sse}");
    // The usage reported before the stop is in message_delta, written at the end.
    let delta: Value = serde_json::from_str(data[data.len() - 2]).expect("JSON");
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(
        delta["usage"],
        json!({"input_tokens": 32, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 8, "output_tokens": 2})
    );
}

#[test]
fn a_cut_stream_is_closed_properly() {
    let cut_in_tool = encode_stream(vec![
        Event::Start {
            id: "x".into(),
            model: String::new(),
        },
        Event::ToolCallStart {
            index: 0,
            id: String::new(),
            name: "f".into(),
        },
    ]);
    well_formed(&cut_in_tool);
    let decoded = decode_stream(&cut_in_tool);
    assert!(
        decoded.contains(&Event::Stop(StopReason::ToolUse)),
        "{cut_in_tool}"
    );
    assert!(decoded.contains(&Event::ToolCallStart {
        index: 0,
        id: "toolu_x_0".into(),
        name: "f".into(),
    }));
    let start: Value = serde_json::from_str(sse_data(&cut_in_tool)[0]).expect("JSON");
    assert_eq!(start["message"]["model"], "asked-model");
    let empty = encode_stream(vec![]);
    assert_eq!(
        well_formed(&empty),
        ["message_start", "message_delta", "message_stop"]
    );
    assert!(decode_stream(&empty).contains(&Event::Stop(StopReason::EndTurn)));
}

#[test]
fn nothing_follows_an_error_or_the_end() {
    let mut encoder = StreamEncoder::new(&AnswerContext::default());
    let mut out = Vec::new();
    encoder.event(Event::Text("partial".into()), &mut out);
    encoder.event(
        Event::Error {
            status: 429,
            message: "slow down".into(),
        },
        &mut out,
    );
    let len = out.len();
    encoder.event(Event::Text("more".into()), &mut out);
    encoder.finish(&mut out);
    assert_eq!(out.len(), len);
    let sse = String::from_utf8(out).expect("UTF-8");
    assert!(
        sse.ends_with("\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n"),
        "{sse}"
    );
    // Stop then usage ends the message at once; the end of the stream adds nothing.
    let mut encoder = StreamEncoder::new(&AnswerContext::default());
    let mut out = Vec::new();
    encoder.event(Event::Stop(StopReason::EndTurn), &mut out);
    encoder.event(Event::Usage(usage(1, 1, None, None)), &mut out);
    let len = out.len();
    encoder.event(Event::Usage(usage(2, 2, None, None)), &mut out);
    encoder.finish(&mut out);
    assert_eq!(out.len(), len);
}

#[test]
fn upstream_stream_oddities_are_tolerated_or_blamed() {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    let payloads = [
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{"a":1}}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"u","name":"n","input":{}}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"some_future_event"}"#,
    ];
    for p in payloads {
        decoder.data(p.as_bytes(), &mut events).expect("decodes");
    }
    let args = |index, fragment: &str| Event::ToolCallArgs {
        index,
        fragment: fragment.into(),
    };
    assert_eq!(
        events[1..],
        [
            Event::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "n".into()
            },
            args(0, r#"{"a":1}"#),
            Event::ToolCallStart {
                index: 1,
                id: "u".into(),
                name: "n".into()
            },
            args(1, "{}"),
        ]
    );
    for bad in [
        "not json",
        r#"{"index":0}"#,
        r#"{"type":"content_block_delta","delta":{}}"#,
    ] {
        let err = decoder
            .data(bad.as_bytes(), &mut events)
            .expect_err("blamed");
        assert!(matches!(err, TranslateError::Upstream(_)), "{bad}: {err:?}");
    }
}
