//! Tests of the Responses API stream encoder: the event sequence OpenAI sends (what Codex and
//! the `openai` SDK read), any legal order of canonical events, cut streams, errors, and the
//! round trip through the decoder.

use serde_json::{Value, json};

use super::*;
use crate::translate::model::{Event, StopReason, TokenUsage};
use crate::translate::responses::tests::ctx;
use crate::translate::test_util::*;
use crate::wire::sse::DataLineScanner;

/// Encodes `events` then finishes.
fn encode(events: &[Event]) -> Vec<u8> {
    let mut encoder = StreamEncoder::new(&ctx());
    let mut out = Vec::new();
    for e in events {
        encoder.event(e.clone(), &mut out);
    }
    encoder.finish(&mut out);
    out
}

/// The `(event name, data)` pairs of SSE text, checking each `data.type` names its event.
fn parse(sse: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8(sse.to_vec()).unwrap();
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let (event, data) = block.split_once('\n').unwrap();
            let name = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

fn decode(sse: &[u8]) -> Vec<Event> {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    DataLineScanner::default().feed(sse, |data| decoder.data(data, &mut events).unwrap());
    decoder.finish(&mut events);
    events
}

fn start() -> Event {
    Event::Start {
        id: "resp_abc".into(),
        model: "up-model".into(),
    }
}

fn call_start(index: usize, name: &str) -> Event {
    Event::ToolCallStart {
        index,
        id: format!("call_{index}"),
        name: name.into(),
    }
}

fn usage() -> TokenUsage {
    TokenUsage {
        input: 10,
        output: 5,
        cached_input: Some(2),
        cache_creation: Some(4),
        reasoning: Some(3),
    }
}

fn full_answer() -> Vec<Event> {
    vec![
        start(),
        Event::Reasoning("th".into()),
        Event::Reasoning("ink".into()),
        Event::ReasoningSignature("enc".into()),
        Event::Text("Hel".into()),
        Event::Text("lo".into()),
        call_start(0, "get_weather"),
        args(0, "{\"city\":"),
        args(0, "\"Paris\"}"),
        call_start(1, "lookup"),
        args(1, "{}"),
        Event::Usage(usage()),
        Event::Stop(StopReason::ToolUse),
    ]
}

#[test]
fn the_sequence_is_the_one_openai_sends() {
    let events = parse(&encode(&full_answer()));
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(names(&events), expected);
    for (n, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], n);
    }
    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["id"], "resp_abc");
    assert_eq!(created["model"], "up-model");
    assert_eq!(created["output"], json!([]));
    let delta = &events[11].1;
    assert_eq!(delta["item_id"], "msg_abc_1");
    assert_eq!(delta["output_index"], 1);
    assert_eq!(delta["content_index"], 0);
    assert_eq!(delta["logprobs"], json!([]));
    let done = &events[25].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["total_tokens"], 15);
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 2);
    assert_eq!(done["output"][0]["encrypted_content"], "enc");
    assert_eq!(done["output"][0]["summary"][0]["text"], "think");
    assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][2]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done["output"][3]["call_id"], "call_1");
    assert_eq!(done["output"][3]["status"], "completed");
}

#[test]
fn encoded_streams_decode_to_the_same_events() {
    assert_eq!(decode(&encode(&full_answer())), full_answer());
}

#[test]
fn usage_after_stop_lands_in_the_final_event() {
    let events = [
        start(),
        Event::Text("x".into()),
        Event::Stop(StopReason::MaxTokens),
    ];
    let mut all = events.to_vec();
    all.push(Event::Usage(usage()));
    let out = parse(&encode(&all));
    let (name, last) = out.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 5);
    let mut expected = events.to_vec();
    expected.insert(2, Event::Usage(usage()));
    assert_eq!(decode(&encode(&all)), expected);
}

