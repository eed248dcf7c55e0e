//! Wire capture (PRODUCT §2.2): JSONL records of what crosses the gateway — the client's request,
//! the request sent upstream, the upstream's response, and each stream chunk — for debugging.
//!
//! The request path only builds a small record (payloads are reference-counted `Bytes`) and
//! hands it to a bounded channel with `try_send`: it never waits. A dedicated thread serialises,
//! masks and writes through a buffer, flushes when idle (at most 1 s after the last record) and
//! rotates by size (`capture.jsonl` → `capture.jsonl.1` … `.N`). When the writer falls behind,
//! records are dropped and counted rather than slowing requests.
//!
//! Credentials never reach the file: credential headers are masked when the record is built,
//! the `key` query parameter (however its name is encoded) is masked in URLs, and the writer
//! replaces every secret of the live set ([`crate::masking`]: configured ones and the pool's
//! current ones) that still appears anywhere in a line. A stream chunk is held until the chunks after
//! it are as long as the longest secret (or the next record of its request arrives), so a secret
//! split over any number of chunks is masked in each.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde::Serialize;

use crate::clock::SharedClock;
use crate::masking::{LiveSecrets, Masker};

/// Records waiting for the writer at most.
const QUEUE: usize = 16 * 1024;

/// What a record describes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The client's request as received.
    InboundRequest,
    /// The request as sent to the backend.
    OutboundRequest,
    /// The backend's (non-streamed) response.
    InboundResponse,
    /// A streamed response begins (status and headers).
    StreamStart,
    /// One chunk of a streamed response.
    StreamChunk,
    /// A streamed response ended (how, in `payload`).
    StreamEnd,
}

struct Record {
    at_ms: u64,
    direction: Direction,
    request_id: Arc<str>,
    source: Arc<str>,
    destination: Option<String>,
    principal: Option<Arc<str>>,
    backend: Option<Arc<str>>,
    model: Option<Arc<str>>,
    key_name: Option<Arc<str>>,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    payload: Bytes,
}

/// Settings for [`CaptureSink::start`].
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    /// The file; rotated copies get `.1` … `.max_files`.
    pub path: PathBuf,
    /// Rotate when the file reaches this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub max_files: u32,
}

/// The request path's handle on the capture writer; cheap to clone. `None` inside means capture
/// is off and every call is free.
#[derive(Clone, Default)]
pub struct CaptureSink {
    inner: Option<Arc<SinkInner>>,
}

enum Msg {
    Record(Box<Record>),
    /// Write out everything queued before, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

struct SinkInner {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    clock: SharedClock,
}

impl CaptureSink {
    /// Capture off.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Opens the file and starts the writer thread. `secrets` are masked wherever they appear.
    pub fn start(
        settings: CaptureSettings,
        secrets: Arc<LiveSecrets>,
        clock: SharedClock,
    ) -> std::io::Result<Self> {
        let writer = RotatingWriter::open(settings)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("wire-capture".into())
            .spawn(move || write_loop(rx, writer, &secrets))?;
        Ok(Self {
            inner: Some(Arc::new(SinkInner {
                tx,
                dropped: AtomicU64::new(0),
                clock,
            })),
        })
    }

    /// True when capture is on.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Waits (up to 5 s) until every record queued so far is written and flushed; used at
    /// shutdown and by tests.
    pub fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (tx, rx) = std::sync::mpsc::channel();
        if inner.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// A scope for one request, or `None` when capture is off.
    pub fn scope(
        &self,
        request_id: Arc<str>,
        source: Arc<str>,
        principal: Option<Arc<str>>,
    ) -> Option<CaptureScope> {
        let inner = self.inner.clone()?;
        Some(CaptureScope {
            sink: inner,
            request_id,
            source,
            principal,
            backend: None,
            model: None,
            key_name: None,
        })
    }
}

/// What is known of one request, stamped on each of its records.
#[derive(Clone)]
pub struct CaptureScope {
    sink: Arc<SinkInner>,
    request_id: Arc<str>,
    source: Arc<str>,
    principal: Option<Arc<str>>,
    backend: Option<Arc<str>>,
    model: Option<Arc<str>>,
    key_name: Option<Arc<str>>,
}

impl CaptureScope {
    /// Adds the routing decision.
    /// `key_name` is the id of the upstream credential (never its value).
    pub fn set_route(&mut self, backend: Arc<str>, model: &str, key_name: Option<Arc<str>>) {
        self.backend = Some(backend);
        self.model = Some(Arc::from(model));
        self.key_name = key_name;
    }

