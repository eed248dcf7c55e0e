//! Selection, failover per fault class, the all-cooling 429, quotas, and the credential header
//! per backend type.

use super::*;

#[tokio::test]
async fn each_strategy_distributes_as_it_says() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::RoundRobin,
            vec![
                cred("a", "sk-pool-a-0123456789", 1, None),
                cred("b", "sk-pool-b-0123456789", 2, None),
                cred("c", "sk-pool-c-0123456789", 3, None),
            ],
        )
    })
    .await;
    let asks = (0..30).map(|_| ask(&e.gw, false));
    for r in futures_util::future::join_all(asks).await {
        assert_eq!(r.status(), 200);
    }
    for k in ["a", "b", "c"] {
        assert_eq!(
            e.mock
                .stats
                .requests_with(&format!("sk-pool-{k}-0123456789")),
            10,
            "{k}"
        );
    }

    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("backup", "sk-pool-backup-0123456789", 5, None),
                cred("main", "sk-pool-main-0123456789", 1, None),
            ],
        )
    })
    .await;
    for _ in 0..5 {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
    }
    assert_eq!(e.mock.stats.requests_with("sk-pool-main-0123456789"), 5);
    assert_eq!(e.mock.stats.requests_with("sk-pool-backup-0123456789"), 0);

    // quota_aware: the one with the most remaining first; usage evens them out.
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::QuotaAware,
            vec![
                cred("small", "sk-pool-small-0123456789", 1, Some(1_000)),
                cred("big", "sk-pool-big-0123456789", 1, Some(1_500)),
            ],
        )
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-pool-big-0123456789"), 1);
    let per_request = auth_of(&e.gw, "big").await["quota"]["used"]
        .as_u64()
        .unwrap();
    assert!(
        per_request > 0,
        "usage is deducted from the upstream's report"
    );
    for _ in 0..(600 / per_request + 4) {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
    }
    let small = auth_of(&e.gw, "small").await["quota"]["remaining"]
        .as_u64()
        .unwrap();
    let big = auth_of(&e.gw, "big").await["quota"]["remaining"]
        .as_u64()
        .unwrap();
    assert!(
        small.abs_diff(big) <= per_request,
        "small {small} big {big}"
    );
    assert!(e.mock.stats.requests_with("sk-pool-small-0123456789") > 0);
}

#[tokio::test]
async fn every_fault_class_fails_over_before_the_first_byte_and_cools_the_credential() {
    for (fault, status) in [
        ("status=429;retry_after=30", "rate_limited"),
        ("status=401", "rejected"),
        ("status=403", "rejected"),
        ("status=500", "cooling_down"),
        ("status=503", "cooling_down"),
        ("header_delay_ms=3000", "cooling_down"),
    ] {
        let bad = format!("sk-pool-bad-0123456789~{fault}");
        let e = env(|m, _| {
            let mut c = pool_config(
                m,
                SelectionStrategy::Priority,
                vec![
                    cred("bad", &bad, 1, None),
                    cred("good", "sk-pool-good-0123456789", 2, None),
                ],
            );
            set_read_idle(&mut c, "openai", 300);
            c
        })
        .await;
        for stream in [false, true] {
            let r = ask(&e.gw, stream).await;
            assert_eq!(r.status(), 200, "{fault}: the next credential answers");
            if stream {
                assert_eq!(
                    openai_text(&sse_events(r).await),
                    portcullis::mock::MOCK_TEXT
                );
            }
        }
        assert_eq!(
            e.mock.stats.requests_with(&bad),
            1,
            "{fault}: tried once, then cooling"
        );
        assert_eq!(e.mock.stats.requests_with("sk-pool-good-0123456789"), 2);
        let a = auth_of(&e.gw, "bad").await;
        assert_eq!(a["status"], status, "{fault}: {a}");
        assert!(a["cooldown_until"].is_string());
        assert_eq!(a["failures"], 1);
        if fault.starts_with("status=429") {
            let until = e.state.pool().status(Some("openai")).unwrap()[0]
                .cooldown_until
                .unwrap();
            assert_eq!(until, START_MS + 30_000, "Retry-After honoured");
        }
    }
}

