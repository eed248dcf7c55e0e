//! Objects a provider keeps — OpenAI stored responses, Anthropic message batches — relayed, and
//! followed up with the pool credential that created them (another credential's account would
//! not find them), refused to other callers of the gateway, and read back without spending
//! quota; a batch's `results_url` points at the gateway.

use portcullis::config::{ApiKeyConfig, Config, CredentialConfig, SelectionStrategy};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use serde_json::{Value, json};

use crate::harness::*;

const ALICE: &str = "objects-alice-key-0123456789";
const BOB: &str = "objects-bob-key-0123456789";

fn cred(id: &str, key: String) -> CredentialConfig {
    CredentialConfig {
        id: Some(id.to_owned()),
        api_key: Some(Secret::new(key)),
        api_key_env: None,
        priority: 1,
        quota: None,
    }
}

/// Backend `name` paid by three credentials taken in turn.
fn pooled(mut c: Config, name: &str, prefix: &str) -> Config {
    c.auth.selection_strategy = SelectionStrategy::RoundRobin;
    let b = c.backends.get_mut(name).unwrap();
    b.api_key = None;
    b.credentials = (1..=3)
        .map(|i| cred(&format!("{name}-{i}"), format!("{prefix}-{i}-0123456789")))
        .collect();
    c
}

/// Two callers, each with its own key.
fn two_callers(mut c: Config) -> Config {
    c.auth.disable_auth = false;
    c.auth.api_keys = [("alice", ALICE), ("bob", BOB)]
        .into_iter()
        .map(|(name, key)| ApiKeyConfig::Named {
            name: Some(name.into()),
            key: Some(Secret::new(key)),
            key_env: None,
        })
        .collect();
    c
}

/// The upstream credential of the mock's latest request.
fn upstream_key(mock: &Mock) -> String {
    let seen = mock.stats.last_request().unwrap();
    seen.header("authorization")
        .or(seen.header("x-api-key"))
        .unwrap()
        .to_owned()
}

