//! Client authentication end to end: every header form, 401 and 429 in each protocol's shape,
//! the lockout and its escalation on a test clock, no-credential requests not counted, trusted
//! proxies, the bypass list.

use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::{ApiKeyConfig, Config};
use portcullis::secret::Secret;
use serde_json::{Value, json};

use crate::harness::*;

const KEY: &str = "pcl-test-key-0123456789abcdef";

fn with_key(mut config: Config) -> Config {
    config.auth.disable_auth = false;
    config.auth.api_keys = vec![ApiKeyConfig::Named {
        name: Some("tester".into()),
        key: Some(Secret::new(KEY)),
        key_env: None,
    }];
    config
}

async fn setup() -> (Mock, Gateway, ManualClock) {
    let mock = start_mock().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let gw = start_gateway_with_clock(with_key(config_for(&mock)), clock.clone()).await;
    (mock, gw, clock)
}

fn anthropic_req() -> Value {
    json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

fn gemini_req() -> Value {
    json!({"contents": [{"parts": [{"text": "hi"}]}]})
}

/// A wrong `Authorization` value never sent before: a repeated wrong value counts once toward
/// the lockout, so tests that mean to reach it guess anew each time.
fn guess() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("Bearer wrong-{n}")
}

/// Sends one chat completion with the given header (or none).
async fn chat_with(
    gw: &Gateway,
    header: Option<(&str, &str)>,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&chat("mock-gpt", false));
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn each_place_a_client_puts_its_key_is_accepted() {
    let (mock, gw, _) = setup().await;
    let bearer = format!("Bearer {KEY}");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &bearer)), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        chat_with(&gw, Some(("x-api-key", KEY)), None)
            .await
            .status(),
        200
    );
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .json(&anthropic_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .post(format!(
            "{}/v1beta/models/mock-gemini:generateContent",
            gw.url
        ))
        .header("x-goog-api-key", KEY)
        .json(&gemini_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .post(format!(
            "{}/v1beta/models/mock-gemini:streamGenerateContent?alt=sse&key={KEY}",
            gw.url
        ))
        .json(&gemini_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(
        seen.query.as_deref(),
        Some("alt=sse"),
        "the client's key is not forwarded"
    );
    assert_eq!(seen.header("x-goog-api-key"), Some(GEMINI_KEY));
}

#[tokio::test]
async fn missing_and_wrong_keys_get_401_in_each_protocol() {
    let (mock, gw, _) = setup().await;
    let resp = chat_with(&gw, None, None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    assert!(openai_error(&v).contains("Missing API key"));
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = chat_with(&gw, Some(("authorization", "Bearer nope")), None).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(openai_error(&v), "Invalid API key.");
    assert_eq!(v["error"]["code"], "invalid_api_key");

    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "nope")
        .json(&anthropic_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    anthropic_error(&v);
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = client()
        .post(format!(
            "{}/v1beta/models/m:generateContent?key=nope",
            gw.url
        ))
        .json(&gemini_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    google_error(&v);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");

    // Unknown routes are not revealed without a key either.
    let resp = client()
        .get(format!("{}/v1/secret-admin", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        mock.stats.requests(),
        0,
        "nothing unauthenticated went upstream"
    );
}

/// Client review (issue 16): Claude Code retries a 401 ten times and Codex six, so one agent
/// with a stale key locked its whole machine out. The same wrong value, however often and in
/// whichever protocol's header, counts once; distinct guesses still each count.
#[tokio::test]
async fn an_agent_retrying_a_stale_key_does_not_lock_the_machine_out() {
    let (_mock, gw, _) = setup().await;
    let stale = "sk-stale-agent-key-0123456789";
    for _ in 0..4 {
        let resp = chat_with(
            &gw,
            Some(("authorization", &format!("Bearer {stale}"))),
            None,
        )
        .await;
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let resp = client()
            .post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", stale)
            .json(&anthropic_req())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let resp = client()
            .post(format!(
                "{}/v1beta/models/m:generateContent?key={stale}",
                gw.url
            ))
            .json(&gemini_req())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let good = format!("Bearer {KEY}");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200,
        "twelve retries of one stale key are one failure"
    );
    // Four new guesses make five distinct wrong values: blocked.
    for _ in 0..4 {
        assert_eq!(
            chat_with(&gw, Some(("authorization", &guess())), None)
                .await
                .status(),
            401
        );
    }
    let resp = chat_with(&gw, Some(("authorization", &good)), None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-should-retry"], "false");
}

#[tokio::test]
async fn the_lockout_blocks_escalates_and_clears() {
    let (_mock, gw, clock) = setup().await;
    let good = format!("Bearer {KEY}");
    for _ in 0..4 {
        assert_eq!(
            chat_with(&gw, Some(("authorization", &guess())), None)
                .await
                .status(),
            401
        );
    }
    // The 5th failure is still a 401, and starts a 30 s block.
    assert_eq!(
        chat_with(&gw, Some(("authorization", &guess())), None)
            .await
            .status(),
        401
    );
    let resp = chat_with(&gw, Some(("authorization", &good)), None).await;
    assert_eq!(resp.status(), 429, "blocked even with the right key");
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"message": "Too many failed authentication attempts. Please try again later.",
            "type": "rate_limit_exceeded", "param": null, "code": "auth_blocked", "retry_after": 30}})
    );
    // Other protocols get their own 429 shape.
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .json(&anthropic_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    assert_eq!(
        anthropic_error(&resp.json().await.unwrap()),
        "Too many failed authentication attempts. Please try again later."
    );

    // Each failure after a block doubles the next one.
    let mut block = 30;
    for want in [60, 120, 240] {
        clock.advance(Duration::from_secs(block));
        block = want;
        assert_eq!(
            chat_with(&gw, Some(("authorization", &guess())), None)
                .await
                .status(),
            401
        );
        let resp = chat_with(&gw, Some(("authorization", &good)), None).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], want.to_string());
    }
    clock.advance(Duration::from_secs(240));
    // A success does not excuse the guesses before it (someone holding one valid credential
    // must not reset the count between guesses at others): the next failure blocks again,
    // for longer. The record is forgotten `ttl_seconds` (15 min) after the last block ends.
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        chat_with(&gw, Some(("authorization", &guess())), None)
            .await
            .status(),
        401
    );
    let resp = chat_with(&gw, Some(("authorization", &good)), None).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "480");
    clock.advance(Duration::from_secs(480 + 901));
    for _ in 0..4 {
        assert_eq!(
            chat_with(&gw, Some(("authorization", &guess())), None)
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn requests_without_a_credential_never_count() {
    let (_mock, gw, _) = setup().await;
    for _ in 0..30 {
        assert_eq!(chat_with(&gw, None, None).await.status(), 401);
    }
    let good = format!("Bearer {KEY}");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers_and_used_behind_trusted_ones() {
    // Untrusted peer: rotating X-Forwarded-For does not escape the lockout.
    let (_mock, gw, _) = setup().await;
    for i in 0..5 {
        let xff = format!("198.51.100.{i}");
        chat_with(&gw, Some(("authorization", &guess())), Some(&xff)).await;
    }
    let good = format!("Bearer {KEY}");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), Some("203.0.113.1"))
            .await
            .status(),
        429
    );

    // Behind a trusted proxy (the test client on 127.0.0.1), each forwarded address is its own client.
    let mock = start_mock().await;
    let mut config = with_key(config_for(&mock));
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let gw = start_gateway(config).await;
    for _ in 0..5 {
        chat_with(&gw, Some(("authorization", &guess())), Some("198.51.100.7")).await;
    }
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), Some("198.51.100.7"))
            .await
            .status(),
        429
    );
    // A client-supplied entry left of the real one does not help the blocked client.
    assert_eq!(
        chat_with(
            &gw,
            Some(("authorization", &good)),
            Some("1.2.3.4, 198.51.100.7")
        )
        .await
        .status(),
        429
    );
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), Some("198.51.100.8"))
            .await
            .status(),
        200
    );
}

