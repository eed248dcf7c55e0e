//! Allow-lists: a user limited to models A (`mock-gpt`) and B (`anthropic:mock-claude`) reaches
//! them by name, alias and `backend:model`, and cannot reach C (`mock-gpt-mini`) through any
//! spelling — a plain name, an alias, `backend:model` — nor see it in the model lists.

use serde_json::json;

use super::*;

/// Alice may use `mock-gpt` (on any backend) and `anthropic:mock-claude`; alias `fast` names
/// `openai:mock-gpt`, alias `mini` names `openai:mock-gpt-mini`.
async fn alice_with_two_models() -> Limited {
    let models = json!({"models": ["mock-gpt", "anthropic:mock-claude"]});
    limited(&[("alice", models)], |c| {
        let aliases = &mut c.routing.aliases;
        aliases.insert("fast".into(), "openai:mock-gpt".into());
        aliases.insert("mini".into(), "openai:mock-gpt-mini".into());
    })
    .await
}

/// A chat completion of `model` as alice.
async fn chat_as_alice(l: &Limited, model: &str) -> reqwest::Response {
    let body = chat_body(model, false, None);
    l.post("alice", "/v1/chat/completions", &body, None).await
}

#[tokio::test]
async fn a_user_limited_to_two_models_cannot_reach_a_third_by_any_name() {
    let l = alice_with_two_models().await;
    for allowed in [
        "mock-gpt",
        "fast",
        "openai:mock-gpt",
        "anthropic:mock-claude",
    ] {
        assert_eq!(chat_as_alice(&l, allowed).await.status(), 200, "{allowed}");
    }
    for refused in [
        "mock-gpt-mini",
        "mini",
        "openai:mock-gpt-mini",
        "anthropic:mock-claude-haiku",
        "gemini:mock-gemini",
    ] {
        let resp = chat_as_alice(&l, refused).await;
        assert_eq!(resp.status(), 403, "{refused}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "model_not_allowed", "{refused}: {v}");
    }
    // The same through the Anthropic route.
    let resp = l
        .post(
            "alice",
            "/v1/messages",
            &messages_body("mini", false, 10),
            None,
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        l.mock.stats.requests_with(OPENAI_KEY),
        3,
        "no refused request went upstream"
    );
}

#[tokio::test]
async fn the_model_lists_show_only_the_allowed_models() {
    let l = alice_with_two_models().await;
    let token = l.token("alice");
    let list = get_json_with(
        format!("{}/v1/models", l.gw.url),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    let mut seen = ids(&list["data"]);
    seen.sort();
    assert_eq!(
        seen,
        ["anthropic:mock-claude", "fast", "mock-gpt"],
        "{list}"
    );
    // Anthropic's list (its own backend's ids unprefixed).
    let list = get_json_with(
        format!("{}/v1/models", l.gw.url),
        &[("x-api-key", token), ("anthropic-version", "2023-06-01")],
    )
    .await;
    let seen = ids(&list["data"]);
    assert!(seen.contains(&"mock-claude".to_owned()), "{list}");
    assert!(
        !seen
            .iter()
            .any(|id| id.contains("haiku") || id.contains("mini")),
        "{list}"
    );
    // One model, looked up by id: allowed and refused.
    let one = |id: &str| {
        client()
            .get(format!("{}/v1/models/{id}", l.gw.url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(one("mock-gpt").await.unwrap().status(), 200);
    assert_eq!(one("mock-gpt-mini").await.unwrap().status(), 403);
    assert_eq!(one("mini").await.unwrap().status(), 403);
}
