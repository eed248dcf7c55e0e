//! Client authentication end to end: every header form, 401 and 429 in each protocol's shape,
//! the lockout and its escalation on a test clock, no-credential requests not counted, trusted
//! proxies, the bypass list.

use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::Config;
use serde_json::{Value, json};

use crate::harness::*;

const KEY: &str = "pcl-test-key-0123456789abcdef";

/// A wrong key never sent before: a repeated wrong value counts once toward the lockout, so
/// tests that mean to reach it guess anew each time.
fn guess() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("wrong-{n}")
}

/// A gateway with one client key on a test clock; `tweak` changes its configuration first.
async fn setup_with(tweak: impl FnOnce(&mut Config)) -> (Mock, Gateway, ManualClock) {
    let mock = start_mock().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let mut config = config_for(&mock);
    require_key(&mut config, KEY);
    tweak(&mut config);
    let gw = start_gateway_with_clock(config, clock.clone()).await;
    (mock, gw, clock)
}

async fn setup() -> (Mock, Gateway, ManualClock) {
    setup_with(|_| {}).await
}

/// A gateway behind a trusted proxy: the test client on 127.0.0.1 plays the proxy.
async fn behind_proxy(tweak: impl FnOnce(&mut Config)) -> (Mock, Gateway) {
    let (mock, gw, _) = setup_with(|c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        tweak(c);
    })
    .await;
    (mock, gw)
}