    /// Records one event.
    pub fn record(
        &self,
        direction: Direction,
        destination: Option<&str>,
        status: Option<u16>,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) {
        let record = Record {
            at_ms: self.sink.clock.now_millis(),
            direction,
            request_id: self.request_id.clone(),
            source: self.source.clone(),
            destination: destination.map(mask_query_key),
            principal: self.principal.clone(),
            backend: self.backend.clone(),
            model: self.model.clone(),
            key_name: self.key_name.clone(),
            status,
            headers: headers.map(masked_headers).unwrap_or_default(),
            payload,
        };
        match self.sink.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn masked_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let name = k.as_str().to_owned();
            let value = if crate::secret::is_credential_header(k.as_str()) {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect()
}

/// Masks the value of a `key=` query parameter in a URL or path.
pub fn mask_query_key(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|p| {
            if crate::upstream::query_param_name(p) == crate::secret::CREDENTIAL_QUERY_PARAM {
                format!("{}=***", crate::secret::CREDENTIAL_QUERY_PARAM)
            } else {
                p.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", masked.join("&"))
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp_iso: String,
    timestamp_unix: f64,
    direction: Direction,
    source: Cow<'a, str>,
    destination: Option<Cow<'a, str>>,
    request_id: Cow<'a, str>,
    principal: Option<Cow<'a, str>>,
    backend: Option<Cow<'a, str>>,
    model: Option<Cow<'a, str>>,
    key_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    content_length: usize,
    payload: serde_json::Value,
}

/// A record as its capture line, every string in it masked before it is serialised (so the
/// line is JSON whatever a secret holds).
fn serialise(r: &Record, masker: &Masker) -> String {
    let mut payload = if r.payload.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&r.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&r.payload).into_owned())
        })
    };
    masker.mask_value(&mut payload);
    fn text<'a>(masker: &Masker, s: &'a Option<Arc<str>>) -> Option<Cow<'a, str>> {
        s.as_deref().map(|s| masker.mask_str(s))
    }
    let line = Line {
        timestamp_iso: crate::clock::iso8601(r.at_ms),
        timestamp_unix: r.at_ms as f64 / 1000.0,
        direction: r.direction,
        source: masker.mask_str(&r.source),
        destination: r.destination.as_deref().map(|d| match masker.mask_str(d) {
            // A masked secret may have taken the `?` that began the query, so that the query
            // now starts later, at a `key` parameter `record` did not see: masked again.
            Cow::Owned(masked) => Cow::Owned(mask_query_key(&masked)),
            unchanged => unchanged,
        }),
        request_id: masker.mask_str(&r.request_id),
        principal: text(masker, &r.principal),
        backend: text(masker, &r.backend),
        model: text(masker, &r.model),
        key_name: text(masker, &r.key_name),
        status: r.status,
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (masker.mask_str(k), masker.mask_str(v)))
            .collect(),
        content_length: r.payload.len(),
        payload,
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Streams whose chunks are held at most (past it, every held chunk is written out).
const MAX_HELD_CHUNKS: usize = 4096;

/// Chunks held for one stream at most, whatever their size (past it, the oldest is written).
const MAX_HELD_PER_STREAM: usize = 1024;