async fn call(
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Tokens the pool of backend `name` has counted as spent.
pub fn spent(state: &AppState, name: &str) -> u64 {
    let pool = state.pool().provider(name).unwrap().clone();
    let period = pool.period(state.pool().now());
    pool.credentials()
        .iter()
        .map(|c| c.health.used(period))
        .sum()
}

#[tokio::test]
async fn stored_responses_are_followed_up_with_the_credential_that_created_them() {
    use reqwest::Method;
    let mock = start_mock().await;
    let state = AppState::new(two_callers(pooled(config_for(&mock), "openai", "sk-pool"))).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    let url = |path: &str| format!("{}{path}", gw.url);

    let (s, created) = call(
        Method::POST,
        url("/v1/responses"),
        ALICE,
        Some(json!({"model": "mock-gpt", "input": "hi"})),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let maker = upstream_key(&mock);
    let spent_before = spent(&state, "openai");
    // Round robin would take the next credential each time: every follow-up takes the maker.
    for _ in 0..4 {
        let (s, v) = call(
            Method::GET,
            url(&format!("/v1/responses/{id}")),
            ALICE,
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(upstream_key(&mock), maker);
    }
    assert_eq!(
        spent(&state, "openai"),
        spent_before,
        "reading back spends nothing"
    );
    let (s, v) = call(
        Method::GET,
        url(&format!(
            "/responses/{id}/input_items?limit=1&order=asc&key={ALICE}&project=x"
        )),
        ALICE,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.path, format!("/v1/responses/{id}/input_items"));
    assert_eq!(
        seen.query.as_deref(),
        Some("limit=1&order=asc"),
        "paging only"
    );
    assert_eq!(upstream_key(&mock), maker);
    let (s, v) = call(
        Method::POST,
        url(&format!("/v1/responses/{id}/cancel")),
        ALICE,
        None,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("cancelled")), "{v}");
    assert_eq!(upstream_key(&mock), maker);
    let (s, v) = call(
        Method::DELETE,
        url(&format!("/v1/responses/{id}")),
        ALICE,
        None,
    )
    .await;
    assert_eq!((s, &v["deleted"]), (200, &json!(true)), "{v}");
    assert_eq!(mock.stats.last_request().unwrap().method, "DELETE");
    assert_eq!(upstream_key(&mock), maker);

    // Another caller of the gateway does not see it (as another account would not).
    let before = mock.stats.requests();
    let (s, v) = call(Method::GET, url(&format!("/v1/responses/{id}")), BOB, None).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "object_not_found", "{v}");
    assert_eq!(mock.stats.requests(), before, "refused at the gateway");

    // A streamed creation is remembered from its `response.created` event, and a
    // continuation (`previous_response_id`) goes to the same credential.
    let r = client()
        .post(url("/v1/responses"))
        .bearer_auth(ALICE)
        .json(&json!({"model": "mock-gpt", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    let events = sse_events(r).await;
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    let streamed = first["response"]["id"].as_str().unwrap().to_owned();
    let maker = upstream_key(&mock);
    for _ in 0..3 {
        let (s, _) = call(
            Method::POST,
            url("/v1/responses"),
            ALICE,
            Some(json!({"model": "mock-gpt", "input": "more", "previous_response_id": streamed})),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(upstream_key(&mock), maker);
    }
    let (s, v) = call(
        Method::POST,
        url("/v1/responses"),
        BOB,
        Some(json!({"model": "mock-gpt", "input": "x", "previous_response_id": streamed})),
    )
    .await;
    assert_eq!(s, 404, "{v}");

    // An id the gateway never saw goes to the default backend, any credential.
    let (s, _) = call(Method::GET, url("/v1/responses/resp_elsewhere"), BOB, None).await;
    assert_eq!(s, 200);
    let (s, v) = call(Method::GET, url("/v1/responses/a%2Fb"), BOB, None).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "invalid_object_id", "{v}");
}

#[tokio::test]
async fn message_batches_are_relayed_and_stay_with_their_credential() {
    use reqwest::Method;
    let mock = start_mock().await;
    let gw = start_gateway(pooled(config_for(&mock), "anthropic", "sk-ant-pool")).await;
    let http = client();
    // An Anthropic client's call: status, content type, body.
    let send = |method: Method, path: String, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{}{path}", gw.url))
            .header("anthropic-version", "2023-06-01");
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let ct = r.headers().get("content-type").cloned();
            (r.status().as_u16(), ct, r.text().await.unwrap())
        }
    };
    let json_of = |t: &str| serde_json::from_str::<Value>(t).unwrap();
    let request = |id: &str| {
        json!({"custom_id": id, "params": {"model": "claude-x", "max_tokens": 10,
               "messages": [{"role": "user", "content": "hi"}]}})
    };
    let batches = "/v1/messages/batches".to_owned();
    let body = json!({"requests": [request("one"), request("two")]});
    let (s, _, t) = send(Method::POST, batches.clone(), Some(body)).await;
    assert_eq!(s, 200, "{t}");
    let batch = json_of(&t);
    let id = batch["id"].as_str().unwrap().to_owned();
    let one = format!("{batches}/{id}");
    let results = format!("{one}/results");
    assert_eq!(batch["results_url"], results.as_str(), "the gateway's path");
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.path, batches);
    assert!(
        seen.header("x-api-key")
            .unwrap()
            .starts_with("sk-ant-pool-")
    );

    // The mock answers 404 to any other credential than the maker: three in a row find it.
    for _ in 0..3 {
        let (s, _, t) = send(Method::GET, one.clone(), None).await;
        assert_eq!(s, 200, "{t}");
        assert_eq!(json_of(&t)["results_url"], results.as_str());
    }
    let (s, ct, t) = send(Method::GET, results.clone(), None).await;
    assert_eq!(
        (s, ct.unwrap().to_str().unwrap()),
        (200, "application/binary"),
        "{t}"
    );
    let ids: Vec<Value> = t.lines().map(|l| json_of(l)["custom_id"].clone()).collect();
    assert_eq!(ids, [json!("one"), json!("two")]);
    let (s, _, t) = send(Method::POST, format!("{one}/cancel"), None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(json_of(&t)["processing_status"], "canceling");

    let list = format!("{batches}?limit=5&key=x&after_id={id}");
    let (s, _, t) = send(Method::GET, list, None).await;
    assert_eq!(s, 200, "{t}");
    let forwarded = mock.stats.last_request().unwrap().query.unwrap();
    assert_eq!(forwarded, format!("limit=5&after_id={id}"), "paging only");
    for b in json_of(&t)["data"].as_array().unwrap() {
        let url = b["results_url"].as_str().unwrap();
        assert!(url.starts_with("/v1/messages/batches/"), "{url}");
    }

    let (s, _, t) = send(Method::DELETE, one.clone(), None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(json_of(&t)["type"], "message_batch_deleted");
    let (s, _, t) = send(Method::GET, one, None).await;
    assert_eq!(s, 404);
    anthropic_error(&json_of(&t));
}
