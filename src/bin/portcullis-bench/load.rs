//! The load driver: offers requests at an open-loop constant rate (or closed-loop, back to
//! back, for the memory soak) over a fixed set of keep-alive HTTP/1.1 connections, and records
//! latency in HDR histograms.
//!
//! Open loop: request `i` is due at `start + i / rate`. A dedicated pacer thread sleeps until
//! each due time (tokio's timer ticks in whole milliseconds, far too coarse for a 1,000 rps
//! schedule) and queues the due time; connection workers take due times off the queue. Latency
//! is measured from the due time, never from the actual send, so a loader or server that falls
//! behind shows up in the figures instead of being hidden (no coordinated omission); how late
//! requests actually left is recorded separately (`lag`). In-flight requests (queued or on the
//! wire) are capped; a request that would exceed the cap is not sent and counts as an error.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::cpu::{self, Meter};
use crate::stats::{Stats, us};

/// Where requests go.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// `Authorization` header value, if any.
    pub(crate) auth: Option<HeaderValue>,
    /// When not empty, request `i` sends `rotate_auth[i % len]` instead of `auth` (an attack's
    /// many credentials).
    pub(crate) rotate_auth: Arc<[HeaderValue]>,
    /// When not empty, connection `j` binds to `sources[j % len]` (many client addresses in
    /// 127.0.0.0/8).
    pub(crate) sources: Arc<[IpAddr]>,
    /// The server's processes, whose CPU time each run records.
    pub(crate) meter: Meter,
    /// The upstream (the mock) behind it, recorded too as a reference.
    pub(crate) upstream: Meter,
}

impl Target {
    /// A target sending `auth` (if any) on every request from the default source address.
    pub(crate) fn new(addr: SocketAddr, auth: Option<HeaderValue>) -> Self {
        Self {
            addr,
            auth,
            rotate_auth: Arc::from(Vec::new()),
            sources: Arc::from(Vec::new()),
            meter: Meter::Off,
            upstream: Meter::Off,
        }
    }

    /// The same target with the CPU time of `server` and of its `upstream` recorded per run.
    pub(crate) fn metered(self, server: Meter, upstream: Meter) -> Self {
        Self {
            meter: server,
            upstream,
            ..self
        }
    }
}

/// What each request is.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub(crate) path: &'static str,
    pub(crate) body: Bytes,
    pub(crate) x_mock: Option<HeaderValue>,
    /// Scan the body as SSE and time each content chunk.
    pub(crate) stream: bool,
}

/// How requests are offered.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pace {
    /// `rate` requests per second for `duration`, scheduled in advance.
    Open { rate: f64, duration: Duration },
    /// `requests` in total, each connection sending its next as soon as the last one ended.
    Closed { requests: u64 },
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunSpec {
    pub(crate) pace: Pace,
    pub(crate) connections: usize,
    /// Per-request deadline (headers and whole body).
    pub(crate) timeout: Duration,
    /// Requests queued or on the wire at most; beyond it a due request is not sent.
    pub(crate) max_in_flight: usize,
}

type Sender = SendRequest<Full<Bytes>>;