#[tokio::test]
async fn a_connection_failure_tries_each_credential_once_and_never_cools_the_last_one() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("a", "sk-pool-a-0123456789", 1, None),
                cred("b", "sk-pool-b-0123456789", 2, None),
            ],
        );
        // Nothing listens there.
        c.backends.get_mut("openai").unwrap().base_url = Some("http://127.0.0.1:9/v1".to_owned());
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 502);
    openai_error(&r.json().await.unwrap());
    for id in ["a", "b"] {
        assert_eq!(auth_of(&e.gw, id).await["last_status"], "transport_error");
    }
    // `a` failed while `b` was there to take over: cooling. `b` was the last available one, and
    // a refused connection says nothing about a credential: it stays in service.
    assert_eq!(auth_of(&e.gw, "a").await["status"], "cooling_down");
    assert_eq!(auth_of(&e.gw, "b").await["status"], "active");
    let r = ask(&e.gw, false).await;
    assert_eq!(
        r.status(),
        502,
        "the backend's failure, not a 429 of the gateway's making"
    );
}

/// Client review (issue 16): one broken stream cooled the only credential of a backend for 2 s,
/// so every other client got `429 all_credentials_unavailable`. A failure that says nothing
/// about the credential (a stream broken midway, a 5xx, a timeout) keeps a lone credential in
/// service; its own failures (a rate limit) still cool it.
#[tokio::test]
async fn a_lone_credential_is_not_cooled_by_a_failure_that_says_nothing_about_it() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![cred("only", "sk-pool-only-0123456789", 1, None)],
        );
        set_read_idle(&mut c, "openai", 300);
        c
    })
    .await;
    let url = format!("{}/v1/chat/completions", e.gw.url);
    let faulty = |directive: &'static str, stream: bool| {
        client()
            .post(&url)
            .header("x-mock", directive)
            .json(&chat("openai:mock-gpt", stream))
            .send()
    };
    let r = faulty("chunks=6; drop_after=2", true).await.unwrap();
    assert_eq!(r.status(), 200);
    let last: Value = serde_json::from_str(&sse_events(r).await.last().unwrap().1).unwrap();
    assert!(openai_error(&last).contains("broke off"), "{last}");
    assert_eq!(
        ask(&e.gw, false).await.status(),
        200,
        "the next client is served"
    );
    assert_eq!(faulty("status=500", false).await.unwrap().status(), 502);
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        faulty("header_delay_ms=3000", false)
            .await
            .unwrap()
            .status(),
        504
    );
    assert_eq!(ask(&e.gw, true).await.status(), 200);
    let a = auth_of(&e.gw, "only").await;
    assert_eq!(a["status"], "active", "{a}");
    assert_eq!(a["failures"], 3, "counted, not cooled");
    // A rate limit is the credential's own: it cools even the last one.
    assert_eq!(
        faulty("status=429; retry_after=9", false)
            .await
            .unwrap()
            .status(),
        429
    );
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "9");
    assert_eq!(auth_of(&e.gw, "only").await["status"], "rate_limited");
}

#[tokio::test]
async fn a_server_error_is_retried_on_one_more_credential_not_on_all() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::RoundRobin,
            (0..4)
                .map(|i| {
                    cred(
                        &format!("k{i}"),
                        &format!("sk-pool-k{i}-0123456789~status=500"),
                        1,
                        None,
                    )
                })
                .collect(),
        )
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 502);
    assert_eq!(
        e.mock.stats.requests(),
        2,
        "a poisoned request cannot cool the whole pool"
    );
    let v = listing(&e.gw, Some("openai")).await;
    let cooling = v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "cooling_down")
        .count();
    assert_eq!(cooling, 2);
}

