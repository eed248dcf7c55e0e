//! Tests of the scripted answer text: `x-mock: reply=…` in every protocol, JSON and streamed,
//! and Gemini's JSON mode answered with an instance of the requested schema.

use serde_json::{Value, json};

use super::MOCK_TEXT;
use super::test_util::{TestServer, body_json, parse_sse, post};

/// An aider-style edit: several lines, `;`, `=` and non-ASCII text, percent-encoded.
const REPLY: &str = "a.txt\n<<<<<<< SEARCH\nx = 1;\n=======\nx = \"✓\";\n>>>>>>> REPLACE\n";

fn directive(chunks: usize) -> String {
    let encoded = percent_encoding::utf8_percent_encode(REPLY, percent_encoding::NON_ALPHANUMERIC);
    format!("chunks={chunks}; reply={encoded}")
}

/// The concatenated `field` of every SSE event whose JSON has it (at `pointer`).
fn streamed(body: &str, pointer: &str) -> String {
    parse_sse(body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| {
            e.json()
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn openai_chat_completions_and_responses_answer_the_reply() {
    let server = TestServer::start().await;
    let d = directive(5);
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let v = body_json(post(&server, "/v1/chat/completions", chat.clone(), Some(&d)).await).await;
    assert_eq!(v["choices"][0]["message"]["content"], REPLY);
    let mut stream = chat;
    stream["stream"] = json!(true);
    let body = post(&server, "/v1/chat/completions", stream, Some(&d)).await;
    let text = body.text().await.unwrap();
    assert_eq!(streamed(&text, "/choices/0/delta/content"), REPLY);

    let legacy = json!({"model": "m", "prompt": "hi"});
    let v = body_json(post(&server, "/v1/completions", legacy, Some(&d)).await).await;
    assert_eq!(v["choices"][0]["text"], REPLY);

    let resp = json!({"model": "m", "input": "hi"});
    let v = body_json(post(&server, "/v1/responses", resp.clone(), Some(&d)).await).await;
    assert_eq!(v["output"][0]["content"][0]["text"], REPLY);
    let mut stream = resp;
    stream["stream"] = json!(true);
    let text = post(&server, "/v1/responses", stream, Some(&d))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(streamed(&text, "/delta"), REPLY);
    let done = parse_sse(&text);
    let last = done.last().unwrap().json();
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], REPLY);
}

#[tokio::test]
async fn anthropic_and_gemini_answer_the_reply() {
    let server = TestServer::start().await;
    let d = directive(3);
    let msg =
        json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    let v = body_json(post(&server, "/v1/messages", msg.clone(), Some(&d)).await).await;
    assert_eq!(v["content"][0]["text"], REPLY);
    let mut stream = msg;
    stream["stream"] = json!(true);
    let text = post(&server, "/v1/messages", stream, Some(&d))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(streamed(&text, "/delta/text"), REPLY);

    let generate = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let path = "/v1beta/models/g:generateContent";
    let v = body_json(post(&server, path, generate.clone(), Some(&d)).await).await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], REPLY);
    let path = "/v1beta/models/g:streamGenerateContent?alt=sse";
    let text = post(&server, path, generate, Some(&d))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(streamed(&text, "/candidates/0/content/parts/0/text"), REPLY);
}

#[tokio::test]
async fn gemini_json_mode_answers_an_instance_of_the_schema() {
    let server = TestServer::start().await;
    let schema = json!({
        "type": "object",
        "properties": {
            "complexity_reasoning": {"type": "string"},
            "complexity_score": {"type": "number", "minimum": 1, "maximum": 100},
        },
    });
    let body = json!({
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
    });
    let text_of = |v: &Value| {
        let text = v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        serde_json::from_str::<Value>(text).unwrap()
    };
    let path = "/v1beta/models/flash-lite:generateContent";
    let v = body_json(post(&server, path, body.clone(), None).await).await;
    let expected = json!({"complexity_reasoning": "mock", "complexity_score": 1.0});
    assert_eq!(text_of(&v), expected);

    // Gemini's own `responseSchema` form, streamed: the pieces join into the same JSON.
    let mut gemini_form = body.clone();
    gemini_form["generationConfig"] = json!({
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"ok": {"type": "BOOLEAN"}}},
    });
    let path = "/v1beta/models/flash-lite:streamGenerateContent?alt=sse";
    let text = post(&server, path, gemini_form, None)
        .await
        .text()
        .await
        .unwrap();
    let joined = streamed(&text, "/candidates/0/content/parts/0/text");
    assert_eq!(
        serde_json::from_str::<Value>(&joined).unwrap(),
        json!({"ok": false})
    );

    // A scripted reply wins; a text request keeps the mock's text.
    let path = "/v1beta/models/flash-lite:generateContent";
    let v = body_json(post(&server, path, body, Some("reply=%7B%7D")).await).await;
    assert_eq!(text_of(&v), json!({}));
    let plain = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let v = body_json(post(&server, path, plain, None).await).await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], MOCK_TEXT);
}