/// A gateway behind a trusted proxy: the test client on 127.0.0.1 plays the proxy.
async fn behind_proxy() -> (Mock, Gateway) {
    let mock = start_mock().await;
    let mut config = with_key(config_for(&mock));
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let gw = start_gateway(config).await;
    (mock, gw)
}

/// A chat completion with a raw `X-Forwarded-For` value (any bytes).
async fn chat_with_raw_xff(gw: &Gateway, key: &str, xff: &[u8]) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("authorization", format!("Bearer {key}"))
        .header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(xff).unwrap(),
        )
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap()
}

/// Security review, first pass #7: a client that put a non-ASCII byte in its `X-Forwarded-For`
/// (which the proxy keeps, appending the real address) had its failures counted against the
/// proxy itself, locking out everyone behind it. Now the entry the proxy appended names the
/// client, and a header whose client entry cannot be read is refused with 400.
#[tokio::test]
async fn an_unreadable_forwarded_for_never_counts_against_the_proxy() {
    let (_mock, gw) = behind_proxy().await;
    for _ in 0..5 {
        let resp = chat_with_raw_xff(&gw, &guess()[7..], b"\xff, 8.8.4.4").await;
        assert_eq!(resp.status(), 401);
    }
    let good = format!("Bearer {KEY}");
    // The proxy's own requests, and other clients behind it, are not blocked …
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200,
        "the proxy's own address was blocked"
    );
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), Some("8.8.8.8"))
            .await
            .status(),
        200
    );
    // … the client that failed is.
    assert_eq!(
        chat_with_raw_xff(&gw, KEY, b"\xff, 8.8.4.4").await.status(),
        429
    );

    // The client's own entry unreadable: refused in the caller's protocol, on every path, and
    // nothing is counted anywhere.
    for _ in 0..6 {
        let resp = chat_with_raw_xff(&gw, "wrong", b"\xff").await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unreadable_forwarded_for");
    }
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(b"8.8.8.8, \xfe").unwrap(),
        )
        .json(&anthropic_req())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        anthropic_error(&resp.json().await.unwrap()),
        "The X-Forwarded-For header added by the proxy does not name a readable client address."
    );
    let resp = client()
        .get(format!("{}/v0/management/auths", gw.url))
        .header("x-forwarded-for", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "bypassed paths too");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200
    );
}

