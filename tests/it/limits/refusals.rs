//! Refusals in the caller's protocol: rate limits are 429s with `Retry-After` (the seconds to
//! the end of the fixed one-minute window), budgets 402s naming the budget, the user and when it
//! resets; a request that can never fit says so and is not to be retried. Windows move with the
//! gateway's clock (no sleeping).

use serde_json::json;

use super::*;

/// The same request in each protocol: path and body.
fn in_each_protocol(max_tokens: u64) -> [(&'static str, Value); 3] {
    [
        (
            "/v1/chat/completions",
            chat_body("mock-gpt", false, Some(max_tokens)),
        ),
        (
            "/v1/messages",
            messages_body("mock-claude", false, max_tokens),
        ),
        (
            "/v1beta/models/mock-gemini:generateContent",
            json!({
                "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
                "generationConfig": {"maxOutputTokens": max_tokens},
            }),
        ),
    ]
}

/// What a refusal must look like: status, `Retry-After`, and its error type in OpenAI,
/// Anthropic and Google shapes.
struct Expected {
    status: u16,
    retry_after: &'static str,
    types: [&'static str; 3],
}

/// Sends the request in each protocol (with `max_tokens`), checks each is refused as `e` says
/// in its own protocol's shape, and returns the error bodies (path, body, message).
async fn refused_in_each_protocol(
    l: &Limited,
    max_tokens: u64,
    e: &Expected,
) -> Vec<(&'static str, Value, String)> {
    let mut out = Vec::new();
    for (path, body) in in_each_protocol(max_tokens) {
        let resp = l.post("alice", path, &body, None).await;
        assert_eq!(resp.status(), e.status, "{path}");
        assert_eq!(resp.headers()["retry-after"], e.retry_after, "{path}");
        let v: Value = resp.json().await.unwrap();
        let [openai, anthropic, google] = e.types;
        let m = if path.starts_with("/v1beta") {
            assert_eq!(v["error"]["status"], google, "{v}");
            google_error(&v)
        } else if path == "/v1/messages" {
            assert_eq!(v["error"]["type"], anthropic, "{v}");
            anthropic_error(&v)
        } else {
            assert_eq!(v["error"]["type"], openai, "{v}");
            openai_error(&v)
        };
        out.push((path, v, m));
    }
    out
}

/// One chat completion of `model` as user alice, with `max_tokens` if given.
async fn chat_as_alice(l: &Limited, model: &str, max_tokens: Option<u64>) -> reqwest::Response {
    let body = chat_body(model, false, max_tokens);
    l.post("alice", "/v1/chat/completions", &body, None).await
}

/// The status of one chat completion of `mock-gpt` as user alice.
async fn chat_status(l: &Limited, max_tokens: Option<u64>) -> u16 {
    chat_as_alice(l, "mock-gpt", max_tokens)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rate_limit_is_a_429_with_retry_after_in_each_protocol_until_the_window_ends() {
    let l = limited(&[("alice", json!({"rpm": 1}))], |_| {}).await;
    assert_eq!(chat_status(&l, None).await, 200);
    // 10 s into the minute: the window ends in 50 s.
    let limited = Expected {
        status: 429,
        retry_after: "50",
        types: [
            "rate_limit_exceeded",
            "rate_limit_error",
            "RESOURCE_EXHAUSTED",
        ],
    };
    for (_, _, m) in refused_in_each_protocol(&l, 16, &limited).await {
        let who = format!("user `{}` may send 1 requests per minute", l.id("alice"));
        assert!(m.contains(&who) && m.contains("resets in 50 s"), "{m}");
    }
    l.clock.advance(Duration::from_secs(50));
    assert_eq!(chat_status(&l, None).await, 200, "a new window");
}

#[tokio::test]
async fn an_exhausted_budget_is_a_402_in_each_protocol_saying_when_it_resets() {
    let l = limited(
        &[(
            "alice",
            json!({"token_budget": {"tokens": 100, "period": "daily"}}),
        )],
        |_| {},
    )
    .await;
    // Reserves about 20 + 50, spends about 20 + 8: the next reservation no longer fits.
    assert_eq!(chat_status(&l, Some(50)).await, 200);
    // Midnight UTC is 8 h 29 min 50 s away.
    let exhausted = Expected {
        status: 402,
        retry_after: "30590",
        types: ["budget_exceeded", "billing_error", "RESOURCE_EXHAUSTED"],
    };
    for (path, v, m) in refused_in_each_protocol(&l, 50, &exhausted).await {
        if path == "/v1/chat/completions" {
            assert_eq!(v["error"]["code"], "budget_exceeded");
        }
        if path.starts_with("/v1beta") {
            assert_eq!(v["error"]["code"], 402);
        }
        let who = format!("user `{}` has a daily budget of 100 tokens", l.id("alice"));
        assert!(
            m.starts_with("token budget exhausted") && m.contains(&who),
            "{m}"
        );
        assert!(m.contains("resets at 2026-12-05T00:00:00.000Z"), "{m}");
    }
    // More than the whole budget: never, and the client is told not to retry.
    let resp = chat_as_alice(&l, "mock-gpt", Some(500)).await;
    assert_eq!(resp.status(), 402);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let m = openai_error(&resp.json().await.unwrap());
    assert!(
        m.contains("can never be admitted") && m.contains("whole daily token budget of 100 tokens"),
        "{m}"
    );
    // The next day the budget starts again.
    l.clock.advance(Duration::from_secs(30_590));
    let (path, body) = &in_each_protocol(50)[1];
    assert_eq!(l.post("alice", path, body, None).await.status(), 200);
}

#[tokio::test]
async fn tokens_per_minute_count_real_usage_and_the_window_starts_again() {
    let l = limited(&[("alice", json!({"tpm": 200}))], |_| {}).await;
    let mut admitted = 0;
    let refusal = loop {
        let resp = chat_as_alice(&l, "mock-gpt", Some(50)).await;
        if resp.status() != 200 {
            break resp;
        }
        admitted += 1;
        assert!(admitted < 10, "the limit never refused");
    };
    // Each reserves about 70 and spends about 28 once settled: more than 200 / 70 fit.
    assert!(admitted >= 4, "{admitted}");
    assert_eq!(refusal.status(), 429);
    assert_eq!(refusal.headers()["retry-after"], "50");
    let m = openai_error(&refusal.json().await.unwrap());
    assert!(m.contains("may use 200 tokens per minute"), "{m}");
    l.clock.advance(Duration::from_secs(50));
    assert_eq!(chat_status(&l, Some(50)).await, 200);
    // A request bigger than the whole limit is not to be retried.
    let resp = chat_as_alice(&l, "mock-gpt", Some(1000)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "request_exceeds_limit");
}

#[tokio::test]
async fn a_cost_budget_refuses_a_model_without_a_price() {
    let l = limited(&[("alice", json!({"cost_budget": {"usd": 1}}))], |c| {
        c.prices.insert(
            "mock-gpt".into(),
            serde_json::from_value(json!({"input": 1, "output": 2})).unwrap(),
        );
    })
    .await;
    assert_eq!(chat_status(&l, None).await, 200);
    let resp = chat_as_alice(&l, "mock-gpt-mini", None).await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_priced");
    assert!(openai_error(&v).contains("model `mock-gpt-mini` of backend `openai` has no price"));
}
