//! Property tests of the codecs together: a request, an answer or a stream mapped from dialect A
//! to B and back to A keeps every field both carry — roles, text, images, tool definitions and
//! choice, tool calls with their arguments, tool results, sampling, stop sequences, stop reason,
//! usage. The generated values hold only what every dialect carries; `normal` forgets what a
//! dialect may legitimately rename (tool-call ids, which Gemini may not carry, are renumbered in
//! order of appearance; a result's function name is filled from its call).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::model::*;
use super::{AnswerContext, Dialect, StreamDecoder, StreamEncoder, StreamTranslator};

const DIALECTS: [Dialect; 4] = [
    Dialect::Chat,
    Dialect::Responses,
    Dialect::Anthropic,
    Dialect::Gemini,
];

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ,.!?]{0,30}[A-Za-z0-9.]"
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,8}"
}

/// Arguments: a JSON object of strings and integers, as compact JSON text.
fn arguments() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        ident(),
        prop_oneof![
            text().prop_map(Value::from),
            any::<i32>().prop_map(Value::from)
        ],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()).to_string())
}

fn image() -> impl Strategy<Value = Part> {
    "[A-Za-z0-9+/]{4,16}".prop_map(|d| {
        Part::Image(Image::Base64 {
            media_type: "image/png".into(),
            data: format!("{d}=="),
        })
    })
}

/// One exchange: a user message, maybe tool calls and their results, an assistant answer.
fn turn(n: usize) -> impl Strategy<Value = Vec<Message>> {
    (
        text(),
        prop::option::of(image()),
        prop::collection::vec((ident(), arguments(), text()), 0..3),
        text(),
    )
        .prop_map(move |(ask, img, calls, answer)| {
            let mut user = vec![Part::Text(ask)];
            user.extend(img);
            let mut out = vec![Message {
                role: Role::User,
                content: user,
            }];
            if !calls.is_empty() {
                let ids: Vec<String> = (0..calls.len()).map(|i| format!("call_{n}_{i}")).collect();
                out.push(Message {
                    role: Role::Assistant,
                    content: calls
                        .iter()
                        .zip(&ids)
                        .map(|((name, args, _), id)| {
                            Part::ToolCall(ToolCall {
                                id: id.clone(),
                                name: name.clone(),
                                arguments: args.clone(),
                            })
                        })
                        .collect(),
                });
                out.push(Message {
                    role: Role::User,
                    content: calls
                        .iter()
                        .zip(&ids)
                        .map(|((name, _, result), id)| {
                            Part::ToolResult(ToolResult {
                                call_id: id.clone(),
                                name: Some(name.clone()),
                                content: vec![Part::Text(result.clone())],
                                is_error: false,
                            })
                        })
                        .collect(),
                });
            }
            out.push(Message {
                role: Role::Assistant,
                content: vec![Part::Text(answer)],
            });
            out
        })
}

fn tool(name: String, description: String) -> Tool {
    Tool {
        name,
        description: Some(description),
        parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
        strict: None,
        freeform: false,
    }
}

prop_compose! {
    fn request()(
        system in prop::option::of(text()),
        turns in (0usize..3).prop_flat_map(|k| (0..k).map(turn).collect::<Vec<_>>()),
        last in text(),
        tools in prop::collection::btree_map(ident(), text(), 0..3),
        choice in 0u8..5,
        max_tokens in 1u64..8192,
        temperature in prop::option::of(prop::sample::select(vec![0.0, 0.5, 1.0])),
        top_p in prop::option::of(prop::sample::select(vec![0.5, 0.9])),
        stop in prop::collection::vec("[a-z]{2,6}", 0..3),
    ) -> Request {
        let mut messages: Vec<Message> = turns.into_iter().flatten().collect();
        messages.push(Message { role: Role::User, content: vec![Part::Text(last)] });
        let tools: Vec<Tool> = tools.into_iter().map(|(n, d)| tool(n, d)).collect();
        // A tool choice means something only with tools (OpenAI refuses one without).
        let tool_choice = match (choice, tools.first()) {
            (_, None) | (0, _) => None,
            (1, _) => Some(ToolChoice::Auto),
            (2, _) => Some(ToolChoice::None),
            (3, _) => Some(ToolChoice::Required),
            (_, Some(t)) => Some(ToolChoice::Function(t.name.clone())),
        };
        Request {
            system: system.into_iter().collect(),
            messages,
            tools,
            tool_choice,
            max_tokens: Some(max_tokens),
            temperature,
            top_p,
            stop,
            ..Request::default()
        }
    }
}

/// Renumbers tool-call ids in order of appearance (results follow their call) and fills
/// results' names.
fn normal_messages(messages: &mut [Message]) {
    fill_tool_names(messages);
    let mut ids: Vec<String> = Vec::new();
    let mut renumber = |id: &mut String| {
        let n = ids.iter().position(|x| x == id).unwrap_or_else(|| {
            ids.push(id.clone());
            ids.len() - 1
        });
        *id = format!("id{n}");
    };
    for m in messages {
        for p in &mut m.content {
            match p {
                Part::ToolCall(c) => renumber(&mut c.id),
                Part::ToolResult(r) => renumber(&mut r.call_id),
                _ => {}
            }
        }
    }
}

