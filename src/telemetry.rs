//! Operational metrics: what `/metrics` shows in the Prometheus text format (through the
//! `metrics` facade and its Prometheus exporter, on a recorder this state owns — no global), and
//! the last hour of traffic per backend and model that the admin console charts ([`history`]).
//!
//! Recording a request costs one hash lookup under a read lock (its series of handles, made once
//! per route × protocol × backend × model × status) and a few atomic adds, the latency
//! histograms' included (kept in [`timing`], outside the exporter, and appended to its text).
//! Values that live elsewhere (open connections, the credential pool, lockouts, backend error
//! counts) are not pushed here: the `/metrics` handler reads them at scrape time and sets them
//! through [`Scrape`]. Nothing here reads the rest of the gateway. Label values are bounded: a
//! route is a fixed name, a status a number, and at most [`MAX_SERIES`] series exist (past it,
//! new combinations count under `model="other"`).

pub mod events;
pub mod history;
mod timing;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use metrics::{Counter, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::jobs::Job;
pub use events::{EventLog, EventRecord, Recording};
pub use history::{History, HistoryRow, Minute};

/// Most request series kept (route × protocol × backend × model × status).
pub const MAX_SERIES: usize = 5_000;

/// The model label of requests past [`MAX_SERIES`].
const OVERFLOW_MODEL: &str = "other";

/// One finished request, as the access-log layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample<'a> {
    /// The operation (`chat_completions`, `messages`, …) or the route group (`management`, …).
    pub route: &'static str,
    /// The caller's protocol (`openai`, `anthropic`, `gemini`), empty outside the model API.
    pub protocol: &'static str,
    /// The backend that served it, if one was chosen.
    pub backend: Option<&'a str>,
    /// The model as sent upstream.
    pub model: Option<&'a str>,
    /// The status the client got.
    pub status: u16,
    /// Until the response body ended (or the client left).
    pub latency: Duration,
    /// Until the response headers.
    pub ttfb: Duration,
    /// Input tokens the upstream reported (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Why a stream ended early (`upstream_error_event`, `upstream_broke`, …).
    pub stream_error: Option<&'static str>,
}

/// The gateway's metrics; cheap to clone. Off (every call free, `/metrics` 404) when built with
/// [`Telemetry::off`].
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
    /// Kept with metrics on or off: the console lists recent events either way.
    events: Arc<EventLog>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Hashes a sample's labels (seeded per process; foldhash is several times cheaper than
    /// SipHash on these short strings, and the labels are bounded by `MAX_SERIES` anyway).
    hasher: foldhash::fast::RandomState,
    /// The series by the hash of their labels (already a hash: not hashed again).
    series: RwLock<SeriesMap>,
    /// The latency histograms by label set (their count is bounded by the series').
    timed: Mutex<Vec<Arc<timing::Timed>>>,
    /// Series made so far (at most [`MAX_SERIES`]).
    made: std::sync::atomic::AtomicUsize,
    streams: AtomicI64,
    history: History,
}

/// The handles of one request series.
struct Series {
    route: &'static str,
    protocol: &'static str,
    backend: Box<str>,
    model: Box<str>,
    status: u16,
    requests: Counter,
    /// The latency histograms of its route, protocol, backend and model (shared by statuses).
    timed: Arc<timing::Timed>,
    input: Counter,
    output: Counter,
    cached: Counter,
    /// The history's tally; none for requests no backend served (refusals, the gateway's own
    /// pages): the charts are per backend and model.
    tally: Option<Arc<history::Tally>>,
}

/// Static metadata for handles this module registers.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect();
    Key::from_parts(name, labels)
}

impl Telemetry {
    /// Metrics off.
    pub fn off() -> Self {
        Self::default()
    }