#[tokio::test]
async fn a_mid_stream_failure_is_reported_not_retried() {
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred(
                    "drops",
                    "sk-pool-drops-0123456789~chunks=6;drop_after=2",
                    1,
                    None,
                ),
                cred("good", "sk-pool-good-0123456789", 2, None),
            ],
        )
    })
    .await;
    let r = ask(&e.gw, true).await;
    assert_eq!(r.status(), 200);
    let events = sse_events(r).await;
    let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert!(openai_error(&last).contains("broke off"), "{last}");
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-good-0123456789"),
        0,
        "no retry after bytes"
    );
    assert_eq!(auth_of(&e.gw, "drops").await["status"], "cooling_down");
    assert_eq!(
        ask(&e.gw, false).await.status(),
        200,
        "the next request fails over"
    );
}

#[tokio::test]
async fn every_credential_cooling_down_is_a_429_in_the_callers_protocol_with_the_soonest_retry() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::RoundRobin,
            vec![
                cred(
                    "slow",
                    "sk-pool-slow-0123456789~status=429;retry_after=40",
                    1,
                    None,
                ),
                cred(
                    "soon",
                    "sk-pool-soon-0123456789~status=429;retry_after=10",
                    1,
                    None,
                ),
            ],
        );
        let a = c.backends.get_mut("anthropic").unwrap();
        a.api_key = Some(Secret::new(
            "sk-ant-pool-0123456789~status=429;retry_after=25",
        ));
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(
        r.status(),
        429,
        "both tried; the last upstream 429 is passed on"
    );
    assert_eq!(e.mock.stats.requests(), 2);
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "10", "the soonest recovery");
    let v: Value = r.json().await.unwrap();
    assert!(
        openai_error(&v).contains("every upstream credential of backend `openai`"),
        "{v}"
    );
    assert_eq!(v["error"]["code"], "all_credentials_unavailable");
    assert_eq!(e.mock.stats.requests(), 2, "nothing sent upstream");

    let messages = format!("{}/v1/messages", e.gw.url);
    let anth = || {
        post_json(
            &messages,
            json!({"model": "anthropic:m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
    };
    assert_eq!(anth().await.status(), 429);
    let r = anth().await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "25");
    anthropic_error(&r.json().await.unwrap());

    e.clock.advance(Duration::from_secs(10));
    ask(&e.gw, false).await;
    assert_eq!(
        e.mock
            .stats
            .requests_with("sk-pool-soon-0123456789~status=429;retry_after=10"),
        2,
        "back after its Retry-After"
    );
}

#[tokio::test]
async fn quotas_are_deducted_from_reported_usage_streams_included_and_reset_daily() {
    let e = env(|m, _| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("capped", "sk-pool-capped-0123456789", 1, Some(60)),
                cred("spare", "sk-pool-spare-0123456789", 2, None),
            ],
        );
        c.auth
            .quota
            .reset_schedule
            .insert("openai".to_owned(), ResetSchedule::Daily);
        c
    })
    .await;
    // A stream with usage (OpenAI reports it when asked).
    let r = post_json(
        &format!("{}/v1/chat/completions", e.gw.url),
        json!({"model": "openai:mock-gpt", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let _ = sse_events(r).await;
    let used = auth_of(&e.gw, "capped").await["quota"]["used"]
        .as_u64()
        .unwrap();
    assert!(used > 0, "the stream's usage was deducted");
    let mut n = 0;
    while auth_of(&e.gw, "capped").await["status"] != "exhausted" {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
        n += 1;
        assert!(n < 60, "the quota runs out");
    }
    let before = e.mock.stats.requests_with("sk-pool-spare-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-spare-0123456789"),
        before + 1,
        "exhausted is skipped"
    );
    let (s, q) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        "/v0/management/auths/openai/quota?id=capped",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(q["credentials"][0]["remaining"], 0);
    assert_eq!(q["credentials"][0]["period"], "day:2026-11-23");
    assert_eq!(q["credentials"][0]["resets_at"], "2026-11-24T00:00:00.000Z");

    // Written to the store, where every instance reads it; the operator is told once.
    e.state.pool().flush_usage(true).await;
    e.state.pool().flush_usage(true).await;
    let told: Vec<_> = e
        .notes
        .events()
        .into_iter()
        .filter(|ev| {
            matches!(ev, OperatorEvent::QuotaExhausted { credential, resets_at, .. }
            if credential == "capped" && resets_at.as_deref() == Some("2026-11-24T00:00:00.000Z"))
        })
        .collect();
    assert_eq!(told.len(), 1, "{:?}", e.notes.events());
    let store = e.state.pool().store().unwrap();
    assert!(store.usage("capped", "day:2026-11-23").await.unwrap() >= 60);

    e.clock.advance(Duration::from_secs(14 * 3600));
    let spare = e.mock.stats.requests_with("sk-pool-spare-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-pool-spare-0123456789"),
        spare,
        "a new day: the capped key again"
    );
    assert_eq!(
        auth_of(&e.gw, "capped").await["quota"]["period"],
        "day:2026-11-24"
    );

    // Settable through the API: a higher limit, and usage reset.
    let (s, q) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai/quota?id=capped",
        Some(json!({"limit": 5000, "reset_usage": true})),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["credentials"][0]["limit"], 5000);
    assert_eq!(q["credentials"][0]["used"], 0);
    let (s, _) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        "/v0/management/auths/openai/quota",
        Some(json!({"limit": "lots"})),
    )
    .await;
    assert_eq!(s, 400);
}

