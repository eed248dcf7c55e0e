//! What a provider says when it refuses a request reaches the client (issue 16, client review
//! "Top problem 1"): in front of a scripted upstream that sends real providers' error bodies and
//! headers byte for byte, a same-protocol 4xx arrives with its body (`code`, `param`, `type`,
//! Google's `details`; the gateway's secrets scrubbed) and the headers clients read
//! (`x-request-id`, `request-id`, `x-should-retry`, `retry-after`, rate-limit state). A refusal
//! of the gateway's own credential stays the gateway's 502; a body that is not the protocol's
//! error document is rebuilt. An account out of quota (`insufficient_quota`) takes its
//! credential out for minutes, and the client is told `insufficient_quota`, not "retry".

use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::Config;
use serde_json::{Value, json};

use crate::faults::send;
use crate::harness::*;
use crate::hostile::{Answer, Hostile, Seen, hostile};

/// A whole HTTP/1.1 response: status line, extra headers, JSON (or other) body.
fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    Answer::Whole(head.into_bytes())
}

/// The provider's answer to the scenario the test names in `x-mock` (forwarded upstream).
fn provider(seen: &Seen) -> Answer {
    match seen.header("x-mock").unwrap_or_default() {
        "context" => http(
            "400 Bad Request",
            &[
                ("x-request-id", "req_openai_ctx"),
                ("x-should-retry", "false"),
                ("openai-processing-ms", "12"),
                ("set-cookie", "__cf_bm=tracking"),
            ],
            // The gateway's own key echoed back, JSON-escaped in `param`.
            &format!(
                r#"{{"error":{{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130001 tokens.","type":"invalid_request_error","param":"messages \u0073{}","code":"context_length_exceeded"}}}}"#,
                &OPENAI_KEY[1..]
            ),
        ),
        "quota" => http(
            "429 Too Many Requests",
            &[("x-request-id", "req_openai_quota")],
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        ),
        "html" => http(
            "400 Bad Request",
            &[("x-request-id", "req_from_a_proxy")],
            "<html><body>400 Bad Request</body></html>",
        ),
        "revoked" => http(
            "401 Unauthorized",
            &[("x-request-id", "req_revoked")],
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        ),
        "anthropic" => http(
            "429 Too Many Requests",
            &[
                ("request-id", "req_011CAnthropic"),
                ("retry-after", "7"),
                ("x-should-retry", "true"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2026-12-04T13:20:07Z"),
            ],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CAnthropic"}"#,
        ),
        "gemini" => http(
            "429 Too Many Requests",
            &[("x-goog-request-id", "g-123")],
            r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.4s"}]}}"#,
        ),
        dated if dated.starts_with("dated ") => http(
            "429 Too Many Requests",
            &[("retry-after", &dated["dated ".len()..])],
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        ),
        other => http(
            "500 Internal Server Error",
            &[],
            &format!(r#"{{"error":{{"message":"unscripted {other}"}}}}"#),
        ),
    }
}

/// Where the gateways' clocks stand: Fri, 15 Jan 2027 08:00:00 GMT.
const START_SECS: u64 = 1_800_000_000;

/// A gateway whose three backends are the scripted provider, cooling on (one credential each).
async fn setup() -> (Hostile, Gateway) {
    setup_on(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(START_SECS),
    ))
    .await
}

/// [`setup`] on `clock`.
async fn setup_on(clock: ManualClock) -> (Hostile, Gateway) {
    let upstream = hostile(Box::new(provider)).await;
    let mock = start_mock().await;
    let mut config: Config = config_for(&mock);
    config.auth.disable_cooling = false;
    for (name, base) in [
        ("openai", format!("{}/v1", upstream.url)),
        ("anthropic", upstream.url.clone()),
        ("gemini", upstream.url.clone()),
    ] {
        config.backends.get_mut(name).unwrap().base_url = Some(base);
    }
    (upstream, start_gateway_with_clock(config, clock).await)
}

/// `Retry-After` as an HTTP date, in each of its three forms, is read against the gateway's
/// clock: the client is told the seconds left, and the credential cools down that long (a past
/// date: no wait beyond the pool's one-second floor; a date decades away: capped at a month —
/// the longest window a subscription plan resets on —, as a number of seconds that large is).
#[tokio::test]
async fn a_retry_after_date_is_honoured_against_the_gateways_clock() {
    for (date, relayed, cooling) in [
        ("Fri, 15 Jan 2027 08:02:00 GMT", Some("120"), "120"),
        ("Friday, 15-Jan-27 08:01:30 GMT", Some("90"), "90"),
        ("Fri Jan 15 08:00:45 2027", Some("45"), "45"),
        ("Fri, 15 Jan 2027 07:00:00 GMT", Some("0"), "1"),
        ("Sat, 02 Jan 2077 08:00:00 GMT", None, "2678400"),
        ("99999", Some("99999"), "99999"),
        ("99999999", Some("99999999"), "2678400"),
    ] {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START_SECS));
        let (up, gw) = setup_on(clock.clone()).await;
        let scenario = format!("dated {date}");
        let ask = || {
            send(
                &gw,
                "/v1/chat/completions",
                &scenario,
                chat("gpt-4o", false),
            )
        };
        let resp = ask().await;
        assert_eq!(resp.status(), 429, "{date}");
        if let Some(secs) = relayed {
            assert_eq!(resp.headers()["retry-after"], secs, "{date}");
        }
        // The only credential cools down: the next request stays here, told when it is back.
        let resp = ask().await;
        assert_eq!(resp.status(), 429, "{date}");
        assert_eq!(resp.headers()["retry-after"], cooling, "{date}");
        assert_eq!(
            up.seen.lock().unwrap().len(),
            1,
            "{date}: not sent upstream"
        );
        // Once the wait is over, requests reach the upstream again.
        let wait: u64 = cooling.parse().unwrap();
        clock.advance(Duration::from_secs(wait));
        ask().await;
        assert_eq!(up.seen.lock().unwrap().len(), 2, "{date}: sent again");
    }
}