    /// Metrics on, with the process's build information as `portcullis_build_info`.
    pub fn new(version: &str) -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let inner = Arc::new(Inner {
            recorder,
            handle,
            hasher: foldhash::fast::RandomState::default(),
            series: RwLock::new(HashMap::default()),
            timed: Mutex::new(Vec::new()),
            made: std::sync::atomic::AtomicUsize::new(0),
            streams: AtomicI64::new(0),
            history: History::default(),
        });
        let t = Self {
            inner: Some(inner),
            events: Arc::default(),
        };
        t.describe();
        if let Some(i) = &t.inner {
            let info = key("portcullis_build_info", &[("version", version)]);
            i.recorder.register_gauge(&info, &METADATA).set(1.0);
        }
        t
    }

    /// True when metrics are recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    fn describe(&self) {
        let Some(i) = &self.inner else { return };
        let r = &i.recorder;
        for (name, unit, help) in DESCRIPTIONS {
            let (name, help) = (
                metrics::KeyName::from(*name),
                metrics::SharedString::from(*help),
            );
            match unit {
                Kind::Counter => r.describe_counter(name, None, help),
                Kind::Gauge => r.describe_gauge(name, None, help),
                // Rendered by `timing`, which writes their help itself.
                Kind::Seconds => {}
            }
        }
    }

    /// Records a finished request.
    pub fn request(&self, s: &RequestSample<'_>) {
        let Some(i) = &self.inner else { return };
        let series = i.series_for(s);
        series.requests.increment(1);
        series.timed.latency.record(s.latency);
        series.timed.ttfb.record(s.ttfb);
        for (counter, n) in [
            (&series.input, s.input_tokens),
            (&series.output, s.output_tokens),
            (&series.cached, s.cached_tokens),
        ] {
            if n > 0 {
                counter.increment(n);
            }
        }
        if let Some(why) = s.stream_error {
            let k = key(
                "portcullis_upstream_errors_total",
                &[
                    ("backend", s.backend.unwrap_or("")),
                    ("class", stream_error_class(why)),
                ],
            );
            i.recorder.register_counter(&k, &METADATA).increment(1);
        }
        if let Some(t) = &series.tally {
            t.add(s);
        }
    }

    /// Counts a refused credential: `kind` is what was presented (`api_key`, `agent_token`,
    /// `virtual_key`, `jwt`, `management_key`, …), `reason` why (`missing`, `invalid`,
    /// `blocked`, …).
    pub fn auth_failure(&self, kind: &'static str, reason: &'static str) {
        let Some(i) = &self.inner else { return };
        let k = key(
            "portcullis_auth_failures_total",
            &[("kind", kind), ("reason", reason)],
        );
        i.recorder.register_counter(&k, &METADATA).increment(1);
    }

    /// Counts an operator event (`auth_blocked`, `credential_needs_login`, …).
    pub fn operator_event(&self, kind: &'static str) {
        let Some(i) = &self.inner else { return };
        let k = key("portcullis_operator_events_total", &[("kind", kind)]);
        i.recorder.register_counter(&k, &METADATA).increment(1);
    }

    /// The recent operator events.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// A stream is being relayed until the guard drops.
    pub fn stream(&self) -> StreamGuard {
        if let Some(i) = &self.inner {
            i.streams.fetch_add(1, Ordering::Relaxed);
        }
        StreamGuard {
            inner: self.inner.clone(),
        }
    }

    /// Streams being relayed now.
    pub fn streams_in_flight(&self) -> i64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.streams.load(Ordering::Relaxed))
    }

    /// The last hour of traffic per backend and model, oldest minute first, the current
    /// (unfinished) minute last; empty when metrics are off.
    pub fn history(&self, now_ms: u64) -> Vec<Minute> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, |i| i.history.minutes(now_ms))
    }

    /// The exposition: values read at scrape time set through `scrape`, then everything in the
    /// Prometheus text format. `None` when metrics are off.
    pub fn render(&self, scrape: impl FnOnce(&mut Scrape<'_>)) -> Option<String> {
        let i = self.inner.as_ref()?;
        let mut s = Scrape { inner: i };
        s.gauge(
            "portcullis_streams_in_flight",
            &[],
            i.streams.load(Ordering::Relaxed) as f64,
        );
        scrape(&mut s);
        let mut text = i.handle.render();
        let timed = i
            .timed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        timing::render(&mut text, &timed, help_of);
        Some(text)
    }

    /// The job that ages the exporter's handles and closes history minutes (`telemetry.upkeep`,
    /// every 5 s); none when metrics are off.
    pub fn jobs(&self) -> Vec<Job> {
        let Some(i) = self.inner.clone() else {
            return Vec::new();
        };
        vec![Job::new(
            "telemetry.upkeep",
            Duration::from_secs(5),
            move |now_ms| {
                let i = i.clone();
                async move {
                    i.handle.run_upkeep();
                    i.history.roll(now_ms);
                }
            },
        )]
    }
}

