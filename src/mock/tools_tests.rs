//! Tests of the tool-call flow in every protocol against a live mock server: the exact JSON and
//! streamed shapes of tool calls (`x-mock: tool=`, forced tool choices, `tool_calls=2`), the
//! answer to a tool result, and the reasoning that `x-mock: reasoning=` puts first.

use serde_json::{Value, json};

use super::test_util::{Event, TestServer, body_json, parse_sse, post};
use super::tools::RESULT_PREFIX;

#[derive(Clone, Copy)]
enum P {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

/// `get_weather(city, unit?)` then `get_time()`, as a JSON schema.
fn weather() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"},
        "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]})
}

/// A request declaring both tools, its conversation `messages` (the protocol's own items).
fn request(p: P, messages: Value) -> Value {
    let none = json!({"type": "object", "properties": {}});
    match p {
        P::Chat => json!({"model": "m", "messages": messages, "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": weather()}},
            {"type": "function", "function": {"name": "get_time", "parameters": none}}]}),
        P::Responses => json!({"model": "m", "input": messages, "tools": [
            {"type": "function", "name": "get_weather", "parameters": weather()},
            {"type": "function", "name": "get_time", "parameters": none},
            {"type": "custom", "name": "apply_patch"}]}),
        P::Anthropic => json!({"model": "m", "max_tokens": 9, "messages": messages, "tools": [
            {"name": "get_weather", "input_schema": weather()},
            {"name": "get_time", "input_schema": none}]}),
        P::Gemini => json!({"contents": messages, "tools": [{"functionDeclarations": [
            {"name": "get_weather", "parametersJsonSchema": weather()},
            {"name": "get_time", "parameters": {"type": "OBJECT"}}]}]}),
    }
}

/// The request with a user question only.
fn ask(p: P) -> Value {
    let messages = match p {
        P::Gemini => json!([{"role": "user", "parts": [{"text": "weather?"}]}]),
        _ => json!([{"role": "user", "content": "weather?"}]),
    };
    request(p, messages)
}

/// The request after the tool ran: its last message is the result `"21 degrees"`.
fn answered(p: P) -> Value {
    let user = json!({"role": "user", "content": "weather?"});
    let messages = match p {
        P::Chat => {
            json!([user, {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
            "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees"}])
        }
        P::Responses => json!([user, {"type": "function_call", "call_id": "call_1",
            "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "21 degrees"}]),
        P::Anthropic => json!([user, {"role": "assistant", "content": [{"type": "tool_use",
            "id": "toolu_1", "name": "get_weather", "input": {}}]}, {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "21 degrees"}]}]}]),
        P::Gemini => json!([{"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                "response": {"output": "21 degrees"}}}]}]),
    };
    request(p, messages)
}

/// The request forcing `get_time` with the protocol's tool choice.
fn forced(p: P) -> Value {
    let mut body = ask(p);
    let (key, choice) = match p {
        P::Chat => (
            "tool_choice",
            json!({"type": "function", "function": {"name": "get_time"}}),
        ),
        P::Responses => (
            "tool_choice",
            json!({"type": "function", "name": "get_time"}),
        ),
        P::Anthropic => ("tool_choice", json!({"type": "tool", "name": "get_time"})),
        P::Gemini => (
            "toolConfig",
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}),
        ),
    };
    body[key] = choice;
    body
}

fn path(p: P, stream: bool) -> &'static str {
    match (p, stream) {
        (P::Chat, _) => "/v1/chat/completions",
        (P::Responses, _) => "/v1/responses",
        (P::Anthropic, _) => "/v1/messages",
        (P::Gemini, false) => "/v1beta/models/g:generateContent",
        (P::Gemini, true) => "/v1beta/models/g:streamGenerateContent?alt=sse",
    }
}

async fn json_answer(server: &TestServer, p: P, body: Value, mock: &str) -> Value {
    let resp = post(server, path(p, false), body, Some(mock)).await;
    assert_eq!(resp.status(), 200);
    body_json(resp).await
}

