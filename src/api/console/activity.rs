//! The console's activity page: the last hour of traffic per backend and model as server-drawn
//! SVG charts (requests, mean latency and tokens per minute, from [`crate::telemetry`]'s
//! history), the hour's totals, and the recent operator events. No script: each chart is a set
//! of polylines the template writes, numbers only; every name goes through the template's
//! escaping.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::super::groups::{Routes, get};
use super::views::{ActivityPage, Chart, ChartSeries, EventRow, TotalRow};
use super::{Admin, page};
use crate::clock::iso8601;
use crate::state::AppState;
use crate::telemetry::Minute;

/// The page.
pub(super) fn routes() -> Routes {
    vec![("/admin/activity", get(activity))]
}

/// Chart area in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;

/// Series colours (checked against both the light and the dark background).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#e8710a", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Minutes before the current one on the x axis.
const HOUR_MINUTES: u64 = 60;

/// Most series drawn per chart (the busiest; the table lists every one).
const MAX_SERIES: usize = 8;

async fn activity(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let now = state.clock().now_millis();
    let minutes = last_hour(state.telemetry().history(now), now);
    let totals = totals(&minutes);
    let keys: Vec<(String, String)> = totals
        .iter()
        .take(MAX_SERIES)
        .map(|t| (t.backend.clone(), t.model.clone()))
        .collect();
    let charts = vec![
        chart(&minutes, &keys, "Requests per minute", "", |r| {
            r.requests as f64
        }),
        chart(&minutes, &keys, "Mean latency", " ms", |r| {
            r.mean_latency_ms
        }),
        chart(
            &minutes,
            &keys,
            "Tokens per minute (input + output)",
            "",
            |r| (r.input_tokens + r.output_tokens) as f64,
        ),
    ];
    let events = state
        .telemetry()
        .events()
        .recent()
        .into_iter()
        .map(|e| EventRow {
            at: iso8601(e.at_ms)[..19].replace('T', " "),
            kind: e.kind,
            summary: e.summary,
            body: e.body,
        })
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &ActivityPage {
            nav: super::pages::nav(&admin, &label, "activity"),
            notice: None,
            metrics_on: state.telemetry().is_enabled(),
            charts,
            totals,
            events,
        },
    )
}

/// The hour before `now_ms` a minute at a time, the current minute last: the history's minutes
/// where it has them, empty ones elsewhere (a fresh instance, a quiet spell), so every chart
/// spans the same hour.
fn last_hour(history: Vec<Minute>, now_ms: u64) -> Vec<Minute> {
    let current = now_ms - now_ms % 60_000;
    let mut by_start: std::collections::HashMap<u64, Minute> =
        history.into_iter().map(|m| (m.start_ms, m)).collect();
    (0..=HOUR_MINUTES)
        .rev()
        .map(|back| current.saturating_sub(back * 60_000))
        .map(|start| {
            by_start.remove(&start).unwrap_or(Minute {
                start_ms: start,
                rows: Vec::new(),
            })
        })
        .collect()
}

/// Each backend and model's hour, busiest first.
fn totals(minutes: &[Minute]) -> Vec<TotalRow> {
    let mut rows: Vec<TotalRow> = Vec::new();
    for r in minutes.iter().flat_map(|m| &m.rows) {
        let i = match rows
            .iter()
            .position(|t| t.backend == *r.backend && t.model == *r.model)
        {
            Some(i) => i,
            None => {
                rows.push(TotalRow {
                    backend: r.backend.to_string(),
                    model: r.model.to_string(),
                    ..TotalRow::default()
                });
                rows.len() - 1
            }
        };
        let t = &mut rows[i];
        t.latency_sum += r.mean_latency_ms * r.requests as f64;
        t.requests += r.requests;
        t.errors += r.errors;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
    }
    for t in &mut rows {
        t.mean_latency = if t.requests == 0 {
            String::new()
        } else {
            format!("{:.1} ms", t.latency_sum / t.requests as f64)
        };
    }
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.backend.cmp(&b.backend))
    });
    rows
}