#[tokio::test]
async fn a_same_protocol_4xx_reaches_the_client_with_its_body_and_headers() {
    let (_up, gw) = setup().await;
    let resp = send(
        &gw,
        "/v1/chat/completions",
        "context",
        chat("gpt-4o", false),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let h = resp.headers().clone();
    assert_eq!(h["x-request-id"], "req_openai_ctx");
    assert_eq!(h["x-should-retry"], "false");
    assert_eq!(h["openai-processing-ms"], "12");
    assert!(
        h.get("set-cookie").is_none(),
        "relayed by the success path's rules"
    );
    assert_eq!(h["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(&OPENAI_KEY[1..]),
        "the echoed key is scrubbed: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "messages ***");
    assert!(
        openai_error(&v).starts_with("This model's maximum context length is 128000 tokens."),
        "{v}"
    );

    // Anthropic: the body with its `request_id`, the rate-limit state and the retry hints.
    let resp = send(
        &gw,
        "/v1/messages",
        "anthropic",
        json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let h = resp.headers().clone();
    assert_eq!(h["request-id"], "req_011CAnthropic");
    assert_eq!(h["retry-after"], "7");
    assert_eq!(h["x-should-retry"], "true");
    assert_eq!(h["anthropic-ratelimit-requests-remaining"], "0");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["request_id"], "req_011CAnthropic");

    // Gemini: `details` (QuotaFailure, RetryInfo) relayed; the retry delay becomes Retry-After.
    let resp = send(
        &gw,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "gemini",
        json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "37");
    assert_eq!(resp.headers()["x-goog-request-id"], "g-123");
    let v: Value = resp.json().await.unwrap();
    google_error(&v);
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = v["error"]["details"].as_array().unwrap();
    assert_eq!(details[1]["retryDelay"], "36.4s");
    assert_eq!(
        details[0]["violations"][0]["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_error_document_is_rebuilt_and_a_credential_refusal_stays_the_gateways()
 {
    let (_up, gw) = setup().await;
    let resp = send(&gw, "/v1/chat/completions", "html", chat("gpt-4o", false)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "req_from_a_proxy");
    let v: Value = resp.json().await.unwrap();
    assert!(
        openai_error(&v).contains("rejected the request (HTTP 400)"),
        "{v}"
    );

    let resp = send(
        &gw,
        "/v1/chat/completions",
        "revoked",
        chat("gpt-4o", false),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().get("x-request-id").is_none());
    let v: Value = resp.json().await.unwrap();
    let msg = openai_error(&v);
    assert!(msg.contains("rejected the gateway's credential"), "{msg}");
    assert_ne!(
        v["error"]["code"], "invalid_api_key",
        "not the client's key"
    );
}

#[tokio::test]
async fn an_account_out_of_quota_is_reported_as_such_and_its_credential_set_aside() {
    let (up, gw) = setup().await;
    let resp = send(&gw, "/v1/chat/completions", "quota", chat("gpt-4o", false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-request-id"], "req_openai_quota");
    assert!(
        resp.headers().get("retry-after").is_none(),
        "no invitation to retry in a second"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota");
    assert_eq!(v["error"]["type"], "insufficient_quota");

    // The only credential is out for minutes: the next request is not sent upstream, and the
    // client is told the quota is used up (clients report it instead of retrying).
    let resp = send(&gw, "/v1/chat/completions", "quota", chat("gpt-4o", false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "300");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota");
    assert!(
        openai_error(&v).contains("1 whose account the provider reported out of quota"),
        "{v}"
    );
    assert_eq!(
        up.seen.lock().unwrap().len(),
        1,
        "nothing more sent upstream"
    );
}
