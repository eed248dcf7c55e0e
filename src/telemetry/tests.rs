//! Tests of the metrics: what the exposition says after recording, the bound on series, the
//! minute history.

use std::time::Duration;

use super::*;

fn sample<'a>(model: &'a str, status: u16) -> RequestSample<'a> {
    RequestSample {
        route: "chat_completions",
        protocol: "openai",
        backend: Some("openai"),
        model: Some(model),
        status,
        latency: Duration::from_millis(120),
        ttfb: Duration::from_millis(20),
        input_tokens: 10,
        output_tokens: 5,
        cached_tokens: 2,
        stream_error: None,
    }
}

/// The value of the exposition's line that starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn requests_tokens_and_latency_are_exposed() {
    let t = Telemetry::new("1.2.3");
    for _ in 0..3 {
        t.request(&sample("gpt-4o", 200));
    }
    t.request(&sample("gpt-4o", 429));
    t.auth_failure("agent_token", "invalid");
    t.auth_failure("agent_token", "invalid");
    let text = t.render(|_| {}).unwrap();
    let ok = r#"portcullis_requests_total{route="chat_completions",protocol="openai",backend="openai",model="gpt-4o",status="200"}"#;
    assert_eq!(value(&text, ok), Some(3.0), "{text}");
    assert_eq!(value(&text, &ok.replace("200", "429")), Some(1.0));
    let tokens = r#"portcullis_tokens_total{backend="openai",model="gpt-4o",direction="input"}"#;
    assert_eq!(value(&text, tokens), Some(40.0));
    let auth = r#"portcullis_auth_failures_total{kind="agent_token",reason="invalid"}"#;
    assert_eq!(value(&text, auth), Some(2.0));
    assert_eq!(
        value(&text, r#"portcullis_build_info{version="1.2.3"}"#),
        Some(1.0)
    );
    // Histograms are drained by the upkeep job; rendering drains them too.
    let bucket = r#"portcullis_request_duration_seconds_bucket{route="chat_completions",protocol="openai",backend="openai",model="gpt-4o",le="0.25"}"#;
    assert_eq!(value(&text, bucket), Some(4.0), "{text}");
    let below = bucket.replace("0.25", "0.1");
    assert_eq!(value(&text, &below), Some(0.0));
    assert!(text.contains("# HELP portcullis_requests_total Requests answered"));
}

#[test]
fn scrape_values_and_streams_are_exposed() {
    let t = Telemetry::new("x");
    let g1 = t.stream();
    let g2 = t.stream();
    drop(g1);
    let text = t
        .render(|s| {
            s.gauge("portcullis_connections_open", &[], 7.0);
            s.counter("portcullis_lockouts_total", &[("scope", "address")], 12);
        })
        .unwrap();
    assert_eq!(value(&text, "portcullis_streams_in_flight"), Some(1.0));
    assert_eq!(value(&text, "portcullis_connections_open"), Some(7.0));
    assert_eq!(
        value(&text, r#"portcullis_lockouts_total{scope="address"}"#),
        Some(12.0)
    );
    drop(g2);
    assert_eq!(t.streams_in_flight(), 0);
}

#[test]
fn off_records_nothing_and_renders_nothing() {
    let t = Telemetry::off();
    t.request(&sample("m", 200));
    let _g = t.stream();
    assert_eq!(t.streams_in_flight(), 0);
    assert!(t.render(|_| {}).is_none());
    assert!(t.jobs().is_empty());
    assert!(t.history(0).is_empty());
}

#[test]
fn series_are_bounded() {
    let t = Telemetry::new("x");
    let models: Vec<String> = (0..MAX_SERIES + 50).map(|i| format!("m{i}")).collect();
    for m in &models {
        t.request(&sample(m, 200));
    }
    let text = t.render(|_| {}).unwrap();
    let lines = text
        .lines()
        .filter(|l| l.starts_with("portcullis_requests_total{"))
        .count();
    assert_eq!(lines, MAX_SERIES + 1, "the overflow series is the one more");
    let over = r#"portcullis_requests_total{route="chat_completions",protocol="openai",backend="openai",model="other",status="200"}"#;
    assert_eq!(value(&text, over), Some(50.0));
}

#[test]
fn history_closes_minutes_and_reads_the_current_one() {
    let t = Telemetry::new("x");
    let Some(i) = &t.inner else { panic!("on") };
    let t0 = 1_700_000_040_000 + 40_000; // 40 s into a minute
    i.history.roll(t0);
    t.request(&sample("a", 200));
    t.request(&sample("a", 502));
    let now = t.history(t0 + 1_000);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].start_ms, t0 - 40_000);
    assert_eq!(now[0].rows[0].requests, 2);
    assert_eq!(now[0].rows[0].errors, 1);
    assert_eq!(now[0].rows[0].mean_latency_ms, 120.0);
    assert_eq!(now[0].rows[0].output_tokens, 10);
    // The next minute: the first closes with its two requests.
    i.history.roll(t0 + 30_000);
    t.request(&sample("b", 200));
    let h = t.history(t0 + 31_000);
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].rows.len(), 1);
    assert_eq!(&*h[0].rows[0].model, "a");
    assert_eq!(h[1].rows.len(), 1);
    assert_eq!(&*h[1].rows[0].model, "b");
    // Three minutes without a roll: two empty minutes between.
    i.history.roll(t0 + 30_000 + 180_000);
    let h = t.history(t0 + 30_000 + 180_000);
    let rows: Vec<usize> = h.iter().map(|m| m.rows.len()).collect();
    assert_eq!(rows, [1, 1, 0, 0, 0]);
    // A day without a roll: an hour of empty minutes at most.
    i.history.roll(t0 + 86_400_000);
    let h = t.history(t0 + 86_400_000);
    assert_eq!(h.len(), history::MINUTES + 1);
    assert!(h.iter().all(|m| m.rows.is_empty()));
    let starts: Vec<u64> = h.iter().map(|m| m.start_ms).collect();
    assert!(
        starts.windows(2).all(|w| w[1] == w[0] + 60_000),
        "{starts:?}"
    );
}

