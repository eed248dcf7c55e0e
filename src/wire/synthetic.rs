//! Complete answers the gateway writes itself, in each protocol's shape: the sandbox answer that
//! tells an unauthenticated agent where to log in is an ordinary assistant message, so every agent
//! shows it. One text, rendered as an OpenAI chat completion (JSON or SSE), a Responses-API
//! response (JSON or SSE), an Anthropic message (JSON or SSE) or a Gemini `generateContent`
//! answer (JSON, SSE or the JSON-array stream).

use bytes::Bytes;
use serde_json::{Value, json};

/// Which answer to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `POST /v1/chat/completions`.
    ChatCompletion,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages`.
    Messages,
    /// Gemini `generateContent` / `streamGenerateContent`.
    GenerateContent,
}

/// How the caller asked to receive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One JSON document.
    Json,
    /// Server-sent events.
    Sse,
    /// Gemini's stream without `alt=sse`: a JSON array of chunks.
    JsonArray,
}

/// A rendered answer.
#[derive(Debug)]
pub struct Rendered {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

const ID: &str = "portcullis-auth";

/// Renders `text` as a complete assistant answer from `model`, created at `created` (seconds).
pub fn render(shape: Shape, delivery: Delivery, model: &str, text: &str, created: u64) -> Rendered {
    match (shape, delivery) {
        (Shape::ChatCompletion, Delivery::Sse) => sse(chat_events(model, text, created), true),
        (Shape::ChatCompletion, _) => json_doc(&chat(model, text, created)),
        (Shape::Responses, Delivery::Sse) => sse(responses_events(model, text, created), false),
        (Shape::Responses, _) => json_doc(&response(model, text, created, true)),
        (Shape::Messages, Delivery::Sse) => sse(messages_events(model, text), false),
        (Shape::Messages, _) => json_doc(&message(model, text, true)),
        (Shape::GenerateContent, Delivery::Sse) => sse(vec![(None, gemini(model, text))], false),
        (Shape::GenerateContent, Delivery::JsonArray) => {
            json_doc(&Value::Array(vec![gemini(model, text)]))
        }
        (Shape::GenerateContent, Delivery::Json) => json_doc(&gemini(model, text)),
    }
}

fn json_doc(v: &Value) -> Rendered {
    Rendered {
        content_type: "application/json",
        body: Bytes::from(v.to_string()),
    }
}

fn sse(events: Vec<(Option<&'static str>, Value)>, done_marker: bool) -> Rendered {
    let mut out = String::new();
    for (name, data) in events {
        if let Some(n) = name {
            out.push_str("event: ");
            out.push_str(n);
            out.push('\n');
        }
        out.push_str("data: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
    }
    if done_marker {
        out.push_str("data: [DONE]\n\n");
    }
    Rendered {
        content_type: "text/event-stream",
        body: Bytes::from(out),
    }
}

fn chat(model: &str, text: &str, created: u64) -> Value {
    json!({
        "id": format!("chatcmpl-{ID}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    })
}

fn chat_events(model: &str, text: &str, created: u64) -> Vec<(Option<&'static str>, Value)> {
    let chunk = |delta: Value, finish: Value| {
        (
            None,
            json!({
                "id": format!("chatcmpl-{ID}"),
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
        )
    };
    vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": text}), Value::Null),
        chunk(json!({}), json!("stop")),
    ]
}

fn output_item(text: &str, done: bool) -> Value {
    let content = if done {
        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
    } else {
        json!([])
    };
    json!({
        "type": "message",
        "id": format!("msg_{ID}"),
        "status": if done { "completed" } else { "in_progress" },
        "role": "assistant",
        "content": content,
    })
}

fn response(model: &str, text: &str, created: u64, done: bool) -> Value {
    json!({
        "id": format!("resp_{ID}"),
        "object": "response",
        "created_at": created,
        "status": if done { "completed" } else { "in_progress" },
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": if done { json!([output_item(text, true)]) } else { json!([]) },
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": if done {
            json!({
                "input_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 0,
            })
        } else {
            Value::Null
        },
        "user": null,
        "metadata": {},
    })
}

fn responses_events(model: &str, text: &str, created: u64) -> Vec<(Option<&'static str>, Value)> {
    let item_id = format!("msg_{ID}");
    let part =
        |t: &str| json!({"type": "output_text", "text": t, "annotations": [], "logprobs": []});
    let at = |mut fields: Value| {
        fields["item_id"] = json!(item_id);
        fields["output_index"] = json!(0);
        fields["content_index"] = json!(0);
        fields
    };
    let steps: Vec<(&'static str, Value)> = vec![
        (
            "response.created",
            json!({"response": response(model, text, created, false)}),
        ),
        (
            "response.in_progress",
            json!({"response": response(model, text, created, false)}),
        ),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": output_item(text, false)}),
        ),
        ("response.content_part.added", at(json!({"part": part("")}))),
        (
            "response.output_text.delta",
            at(json!({"delta": text, "logprobs": []})),
        ),
        (
            "response.output_text.done",
            at(json!({"text": text, "logprobs": []})),
        ),
        (
            "response.content_part.done",
            at(json!({"part": part(text)})),
        ),
        (
            "response.output_item.done",
            json!({"output_index": 0, "item": output_item(text, true)}),
        ),
        (
            "response.completed",
            json!({"response": response(model, text, created, true)}),
        ),
    ];
    steps
        .into_iter()
        .enumerate()
        .map(|(seq, (kind, mut fields))| {
            fields["type"] = json!(kind);
            fields["sequence_number"] = json!(seq);
            (Some(kind), fields)
        })
        .collect()
}

fn message(model: &str, text: &str, done: bool) -> Value {
    json!({
        "id": format!("msg_{ID}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": if done { json!([{"type": "text", "text": text}]) } else { json!([]) },
        "stop_reason": if done { json!("end_turn") } else { Value::Null },
        "stop_sequence": null,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    })
}

fn messages_events(model: &str, text: &str) -> Vec<(Option<&'static str>, Value)> {
    vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": message(model, text, false)}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 0}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]
}

fn gemini(model: &str, text: &str) -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
        "modelVersion": model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(r: &Rendered) -> String {
        String::from_utf8(r.body.to_vec()).unwrap()
    }

    #[test]
    fn every_shape_carries_the_text_and_parses() {
        let msg = "open https://gw/auth/login?t=abc";
        for shape in [
            Shape::ChatCompletion,
            Shape::Responses,
            Shape::Messages,
            Shape::GenerateContent,
        ] {
            let r = render(shape, Delivery::Json, "m", msg, 1);
            assert_eq!(r.content_type, "application/json");
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert!(v.to_string().contains(msg), "{shape:?}");
            let s = render(shape, Delivery::Sse, "m", msg, 1);
            assert_eq!(s.content_type, "text/event-stream");
            let body = text_of(&s);
            assert!(body.ends_with("\n\n"));
            for line in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if line != "[DONE]" {
                    serde_json::from_str::<Value>(line).unwrap();
                }
            }
            assert!(body.contains("auth/login?t=abc"), "{shape:?}");
        }
        let arr: Value = serde_json::from_slice(
            &render(Shape::GenerateContent, Delivery::JsonArray, "m", msg, 1).body,
        )
        .unwrap();
        assert_eq!(arr[0]["candidates"][0]["content"]["parts"][0]["text"], msg);
    }

    #[test]
    fn streams_follow_each_protocols_event_order() {
        let chat = text_of(&render(Shape::ChatCompletion, Delivery::Sse, "m", "x", 1));
        assert!(chat.trim_end().ends_with("data: [DONE]"));
        let msgs = text_of(&render(Shape::Messages, Delivery::Sse, "m", "x", 1));
        let events: Vec<&str> = msgs
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            events,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let resp = text_of(&render(Shape::Responses, Delivery::Sse, "m", "x", 1));
        assert!(resp.lines().next().unwrap().ends_with("response.created"));
        assert!(resp.contains("\"sequence_number\":8"));
    }
}