fn normal_request(mut r: Request) -> Request {
    normal_messages(&mut r.messages);
    r.model.clear();
    r
}

/// `r` without what dialect `d` does not carry: the Responses API has no stop sequences; newer
/// Claude models refuse `temperature` and `top_p` together (the codec keeps the temperature).
fn carried(d: Dialect, r: &Request) -> Request {
    let mut r = r.clone();
    match d {
        Dialect::Responses => r.stop.clear(),
        Dialect::Anthropic if r.temperature.is_some() => r.top_p = None,
        _ => {}
    }
    r
}

fn through(d: Dialect, r: &Request) -> Request {
    let body = super::encode_request(d, r).unwrap_or_else(|e| panic!("{d:?} encode: {e}"));
    let mut back = super::decode_request(d, &body)
        .unwrap_or_else(|e| panic!("{d:?} decode: {e}\n{}", String::from_utf8_lossy(&body)));
    // Gemini's model and stream mode are in the URL.
    back.model = r.model.clone();
    back.stream = r.stream;
    back
}

/// A complete answer whose content every dialect carries.
fn response() -> impl Strategy<Value = Response> {
    (
        prop::option::of(text()),
        prop::collection::vec((ident(), arguments()), 0..3),
        any::<bool>(),
        1u64..100_000,
        1u64..10_000,
    )
        .prop_map(|(text, calls, cut, input, output)| {
            let mut content: Vec<Part> = text.into_iter().map(Part::Text).collect();
            let called = !calls.is_empty();
            content.extend(calls.into_iter().enumerate().map(|(i, (name, arguments))| {
                Part::ToolCall(ToolCall {
                    id: format!("call_{i}"),
                    name,
                    arguments,
                })
            }));
            if content.is_empty() {
                content.push(Part::Text("ok".into()));
            }
            Response {
                id: "resp0001".into(),
                model: "m-1".into(),
                created: 0,
                content,
                stop: match (called, cut) {
                    (true, _) => StopReason::ToolUse,
                    (false, true) => StopReason::MaxTokens,
                    (false, false) => StopReason::EndTurn,
                },
                usage: TokenUsage {
                    input,
                    output,
                    ..TokenUsage::default()
                },
            }
        })
}

/// What a client reads of an answer: the content in order (texts joined), calls with
/// renumbered ids, the stop reason and the usage.
fn summary(r: &Response) -> (Vec<Part>, StopReason, u64, u64) {
    let mut messages = vec![Message {
        role: Role::Assistant,
        content: Vec::new(),
    }];
    for p in &r.content {
        match (messages[0].content.last_mut(), p) {
            (Some(Part::Text(a)), Part::Text(b)) => a.push_str(b),
            _ => messages[0].content.push(p.clone()),
        }
    }
    normal_messages(&mut messages);
    let content = messages.pop().map(|m| m.content).unwrap_or_default();
    (content, r.stop.clone(), r.usage.input, r.usage.output)
}

fn answer_through(d: Dialect, r: &Response) -> Response {
    let body = super::encode_response(d, r, &AnswerContext::default());
    super::decode_response(d, &body)
        .unwrap_or_else(|e| panic!("{d:?}: {e}\n{}", String::from_utf8_lossy(&body)))
}

/// The events a stream of `r` carries, text split in pieces of `piece` characters and
/// arguments in fragments.
fn events_of(r: &Response, piece: usize) -> Vec<Event> {
    let mut out = vec![Event::Start {
        id: r.id.clone(),
        model: r.model.clone(),
    }];
    let mut calls = 0;
    for p in &r.content {
        match p {
            Part::Text(t) => {
                let chars: Vec<char> = t.chars().collect();
                out.extend(chars.chunks(piece).map(|c| Event::Text(c.iter().collect())));
            }
            Part::ToolCall(c) => {
                out.push(Event::ToolCallStart {
                    index: calls,
                    id: c.id.clone(),
                    name: c.name.clone(),
                });
                let chars: Vec<char> = c.arguments.chars().collect();
                out.extend(chars.chunks(piece).map(|f| Event::ToolCallArgs {
                    index: calls,
                    fragment: f.iter().collect(),
                }));
                calls += 1;
            }
            _ => {}
        }
    }
    out.push(Event::Stop(r.stop.clone()));
    out.push(Event::Usage(r.usage));
    out
}

