//! Two instances sharing one Redis and one store (PRODUCT §8): a budget, a request limit and a
//! token limit hold across both — the limit, not the limit times two — and each instance's
//! usage reaches the store; Redis going away gets the configured treatment (refused with a 503
//! in the caller's protocol, or admitted unmetered with the usage still recorded), and Redis
//! coming back is used again; `/internal/health` says so without the URL's password.

use portcullis::policy::FailMode;
use portcullis::secret::Secret;
use serde_json::json;

use super::concurrency::{budget_counter, two_hundred_streams_against_a_budget};
use super::*;
use crate::redis_fixture::{Throwaway, test_redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streams_over_two_instances_share_one_budget() {
    let Some(redis) = test_redis().await else {
        return;
    };
    two_hundred_streams_against_a_budget(2, |c| redis.configure(c)).await;
}

/// Sends `body` to `path` as `alice`, in turn to each gateway, `n` times, waiting after each
/// answer until its settlement reached the counters; the statuses.
async fn in_turn(
    l: &Limited,
    twin: &(AppState, Gateway),
    path: &str,
    body: &Value,
    n: usize,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let gw = if i % 2 == 0 { &l.gw } else { &twin.1 };
        let resp = l.post_to(gw, "alice", path, body, None).await;
        statuses.push(resp.status().as_u16());
        resp.bytes().await.unwrap();
        l.state.policy().settled().await;
        twin.0.policy().settled().await;
    }
    statuses
}

#[tokio::test]
async fn a_request_limit_holds_across_two_instances() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let l = limited(&[("alice", json!({"rpm": 5}))], |c| redis.configure(c)).await;
    let twin = l.twin().await;
    let body = chat_body("mock-gpt", false, None);
    let path = "/v1/chat/completions";
    // Five in the minute, whichever instance takes them — not five each.
    let statuses = in_turn(&l, &twin, path, &body, 8).await;
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    // Each instance's flush writes what it served: three, then two more.
    for (state, total) in [(&l.state, 3), (&twin.0, 5)] {
        let now = l.clock.now_millis();
        assert!(state.jobs().run_once("usage.flush", now).await);
        let (_, report) = l.mgmt("/v0/management/usage?group_by=user").await;
        assert_eq!(report["rows"][0]["requests"], total, "{report}");
    }
    let refused = l.post_to(&twin.1, "alice", path, &body, None).await;
    assert_eq!(refused.headers()["retry-after"], "50");
    let m = openai_error(&refused.json().await.unwrap());
    assert!(m.contains("may send 5 requests per minute"), "{m}");
    // The next window opens on both.
    l.clock.advance(Duration::from_secs(50));
    assert_eq!(in_turn(&l, &twin, path, &body, 2).await, [200, 200]);
}

#[tokio::test]
async fn a_token_limit_holds_across_two_instances() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let body = messages_body("mock-claude", false, 100);
    let len = serde_json::to_string(&body).unwrap().len() as u64;
    // Each request reserves its estimate + 100 and settles at what the mock reports.
    let reserved = len.div_ceil(4) + 100;
    let actual = len / 4 + 1 + 8;
    // Room for three: two settled and a third reserved.
    let tpm = 2 * actual + reserved;
    let l = limited(&[("alice", json!({"tpm": tpm}))], |c| redis.configure(c)).await;
    let twin = l.twin().await;
    let statuses = in_turn(&l, &twin, "/v1/messages", &body, 5).await;
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let key = format!("tpm|{}|u|{}", START_MS / 60_000, l.id("alice"));
    let now = l.clock.now_millis();
    let counted = twin.0.policy().counters().value(&key, now).await.unwrap();
    assert_eq!(counted, Some(3 * actual), "settled on both, in one counter");
    l.clock.advance(Duration::from_secs(50));
    let statuses = in_turn(&l, &twin, "/v1/messages", &body, 2).await;
    assert_eq!(statuses, [200, 200]);
}

/// `/internal/health`'s `redis` part, from gateway `gw`.
async fn redis_health(gw: &Gateway) -> Value {
    let v = get_json(format!("{}/internal/health", gw.url)).await;
    let text = v.to_string();
    assert!(!text.contains("thr0waway"), "no password: {text}");
    // A Redis that does not answer degrades the gateway, and says so.
    let says_redis = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains("Redis"));
    assert_eq!(says_redis, v["redis"]["reachable"] != true, "{v}");
    if says_redis {
        assert_eq!(v["status"], "degraded", "{v}");
    }
    v["redis"].clone()
}