/// One chart: a polyline per (backend, model) of `keys`, a point per minute.
fn chart(
    minutes: &[Minute],
    keys: &[(String, String)],
    title: &'static str,
    unit: &'static str,
    value: impl Fn(&crate::telemetry::HistoryRow) -> f64,
) -> Chart {
    let values: Vec<Vec<f64>> = keys
        .iter()
        .map(|(b, m)| {
            minutes
                .iter()
                .map(|minute| {
                    minute
                        .rows
                        .iter()
                        .find(|r| *r.backend == **b && *r.model == **m)
                        .map_or(0.0, &value)
                })
                .collect()
        })
        .collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let step = if minutes.len() > 1 {
        WIDTH / (minutes.len() - 1) as f64
    } else {
        0.0
    };
    let place = |x: usize, y: f64| {
        let py = HEIGHT - if top > 0.0 { y / top * HEIGHT } else { 0.0 };
        (x as f64 * step, py)
    };
    let series = keys
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(i, ((b, m), v))| ChartSeries {
            label: if m.is_empty() {
                b.clone()
            } else {
                format!("{b}:{m}")
            },
            colour: COLOURS[i % COLOURS.len()],
            points: v
                .iter()
                .enumerate()
                .map(|(x, y)| {
                    let (px, py) = place(x, *y);
                    format!("{px:.1},{py:.1}")
                })
                .collect::<Vec<_>>()
                .join(" "),
            dots: v
                .iter()
                .enumerate()
                .filter(|(_, y)| **y > 0.0)
                .map(|(x, y)| {
                    let (px, py) = place(x, *y);
                    (format!("{px:.1}"), format!("{py:.1}"))
                })
                .collect(),
        })
        .collect();
    Chart {
        title,
        top: format!("{}{unit}", trim_number(top)),
        span: minutes.len().saturating_sub(1),
        series,
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (0 stays 0).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 0.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|k| k * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn trim_number(v: f64) -> String {
    if v >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 0.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(740.0), 1000.0);
    }

    #[test]
    fn series_points_span_the_chart() {
        use crate::telemetry::HistoryRow;
        use std::sync::Arc;
        let row = |n| HistoryRow {
            backend: Arc::from("openai"),
            model: Arc::from("gpt"),
            requests: n,
            errors: 0,
            mean_latency_ms: 1.0,
            input_tokens: 0,
            output_tokens: 0,
        };
        let minutes = vec![
            Minute {
                start_ms: 0,
                rows: vec![row(2)],
            },
            Minute {
                start_ms: 60_000,
                rows: vec![],
            },
            Minute {
                start_ms: 120_000,
                rows: vec![row(4)],
            },
        ];
        let keys = vec![("openai".to_owned(), "gpt".to_owned())];
        let c = chart(&minutes, &keys, "t", "", |r| r.requests as f64);
        assert_eq!(c.top, "5");
        assert_eq!(c.series[0].label, "openai:gpt");
        assert_eq!(c.series[0].points, "0.0,96.0 300.0,160.0 600.0,32.0");
        let dots: Vec<(&str, &str)> = c.series[0]
            .dots
            .iter()
            .map(|(x, y)| (x.as_str(), y.as_str()))
            .collect();
        assert_eq!(
            dots,
            [("0.0", "96.0"), ("600.0", "32.0")],
            "where there were requests"
        );
        let t = totals(&minutes);
        assert_eq!((t[0].requests, t[0].mean_latency.as_str()), (6, "1.0 ms"));
    }

    #[test]
    fn the_x_axis_is_always_the_last_hour() {
        let now = 7_200_000 + 30_000; // 30 s into minute 120
        let fresh = last_hour(
            vec![Minute {
                start_ms: 7_200_000,
                rows: vec![],
            }],
            now,
        );
        assert_eq!(fresh.len(), 61);
        assert_eq!(fresh[0].start_ms, 3_600_000);
        assert_eq!(fresh[60].start_ms, 7_200_000);
        assert!(
            fresh
                .windows(2)
                .all(|w| w[1].start_ms == w[0].start_ms + 60_000)
        );
        // Early in the epoch (a test clock): no minute before zero.
        assert_eq!(last_hour(Vec::new(), 90_000)[0].start_ms, 0);
    }
}
