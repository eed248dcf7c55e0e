//! Virtual keys under the policy, end to end: a key issued through the management API carries
//! its rules into every request — an allow-list no alias, `backend:model` name or model list
//! gets around, a budget that refuses with 402 once spent (and reports its usage per key) — and
//! its owner's user rules apply on top of its own.

use serde_json::json;

use super::*;

/// Issues a key through the management API of the gateway at `url`; returns (the whole key, its
/// public id).
pub(super) async fn issue(url: &str, body: Value) -> (String, String) {
    let (status, v) = call_with_key(
        url,
        MGMT,
        reqwest::Method::POST,
        "/v0/management/keys",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// A chat completion of `model` with `key`.
async fn chat_with(l: &Limited, key: &str, model: &str, max_tokens: u64) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", l.gw.url))
        .bearer_auth(key)
        .json(&chat_body(model, false, Some(max_tokens)))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_keys_allow_list_holds_through_aliases_qualified_names_and_the_model_list() {
    let l = limited(&[], |c| {
        let aliases = &mut c.routing.aliases;
        aliases.insert("fast".into(), "openai:mock-gpt".into());
        aliases.insert("mini".into(), "openai:mock-gpt-mini".into());
    })
    .await;
    let (key, _) = issue(
        &l.gw.url,
        json!({"name": "ci", "rules": {"models": ["mock-gpt", "anthropic:mock-claude"]}}),
    )
    .await;
    for allowed in [
        "mock-gpt",
        "fast",
        "openai:mock-gpt",
        "anthropic:mock-claude",
    ] {
        let resp = chat_with(&l, &key, allowed, 16).await;
        assert_eq!(resp.status(), 200, "{allowed}");
    }
    for refused in [
        "mock-gpt-mini",
        "mini",
        "openai:mock-gpt-mini",
        "gemini:mock-gemini",
    ] {
        let resp = chat_with(&l, &key, refused, 16).await;
        assert_eq!(resp.status(), 403, "{refused}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "model_not_allowed", "{refused}: {v}");
    }
    let list: Value = client()
        .get(format!("{}/v1/models", l.gw.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("mock-gpt")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains("mini") || n.contains("gemini")),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_keys_token_budget_refuses_with_402_and_its_usage_is_reported_per_key() {
    let l = limited(&[], |_| {}).await;
    let budget = 400;
    let rules = json!({"token_budget": {"tokens": budget, "period": "daily"}});
    let (key, id) = issue(&l.gw.url, json!({"name": "ci-budget", "rules": rules})).await;
    let (mut ok, mut refusal) = (0, None);
    for _ in 0..100 {
        let resp = chat_with(&l, &key, "mock-gpt", 16).await;
        match resp.status().as_u16() {
            200 => ok += 1,
            402 => {
                refusal = Some(resp.json::<Value>().await.unwrap());
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let refusal = refusal.expect("the budget never refused");
    assert!(ok > 0, "nothing was admitted before the refusal");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains("ci-budget"), "{message}");
    assert!(message.contains("daily"), "{message}");
    assert_eq!(refusal["error"]["code"], "budget_exceeded", "{refusal}");
    // What the key spent, as the store reports it, never passes the budget.
    l.flush().await;
    let bare = id.trim_start_matches("sk-pvk-");
    let (status, report) = l.mgmt(&format!("/v0/management/usage?key={bare}")).await;
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().expect("rows");
    let requests: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    let tokens: u64 = rows
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap() + r["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, ok, "{report}");
    assert!(tokens > 0 && tokens <= budget, "{tokens} tokens: {report}");
}

#[tokio::test]
async fn an_owners_user_rules_apply_to_the_keys_it_owns() {
    let l = limited(&[("alice", json!({"rpm": 2}))], |_| {}).await;
    let (key, _) = issue(
        &l.gw.url,
        json!({"name": "alice-ci", "owner": l.id("alice"), "rules": {"rpm": 100}}),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(chat_with(&l, &key, "mock-gpt", 16).await.status(), 200);
    }
    let resp = chat_with(&l, &key, "mock-gpt", 16).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // The owner's own token shares the owner's window: it is refused too.
    let body = chat_body("mock-gpt", false, Some(16));
    let resp = l.post("alice", "/v1/chat/completions", &body, None).await;
    assert_eq!(resp.status(), 429);
}
