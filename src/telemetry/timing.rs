//! The two latency histograms (`portcullis_request_duration_seconds`,
//! `portcullis_time_to_first_byte_seconds`), kept here rather than in the Prometheus exporter:
//! a request's sample is one bucket's atomic add and the sum's, where the exporter's histogram
//! queued every sample (an epoch-guarded bucket per handle) for the upkeep job to sort into
//! buckets later — ~300 instructions per request and a block of memory per 64 samples
//! (bench/PROFILE.md §21). Rendered in the exporter's own text format (its `formatting`
//! helpers), so `/metrics` reads the same.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::formatting::{
    sanitize_label_key, sanitize_label_value, write_help_line, write_type_line,
};

/// Latency buckets in seconds: model calls run from milliseconds (a cached token count) to
/// minutes (a long stream).
pub(super) const LATENCY_BUCKETS: [f64; BOUNDS] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// How many bounds; a histogram has one bucket more (`+Inf`).
const BOUNDS: usize = 17;

/// The same bounds in nanoseconds, for the comparison a sample makes.
const BOUNDS_NANOS: [u64; BOUNDS] = {
    let mut out = [0u64; BOUNDS];
    let mut i = 0;
    while i < out.len() {
        out[i] = (LATENCY_BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// One histogram: a count per bucket (the last past every bound, `+Inf`) and the sum.
#[derive(Default)]
pub(super) struct Histogram {
    counts: [AtomicU64; BOUNDS + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Counts one sample: in the first bucket whose bound it does not pass (`le`).
    pub(super) fn record(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NANOS.partition_point(|&b| b < nanos);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The cumulative count of each bound, then of `+Inf` (the total), and the sum in seconds.
    fn snapshot(&self) -> ([u64; BOUNDS + 1], f64) {
        let mut out = [0u64; BOUNDS + 1];
        let mut running = 0u64;
        for (o, c) in out.iter_mut().zip(&self.counts) {
            running += c.load(Ordering::Relaxed);
            *o = running;
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (out, sum)
    }
}

/// The histograms of one label set (route, protocol, backend, model): every status of it
/// shares them, as the exporter's handles for the same key did.
pub(super) struct Timed {
    /// `route="…",protocol="…",backend="…",model="…"`, escaped once when made.
    labels: String,
    route: &'static str,
    protocol: &'static str,
    backend: Box<str>,
    model: Box<str>,
    pub(super) latency: Histogram,
    pub(super) ttfb: Histogram,
}

impl Timed {
    pub(super) fn new(
        route: &'static str,
        protocol: &'static str,
        backend: &str,
        model: &str,
    ) -> Self {
        let mut labels = String::new();
        for (i, (k, v)) in [
            ("route", route),
            ("protocol", protocol),
            ("backend", backend),
            ("model", model),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                labels.push(',');
            }
            let _ = write!(
                labels,
                "{}=\"{}\"",
                sanitize_label_key(k),
                sanitize_label_value(v)
            );
        }
        Self {
            labels,
            route,
            protocol,
            backend: backend.into(),
            model: model.into(),
            latency: Histogram::default(),
            ttfb: Histogram::default(),
        }
    }

    pub(super) fn matches(&self, route: &str, protocol: &str, backend: &str, model: &str) -> bool {
        self.route == route
            && self.protocol == protocol
            && *self.backend == *backend
            && *self.model == *model
    }
}

/// Appends the two histogram families, as the exporter writes histograms: the help and type
/// lines, each label set's buckets, `+Inf`, sum and count, and a blank line after the family.
/// Nothing for a family without series.
pub(super) fn render(
    out: &mut String,
    timed: &[std::sync::Arc<Timed>],
    help: impl Fn(&str) -> &'static str,
) {
    if timed.is_empty() {
        return;
    }
    for (name, pick) in [
        (
            "portcullis_request_duration_seconds",
            (|t: &Timed| &t.latency) as fn(&Timed) -> &Histogram,
        ),
        ("portcullis_time_to_first_byte_seconds", |t: &Timed| &t.ttfb),
    ] {
        write_help_line(out, name, None, None, help(name));
        write_type_line(out, name, None, None, "histogram");
        for t in timed {
            let (cumulative, sum) = pick(t).snapshot();
            for (le, n) in LATENCY_BUCKETS.iter().zip(&cumulative) {
                let _ = writeln!(out, "{name}_bucket{{{},le=\"{le}\"}} {n}", t.labels);
            }
            let total = cumulative[BOUNDS];
            let _ = writeln!(out, "{name}_bucket{{{},le=\"+Inf\"}} {total}", t.labels);
            let _ = writeln!(out, "{name}_sum{{{}}} {sum}", t.labels);
            let _ = writeln!(out, "{name}_count{{{}}} {total}", t.labels);
        }
        out.push('\n');
    }
}