#[test]
fn a_freeform_call_is_written_whole_when_it_closes() {
    let input = json!({"input": "*** Begin Patch\n\"q\"\n*** End Patch"}).to_string();
    let (head, tail) = input.split_at(12);
    let out = encode(&[
        start(),
        call_start(0, "apply_patch"),
        args(0, head),
        args(0, tail),
        Event::Stop(StopReason::ToolUse),
    ]);
    let events = parse(&out);
    let custom: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n.starts_with("response.custom_tool_call_input"))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(custom.len(), 2);
    assert_eq!(custom[0]["delta"], "*** Begin Patch\n\"q\"\n*** End Patch");
    assert_eq!(custom[1]["input"], custom[0]["delta"]);
    let item = &events.last().unwrap().1["response"]["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["id"], "ctc_abc_0");
    let back = decode(&out);
    let joined: String = back
        .iter()
        .filter_map(|e| match e {
            Event::ToolCallArgs { fragment, .. } => Some(fragment.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(joined, input);
}

#[test]
fn text_after_tool_calls_opens_a_new_item_after_closing_them() {
    let events = parse(&encode(&[
        start(),
        call_start(0, "f"),
        Event::Text("after".into()),
        Event::Stop(StopReason::EndTurn),
    ]));
    let n = names(&events);
    let call_done = n
        .iter()
        .position(|e| *e == "response.output_item.done")
        .unwrap();
    let text_added = n
        .iter()
        .rposition(|e| *e == "response.output_item.added")
        .unwrap();
    assert!(call_done < text_added);
    let output = &events.last().unwrap().1["response"]["output"];
    assert_eq!(output[0]["arguments"], "{}");
    assert_eq!(output[1]["id"], "msg_abc_1");
}

#[test]
fn a_cut_stream_is_closed_as_incomplete() {
    let events = parse(&encode(&[
        Event::Text("no start, no stop".into()),
        call_start(0, "f"),
    ]));
    assert_eq!(events[0].0, "response.created");
    assert_eq!(events[0].1["response"]["id"], "resp_gateway");
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(last["response"]["output"].as_array().unwrap().len(), 2);
    assert_eq!(last["response"]["usage"], Value::Null);
}

#[test]
fn an_error_is_the_last_event_written() {
    let mut encoder = StreamEncoder::new(&ctx());
    let mut out = Vec::new();
    for e in [
        start(),
        Event::Text("part".into()),
        Event::Error {
            status: 429,
            message: "slow down".into(),
        },
        Event::Text("more".into()),
    ] {
        encoder.event(e, &mut out);
    }
    encoder.finish(&mut out);
    let events = parse(&out);
    let (name, failed) = events.last().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(failed["response"]["error"]["message"], "slow down");
    assert!(!names(&events).contains(&"response.completed"));
    assert_eq!(
        decode(&out).last(),
        Some(&Event::Error {
            status: 500,
            message: "slow down".into()
        })
    );
}

#[test]
fn the_decoder_joins_summary_parts_and_reads_items_sent_only_whole() {
    let summary = |index: u64, delta: &str| {
        json!({"type": "response.reasoning_summary_text.delta", "output_index": 0,
               "summary_index": index, "delta": delta})
    };
    let payloads = [
        json!({"type": "response.created", "response": {"id": "resp_9", "model": "m"}}),
        summary(0, "one"),
        summary(1, "two"),
        json!({"type": "response.output_item.done", "output_index": 0, "item":
            {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "e"}}),
        json!({"type": "response.output_item.done", "output_index": 1, "item":
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "whole"}]}}),
        json!({"type": "response.incomplete", "response": {"status": "incomplete",
            "incomplete_details": {"reason": "content_filter"}}}),
    ];
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    for p in payloads {
        decoder.data(p.to_string().as_bytes(), &mut events).unwrap();
    }
    let expected = [
        Event::Start {
            id: "resp_9".into(),
            model: "m".into(),
        },
        Event::Reasoning("one".into()),
        Event::Reasoning("\n\n".into()),
        Event::Reasoning("two".into()),
        Event::ReasoningSignature("e".into()),
        Event::Text("whole".into()),
        Event::Stop(StopReason::ContentFilter),
    ];
    assert_eq!(events, expected);
}