async fn sse_answer(server: &TestServer, p: P, mut body: Value, mock: &str) -> Vec<Event> {
    if !matches!(p, P::Gemini) {
        body["stream"] = json!(true);
    }
    let resp = post(server, path(p, true), body, Some(mock)).await;
    assert_eq!(resp.status(), 200);
    parse_sse(&resp.text().await.unwrap())
}

/// The JSON of every event (OpenAI's `[DONE]` left out) and, for named events, their names.
fn split(events: &[Event]) -> (Vec<Value>, Vec<String>) {
    let data = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(Event::json);
    let names = events.iter().filter_map(|e| e.event.clone()).collect();
    (data.collect(), names)
}

fn parsed(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap()
}

#[tokio::test]
async fn chat_tool_calls_json_and_streamed() {
    let server = TestServer::start().await;
    let v = json_answer(&server, P::Chat, ask(P::Chat), "tool=get_weather").await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = parsed(call["function"]["arguments"].as_str().unwrap());
    assert_eq!(args, json!({"city": "city"}));

    let mut body = ask(P::Chat);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_answer(&server, P::Chat, body, "tool=*; tool_calls=2; chunks=4").await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let (chunks, _) = split(&events);
    let deltas: Vec<&Value> = chunks[..chunks.len() - 1]
        .iter()
        .map(|c| &c["choices"][0]["delta"])
        .collect();
    assert_eq!(deltas[0]["role"], "assistant");
    assert_eq!(deltas[0]["content"], Value::Null);
    for (i, name) in [(0, "get_weather"), (1, "get_time")] {
        let fragments: Vec<&Value> = deltas
            .iter()
            .filter_map(|d| d["tool_calls"].get(0))
            .filter(|c| c["index"] == i)
            .collect();
        assert_eq!(fragments.len(), 1 + 4, "{fragments:?}");
        let head = fragments[0];
        assert_eq!(head["type"], "function");
        assert_eq!(head["function"], json!({"name": name, "arguments": ""}));
        assert!(head["id"].as_str().unwrap().starts_with("call_"));
        let text: String = fragments[1..]
            .iter()
            .map(|f| {
                assert!(f.get("id").is_none() && f["function"].get("name").is_none());
                f["function"]["arguments"].as_str().unwrap()
            })
            .collect();
        assert_eq!(parsed(&text), [json!({"city": "city"}), json!({})][i]);
    }
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
    assert_eq!(finish["delta"], json!({}));
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn responses_function_and_custom_tool_calls() {
    let server = TestServer::start().await;
    let v = json_answer(&server, P::Responses, ask(P::Responses), "tool=get_weather").await;
    let item = &v["output"][0];
    assert_eq!(v["output"].as_array().unwrap().len(), 1);
    assert_eq!(item["type"], "function_call");
    assert!(item["id"].as_str().unwrap().starts_with("fc_"));
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        (&item["name"], &item["status"]),
        (&json!("get_weather"), &json!("completed"))
    );
    assert_eq!(
        parsed(item["arguments"].as_str().unwrap()),
        json!({"city": "city"})
    );

    let events = sse_answer(
        &server,
        P::Responses,
        ask(P::Responses),
        "tool=get_weather; chunks=3",
    )
    .await;
    let (data, names) = split(&events);
    let delta = "response.function_call_arguments.delta";
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        delta,
        delta,
        delta,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(names, expected);
    assert_eq!(data[2]["item"]["arguments"], "");
    assert_eq!(data[2]["item"]["status"], "in_progress");
    let text: String = data[3..6]
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(data[6]["arguments"], text.as_str());
    assert_eq!(data[6]["item_id"], data[2]["item"]["id"]);
    assert_eq!(parsed(&text), json!({"city": "city"}));
    let done = &data[8]["response"];
    assert_eq!(done["output"][0], data[7]["item"]);
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let seqs: Vec<u64> = data
        .iter()
        .map(|d| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..9).collect::<Vec<u64>>());

    let mock = "tool=apply_patch; tool_input=%2A%2A%2A%20Begin%20Patch; chunks=2";
    let v = json_answer(&server, P::Responses, ask(P::Responses), mock).await;
    let item = &v["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
    assert_eq!(
        (&item["name"], &item["input"]),
        (&json!("apply_patch"), &json!("*** Begin Patch"))
    );
    assert!(item.get("arguments").is_none());
    let events = sse_answer(&server, P::Responses, ask(P::Responses), mock).await;
    let (data, names) = split(&events);
    let delta = "response.custom_tool_call_input.delta";
    assert_eq!(
        names[3..6],
        [delta, delta, "response.custom_tool_call_input.done"]
    );
    assert_eq!(data[5]["input"], "*** Begin Patch");
}