/// Values the `/metrics` handler reads from the rest of the gateway at scrape time.
pub struct Scrape<'a> {
    inner: &'a Inner,
}

impl Scrape<'_> {
    /// Sets a gauge.
    pub fn gauge(&mut self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let k = key(name, labels);
        self.inner.recorder.register_gauge(&k, &METADATA).set(value);
    }

    /// Sets a counter kept elsewhere (it only grows there) to its current total.
    pub fn counter(&mut self, name: &'static str, labels: &[(&'static str, &str)], total: u64) {
        let k = key(name, labels);
        self.inner
            .recorder
            .register_counter(&k, &METADATA)
            .absolute(total);
    }
}

/// Counts a relayed stream until dropped.
#[derive(Default)]
pub struct StreamGuard {
    inner: Option<Arc<Inner>>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(i) = &self.inner {
            i.streams.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

type SeriesMap = HashMap<u64, Vec<Arc<Series>>, BuildHasherDefault<LabelHash>>;

/// The hasher of [`Inner::series`]: its keys are hashes already, taken as they are.
#[derive(Default)]
struct LabelHash(u64);

impl Hasher for LabelHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; any other input still spreads.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Inner {
    fn hash(&self, s: &RequestSample<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        (
            s.route,
            s.protocol,
            s.backend.unwrap_or(""),
            s.model.unwrap_or(""),
        )
            .hash(&mut h);
        s.status.hash(&mut h);
        h.finish()
    }

    /// The series of `s`: found under the read lock, else made (past [`MAX_SERIES`], the
    /// overflow series of its route, backend and status).
    fn series_for(&self, s: &RequestSample<'_>) -> Arc<Series> {
        let h = self.hash(s);
        let found = |map: &SeriesMap, h: u64, s: &RequestSample<'_>| {
            map.get(&h)?.iter().find(|x| x.matches(s)).cloned()
        };
        if let Some(x) = self.series.read().ok().and_then(|m| found(&m, h, s)) {
            return x;
        }
        let full = self.made.load(Ordering::Relaxed) >= MAX_SERIES;
        let (h, s) = if full && s.model != Some(OVERFLOW_MODEL) {
            let over = RequestSample {
                model: Some(OVERFLOW_MODEL),
                ..*s
            };
            (self.hash(&over), over)
        } else {
            (h, *s)
        };
        let mut map = self
            .series
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(x) = found(&map, h, &s) {
            return x;
        }
        let x = Arc::new(self.make(&s));
        map.entry(h).or_default().push(x.clone());
        self.made.fetch_add(1, Ordering::Relaxed);
        x
    }

    fn make(&self, s: &RequestSample<'_>) -> Series {
        let r = &self.recorder;
        let backend = s.backend.unwrap_or("");
        let model = s.model.unwrap_or("");
        let status = s.status.to_string();
        let request_labels = [
            ("route", s.route),
            ("protocol", s.protocol),
            ("backend", backend),
            ("model", model),
            ("status", status.as_str()),
        ];
        let tokens = |direction| {
            let k = key(
                "portcullis_tokens_total",
                &[
                    ("backend", backend),
                    ("model", model),
                    ("direction", direction),
                ],
            );
            r.register_counter(&k, &METADATA)
        };
        Series {
            route: s.route,
            protocol: s.protocol,
            backend: backend.into(),
            model: model.into(),
            status: s.status,
            requests: r.register_counter(
                &key("portcullis_requests_total", &request_labels),
                &METADATA,
            ),
            timed: self.timed_for(s.route, s.protocol, backend, model),
            input: tokens("input"),
            output: tokens("output"),
            cached: tokens("cached"),
            tally: s.backend.map(|b| self.history.tally(b, model)),
        }
    }
}

impl Inner {
    /// The histograms of a label set, made on its first request (not on the request path
    /// afterwards: a series holds them).
    fn timed_for(
        &self,
        route: &'static str,
        protocol: &'static str,
        backend: &str,
        model: &str,
    ) -> Arc<timing::Timed> {
        let mut all = self
            .timed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = all
            .iter()
            .find(|t| t.matches(route, protocol, backend, model))
        {
            return t.clone();
        }
        let t = Arc::new(timing::Timed::new(route, protocol, backend, model));
        all.push(t.clone());
        t
    }
}

/// The help text of a metric in [`DESCRIPTIONS`].
fn help_of(name: &str) -> &'static str {
    DESCRIPTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or("", |(_, _, help)| help)
}