fn anthropic_req() -> Value {
    json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

fn gemini_req() -> Value {
    json!({"contents": [{"parts": [{"text": "hi"}]}]})
}

/// POSTs `body` to `path` with `headers`.
async fn send(
    gw: &Gateway,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client().post(format!("{}{path}", gw.url)).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A chat completion with `headers`.
async fn chat_as(gw: &Gateway, headers: &[(&str, &str)]) -> reqwest::Response {
    send(gw, "/v1/chat/completions", chat("mock-gpt", false), headers).await
}

/// The status of a chat completion with `Bearer {key}`, relayed for `xff` when given.
async fn bearer(gw: &Gateway, key: &str, xff: Option<&str>) -> u16 {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(xff.map(|x| ("x-forwarded-for", x)));
    chat_as(gw, &headers).await.status().as_u16()
}

/// `n` chat completions with a wrong key (relayed for `xff` when given), each a 401.
async fn fail(gw: &Gateway, n: usize, xff: Option<&str>) {
    for _ in 0..n {
        assert_eq!(bearer(gw, &guess(), xff).await, 401, "{xff:?}");
    }
}

/// The right key is refused with 429 and `Retry-After: secs`; returns the answer.
async fn assert_blocked(gw: &Gateway, secs: u64) -> Value {
    let resp = chat_as(gw, &[("authorization", &format!("Bearer {KEY}"))]).await;
    assert_eq!(resp.status(), 429, "blocked even with the right key");
    assert_eq!(resp.headers()["retry-after"], secs.to_string());
    assert_eq!(resp.headers()["x-should-retry"], "false");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn each_place_a_client_puts_its_key_is_accepted() {
    let (mock, gw, _) = setup().await;
    let bearer_key = format!("Bearer {KEY}");
    let key_in_query =
        format!("/v1beta/models/mock-gemini:streamGenerateContent?alt=sse&key={KEY}");
    let openai = || chat("mock-gpt", false);
    for (path, body, headers) in [
        (
            "/v1/chat/completions",
            openai(),
            vec![("authorization", bearer_key.as_str())],
        ),
        ("/v1/chat/completions", openai(), vec![("x-api-key", KEY)]),
        ("/v1/messages", anthropic_req(), vec![("x-api-key", KEY)]),
        (
            "/v1beta/models/mock-gemini:generateContent",
            gemini_req(),
            vec![("x-goog-api-key", KEY)],
        ),
        (key_in_query.as_str(), gemini_req(), vec![]),
    ] {
        let status = send(&gw, path, body, &headers).await.status();
        assert_eq!(status, 200, "{path} {headers:?}");
    }
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
    let resp = chat_as(&gw, &[]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    assert!(openai_error(&v).contains("Missing API key"));
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = chat_as(&gw, &[("authorization", "Bearer nope")]).await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(openai_error(&v), "Invalid API key.");
    assert_eq!(v["error"]["code"], "invalid_api_key");

    let resp = send(
        &gw,
        "/v1/messages",
        anthropic_req(),
        &[("x-api-key", "nope")],
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let v: Value = resp.json().await.unwrap();
    anthropic_error(&v);
    assert_eq!(v["error"]["type"], "authentication_error");

    let resp = send(
        &gw,
        "/v1beta/models/m:generateContent?key=nope",
        gemini_req(),
        &[],
    )
    .await;
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
    let gemini = format!("/v1beta/models/m:generateContent?key={stale}");
    for _ in 0..4 {
        for (path, body, headers) in [
            (
                "/v1/chat/completions",
                chat("mock-gpt", false),
                vec![("authorization", format!("Bearer {stale}"))],
            ),
            (
                "/v1/messages",
                anthropic_req(),
                vec![("x-api-key", stale.to_owned())],
            ),
            (gemini.as_str(), gemini_req(), vec![]),
        ] {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let resp = send(&gw, path, body, &headers).await;
            assert_eq!(resp.status(), 401, "{path}");
            assert_eq!(resp.headers()["x-should-retry"], "false");
        }
    }
    assert_eq!(
        bearer(&gw, KEY, None).await,
        200,
        "twelve retries of one stale key are one failure"
    );
    // Four new guesses make five distinct wrong values: blocked.
    fail(&gw, 4, None).await;
    assert_blocked(&gw, 30).await;
}

#[tokio::test]
async fn the_lockout_blocks_escalates_and_clears() {
    let (_mock, gw, clock) = setup().await;
    fail(&gw, 4, None).await;
    // The 5th failure is still a 401, and starts a 30 s block.
    fail(&gw, 1, None).await;
    let v = assert_blocked(&gw, 30).await;
    assert_eq!(
        v,
        json!({"error": {"message": "Too many failed authentication attempts. Please try again later.",
            "type": "rate_limit_exceeded", "param": null, "code": "auth_blocked", "retry_after": 30}})
    );
    // Other protocols get their own 429 shape.
    let resp = send(&gw, "/v1/messages", anthropic_req(), &[("x-api-key", KEY)]).await;
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
        fail(&gw, 1, None).await;
        assert_blocked(&gw, want).await;
    }
    clock.advance(Duration::from_secs(240));
    // A success does not excuse the guesses before it (someone holding one valid credential
    // must not reset the count between guesses at others): the next failure blocks again,
    // for longer. The record is forgotten `ttl_seconds` (15 min) after the last block ends.
    assert_eq!(bearer(&gw, KEY, None).await, 200);
    fail(&gw, 1, None).await;
    assert_blocked(&gw, 480).await;
    clock.advance(Duration::from_secs(480 + 901));
    fail(&gw, 4, None).await;
    assert_eq!(bearer(&gw, KEY, None).await, 200);
}

#[tokio::test]
async fn requests_without_a_credential_never_count() {
    let (_mock, gw, _) = setup().await;
    for _ in 0..30 {
        assert_eq!(chat_as(&gw, &[]).await.status(), 401);
    }
    assert_eq!(bearer(&gw, KEY, None).await, 200);
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers_and_used_behind_trusted_ones() {
    // Untrusted peer: rotating X-Forwarded-For does not escape the lockout.
    let (_mock, gw, _) = setup().await;
    for i in 0..5 {
        fail(&gw, 1, Some(&format!("198.51.100.{i}"))).await;
    }
    assert_eq!(bearer(&gw, KEY, Some("203.0.113.1")).await, 429);

    // Behind a trusted proxy (the test client on 127.0.0.1), each forwarded address is its own
    // client; a client-supplied entry left of the real one does not help the blocked client.
    let (_mock, gw) = behind_proxy(|_| {}).await;
    fail(&gw, 5, Some("198.51.100.7")).await;
    for (xff, want) in [
        ("198.51.100.7", 429),
        ("1.2.3.4, 198.51.100.7", 429),
        ("198.51.100.8", 200),
    ] {
        assert_eq!(bearer(&gw, KEY, Some(xff)).await, want, "{xff}");
    }
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
    let (_mock, gw) = behind_proxy(|_| {}).await;
    for _ in 0..5 {
        let resp = chat_with_raw_xff(&gw, &guess(), b"\xff, 8.8.4.4").await;
        assert_eq!(resp.status(), 401);
    }
    // The proxy's own requests, and other clients behind it, are not blocked …
    assert_eq!(
        bearer(&gw, KEY, None).await,
        200,
        "the proxy's own address was blocked"
    );
    assert_eq!(bearer(&gw, KEY, Some("8.8.8.8")).await, 200);
    // … the client that failed is.
    assert_eq!(
        chat_with_raw_xff(&gw, KEY, b"\xff, 8.8.4.4").await.status(),
        429
    );

    // The client's own entry unreadable: refused in the caller's protocol, on every path, and
    // nothing is counted anywhere.
    for _ in 0..6 {
        let resp = chat_with_raw_xff(&gw, &guess(), b"\xff").await;
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
    assert_eq!(bearer(&gw, KEY, None).await, 200);
}

/// Security review, first pass #8: the lockout counted each IPv6 address alone, so a client
/// holding a /64 had a fresh budget per address. Now a /64 is one client (configurable).
#[tokio::test]
async fn ipv6_clients_are_counted_per_64_network() {
    let (_mock, gw) = behind_proxy(|_| {}).await;
    for i in 1..=5 {
        fail(&gw, 1, Some(&format!("2001:db8:1:2::{i}"))).await;
    }
    for (addr, want) in [
        ("2001:db8:1:2:ffff::99", 429),
        ("[2001:db8:1:2::7]:443", 429),
        ("2001:db8:1:3::1", 200),
        ("::ffff:198.51.100.9", 200),
    ] {
        assert_eq!(bearer(&gw, KEY, Some(addr)).await, want, "{addr}");
    }

    // `ipv6_prefix: 128` counts each address alone.
    let (_mock, gw) = behind_proxy(|c| c.auth.brute_force_protection.ipv6_prefix = 128).await;
    for i in 1..=5 {
        fail(&gw, 1, Some(&format!("2001:db8:1:2::{i}"))).await;
    }
    assert_eq!(bearer(&gw, KEY, Some("2001:db8:1:2::6")).await, 200);
}

#[tokio::test]
async fn health_and_configured_paths_bypass_authentication() {
    let (_mock, gw, _) = setup_with(|c| c.auth.bypass_paths = vec!["/v1/models".into()]).await;
    for path in ["/health", "/internal/health", "/v1/models"] {
        let resp = client()
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let v = get_json(format!("{}/internal/health", gw.url)).await;
    assert_eq!(v["auth"], "enabled");
    assert_eq!(chat_as(&gw, &[]).await.status(), 401);
}

#[tokio::test]
async fn brute_force_protection_can_be_turned_off() {
    let (_mock, gw, _) = setup_with(|c| c.auth.brute_force_protection.enabled = false).await;
    fail(&gw, 10, None).await;
    assert_eq!(bearer(&gw, KEY, None).await, 200);
}