/// Opens one keep-alive connection with `TCP_NODELAY`, from `source` when given.
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<Sender, String> {
    let tcp = match source {
        None => TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(|e| format!("socket: {e}"))?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
            socket
                .connect(addr)
                .await
                .map_err(|e| format!("connect {addr} from {ip}: {e}"))?
        }
    };
    tcp.set_nodelay(true)
        .map_err(|e| format!("set_nodelay: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Lowers this thread's timer slack (default 50 µs) so the pacer wakes on time. Best effort.
fn lower_timer_slack() {
    if let Ok(link) = std::fs::read_link("/proc/thread-self")
        && let Some(tid) = link.file_name()
    {
        let path = std::path::Path::new("/proc")
            .join(tid)
            .join("timerslack_ns");
        let _ = std::fs::write(path, "1000");
    }
}

/// How long before a due time the pacer stops sleeping and spins: a sleep on this kind of
/// machine (a VM) overshoots by ~50 µs at the median even with a 1 µs timer slack.
const SPIN: Duration = Duration::from_micros(100);

/// Above this rate the pacer only sleeps: spinning between requests this close together would
/// take a whole core from the servers under test, and a ~50 µs late send does not matter at
/// rates measured against a 5 ms bound.
const SPIN_MAX_RATE: f64 = 4000.0;

/// Sleeps, then spins for the last `spin`, until `due`.
#[allow(clippy::disallowed_methods)] // a dedicated OS thread; tokio's 1 ms timer is too coarse
fn wait_until(due: Instant, spin: Duration) {
    let now = Instant::now();
    if due > now + spin {
        std::thread::sleep(due - now - spin);
    }
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

/// The pacer thread: queues each due time at that time; stops early once the queue is closed.
fn pace(start: Instant, rate: f64, n: u64, tx: mpsc::UnboundedSender<Instant>, shared: &Shared) {
    lower_timer_slack();
    let interval = 1e9 / rate;
    let spin = if rate <= SPIN_MAX_RATE {
        SPIN
    } else {
        Duration::ZERO
    };
    for i in 0..n {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let due = start + Duration::from_nanos((i as f64 * interval) as u64);
        wait_until(due, spin);
        if shared.in_flight.load(Ordering::Acquire) >= shared.max_in_flight {
            shared.not_sent.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if tx.send(due).is_err() {
            return;
        }
    }
}

struct Shared {
    stats: Mutex<Stats>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    not_sent: AtomicU64,
    /// Closed loop: requests handed out so far.
    issued: AtomicU64,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Stats) -> R) -> R {
        f(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What one request observed.
struct Times {
    first_byte: Option<Instant>,
    chunks: Vec<Instant>,
}

/// Runs `spec` against `target` and returns what was measured.
pub(crate) async fn run(target: &Target, work: &Workload, spec: &RunSpec) -> Result<Stats, String> {
    let mut senders = Vec::with_capacity(spec.connections);
    for j in 0..spec.connections.max(1) {
        senders.push(connect(target.addr, source_of(target, j)).await?);
    }
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::new(work.stream)),
        in_flight: AtomicUsize::new(0),
        max_in_flight: spec.max_in_flight.max(1),
        not_sent: AtomicU64::new(0),
        issued: AtomicU64::new(0),
    });
    let request = Arc::new(RequestTemplate::new(target, work));
    let cpu_before = (target.meter.read(), target.upstream.read());
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    // Leave the workers a moment to reach the queue before the first due time.
    let start = Instant::now() + Duration::from_millis(5);
    let mut workers = Vec::with_capacity(senders.len());
    for (j, sender) in senders.into_iter().enumerate() {
        let w = Worker {
            sender: Some(sender),
            addr: target.addr,
            source: source_of(target, j),
            request: Arc::clone(&request),
            shared: Arc::clone(&shared),
            timeout: spec.timeout,
            stream: work.stream,
        };
        let rx = Arc::clone(&rx);
        workers.push(match spec.pace {
            Pace::Open { .. } => tokio::spawn(w.open_loop(rx)),
            Pace::Closed { requests } => tokio::spawn(w.closed_loop(requests)),
        });
    }
    let pacer = match spec.pace {
        Pace::Open { rate, duration } => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = (rate * duration.as_secs_f64()).round() as u64;
            let shared = Arc::clone(&shared);
            Some(std::thread::spawn(move || {
                pace(start, rate, n, tx, &shared)
            }))
        }
        Pace::Closed { .. } => {
            drop(tx);
            None
        }
    };
    for w in workers {
        w.await.map_err(|e| format!("load worker failed: {e}"))?;
    }
    if let Some(p) = pacer {
        p.join().map_err(|_| "pacer thread panicked".to_owned())?;
    }
    let cpu_after = (target.meter.read(), target.upstream.read());
    let not_sent = shared.not_sent.load(Ordering::Acquire);
    let mut stats = shared.with(|s| std::mem::replace(s, Stats::new(work.stream)));
    stats.cpu = cpu::used(cpu_before.0, cpu_after.0);
    stats.upstream_cpu = cpu::used(cpu_before.1, cpu_after.1);
    stats.errors.not_sent += not_sent;
    stats.offered = match spec.pace {
        Pace::Open { .. } => stats.completed() + not_sent,
        Pace::Closed { requests } => requests,
    };
    stats.finish(start);
    Ok(stats)
}

fn source_of(target: &Target, j: usize) -> Option<IpAddr> {
    (!target.sources.is_empty()).then(|| target.sources[j % target.sources.len()])
}

/// The parts of every request that never change (but the rotating credential).
struct RequestTemplate {
    path: Uri,
    host: HeaderValue,
    body: Bytes,
    auth: Option<HeaderValue>,
    rotate_auth: Arc<[HeaderValue]>,
    next: AtomicUsize,
    x_mock: Option<HeaderValue>,
}

impl RequestTemplate {
    fn new(target: &Target, work: &Workload) -> Self {
        let host = HeaderValue::from_str(&target.addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        Self {
            path: Uri::from_static(work.path),
            host,
            body: work.body.clone(),
            auth: target.auth.clone(),
            rotate_auth: Arc::clone(&target.rotate_auth),
            next: AtomicUsize::new(0),
            x_mock: work.x_mock.clone(),
        }
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.path.clone();
        let h = req.headers_mut();
        h.insert(header::HOST, self.host.clone());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.rotate_auth.is_empty() {
            if let Some(a) = &self.auth {
                h.insert(header::AUTHORIZATION, a.clone());
            }
        } else {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            h.insert(
                header::AUTHORIZATION,
                self.rotate_auth[i % self.rotate_auth.len()].clone(),
            );
        }
        if let Some(m) = &self.x_mock {
            h.insert("x-mock", m.clone());
        }
        req
    }
}

/// One connection and the loop that feeds it.
struct Worker {
    sender: Option<Sender>,
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: Arc<RequestTemplate>,
    shared: Arc<Shared>,
    timeout: Duration,
    stream: bool,
}

/// Why a request failed.
enum Failure {
    Status(u16, String),
    Io(String),
    Timeout,
}

impl Worker {
    async fn open_loop(mut self, rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Instant>>>) {
        loop {
            let due = {
                let mut rx = rx.lock().await;
                rx.recv().await
            };
            let Some(due) = due else { return };
            let lag = Instant::now().saturating_duration_since(due);
            self.one(due, lag).await;
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn closed_loop(mut self, requests: u64) {
        while self.shared.issued.fetch_add(1, Ordering::AcqRel) < requests {
            self.one(Instant::now(), Duration::ZERO).await;
        }
    }

    async fn one(&mut self, due: Instant, lag: Duration) {
        let result = match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        };
        let end = Instant::now();
        if matches!(result, Err(Failure::Io(_) | Failure::Timeout)) {
            // The connection may be mid-response or broken: open a fresh one next time. (An
            // error status was read whole; its connection is still good.)
            self.sender = None;
        }
        self.shared.with(|s| {
            s.lag.saturating_record(us(lag));
            s.note_end(end);
            match result {
                Ok(t) => {
                    s.ok += 1;
                    s.latency.saturating_record(us(end - due));
                    if let Some(fb) = t.first_byte {
                        s.ttfb
                            .saturating_record(us(fb.saturating_duration_since(due)));
                    }
                    for (k, at) in t.chunks.iter().enumerate() {
                        if let Some(h) = s.chunks.get_mut(k) {
                            h.saturating_record(us(at.saturating_duration_since(due)));
                        }
                    }
                    if self.stream {
                        s.note_chunks(t.chunks.len());
                    }
                }
                Err(Failure::Status(code, body)) => {
                    s.errors.status += 1;
                    *s.errors.by_status.entry(code).or_default() += 1;
                    s.note_error(|| format!("HTTP {code}: {body}"));
                }
                Err(Failure::Io(e)) => {
                    s.errors.io += 1;
                    s.note_error(|| e);
                }
                Err(Failure::Timeout) => {
                    s.errors.timeout += 1;
                    s.note_error(|| format!("no complete response within {:?}", self.timeout));
                }
            }
        });
    }

    async fn exchange(&mut self) -> Result<Times, Failure> {
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(self.addr, self.source).await.map_err(Failure::Io)?,
        };
        sender
            .ready()
            .await
            .map_err(|e| Failure::Io(format!("connection not ready: {e}")))?;
        let resp = sender
            .send_request(self.request.build())
            .await
            .map_err(|e| Failure::Io(format!("request failed: {e}")))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut times = Times {
            first_byte: None,
            chunks: Vec::new(),
        };
        let mut scan = self.stream.then(SseScan::default);
        let mut error_body = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Io(format!("reading the body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let now = Instant::now();
            if times.first_byte.is_none() && !data.is_empty() {
                times.first_byte = Some(now);
            }
            if !status.is_success() {
                if error_body.len() < 300 {
                    error_body.extend_from_slice(&data);
                }
            } else if let Some(scan) = scan.as_mut() {
                scan.feed(&data, now, &mut times.chunks);
            }
        }
        self.sender = Some(sender);
        if !status.is_success() {
            error_body.truncate(300);
            let text = String::from_utf8_lossy(&error_body).into_owned();
            return Err(Failure::Status(status.as_u16(), text));
        }
        Ok(times)
    }
}

/// Splits an SSE body into events and notes when each event carrying non-empty text completes
/// (OpenAI chat chunks: `"content":"…"`; Anthropic text deltas: `"text":"…"`; with or without a
/// space after the colon).
#[derive(Default)]
struct SseScan {
    carry: Vec<u8>,
}

impl SseScan {
    fn feed(&mut self, data: &[u8], now: Instant, chunks: &mut Vec<Instant>) {
        self.carry
            .extend(data.iter().copied().filter(|&b| b != b'\r'));
        let mut start = 0;
        while let Some(pos) = memchr::memmem::find(&self.carry[start..], b"\n\n") {
            if has_content(&self.carry[start..start + pos]) {
                chunks.push(now);
            }
            start += pos + 2;
        }
        self.carry.drain(..start);
    }
}

fn has_content(event: &[u8]) -> bool {
    const KEYS: [&[u8]; 2] = [b"\"content\":", b"\"text\":"];
    KEYS.iter().any(|key| {
        let Some(at) = memchr::memmem::find(event, key) else {
            return false;
        };
        let rest = event[at + key.len()..].trim_ascii_start();
        rest.first() == Some(&b'"') && rest.get(1).is_some_and(|&b| b != b'"')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_events_are_counted_across_frames() {
        let mut scan = SseScan::default();
        let mut chunks = Vec::new();
        let now = Instant::now();
        let role = b"data: {\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}\n\n";
        scan.feed(role, now, &mut chunks);
        assert!(chunks.is_empty());
        scan.feed(b"data: {\"delta\":{\"content\": \"Hel", now, &mut chunks);
        assert!(chunks.is_empty());
        scan.feed(
            b"lo\"}}\r\n\r\ndata: {\"delta\":{\"content\":\"x\"}}\n",
            now,
            &mut chunks,
        );
        assert_eq!(chunks.len(), 1);
        scan.feed(
            b"\ndata: {\"delta\":{\"content\":null}}\n\ndata: [DONE]\n\n",
            now,
            &mut chunks,
        );
        assert_eq!(chunks.len(), 2);
        // Anthropic: a block's empty start is not text, its deltas are.
        scan.feed(
            b"event: content_block_start\ndata: {\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            now,
            &mut chunks,
        );
        scan.feed(
            b"event: content_block_delta\ndata: {\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            now,
            &mut chunks,
        );
        assert_eq!(chunks.len(), 3);
    }
}