fn write_loop(rx: Receiver<Msg>, mut writer: RotatingWriter, secrets: &LiveSecrets) {
    let mut dirty = false;
    // The latest chunks of each stream, oldest first: a chunk is written once the chunks after
    // it hold as many bytes as a secret can reach past its end ([`Masker::reach`]), or when
    // the next record of its request arrives — so a secret split over any number of chunks is
    // masked in each before the first of them is written.
    let mut held: HashMap<Arc<str>, VecDeque<Box<Record>>> = HashMap::new();
    let write = |writer: &mut RotatingWriter, record: &Record, masker: &Masker| {
        let mut line = serialise(record, masker);
        line.push('\n');
        if let Err(e) = writer.write_line(line.as_bytes()) {
            tracing::warn!(error = %e, "wire capture: write failed");
        }
    };
    loop {
        let msg = if dirty {
            // Something is buffered: flush once the queue has been quiet for a moment.
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = writer.flush();
                    dirty = false;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        match msg {
            Msg::Record(record) => {
                let masker = secrets.masker();
                if record.direction != Direction::StreamChunk {
                    for r in held.remove(&record.request_id).into_iter().flatten() {
                        write(&mut writer, &r, &masker);
                    }
                    write(&mut writer, &record, &masker);
                } else {
                    if held.len() >= MAX_HELD_CHUNKS && !held.contains_key(&record.request_id) {
                        for r in held.drain().flat_map(|(_, q)| q) {
                            write(&mut writer, &r, &masker);
                        }
                    }
                    let queue = held.entry(record.request_id.clone()).or_default();
                    queue.push_back(record);
                    let mut payloads: Vec<Bytes> =
                        queue.iter().map(|r| r.payload.clone()).collect();
                    masker.mask_across(&mut payloads);
                    for (r, p) in queue.iter_mut().zip(payloads) {
                        r.payload = p;
                    }
                    let mut after: usize = queue.iter().skip(1).map(|r| r.payload.len()).sum();
                    while queue.len() > 1
                        && (after >= masker.reach() || queue.len() > MAX_HELD_PER_STREAM)
                    {
                        let Some(r) = queue.pop_front() else { break };
                        write(&mut writer, &r, &masker);
                        after -= queue.front().map_or(0, |r| r.payload.len());
                    }
                }
                dirty = true;
            }
            Msg::Flush(done) => {
                let masker = secrets.masker();
                for r in held.drain().flat_map(|(_, q)| q) {
                    write(&mut writer, &r, &masker);
                }
                let _ = writer.flush();
                dirty = false;
                let _ = done.send(());
            }
        }
    }
    let masker = secrets.masker();
    for r in held.drain().flat_map(|(_, q)| q) {
        write(&mut writer, &r, &masker);
    }
    let _ = writer.flush();
}

struct RotatingWriter {
    settings: CaptureSettings,
    file: BufWriter<File>,
    written: u64,
}

impl RotatingWriter {
    fn open(settings: CaptureSettings) -> std::io::Result<Self> {
        if let Some(dir) = settings.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&settings.path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            settings,
            file: BufWriter::with_capacity(64 * 1024, file),
            written,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.settings.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let path = &self.settings.path;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
        let _ = std::fs::remove_file(numbered(self.settings.max_files));
        for n in (1..self.settings.max_files).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(path, numbered(1))?;
        self.file = BufWriter::with_capacity(64 * 1024, open_append(path)?);
        self.written = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::secret::Secret;
    use std::time::UNIX_EPOCH;

    #[test]
    fn query_keys_are_masked() {
        assert_eq!(
            mask_query_key("/v1beta/models/m:x?alt=sse&key=abc"),
            "/v1beta/models/m:x?alt=sse&key=***"
        );
        assert_eq!(mask_query_key("http://h/v1/chat"), "http://h/v1/chat");
        assert_eq!(mask_query_key("/m?%6Bey=abc&alt=sse"), "/m?key=***&alt=sse");
        assert_eq!(mask_query_key("/m?k%65y=abc"), "/m?key=***");
    }

    #[test]
    fn records_are_written_masked_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.jsonl");
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH));
        let sink = CaptureSink::start(
            CaptureSettings {
                path: path.clone(),
                max_bytes: 2_000,
                max_files: 2,
            },
            Arc::new(LiveSecrets::new(
                vec![Secret::new("sk-secret-in-body-123")],
                None,
            )),
            clock,
        )
        .unwrap();
        let scope = sink
            .scope(
                "r1".into(),
                "127.0.0.1 (curl)".into(),
                Some("key=ci".into()),
            )
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer sk-client-xyz".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        for _ in 0..30 {
            scope.record(
                Direction::InboundRequest,
                Some("/v1beta/x?key=sk-client-xyz"),
                None,
                Some(&headers),
                Bytes::from_static(
                    br#"{"messages":[{"content":"my key is sk-secret-in-body-123"}]}"#,
                ),
            );
        }
        sink.flush();
        let files: Vec<PathBuf> = ["", ".1", ".2"]
            .iter()
            .map(|ext| PathBuf::from(format!("{}{ext}", path.display())))
            .collect();
        let text: String = files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        for f in &files {
            let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0 && len <= 2_000, "{} has {len} bytes", f.display());
        }
        assert!(
            path.exists() && PathBuf::from(format!("{}.1", path.display())).exists(),
            "rotated"
        );
        assert!(
            !PathBuf::from(format!("{}.3", path.display())).exists(),
            "at most max_files kept"
        );
        assert!(!text.contains("sk-client-xyz"), "{text}");
        assert!(!text.contains("sk-secret-in-body-123"), "{text}");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["direction"], "inbound_request");
        assert_eq!(first["principal"], "key=ci");
        assert_eq!(first["payload"]["messages"][0]["content"], "my key is ***");
    }

    #[test]
    fn a_secret_split_over_many_stream_chunks_is_masked_in_the_capture() {
        // Found by the `masker` fuzz target: chunks shorter than a secret let it through whole
        // once the chunk payloads were joined.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.jsonl");
        let secret = "sk-ant-api03-split-secret-42";
        let settings = CaptureSettings {
            path: path.clone(),
            max_bytes: u64::MAX,
            max_files: 1,
        };
        let live = Arc::new(LiveSecrets::new(vec![Secret::new(secret)], None));
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH));
        let sink = CaptureSink::start(settings, live, clock).unwrap();
        let scope = sink.scope("r1".into(), "x".into(), None).unwrap();
        let stream = format!("data: {{\"text\":\"{secret}\"}}\n\n");
        for piece in stream.as_bytes().chunks(3) {
            let chunk = Bytes::copy_from_slice(piece);
            scope.record(Direction::StreamChunk, None, None, None, chunk);
        }
        scope.record(Direction::StreamEnd, None, None, None, Bytes::new());
        sink.flush();
        let joined: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["direction"] == "stream_chunk")
            .map(|r| r["payload"].as_str().unwrap_or_default().to_owned())
            .collect();
        // (A chunk that is JSON by itself, such as `":"`, is written decoded.)
        assert!(!joined.contains(secret), "{joined}");
        assert!(
            joined.starts_with("data: {") && joined.ends_with("}\n\n"),
            "{joined}"
        );
        assert_eq!(joined.matches("***").count(), 10, "{joined}");
    }

    /// A sink writing one file that never rotates, knowing `secrets`; its directory and path.
    fn unrotated_sink(secrets: &[&str]) -> (tempfile::TempDir, PathBuf, CaptureSink) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.jsonl");
        let settings = CaptureSettings {
            path: path.clone(),
            max_bytes: u64::MAX,
            max_files: 1,
        };
        let live = Arc::new(LiveSecrets::new(
            secrets.iter().map(|s| Secret::new(*s)).collect(),
            None,
        ));
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH));
        let sink = CaptureSink::start(settings, live, clock).unwrap();
        (dir, path, sink)
    }

    #[test]
    fn a_key_parameter_that_masking_a_secret_uncovers_is_masked_too() {
        // Found by the `masker` fuzz target: the secret held the URL's first `?`, so the
        // `key=` after it was not a parameter when `record` masked the query, and was one once
        // the secret was masked.
        let (_dir, path, sink) = unrotated_sink(&["plain-s]cre?-99"]);
        let scope = sink.scope("r1".into(), "x".into(), None).unwrap();
        for url in [
            "https://up/plain-s]cre?-99/v1/chat?key=not-masked-yet&alt=sse",
            "https://up/v1/chat?alt=sse&key=abc",
        ] {
            scope.record(
                Direction::OutboundRequest,
                Some(url),
                None,
                None,
                Bytes::new(),
            );
        }
        sink.flush();
        let destinations: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|l| l["destination"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            destinations,
            [
                "https://up/***/v1/chat?key=***&alt=sse",
                "https://up/v1/chat?alt=sse&key=***",
            ]
        );
    }

    #[test]
    fn every_line_stays_json_whatever_a_secret_holds() {
        // Found by the `masker` fuzz target: the serialised line was masked, and a secret's JSON
        // form matched from the middle of an escape (`\u0000` then `0x…`), leaving `\u00***`.
        let (_dir, path, sink) = unrotated_sink(&["000x-secret-key", "quote\"}end"]);
        let scope = sink.scope("r1".into(), "x".into(), None).unwrap();
        for payload in [
            &b"\x000x-secret-key"[..],
            b"\x00000x-secret-key",
            br#"{"a": "quote\"}end", "000x-secret-key": true}"#,
            b"quote\"}end \x00\x01",
        ] {
            let payload = Bytes::copy_from_slice(payload);
            scope.record(Direction::InboundRequest, Some("/x"), None, None, payload);
        }
        sink.flush();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let payloads: Vec<String> = lines.iter().map(|l| l["payload"].to_string()).collect();
        assert_eq!(
            payloads,
            [
                r#""\u00000x-secret-key""#,
                r#""\u0000***""#,
                r#"{"a":"***","***":true}"#,
                r#""*** \u0000\u0001""#,
            ]
        );
    }
}