impl Series {
    fn matches(&self, s: &RequestSample<'_>) -> bool {
        self.route == s.route
            && self.protocol == s.protocol
            && self.status == s.status
            && *self.backend == *s.backend.unwrap_or("")
            && *self.model == *s.model.unwrap_or("")
    }
}

/// The error class of a stream that ended early.
fn stream_error_class(why: &str) -> &'static str {
    match why {
        "upstream_error_event" => "stream_error_event",
        _ => "stream_broken",
    }
}

enum Kind {
    Counter,
    Gauge,
    Seconds,
}

/// Every metric's help text (README lists them too).
const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        "portcullis_build_info",
        Kind::Gauge,
        "Always 1; the version label says which build runs.",
    ),
    (
        "portcullis_requests_total",
        Kind::Counter,
        "Requests answered, by route, caller protocol, backend, upstream model and status.",
    ),
    (
        "portcullis_request_duration_seconds",
        Kind::Seconds,
        "Time from the request to the end of its answer (a stream's whole length).",
    ),
    (
        "portcullis_time_to_first_byte_seconds",
        Kind::Seconds,
        "Time from the request to its answer's status and headers.",
    ),
    (
        "portcullis_tokens_total",
        Kind::Counter,
        "Tokens the upstreams reported, by backend, model and direction (input includes cached).",
    ),
    (
        "portcullis_upstream_errors_total",
        Kind::Counter,
        "Failed upstream attempts by backend and class (rate_limited, quota_exhausted, rejected, server, transport, client; stream_broken, stream_error_event for streams that ended early).",
    ),
    (
        "portcullis_auth_failures_total",
        Kind::Counter,
        "Refused client credentials by kind presented and reason.",
    ),
    (
        "portcullis_lockouts_total",
        Kind::Counter,
        "Failed attempts that started or extended a brute-force block in this instance, by scope (address, account).",
    ),
    (
        "portcullis_lockouts_tracked",
        Kind::Gauge,
        "Addresses or accounts with recent failures or a block in this instance's table.",
    ),
    (
        "portcullis_credential_cooldowns_total",
        Kind::Counter,
        "Cooldowns this instance started on upstream credentials, by backend.",
    ),
    (
        "portcullis_credentials",
        Kind::Gauge,
        "Upstream credentials by backend and state (active, rate_limited, rejected, quota_exceeded, cooling_down, exhausted, expired, needs_login).",
    ),
    (
        "portcullis_credential_quota_remaining_tokens",
        Kind::Gauge,
        "Tokens left in the current quota period of each credential with a limit.",
    ),
    (
        "portcullis_streams_in_flight",
        Kind::Gauge,
        "Streamed answers being relayed now.",
    ),
    (
        "portcullis_connections_open",
        Kind::Gauge,
        "Client connections open now.",
    ),
    (
        "portcullis_connections_total",
        Kind::Counter,
        "Client connections by outcome (accepted, refused at the cap, header or idle timeout).",
    ),
    (
        "portcullis_buffered_answer_bytes",
        Kind::Gauge,
        "Room taken by non-streamed upstream answers read whole, and the limit.",
    ),
    (
        "portcullis_operator_events_total",
        Kind::Counter,
        "Operator events (lockouts, credentials needing login, quota exhausted, refresh failures) by kind.",
    ),
    (
        "portcullis_uptime_seconds",
        Kind::Gauge,
        "Seconds since this instance started.",
    ),
];

#[cfg(test)]
mod tests;
