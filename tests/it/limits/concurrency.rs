//! Reservations under load and settlement in every ending: 200 concurrent streams against a
//! budget that allows about 50 never spend more than the budget plus what reservations
//! underestimated; a concurrency slot is held for a whole stream and freed when the client goes
//! away; an upstream error costs nothing and a broken stream costs what it reported.

use futures_util::StreamExt;
use serde_json::json;

use super::*;

/// The budget counter of user `id` this month.
pub(super) async fn budget_counter(l: &Limited, id: &str) -> Option<u64> {
    let key = format!("tok|month:2026-12|u|{id}");
    let now = l.clock.now_millis();
    l.state.policy().counters().value(&key, now).await.unwrap()
}

/// Input + output tokens an Anthropic stream reported (`message_start`, `message_delta`).
fn streamed_tokens(events: &[(Option<String>, String)]) -> u64 {
    let mut input = 0;
    let mut output = 0;
    for (_, data) in events {
        let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        if let Some(i) = v["message"]["usage"]["input_tokens"].as_u64() {
            input = i;
        }
        if v["type"] == "message_delta" {
            output = v["usage"]["output_tokens"].as_u64().unwrap();
        }
    }
    input + output
}

/// 200 concurrent streams, spread in turn over `instances` gateways configured by `tweak` (on
/// one store), against a budget that allows about 50: the spend stays within the stated bound,
/// the budget's counter ends at what was spent, and each instance's usage reaches the store.
pub(super) async fn two_hundred_streams_against_a_budget(
    instances: usize,
    tweak: impl FnOnce(&mut Config),
) {
    let body = messages_body("mock-claude", true, 10);
    let len = serde_json::to_string(&body).unwrap().len() as u64;
    // What each request reserves (estimate + max_tokens) and spends (the mock reports
    // len / 4 + 1 input tokens and 8 output tokens).
    let reserved = len.div_ceil(4) + 10;
    let actual = len / 4 + 1 + 8;
    let budget = 50 * actual;
    let l = limited(
        &[("alice", json!({"token_budget": {"tokens": budget}}))],
        tweak,
    )
    .await;
    let mut twins = Vec::new();
    for _ in 1..instances {
        twins.push(l.twin().await);
    }
    let all: Vec<(&AppState, &Gateway)> = std::iter::once((&l.state, &l.gw))
        .chain(twins.iter().map(|(s, g)| (s, g)))
        .collect();
    // The token is verified (and cached) by every instance before the rush, and its Redis
    // connection (if any) opened by a health check.
    for (_, gw) in &all {
        let models = l.http.get(format!("{}/v1/models", gw.url));
        let models = models.bearer_auth(l.token("alice")).send();
        assert_eq!(models.await.unwrap().status(), 200);
        get_json(format!("{}/internal/health", gw.url)).await;
    }
    let all = &all;
    let calls = (0..200).map(|i| {
        let (l, body, at) = (&l, &body, i % all.len());
        async move {
            let resp = l.post_to(all[at].1, "alice", "/v1/messages", body, None);
            let resp = resp.await;
            let status = resp.status().as_u16();
            (at, status, sse_events(resp).await)
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let admitted: Vec<_> = results.iter().filter(|(_, s, _)| *s == 200).collect();
    let refused = results.iter().filter(|(_, s, _)| *s == 402).count();
    assert_eq!(admitted.len() + refused, 200, "only 200s and 402s");
    let spent: u64 = admitted.iter().map(|(_, _, ev)| streamed_tokens(ev)).sum();
    // The bound: every admission found budget − (settled + reserved in flight) ≥ its
    // reservation, and a settlement adds (actual − reserved); so what is spent stays within
    // budget + Σ max(0, actual − reserved) over admitted requests — here each reservation
    // covers its usage, so the budget itself. With several instances the counter is one.
    let overshoot = admitted.len() as u64 * actual.saturating_sub(reserved);
    assert!(actual <= reserved, "the estimate covers the mock's count");
    assert!(
        spent <= budget + overshoot,
        "spent {spent} > budget {budget}"
    );
    assert!(
        admitted.len() as u64 >= budget / reserved,
        "{} admitted",
        admitted.len()
    );
    assert!(admitted.len() <= 50, "{} admitted", admitted.len());
    assert_eq!(spent, admitted.len() as u64 * actual);
    // Every reservation was replaced by what was spent, once.
    for (state, _) in all {
        state.policy().settled().await;
    }
    assert_eq!(budget_counter(&l, l.id("alice")).await, Some(spent));
    // Each instance's usage reaches the store with its own flush (whichever instance the race
    // let in): per day, user, backend, model.
    let mut requests = 0;
    for (at, (state, _)) in all.iter().enumerate() {
        requests += admitted.iter().filter(|(i, _, _)| *i == at).count();
        let now = l.clock.now_millis();
        assert!(state.jobs().run_once("usage.flush", now).await);
        let (status, report) = l
            .mgmt("/v0/management/usage?group_by=day,user,backend,model")
            .await;
        assert_eq!(status, 200, "{report}");
        let rows = report["rows"].as_array().unwrap();
        if requests == 0 {
            assert!(rows.is_empty(), "{report}");
            continue;
        }
        let row = &rows[0];
        assert_eq!(rows.len(), 1, "{report}");
        assert_eq!(
            (&row["day"], &row["user"], &row["backend"], &row["model"]),
            (
                &json!("2026-12-04"),
                &json!(l.id("alice")),
                &json!("anthropic"),
                &json!("mock-claude")
            )
        );
        assert_eq!(row["requests"], requests as u64);
    }
    let (_, report) = l.mgmt("/v0/management/usage?group_by=").await;
    let t = &report["total"];
    let tokens = t["input_tokens"].as_u64().unwrap() + t["output_tokens"].as_u64().unwrap();
    assert_eq!(tokens, spent);
}

#[tokio::test]
async fn two_hundred_concurrent_streams_never_spend_past_the_budget() {
    two_hundred_streams_against_a_budget(1, |_| {}).await;
}

#[tokio::test]
async fn a_stream_holds_its_concurrency_slot_until_the_client_goes_away() {
    let l = limited(&[("alice", json!({"max_concurrent": 1}))], |_| {}).await;
    let stream_body = messages_body("mock-claude", true, 10);
    let slow = Some("chunks=200; chunk_delay_ms=50");
    let resp = l.post("alice", "/v1/messages", &stream_body, slow).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    assert!(!stream.next().await.unwrap().unwrap().is_empty());
    // While it streams, a second request is refused.
    let quick = chat_body("mock-gpt", false, None);
    let second = l.post("alice", "/v1/chat/completions", &quick, None).await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    let m = openai_error(&second.json().await.unwrap());
    assert!(m.contains("may have 1 requests in flight"), "{m}");
    // The client goes away: the upstream is cancelled after the slot is freed.
    let before = l.mock.stats.streams_cancelled();
    drop(stream);
    tokio::time::timeout(
        Duration::from_secs(10),
        l.mock.stats.wait_cancelled(before + 1),
    )
    .await
    .expect("the upstream stream was cancelled");
    let third = l.post("alice", "/v1/chat/completions", &quick, None).await;
    assert_eq!(third.status(), 200);
    // A stream that ends frees it too.
    let whole = l.post("alice", "/v1/messages", &stream_body, None).await;
    assert_eq!(whole.status(), 200);
    whole.text().await.unwrap();
    assert_eq!(
        l.post("alice", "/v1/chat/completions", &quick, None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_upstream_error_costs_nothing_and_a_broken_stream_what_it_reported() {
    let l = limited(
        &[(
            "alice",
            json!({"token_budget": {"tokens": 100000}, "max_concurrent": 1}),
        )],
        |_| {},
    )
    .await;
    let id = l.id("alice").to_owned();
    let body = messages_body("mock-claude", true, 500);
    let input = serde_json::to_string(&body).unwrap().len() as u64 / 4 + 1;
    // The upstream fails before answering: the reservation is returned whole.
    let failed = l
        .post("alice", "/v1/messages", &body, Some("status=500"))
        .await;
    assert_eq!(failed.status(), 502);
    assert_eq!(budget_counter(&l, &id).await, Some(0));
    // A non-streaming 4xx from the upstream: nothing either.
    let refused = l
        .post("alice", "/v1/messages", &body, Some("status=400"))
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(budget_counter(&l, &id).await, Some(0));
    // The stream breaks after two pieces: its `message_start` reported the input and one
    // output token, which is what is charged — not the 500 reserved.
    let broken = l
        .post("alice", "/v1/messages", &body, Some("drop_after=2"))
        .await;
    assert_eq!(broken.status(), 200);
    let events = sse_events(broken).await;
    assert!(
        events.iter().any(|(e, _)| e.as_deref() == Some("error")),
        "ends with an error event"
    );
    assert_eq!(budget_counter(&l, &id).await, Some(input + 1));
    // The concurrency slot was freed each time.
    let ok = l
        .post(
            "alice",
            "/v1/messages",
            &messages_body("mock-claude", false, 5),
            None,
        )
        .await;
    assert_eq!(ok.status(), 200);
    // What was recorded: four requests, the tokens charged.
    l.flush().await;
    let (_, report) = l.mgmt("/v0/management/usage?group_by=").await;
    assert_eq!(report["total"]["requests"], 4, "{report}");
}
