//! What a run measured: HDR histograms (microseconds) of latency, time to first byte, each
//! stream chunk's arrival and the scheduler's lag, plus counts of successes and errors by kind.
//! Runs of the same target merge, so interleaved rounds add up to one figure.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Stream content chunks timed individually (the streaming scenario sends 8).
pub(crate) const MAX_CHUNKS: usize = 8;

/// Largest value a histogram holds: 120 s in microseconds (larger values saturate).
const HIGHEST_US: u64 = 120_000_000;

/// Microseconds in `d`, saturating.
pub(crate) fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts; fall back to an auto-resizing one anyway.
    Histogram::new_with_bounds(1, HIGHEST_US, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable_histogram())
}

#[allow(clippy::panic)]
fn unreachable_histogram() -> Histogram<u64> {
    panic!("hdrhistogram rejected constant bounds")
}

/// Errors by kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct Errors {
    /// A response with a non-2xx status.
    pub(crate) status: u64,
    /// Connect, write or read failures.
    pub(crate) io: u64,
    /// No complete response within the per-request deadline.
    pub(crate) timeout: u64,
    /// Due but not sent: the in-flight cap was reached.
    pub(crate) not_sent: u64,
    /// The `status` errors by HTTP status.
    pub(crate) by_status: std::collections::BTreeMap<u16, u64>,
}

impl Errors {
    pub(crate) fn total(&self) -> u64 {
        self.status + self.io + self.timeout + self.not_sent
    }
}

/// Everything one target's runs measured.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    /// Due time → last body byte, successful requests only.
    pub(crate) latency: Histogram<u64>,
    /// Due time → first body byte.
    pub(crate) ttfb: Histogram<u64>,
    /// Due time → arrival of content chunk `k` (streams only).
    pub(crate) chunks: Vec<Histogram<u64>>,
    /// Due time → the moment a worker took the request (how far the loader fell behind).
    pub(crate) lag: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) errors: Errors,
    /// Requests due (open loop) or asked for (closed loop).
    pub(crate) offered: u64,
    /// Sum over runs of first due time → last completion.
    pub(crate) elapsed: Duration,
    /// Fewest and most content chunks seen in one successful stream.
    pub(crate) chunk_range: Option<(usize, usize)>,
    pub(crate) first_error: Option<String>,
    /// CPU time (user + system) the server's processes used during the runs, when metered.
    pub(crate) cpu: Option<Duration>,
    /// The same for the upstream (the mock) behind it.
    pub(crate) upstream_cpu: Option<Duration>,
    last_end: Option<Instant>,
}

impl Stats {
    pub(crate) fn new(stream: bool) -> Self {
        let n = if stream { MAX_CHUNKS } else { 0 };
        Self {
            latency: histogram(),
            ttfb: histogram(),
            chunks: (0..n).map(|_| histogram()).collect(),
            lag: histogram(),
            ok: 0,
            errors: Errors::default(),
            offered: 0,
            elapsed: Duration::ZERO,
            chunk_range: None,
            first_error: None,
            cpu: None,
            upstream_cpu: None,
            last_end: None,
        }
    }

    pub(crate) fn completed(&self) -> u64 {
        self.ok + self.errors.status + self.errors.io + self.errors.timeout
    }

    pub(crate) fn note_end(&mut self, end: Instant) {
        if self.last_end.is_none_or(|t| end > t) {
            self.last_end = Some(end);
        }
    }

    pub(crate) fn note_error(&mut self, msg: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(msg());
        }
    }

    pub(crate) fn note_chunks(&mut self, n: usize) {
        self.chunk_range = Some(match self.chunk_range {
            None => (n, n),
            Some((lo, hi)) => (lo.min(n), hi.max(n)),
        });
    }

    /// Closes a run that started at `start`.
    pub(crate) fn finish(&mut self, start: Instant) {
        if let Some(end) = self.last_end {
            self.elapsed = end.saturating_duration_since(start);
        }
    }

    /// Adds another run of the same target.
    pub(crate) fn merge(&mut self, other: &Self) {
        let _ = self.latency.add(&other.latency);
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.lag.add(&other.lag);
        for (a, b) in self.chunks.iter_mut().zip(&other.chunks) {
            let _ = a.add(b);
        }
        self.ok += other.ok;
        self.errors.status += other.errors.status;
        self.errors.io += other.errors.io;
        self.errors.timeout += other.errors.timeout;
        self.errors.not_sent += other.errors.not_sent;
        for (code, n) in &other.errors.by_status {
            *self.errors.by_status.entry(*code).or_default() += n;
        }
        self.offered += other.offered;
        self.elapsed += other.elapsed;
        if let Some((lo, hi)) = other.chunk_range {
            self.note_chunks(lo);
            self.note_chunks(hi);
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.cpu = crate::cpu::add(self.cpu, other.cpu);
        self.upstream_cpu = crate::cpu::add(self.upstream_cpu, other.upstream_cpu);
    }

    /// Server CPU per answered request, µs.
    pub(crate) fn cpu_us(&self) -> Option<f64> {
        crate::cpu::per_request_us(self.cpu, self.completed())
    }

    /// Upstream (mock) CPU per answered request, µs.
    pub(crate) fn upstream_cpu_us(&self) -> Option<f64> {
        crate::cpu::per_request_us(self.upstream_cpu, self.completed())
    }

    /// Successful requests per second of run time.
    pub(crate) fn achieved_rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let ok = self.ok as f64;
        if secs > 0.0 { ok / secs } else { 0.0 }
    }

    pub(crate) fn summary(&self) -> Summary {
        Summary::of(&self.latency)
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) count: u64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

impl Summary {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        #[allow(clippy::cast_precision_loss)]
        let max = h.max() as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: ms(0.50),
            p90: ms(0.90),
            p99: ms(0.99),
            p999: ms(0.999),
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::new(true);
        let mut b = Stats::new(true);
        a.ok = 2;
        a.latency.saturating_record(100);
        a.latency.saturating_record(300);
        b.ok = 1;
        b.errors.timeout = 1;
        b.latency.saturating_record(200);
        b.note_chunks(8);
        b.cpu = Some(Duration::from_millis(3));
        a.merge(&b);
        assert_eq!(a.cpu_us(), Some(750.0));
        assert_eq!(a.upstream_cpu_us(), None);
        assert_eq!(a.ok, 3);
        assert_eq!(a.completed(), 4);
        assert_eq!(a.summary().count, 3);
        assert!((a.summary().p50 - 0.2).abs() < 1e-9);
        assert_eq!(a.chunk_range, Some((8, 8)));
    }
}
