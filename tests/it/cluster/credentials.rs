//! The credential pool is one pool across instances: a credential added through A's management
//! API is listed by B and carries B's requests, a change made through A moves B's choice, and a
//! credential deleted through A leaves B (B reloads the store's credentials every second).

use reqwest::Method as M;
use serde_json::json;

use super::*;

/// Sends chats with the static key to `gw` until one goes upstream with `secret`.
async fn served_with(c: &Cluster, gw: &Instance, secret: &'static str, what: &str) -> Duration {
    let start = Instant::now();
    eventually(Duration::from_secs(5), what, || async {
        let before = c.mock.stats.requests_with(secret);
        let ok = gw.chat(STATIC_KEY).await == 200;
        (ok && c.mock.stats.requests_with(secret) > before).then_some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_added_through_a_serves_on_b() {
    let Some((c, a, b)) = pair().await else {
        return;
    };
    served_with(&c, &b, OPENAI_KEY, "B serving with the configured key").await;
    // Priority 1: before the configured key (100).
    let added = "sk-added-through-a-0123456789";
    let body = json!({"provider": "openai", "token": added, "priority": 1, "label": "team"});
    let (status, v) = a.mgmt(M::POST, "/v0/management/auths", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let took = served_with(&c, &b, added, "B serving with the credential added on A").await;
    eprintln!("a credential added through A served on B after {took:?}");
    let (_, list) = b.mgmt(M::GET, "/v0/management/auths/openai", None).await;
    let listed = list["auths"].as_array().unwrap();
    let entry = listed.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert_eq!(entry["label"], "team");
    assert!(!list.to_string().contains(added), "listed masked: {list}");
    // Moved behind the configured key through A: B goes back to that one.
    let path = format!("/v0/management/auths/openai?id={id}");
    let (status, v) = a.mgmt(M::PUT, &path, Some(json!({"priority": 500}))).await;
    assert_eq!(status, 200, "{v}");
    served_with(&c, &b, OPENAI_KEY, "B back on the configured key").await;
    // Deleted through A: gone from B's list.
    let (status, v) = a.mgmt(M::DELETE, &path, None).await;
    assert_eq!(status, 200, "{v}");
    eventually(Duration::from_secs(5), "B forgetting it", || async {
        let (_, list) = b.mgmt(M::GET, "/v0/management/auths/openai", None).await;
        (!list.to_string().contains(&id)).then_some(())
    })
    .await;
}