/// Security review, first pass #8: the lockout counted each IPv6 address alone, so a client
/// holding a /64 had a fresh budget per address. Now a /64 is one client (configurable).
#[tokio::test]
async fn ipv6_clients_are_counted_per_64_network() {
    let (_mock, gw) = behind_proxy().await;
    for i in 1..=5 {
        let resp = chat_with(
            &gw,
            Some(("authorization", &guess())),
            Some(&format!("2001:db8:1:2::{i}")),
        )
        .await;
        assert_eq!(resp.status(), 401);
    }
    let good = format!("Bearer {KEY}");
    for (addr, want) in [
        ("2001:db8:1:2:ffff::99", 429),
        ("[2001:db8:1:2::7]:443", 429),
        ("2001:db8:1:3::1", 200),
        ("::ffff:198.51.100.9", 200),
    ] {
        assert_eq!(
            chat_with(&gw, Some(("authorization", &good)), Some(addr))
                .await
                .status(),
            want,
            "{addr}"
        );
    }

    // `ipv6_prefix: 128` counts each address alone.
    let mock = start_mock().await;
    let mut config = with_key(config_for(&mock));
    config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    config.auth.brute_force_protection.ipv6_prefix = 128;
    let gw = start_gateway(config).await;
    for i in 1..=5 {
        chat_with(
            &gw,
            Some(("authorization", &guess())),
            Some(&format!("2001:db8:1:2::{i}")),
        )
        .await;
    }
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), Some("2001:db8:1:2::6"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn health_and_configured_paths_bypass_authentication() {
    let mock = start_mock().await;
    let mut config = with_key(config_for(&mock));
    config.auth.bypass_paths = vec!["/v1/models".into()];
    let gw = start_gateway(config).await;
    for path in ["/health", "/internal/health", "/v1/models"] {
        let resp = client()
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let v: Value = client()
        .get(format!("{}/internal/health", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["auth"], "enabled");
    assert_eq!(chat_with(&gw, None, None).await.status(), 401);
}

#[tokio::test]
async fn brute_force_protection_can_be_turned_off() {
    let mock = start_mock().await;
    let mut config = with_key(config_for(&mock));
    config.auth.brute_force_protection.enabled = false;
    let gw = start_gateway(config).await;
    for _ in 0..10 {
        assert_eq!(
            chat_with(&gw, Some(("authorization", &guess())), None)
                .await
                .status(),
            401
        );
    }
    let good = format!("Bearer {KEY}");
    assert_eq!(
        chat_with(&gw, Some(("authorization", &good)), None)
            .await
            .status(),
        200
    );
}
