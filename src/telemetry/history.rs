//! The last hour of traffic per backend and model, a minute at a time, for the admin console's
//! charts: each (backend, model) keeps running totals in atomics the request path adds to
//! ([`Tally`]); the upkeep job closes a minute by taking the difference from the totals at the
//! previous close. Sixty closed minutes are kept; the current one is read live.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::RequestSample;

/// A backend and a model.
type Pair = (Arc<str>, Arc<str>);

/// Closed minutes kept.
pub const MINUTES: usize = 60;

const MINUTE_MS: u64 = 60_000;

/// Running totals of one backend and model.
#[derive(Debug, Default)]
pub(super) struct Tally {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

impl Tally {
    pub(super) fn add(&self, s: &RequestSample<'_>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if s.status >= 500 || s.status == 429 || s.stream_error.is_some() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        self.input_tokens
            .fetch_add(s.input_tokens, Ordering::Relaxed);
        self.output_tokens
            .fetch_add(s.output_tokens, Ordering::Relaxed);
    }

    fn read(&self) -> Totals {
        Totals {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us: self.latency_us.load(Ordering::Relaxed),
            input_tokens: self.input_tokens.load(Ordering::Relaxed),
            output_tokens: self.output_tokens.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Totals {
    requests: u64,
    errors: u64,
    latency_us: u64,
    input_tokens: u64,
    output_tokens: u64,
}

impl Totals {
    fn since(self, before: Totals) -> Totals {
        Totals {
            requests: self.requests.saturating_sub(before.requests),
            errors: self.errors.saturating_sub(before.errors),
            latency_us: self.latency_us.saturating_sub(before.latency_us),
            input_tokens: self.input_tokens.saturating_sub(before.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(before.output_tokens),
        }
    }
}

/// One backend and model in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Backend name (empty: requests no backend served, such as refusals).
    pub backend: Arc<str>,
    /// Upstream model.
    pub model: Arc<str>,
    /// Requests answered.
    pub requests: u64,
    /// Of them, answered 5xx or 429 or ended by a broken stream.
    pub errors: u64,
    /// Mean latency in milliseconds (0 without requests).
    pub mean_latency_ms: f64,
    /// Input tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
}

/// One minute of traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Minute {
    /// Its start (ms since the epoch, a multiple of 60,000).
    pub start_ms: u64,
    /// Every backend and model with requests in it.
    pub rows: Vec<HistoryRow>,
}

/// The tallies and the closed minutes.
#[derive(Debug, Default)]
pub struct History {
    tallies: Mutex<HashMap<Pair, Arc<Tally>>>,
    closed: Mutex<Closed>,
}

#[derive(Debug, Default)]
struct Closed {
    /// The start of the minute being counted now (0 before the first roll).
    current: u64,
    /// The totals when it began.
    base: HashMap<Pair, Totals>,
    minutes: VecDeque<Minute>,
}

impl History {
    /// The tally of `backend` and `model` (made on first use; a request series holds it).
    pub(super) fn tally(&self, backend: &str, model: &str) -> Arc<Tally> {
        let mut t = self
            .tallies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.entry((Arc::from(backend), Arc::from(model)))
            .or_default()
            .clone()
    }

    fn totals(&self) -> Vec<(Pair, Totals)> {
        let t = self
            .tallies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.iter().map(|(k, v)| (k.clone(), v.read())).collect()
    }

    /// Closes the minutes that ended by `now_ms` (the upkeep job, every few seconds). The
    /// requests of a minute the job missed (a stalled process) count in the first minute closed
    /// after it; the minutes in between are empty.
    pub(super) fn roll(&self, now_ms: u64) {
        let minute = now_ms - now_ms % MINUTE_MS;
        let mut c = self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.current == 0 {
            c.current = minute;
            c.base = self.totals().into_iter().collect();
            return;
        }
        if minute <= c.current {
            return;
        }
        let now = self.totals();
        let rows = rows(&now, &c.base);
        let start = c.current;
        c.minutes.push_back(Minute {
            start_ms: start,
            rows,
        });
        // Minutes with no roll in them (a stalled process): empty, the last hour's at most.
        let empty = ((minute - start) / MINUTE_MS).saturating_sub(1);
        for k in empty.saturating_sub(MINUTES as u64)..empty {
            c.minutes.push_back(Minute {
                start_ms: start + (k + 1) * MINUTE_MS,
                rows: Vec::new(),
            });
        }
        while c.minutes.len() > MINUTES {
            c.minutes.pop_front();
        }
        c.current = minute;
        c.base = now.into_iter().collect();
    }

    /// The closed minutes, oldest first, then the current one so far.
    pub(super) fn minutes(&self, now_ms: u64) -> Vec<Minute> {
        let c = self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<Minute> = c.minutes.iter().cloned().collect();
        let start = if c.current == 0 {
            now_ms - now_ms % MINUTE_MS
        } else {
            c.current
        };
        out.push(Minute {
            start_ms: start,
            rows: rows(&self.totals(), &c.base),
        });
        out
    }
}

/// The rows with requests: `now` less `base`, sorted by backend and model.
fn rows(now: &[(Pair, Totals)], base: &HashMap<Pair, Totals>) -> Vec<HistoryRow> {
    let mut rows: Vec<HistoryRow> = now
        .iter()
        .filter_map(|(k, t)| {
            let d = t.since(base.get(k).copied().unwrap_or_default());
            (d.requests > 0).then(|| HistoryRow {
                backend: k.0.clone(),
                model: k.1.clone(),
                requests: d.requests,
                errors: d.errors,
                mean_latency_ms: d.latency_us as f64 / 1000.0 / d.requests as f64,
                input_tokens: d.input_tokens,
                output_tokens: d.output_tokens,
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.backend, &a.model).cmp(&(&b.backend, &b.model)));
    rows
}
