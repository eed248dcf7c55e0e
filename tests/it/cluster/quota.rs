//! A budget spent through one instance is spent on all (issue 19): a virtual key's token budget
//! exhausted through A is refused by B, which never served the key — the count is one, in Redis.

use serde_json::{Value, json};

use super::*;

/// A chat completion of about 1,000 input tokens and at most 10 output tokens: the mock reports
/// about as much as the gateway reserves for it.
fn long_chat() -> Value {
    json!({
        "model": "mock-gpt",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "lorem ipsum ".repeat(340)}],
    })
}

/// A `long_chat` with `key` to `gw`: the status and the answer.
async fn spend(gw: &Instance, key: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&long_chat())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_exhausted_through_a_is_exhausted_on_b() {
    let Some((_c, a, b)) = pair().await else {
        return;
    };
    // Room for two requests, whether the first has settled (~1,010 tokens each) or is still
    // reserved (~1,030), and never for a third.
    let rules = json!({"token_budget": {"tokens": 2500, "period": "never"}});
    let (_, key) = a.create_key("ci", rules).await;
    for i in 0..2 {
        let (status, v) = spend(&a, &key).await;
        assert_eq!(status, 200, "request {i}: {v}");
        let used = v["usage"]["total_tokens"].as_u64().unwrap();
        assert!((1000..1100).contains(&used), "{v}");
    }
    for (name, gw) in [("A", &a), ("B", &b)] {
        let (status, v) = spend(gw, &key).await;
        assert_eq!(status, 402, "{name}: {v}");
        let m = openai_error(&v);
        assert!(m.contains("token budget exhausted"), "{name}: {m}");
        assert!(m.contains("virtual key `ci`"), "{name}: {m}");
    }
    // What is left (~480 tokens) still admits a request that fits in it, on either instance.
    let small = json!({"model": "mock-gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    for gw in [&a, &b] {
        let r = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&key)
            .json(&small);
        assert_eq!(r.send().await.unwrap().status(), 200);
    }
}