/// Folds stream events back into an answer.
fn collect(events: &[Event]) -> Response {
    let mut r = Response {
        id: String::new(),
        model: String::new(),
        created: 0,
        content: Vec::new(),
        stop: StopReason::Other("none".into()),
        usage: TokenUsage::default(),
    };
    let mut calls: Vec<usize> = Vec::new();
    for e in events {
        match e {
            Event::Start { id, model } => (r.id, r.model) = (id.clone(), model.clone()),
            Event::Text(t) => match r.content.last_mut() {
                Some(Part::Text(a)) => a.push_str(t),
                _ => r.content.push(Part::Text(t.clone())),
            },
            Event::ToolCallStart { index, id, name } => {
                calls.push(*index);
                r.content.push(Part::ToolCall(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                }));
            }
            Event::ToolCallArgs { index, fragment } => {
                let at = calls
                    .iter()
                    .position(|i| i == index)
                    .expect("args before start");
                let Some(Part::ToolCall(c)) = r
                    .content
                    .iter_mut()
                    .filter(|p| matches!(p, Part::ToolCall(_)))
                    .nth(at)
                else {
                    panic!("no call {index}")
                };
                c.arguments.push_str(fragment);
            }
            Event::Usage(u) => r.usage = *u,
            Event::Stop(s) => r.stop = s.clone(),
            Event::Error { message, .. } => panic!("error event: {message}"),
            Event::Reasoning(_) | Event::ReasoningSignature(_) => {}
        }
    }
    // Arguments split anywhere come back as JSON text; compare them as JSON.
    for p in &mut r.content {
        if let Part::ToolCall(c) = p
            && let Ok(v) = serde_json::from_str::<Value>(&c.arguments)
        {
            c.arguments = v.to_string();
        }
    }
    r
}

/// Writes `events` in dialect `to` and reads them back with `to`'s decoder.
fn stream_through(to: Dialect, events: Vec<Event>) -> Vec<Event> {
    let ctx = AnswerContext {
        include_usage: true,
        ..AnswerContext::default()
    };
    let mut enc = StreamEncoder::new(to, &ctx);
    let mut bytes = Vec::new();
    for e in events {
        enc.event(e, &mut bytes);
    }
    enc.finish(&mut bytes);
    let mut dec = StreamDecoder::new(to);
    let mut out = Vec::new();
    let mut scanner = crate::wire::sse::DataLineScanner::default();
    scanner.feed(&bytes, |data| {
        if data != b"[DONE]" {
            dec.data(data, &mut out)
                .unwrap_or_else(|e| panic!("{to:?}: {e}\n{}", String::from_utf8_lossy(&bytes)));
        }
    });
    dec.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_request_mapped_there_and_back_keeps_what_both_dialects_carry(r in request()) {
        for a in DIALECTS {
            for b in DIALECTS {
                let r = carried(a, &carried(b, &r));
                let there = through(b, &through(a, &r));
                let back = through(a, &there);
                prop_assert_eq!(normal_request(back), normal_request(r.clone()), "{:?} → {:?} → {:?}", a, b, a);
            }
        }
    }

    #[test]
    fn an_answer_mapped_there_and_back_keeps_what_both_dialects_carry(r in response()) {
        for a in DIALECTS {
            for b in DIALECTS {
                let back = answer_through(a, &answer_through(b, &answer_through(a, &r)));
                prop_assert_eq!(summary(&back), summary(&r), "{:?} → {:?} → {:?}", a, b, a);
            }
        }
    }

    #[test]
    fn a_stream_mapped_there_and_back_keeps_what_both_dialects_carry(r in response(), piece in 1usize..8) {
        let expected = summary(&collect(&events_of(&r, piece)));
        for a in DIALECTS {
            for b in DIALECTS {
                let back = stream_through(a, stream_through(b, stream_through(a, events_of(&r, piece))));
                prop_assert_eq!(summary(&collect(&back)), expected.clone(), "{:?} → {:?} → {:?}", a, b, a);
            }
        }
    }
}

#[test]
fn the_stream_translator_re_expresses_chunks_as_they_arrive() {
    let r = Response {
        id: "x1".into(),
        model: "m".into(),
        created: 0,
        content: vec![Part::Text("Hello there".into())],
        stop: StopReason::EndTurn,
        usage: TokenUsage {
            input: 3,
            output: 2,
            ..TokenUsage::default()
        },
    };
    for from in DIALECTS {
        for to in DIALECTS {
            let ctx = AnswerContext::default();
            let mut enc = StreamEncoder::new(from, &ctx);
            let mut upstream = Vec::new();
            for e in events_of(&r, 3) {
                enc.event(e, &mut upstream);
            }
            enc.finish(&mut upstream);
            // Fed one byte at a time, the translator still produces the whole answer.
            let mut t = StreamTranslator::new(from, to, &ctx);
            let mut out = Vec::new();
            for b in &upstream {
                out.extend(t.feed(std::slice::from_ref(b)));
            }
            out.extend(t.finish());
            let mut events = Vec::new();
            let mut dec = StreamDecoder::new(to);
            crate::wire::sse::DataLineScanner::default().feed(&out, |d| {
                if d != b"[DONE]" {
                    dec.data(d, &mut events).unwrap();
                }
            });
            dec.finish(&mut events);
            let got = collect(&events);
            assert_eq!(got.content, r.content, "{from:?} → {to:?}");
            assert_eq!(got.stop, StopReason::EndTurn, "{from:?} → {to:?}");
        }
    }
}
