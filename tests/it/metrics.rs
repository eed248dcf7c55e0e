//! `/metrics` after a scripted workload: the counters say what was sent — requests by route,
//! status and model, tokens as the answers reported them, auth failures by kind and reason, a
//! lockout, an upstream error and the cooldown it started, credential states, streams in
//! flight back to zero — and the endpoint's own guard (local callers; remote ones only with
//! `metrics.allow_remote` and the key; off with `metrics.enabled: false`).

use std::time::Duration;

use portcullis::config::Config;

use crate::harness::*;

const KEY: &str = "client-key-for-metrics-0123456";
const METRICS_KEY: &str = "metrics-scraper-key-0123456789";

/// The value of the exposition line that starts with `series` (name and labels), if any.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scrapes until `done` holds: a request's metrics are recorded when its answer's body has
/// been handed over, which may be just after the client read it.
async fn scrape_until(url: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = client().get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text().await.unwrap();
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn config(mock: &Mock) -> Config {
    let mut c = config_for(mock);
    require_key(&mut c, KEY);
    c.auth.disable_cooling = false;
    c.auth.brute_force_protection.max_failed_attempts = 3;
    c
}

async fn chat_with(
    url: &str,
    key: &str,
    body: serde_json::Value,
    mock: Option<&str>,
) -> reqwest::Response {
    let mut r = client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body);
    if let Some(m) = mock {
        r = r.header("x-mock", m);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn the_counters_match_a_scripted_workload() {
    let mock = start_mock().await;
    let gw = start_gateway(config(&mock)).await;
    let url = &gw.url;
    let (mut input, mut output) = (0.0, 0.0);
    for _ in 0..5 {
        let r = chat_with(url, KEY, chat("gpt-4o-mini", false), None).await;
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        input += v["usage"]["prompt_tokens"].as_f64().unwrap();
        output += v["usage"]["completion_tokens"].as_f64().unwrap();
    }
    for _ in 0..2 {
        let mut body = chat("gpt-4o-mini", true);
        body["stream_options"] = serde_json::json!({"include_usage": true});
        let r = chat_with(url, KEY, body, None).await;
        assert_eq!(r.status(), 200);
        let events = sse_events(r).await;
        let usage = events
            .iter()
            .filter_map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
            .find(|v| v["usage"].is_object())
            .expect("a usage chunk");
        input += usage["usage"]["prompt_tokens"].as_f64().unwrap();
        output += usage["usage"]["completion_tokens"].as_f64().unwrap();
    }
    // The upstream rate-limits one attempt: an error of that class, and a cooldown.
    let r = chat_with(url, KEY, chat("gpt-4o-mini", false), Some("status=429")).await;
    assert_eq!(r.status(), 429);
    // No key, then three distinct wrong ones (the third starts a block), then the right key.
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token_shaped = format!("sk-pcl-{}_{}", "a".repeat(12), "b".repeat(49));
    for wrong in [
        "wrong-key-one-0123456789",
        &token_shaped,
        "wrong-key-two-0123456789",
    ] {
        assert_eq!(
            chat_with(url, wrong, chat("m", false), None).await.status(),
            401
        );
    }
    assert_eq!(
        chat_with(url, KEY, chat("m", false), None).await.status(),
        429
    );

    let ok = r#"portcullis_requests_total{route="chat_completions",protocol="openai",backend="openai",model="gpt-4o-mini",status="200"}"#;
    let blocked = r#"portcullis_auth_failures_total{kind="api_key",reason="blocked"}"#;
    let text = scrape_until(url, |t| {
        value(t, ok) == Some(7.0) && value(t, blocked) == Some(1.0)
    })
    .await;
    assert_eq!(value(&text, ok), Some(7.0), "{text}");
    let limited = ok.replace("200", "429");
    assert_eq!(value(&text, &limited), Some(1.0), "{text}");
    let tokens = |dir: &str| {
        value(
            &text,
            &format!(
                r#"portcullis_tokens_total{{backend="openai",model="gpt-4o-mini",direction="{dir}"}}"#
            ),
        )
    };
    assert!(input > 0.0 && output > 0.0);
    assert_eq!(tokens("input"), Some(input));
    assert_eq!(tokens("output"), Some(output));
    for (kind, reason, n) in [
        ("none", "missing", 1.0),
        ("api_key", "invalid", 2.0),
        ("agent_token", "invalid", 1.0),
        ("api_key", "blocked", 1.0),
    ] {
        let series =
            format!(r#"portcullis_auth_failures_total{{kind="{kind}",reason="{reason}"}}"#);
        assert_eq!(value(&text, &series), Some(n), "{series}\n{text}");
    }
    // Refused before routing: counted under the model API's group, no backend.
    let refused = r#"portcullis_requests_total{route="model_api",protocol="openai",backend="",model="",status="401"}"#;
    assert_eq!(value(&text, refused), Some(4.0), "{text}");
    assert_eq!(
        value(&text, r#"portcullis_lockouts_total{scope="address"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_upstream_errors_total{backend="openai",class="rate_limited"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_credential_cooldowns_total{backend="openai"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_credentials{backend="openai",state="rate_limited"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_credentials{backend="openai",state="active"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            r#"portcullis_credentials{backend="anthropic",state="active"}"#
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "portcullis_streams_in_flight"), Some(0.0));
    assert_eq!(
        value(
            &text,
            r#"portcullis_operator_events_total{kind="auth_blocked"}"#
        ),
        Some(1.0)
    );
    let hist = r#"portcullis_request_duration_seconds_count{route="chat_completions",protocol="openai",backend="openai",model="gpt-4o-mini"}"#;
    assert_eq!(value(&text, hist), Some(8.0), "{text}");
    assert!(value(&text, "portcullis_connections_open").unwrap() >= 1.0);
    assert!(text.contains(&format!(
        r#"portcullis_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    )));
}

#[tokio::test]
async fn a_stream_counts_in_flight_until_it_ends() {
    let mock = start_mock().await;
    let gw = start_gateway(config_for(&mock)).await;
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "chunks=4; chunk_delay_ms=300")
        .json(&chat("gpt-4o-mini", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = scrape_until(&gw.url, |_| true).await;
    assert_eq!(
        value(&text, "portcullis_streams_in_flight"),
        Some(1.0),
        "{text}"
    );
    drop(r);
    let text = scrape_until(&gw.url, |t| {
        value(t, "portcullis_streams_in_flight") == Some(0.0)
    })
    .await;
    assert_eq!(value(&text, "portcullis_streams_in_flight"), Some(0.0));
}

/// A request that looks relayed (a proxy's header) is not a local caller.
async fn remote_scrape(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut r = client()
        .get(format!("{url}/metrics"))
        .header("x-forwarded-for", "203.0.113.9");
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn remote_scrapers_need_allow_remote_and_the_key() {
    let mock = start_mock().await;
    let gw = start_gateway(config_for(&mock)).await;
    assert_eq!(
        remote_scrape(&gw.url, Some(METRICS_KEY)).await.status(),
        403
    );

    let mut c = config_for(&mock);
    c.metrics.allow_remote = true;
    c.metrics.key = Some(portcullis::secret::Secret::new(METRICS_KEY));
    c.auth.brute_force_protection.max_failed_attempts = 3;
    let gw = start_gateway(c).await;
    assert_eq!(remote_scrape(&gw.url, None).await.status(), 401);
    let r = remote_scrape(&gw.url, Some(METRICS_KEY)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("portcullis_build_info"));
    for i in 0..3 {
        let wrong = format!("wrong-metrics-key-{i}-0123456");
        assert_eq!(remote_scrape(&gw.url, Some(&wrong)).await.status(), 401);
    }
    // Blocked now, the right key included; the failures are counted by kind.
    assert_eq!(
        remote_scrape(&gw.url, Some(METRICS_KEY)).await.status(),
        429
    );
    let text = scrape_until(&gw.url, |_| true).await;
    let series = r#"portcullis_auth_failures_total{kind="metrics_key",reason="invalid"}"#;
    assert_eq!(value(&text, series), Some(3.0), "{text}");
}

#[tokio::test]
async fn metrics_off_records_nothing_and_the_route_is_gone() {
    let mock = start_mock().await;
    let mut c = config_for(&mock);
    c.metrics.enabled = false;
    let gw = start_gateway(c).await;
    let r = post_json(&format!("{}/v1/chat/completions", gw.url), chat("m", false)).await;
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