/// The histograms read as the exporter's own did: the same lines, byte for byte, as a
/// Prometheus recorder with the same buckets renders for the same samples.
#[test]
fn latency_histograms_render_as_the_exporter_did() {
    use metrics::Recorder as _;
    let reference = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&timing::LATENCY_BUCKETS)
        .unwrap()
        .build_recorder();
    let handle = reference.handle();
    let name = "portcullis_request_duration_seconds";
    reference.describe_histogram(
        name.into(),
        Some(metrics::Unit::Seconds),
        help_of(name).into(),
    );
    let labels = [
        ("route", "chat_completions"),
        ("protocol", "openai"),
        ("backend", "openai"),
        ("model", "gpt \"4o\"\\x\nnew"),
    ];
    let h = reference.register_histogram(&key(name, &labels), &METADATA);
    let t = Telemetry::new("x");
    // On a bound, between bounds, past the last one; halves and quarters sum exactly.
    for ms in [1u64, 250, 500, 2_000, 400_000, 1, 0] {
        h.record(Duration::from_millis(ms).as_secs_f64());
        t.request(&RequestSample {
            latency: Duration::from_millis(ms),
            ..sample("gpt \"4o\"\\x\nnew", if ms == 0 { 500 } else { 200 })
        });
    }
    let family = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(name))
            .map(str::to_owned)
            .collect()
    };
    let want = family(&handle.render());
    let got = family(&t.render(|_| {}).unwrap());
    assert_eq!(want.len(), 2 + 17 + 3, "{want:#?}");
    // The sum is added in nanoseconds here, in floating-point seconds there: the same up to
    // the exporter's rounding (402.75199999999995 against 402.752).
    let sum = |lines: &[String]| -> f64 {
        let line = lines.iter().find(|l| l.contains("_sum{")).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!((sum(&got) - 402.752).abs() < 1e-9, "{got:#?}");
    assert!((sum(&want) - 402.752).abs() < 1e-9);
    let without_sum = |lines: Vec<String>| -> Vec<String> {
        lines.into_iter().filter(|l| !l.contains("_sum{")).collect()
    };
    assert_eq!(without_sum(got.clone()), without_sum(want));
    // Both statuses' requests are in the one label set's histogram.
    assert!(got.iter().any(|l| l.ends_with("_count{route=\"chat_completions\",protocol=\"openai\",backend=\"openai\",model=\"gpt \\\"4o\\\"\\\\x\\nnew\"} 7")), "{got:#?}");
}