#[test]
fn backend_kinds_get_their_own_credential_header() {
    // Checked end to end in `every_credential_cooling_down…` (Anthropic) and the tests above
    // (OpenAI); here the Gemini header through the mock's credential counter.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = env(|m, _| {
            let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
            let g = c.backends.get_mut("gemini").unwrap();
            g.api_key = None;
            g.credentials = vec![cred("g1", "AIza-pool-gemini-0123456789", 1, None)];
            assert_eq!(g.kind, BackendKind::Gemini);
            c
        })
        .await;
        let r = post_json(
            &format!("{}/v1beta/models/mock-gemini:generateContent", e.gw.url),
            json!({"contents": [{"parts": [{"text": "hi"}]}]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(e.mock.stats.requests_with("AIza-pool-gemini-0123456789"), 1);
        let seen = e.mock.stats.last_request().unwrap();
        assert_eq!(
            seen.header("x-goog-api-key"),
            Some("AIza-pool-gemini-0123456789")
        );
    });
}

#[tokio::test]
async fn one_callers_refusals_never_cool_the_pool() {
    // Review finding: a client that makes the provider refuse (a bogus billing header, a model
    // the key may not use) had every credential of the pool marked rejected for 5 min.
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::RoundRobin,
            (1..=4)
                .map(|i| {
                    cred(
                        &format!("k{i}"),
                        &format!("sk-pool-{i}-0123456789"),
                        1,
                        None,
                    )
                })
                .collect(),
        )
    })
    .await;
    for _ in 0..3 {
        let resp = client()
            .post(format!("{}/v1/chat/completions", e.gw.url))
            .header("x-mock", "status=403")
            .json(&chat("openai:mock-gpt", false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502);
    }
    assert_eq!(
        e.mock.stats.requests(),
        6,
        "one failover per request, not four"
    );
    let v = listing(&e.gw, Some("openai")).await;
    for a in v["auths"].as_array().unwrap() {
        assert_eq!(a["status"], "active", "{v}");
    }
    for _ in 0..4 {
        assert_eq!(ask(&e.gw, false).await.status(), 200);
    }
}

#[tokio::test]
async fn the_model_list_takes_the_request_path_and_fails_over_past_a_rate_limited_credential() {
    let bad = "sk-pool-bad-0123456789~status=429;retry_after=30";
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("bad", bad, 1, None),
                cred("good", "sk-pool-good-0123456789", 2, None),
            ],
        )
    })
    .await;
    let r = client()
        .get(format!("{}/v1/models", e.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["data"].as_array().is_some_and(|d| !d.is_empty()), "{v}");
    assert_eq!(e.mock.stats.requests_with(bad), 1);
    assert_eq!(e.mock.stats.requests_with("sk-pool-good-0123456789"), 1);
    assert_eq!(auth_of(&e.gw, "bad").await["status"], "rate_limited");
}