/// A gateway pair on a Redis of the test's own (`server`), with `alice` limited to 2 requests a
/// minute and a token budget, and `bob` to an allow-list only, failing as `mode` says.
async fn pair_on(server: &Throwaway, mode: FailMode) -> (Limited, (AppState, Gateway)) {
    let users = [
        (
            "alice",
            json!({"rpm": 2, "token_budget": {"tokens": 1_000_000}}),
        ),
        ("bob", json!({"models": ["mock-*"]})),
    ];
    let l = limited(&users, |c| {
        c.storage.redis_url = Some(Secret::new(server.url()));
        c.storage.redis_prefix = "shared-test:".to_owned();
        c.limits.on_redis_error = mode;
    })
    .await;
    let twin = l.twin().await;
    (l, twin)
}

#[tokio::test]
async fn redis_going_away_refuses_metered_requests_until_it_is_back() {
    let Some(mut server) = Throwaway::start() else {
        return;
    };
    let (l, twin) = pair_on(&server, FailMode::Closed).await;
    let health = redis_health(&twin.1).await;
    assert_eq!(health["configured"], true);
    assert_eq!(health["reachable"], true, "{health}");
    assert_eq!(health["on_redis_error"], "closed");
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    assert_eq!(health["url"], url);
    let chat = chat_body("mock-gpt", false, None);
    let path = "/v1/chat/completions";
    assert_eq!(in_turn(&l, &twin, path, &chat, 2).await, [200, 200]);
    server.kill();
    // Counted requests are refused on both instances, in the caller's protocol.
    for gw in [&l.gw, &twin.1] {
        let resp = l.post_to(gw, "alice", path, &chat, None).await;
        assert_eq!(resp.status(), 503);
        let m = openai_error(&resp.json().await.unwrap());
        assert!(m.contains("limit counters are unavailable"), "{m}");
        let claude = messages_body("mock-claude", false, 10);
        let resp = l.post_to(gw, "alice", "/v1/messages", &claude, None).await;
        assert_eq!(resp.status(), 503);
        let m = anthropic_error(&resp.json().await.unwrap());
        assert!(m.contains("limit counters are unavailable"), "{m}");
        // A caller with nothing to count is not held up.
        let resp = l.post_to(gw, "bob", path, &chat, None).await;
        assert_eq!(resp.status(), 200);
        let health = redis_health(gw).await;
        assert_eq!(health["reachable"], false, "{health}");
        assert!(
            health["error"].as_str().unwrap().contains("Redis"),
            "{health}"
        );
    }
    server.restart();
    for gw in [&l.gw, &twin.1] {
        assert_eq!(redis_health(gw).await["reachable"], true);
    }
    // Its counts went with it: the minute starts again, and holds again.
    let statuses = in_turn(&l, &twin, path, &chat, 3).await;
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn with_on_redis_error_open_requests_pass_unmetered_while_redis_is_away() {
    let Some(mut server) = Throwaway::start() else {
        return;
    };
    let (l, twin) = pair_on(&server, FailMode::Open).await;
    assert_eq!(redis_health(&l.gw).await["on_redis_error"], "open");
    let chat = chat_body("mock-gpt", false, None);
    let path = "/v1/chat/completions";
    assert_eq!(
        in_turn(&l, &twin, path, &chat, 3).await,
        [200, 200, 429],
        "metered while Redis is there"
    );
    server.kill();
    // Past the limit, on both instances: admitted unmetered.
    assert_eq!(in_turn(&l, &twin, path, &chat, 4).await, [200; 4]);
    server.restart();
    for gw in [&l.gw, &twin.1] {
        assert_eq!(redis_health(gw).await["reachable"], true);
    }
    // Their usage was recorded: the budget, started again from the store, counts them.
    for state in [&l.state, &twin.0] {
        let now = l.clock.now_millis();
        assert!(state.jobs().run_once("usage.flush", now).await);
    }
    let (_, report) = l.mgmt("/v0/management/usage?group_by=user").await;
    let row = &report["rows"][0];
    assert_eq!(row["requests"], 6, "{report}");
    let stored = row["input_tokens"].as_u64().unwrap() + row["output_tokens"].as_u64().unwrap();
    let statuses = in_turn(&l, &twin, path, &chat, 3).await;
    assert_eq!(statuses, [200, 200, 429], "metered again");
    let per_request = stored / 6;
    let counted = budget_counter(&l, l.id("alice")).await;
    assert_eq!(counted, Some(stored + 2 * per_request));
}
