//! Streaming response bodies: a [`Script`] of data, delays and an optional
//! abort, built per request by the protocol handlers and played back as an
//! HTTP body.
//!
//! Consecutive data without a delay between them is coalesced into one body
//! frame, so an undelayed stream costs a single write. A guard in the body
//! stream counts the stream as completed when its last frame is handed out,
//! or as cancelled when it is dropped before that (the client went away);
//! a scripted `drop_after` abort counts as neither.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};

use super::MockStats;
use super::directives::Directives;

/// The broken event `malformed=1` inserts after the first content piece.
pub(crate) const MALFORMED: &[u8] = b"data: {\"choices\": [ {oops\n\n";

enum Step {
    Data(Bytes),
    Delay(Duration),
    Abort,
}

/// Builder of a scripted stream body.
pub(crate) struct Script {
    steps: Vec<Step>,
    pending: Vec<u8>,
    pieces: usize,
    aborted: bool,
    chunk_delay: Duration,
    drop_after: Option<usize>,
    malformed: bool,
    /// Separator after an SSE event: `\n\n` or (Gemini) `\r\n\r\n`.
    terminator: &'static str,
}

impl Script {
    pub(crate) fn new(d: &Directives) -> Self {
        Self {
            steps: Vec::new(),
            pending: Vec::with_capacity(1024),
            pieces: 0,
            aborted: false,
            chunk_delay: d.chunk_delay,
            drop_after: d.drop_after,
            malformed: d.malformed,
            terminator: "\n\n",
        }
    }

    /// Uses `\r\n\r\n` between SSE events (as Google's API does).
    pub(crate) fn crlf(mut self) -> Self {
        self.terminator = "\r\n\r\n";
        self
    }

    /// Appends raw bytes (ignored once the stream is aborted).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        if !self.aborted {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// Appends an SSE event: optional `event:` line, then `data: <json>`.
    pub(crate) fn sse<T: serde::Serialize>(&mut self, event: Option<&str>, data: &T) {
        if self.aborted {
            return;
        }
        if let Some(name) = event {
            self.pending.extend_from_slice(b"event: ");
            self.pending.extend_from_slice(name.as_bytes());
            self.pending.push(b'\n');
        }
        self.pending.extend_from_slice(b"data: ");
        self.json(data);
        self.pending.extend_from_slice(self.terminator.as_bytes());
    }

    /// Appends a JSON value without framing.
    pub(crate) fn json<T: serde::Serialize>(&mut self, data: &T) {
        if self.aborted {
            return;
        }
        if let Err(e) = serde_json::to_writer(&mut self.pending, data) {
            tracing::warn!("mock: failed to serialise stream event: {e}");
        }
    }

    /// Emits one content piece with `write`, applying the piece directives:
    /// the delay before it, the malformed event after the first, and the
    /// abort after `drop_after` pieces.
    pub(crate) fn piece(&mut self, write: impl FnOnce(&mut Self)) {
        if self.aborted {
            return;
        }
        if self.drop_after == Some(self.pieces) {
            self.abort();
            return;
        }
        if self.pieces > 0 && !self.chunk_delay.is_zero() {
            self.flush();
            self.steps.push(Step::Delay(self.chunk_delay));
        }
        write(self);
        if self.pieces == 0 && self.malformed {
            self.raw(MALFORMED);
        }
        self.pieces += 1;
        if self.drop_after == Some(self.pieces) {
            self.abort();
        }
    }

    fn abort(&mut self) {
        self.flush();
        self.steps.push(Step::Abort);
        self.aborted = true;
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            self.steps.push(Step::Data(Bytes::from(data)));
        }
    }

    /// Finishes the script into a response with the given content type.
    pub(crate) fn into_response(
        mut self,
        stats: &Arc<MockStats>,
        content_type: &'static str,
    ) -> Response {
        self.flush();
        stats.stream_started();
        let guard = Guard {
            stats: Arc::clone(stats),
            state: End::Running,
        };
        let steps = self.steps.into_iter().peekable();
        let body =
            futures_util::stream::unfold((steps, guard), |(mut steps, mut guard)| async move {
                loop {
                    let Some(step) = steps.next() else {
                        guard.complete();
                        return None;
                    };
                    match step {
                        Step::Delay(d) => super::sleep_nonzero(d).await,
                        Step::Data(bytes) => {
                            if steps.peek().is_none() {
                                guard.complete();
                            }
                            return Some((Ok(bytes), (steps, guard)));
                        }
                        Step::Abort => {
                            guard.state = End::Aborted;
                            // Let the server flush what was already written.
                            tokio::task::yield_now().await;
                            let err = std::io::Error::other("mock: drop_after");
                            return Some((Err(err), (steps, guard)));
                        }
                    }
                }
            });
        let mut resp = Response::new(Body::from_stream(body));
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}

#[derive(PartialEq, Eq)]
enum End {
    Running,
    Completed,
    Aborted,
}

/// Counts the stream's outcome; dropped with the body stream.
struct Guard {
    stats: Arc<MockStats>,
    state: End,
}

impl Guard {
    fn complete(&mut self) {
        if self.state == End::Running {
            self.state = End::Completed;
            self.stats.stream_completed();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.state == End::Running {
            self.stats.stream_cancelled();
        }
    }
}
