//! Streaming response bodies: a [`Script`] of data, delays and an optional
//! abort, built per request by the protocol handlers and played back as an
//! HTTP body.
//!
//! Consecutive data without a delay between them is coalesced into one body
//! frame, so an undelayed stream costs a single write. Delayed pieces keep a
//! fixed schedule: the first is handed out at once, piece *k* is due *k*
//! delays after it, as a model produces tokens at its own pace. A delay that
//! ran from when the previous piece was handed out instead would add the
//! timer's rounding up to the next millisecond at every piece, a different
//! amount each time, and move the later pieces' arrival by a millisecond
//! between runs of the same stream (bench/PROFILE.md §23). A piece handed
//! out late (a slow reader) does not push the later ones back.
//!
//! A guard in the body stream counts the stream as completed when its last
//! frame is handed out, or as cancelled when it is dropped before that (the
//! client went away); a scripted `drop_after` abort counts as neither.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, header};
use tokio::time::Instant;

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
        // When the last piece was due: the next is due a delay after it, not a delay after the
        // last piece was handed out (see the module's doc).
        let due: Option<Instant> = None;
        let body = futures_util::stream::unfold(
            (steps, guard, due),
            |(mut steps, mut guard, mut due)| async move {
                loop {
                    let Some(step) = steps.next() else {
                        guard.complete();
                        return None;
                    };
                    match step {
                        Step::Delay(d) => {
                            let next = due.unwrap_or_else(Instant::now) + d;
                            tokio::time::sleep_until(next).await;
                            due = Some(next);
                        }
                        Step::Data(bytes) => {
                            if steps.peek().is_none() {
                                guard.complete();
                            }
                            due.get_or_insert_with(Instant::now);
                            return Some((Ok(bytes), (steps, guard, due)));
                        }
                        Step::Abort => {
                            guard.state = End::Aborted;
                            // Let the server flush what was already written.
                            tokio::task::yield_now().await;
                            let err = std::io::Error::other("mock: drop_after");
                            return Some((Err(err), (steps, guard, due)));
                        }
                    }
                }
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    /// A script of four pieces, `a` to `d`, paced by `d`'s directives.
    fn script(d: &Directives) -> Script {
        let mut s = Script::new(d);
        for piece in ["a", "b", "c", "d"] {
            s.piece(|s| s.raw(piece.as_bytes()));
        }
        s
    }

    /// Plays four pieces 5 ms apart to a reader that takes the first, waits `late`, then takes
    /// the others, busy for `busy` after each: the pieces after the first with when (in paused
    /// time) each came, counted from the first.
    async fn read_paced(
        stats: &Arc<MockStats>,
        late: Duration,
        busy: Duration,
    ) -> Vec<(Bytes, Duration)> {
        let paced = Directives {
            chunk_delay: Duration::from_millis(5),
            ..Directives::default()
        };
        let resp = script(&paced).into_response(stats, "text/plain");
        let mut body = resp.into_body().into_data_stream();
        assert_eq!(body.next().await.unwrap().unwrap(), "a");
        let start = Instant::now();
        tokio::time::sleep(late).await;
        let mut at = Vec::new();
        while let Some(frame) = body.next().await {
            at.push((frame.unwrap(), start.elapsed()));
            tokio::time::sleep(busy).await;
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_pieces_keep_a_fixed_schedule() {
        let stats = Arc::new(MockStats::default());
        // The reader is busy for 2.5 ms after each piece: the next is still due 5 ms after
        // the previous one was due, not 5 ms after the reader came back.
        let at = read_paced(&stats, Duration::ZERO, Duration::from_micros(2500)).await;
        let ms = Duration::from_millis;
        assert_eq!(
            at,
            [
                ("b".into(), ms(5)),
                ("c".into(), ms(10)),
                ("d".into(), ms(15))
            ]
        );
        assert_eq!(stats.streams_completed(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_reader_gets_the_pieces_already_due_at_once() {
        let stats = Arc::new(MockStats::default());
        let at = read_paced(&stats, Duration::from_millis(12), Duration::ZERO).await;
        let ms = Duration::from_millis;
        assert_eq!(
            at,
            [
                ("b".into(), ms(12)),
                ("c".into(), ms(12)),
                ("d".into(), ms(15))
            ]
        );
    }
}