#[tokio::test]
async fn anthropic_tool_use_json_and_streamed() {
    let server = TestServer::start().await;
    let mock = "tool=get_weather; tool_preamble=Let%20me%20check.";
    let v = json_answer(&server, P::Anthropic, ask(P::Anthropic), mock).await;
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "text", "text": "Let me check."})
    );
    let block = &v["content"][1];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(
        (&block["name"], &block["input"]),
        (&json!("get_weather"), &json!({"city": "city"}))
    );

    let events = sse_answer(
        &server,
        P::Anthropic,
        ask(P::Anthropic),
        "tool=get_weather; chunks=3",
    )
    .await;
    let (data, names) = split(&events);
    let delta = "content_block_delta";
    let expected = [
        "message_start",
        "content_block_start",
        "ping",
        delta,
        delta,
        delta,
        delta,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(names, expected);
    let start = &data[1]["content_block"];
    assert_eq!(
        (&start["type"], &start["input"]),
        (&json!("tool_use"), &json!({}))
    );
    assert_eq!(
        data[3]["delta"],
        json!({"type": "input_json_delta", "partial_json": ""})
    );
    let text: String = data[3..7]
        .iter()
        .map(|d| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(parsed(&text), json!({"city": "city"}));
    assert_eq!(data[8]["delta"]["stop_reason"], "tool_use");
    assert_eq!(data[8]["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn gemini_function_calls_json_and_streamed() {
    let server = TestServer::start().await;
    let v = json_answer(&server, P::Gemini, ask(P::Gemini), "tool=get_weather").await;
    let candidate = &v["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    let expected = json!([{"functionCall": {"name": "get_weather", "args": {"city": "city"}}}]);
    assert_eq!(candidate["content"]["parts"], expected);

    let mock = "tool=*; tool_calls=2; thought_signature=1";
    let events = sse_answer(&server, P::Gemini, ask(P::Gemini), mock).await;
    let (data, _) = split(&events);
    assert_eq!(data.len(), 2);
    let parts: Vec<&Value> = data
        .iter()
        .map(|d| &d["candidates"][0]["content"]["parts"][0])
        .collect();
    assert_eq!(parts[0]["functionCall"]["name"], "get_weather");
    assert!(!parts[0]["thoughtSignature"].as_str().unwrap().is_empty());
    assert_eq!(
        parts[1]["functionCall"],
        json!({"name": "get_time", "args": {}})
    );
    assert!(parts[1].get("thoughtSignature").is_none());
    assert!(
        data[0]["candidates"][0].get("finishReason").is_none()
            && data[0].get("usageMetadata").is_none()
    );
    assert_eq!(data[1]["candidates"][0]["finishReason"], "STOP");
    assert!(
        data[1]["usageMetadata"]["totalTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
}

/// The name of the first tool called in a JSON answer of any protocol (`None`: text).
fn called(p: P, v: &Value) -> Option<String> {
    let name = match p {
        P::Chat => &v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        P::Responses => &v["output"][0]["name"],
        P::Anthropic => &v["content"][0]["name"],
        P::Gemini => &v["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
    };
    name.as_str().map(str::to_owned)
}

/// The text of a JSON answer of any protocol.
fn text(p: P, v: &Value) -> &str {
    let text = match p {
        P::Chat => &v["choices"][0]["message"]["content"],
        P::Responses => &v["output"][0]["content"][0]["text"],
        P::Anthropic => &v["content"][0]["text"],
        P::Gemini => &v["candidates"][0]["content"]["parts"][0]["text"],
    };
    text.as_str().unwrap()
}

#[tokio::test]
async fn forced_choices_results_and_parallel_calls_in_every_protocol() {
    let server = TestServer::start().await;
    let expected_result = format!("{RESULT_PREFIX}21 degrees");
    for p in [P::Chat, P::Responses, P::Anthropic, P::Gemini] {
        let v = json_answer(&server, p, forced(p), "").await;
        assert_eq!(called(p, &v).as_deref(), Some("get_time"));
        let v = json_answer(&server, p, ask(p), "").await;
        assert_eq!(called(p, &v), None);
        let v = json_answer(&server, p, answered(p), "tool=*").await;
        assert_eq!(text(p, &v), expected_result);
        let v = json_answer(&server, p, answered(p), "reply=done").await;
        assert_eq!(text(p, &v), "done");
        // Unknown tool names are a scripting error.
        let resp = post(&server, path(p, false), ask(p), Some("tool=nope")).await;
        assert_eq!(resp.status(), 400);
        let v = json_answer(
            &server,
            p,
            ask(p),
            "tool=*; tool_calls=2; tool_args=%7B%22x%22%3A1%7D",
        )
        .await;
        let calls: Vec<(Value, Value)> = match p {
            P::Chat => v["choices"][0]["message"]["tool_calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["function"]["name"].clone(),
                        parsed(c["function"]["arguments"].as_str().unwrap()),
                    )
                })
                .collect(),
            P::Responses => v["output"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].clone(), parsed(c["arguments"].as_str().unwrap())))
                .collect(),
            P::Anthropic => v["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].clone(), c["input"].clone()))
                .collect(),
            P::Gemini => v["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["functionCall"]["name"].clone(),
                        c["functionCall"]["args"].clone(),
                    )
                })
                .collect(),
        };
        let x = json!({"x": 1});
        assert_eq!(
            calls,
            [(json!("get_weather"), x.clone()), (json!("get_time"), x)]
        );
    }
}

#[tokio::test]
async fn reasoning_opens_the_answer_in_every_protocol() {
    let server = TestServer::start().await;
    let mock = "reasoning=Thinking%20hard.";
    let v = json_answer(&server, P::Chat, ask(P::Chat), mock).await;
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "Thinking hard."
    );
    assert!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let v = json_answer(&server, P::Responses, ask(P::Responses), mock).await;
    let item = &v["output"][0];
    assert_eq!(item["type"], "reasoning");
    assert_eq!(
        item["summary"],
        json!([{"type": "summary_text", "text": "Thinking hard."}])
    );
    assert_eq!(v["output"][1]["type"], "message");
    let v = json_answer(&server, P::Anthropic, ask(P::Anthropic), mock).await;
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["thinking"], "Thinking hard.");
    assert!(!v["content"][0]["signature"].as_str().unwrap().is_empty());
    let v = json_answer(&server, P::Gemini, ask(P::Gemini), mock).await;
    let part = &v["candidates"][0]["content"]["parts"][0];
    assert_eq!(
        (&part["text"], &part["thought"]),
        (&json!("Thinking hard."), &json!(true))
    );
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);

    let mock = "reasoning=Thinking%20hard.; chunks=2; tool=get_weather";
    let (data, names) = split(&sse_answer(&server, P::Anthropic, ask(P::Anthropic), mock).await);
    assert_eq!(
        names[1..8],
        [
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start"
        ]
    );
    assert_eq!(data[1]["content_block"]["type"], "thinking");
    assert_eq!(data[5]["delta"]["type"], "signature_delta");
    assert_eq!(data[7]["index"], 1);
    let (data, names) = split(&sse_answer(&server, P::Responses, ask(P::Responses), mock).await);
    assert_eq!(
        names[2..5],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta"
        ]
    );
    assert_eq!(data[2]["item"]["type"], "reasoning");
    // With tool calls and with text, the reasoning opens the stream and the role comes once.
    for mock in [mock, "reasoning=Thinking%20hard.; chunks=2"] {
        let events = sse_answer(&server, P::Chat, ask(P::Chat), mock).await;
        let (data, _) = split(&events);
        let delta = |c: &'_ Value| c["choices"][0]["delta"].clone();
        let reasoning: String = data
            .iter()
            .filter_map(|c| delta(c)["reasoning_content"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(reasoning, "Thinking hard.");
        let roles = data.iter().filter(|c| delta(c).get("role").is_some());
        assert_eq!(roles.count(), 1, "{mock}");
    }
}
