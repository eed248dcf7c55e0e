//! What a client connection is doing, and the watchdog that closes it when it does nothing.
//!
//! A connection is in one of three phases: *awaiting a request head* (from the moment it opens,
//! and from the first byte of each following request), *busy* (at least one request in flight:
//! its body being read, the upstream answering, the response being written) or *idle* (a
//! keep-alive connection between requests). The watchdog closes a connection whose head has not
//! arrived `header_read_timeout` after it started, or that stayed idle for `keep_alive_idle`; a
//! busy connection is never closed by it (a model may think for minutes before its first byte).
//! A request body that stops arriving is [`TimedBody`]'s to end.
//!
//! The watchdog is not woken by phase changes (that would cost a wake-up per request): it looks
//! at least once per the shorter timeout, so a head that starts arriving on an idle keep-alive
//! connection is cut off between one and two header timeouts after its first byte (a new
//! connection's exactly one). The phases are kept in two atomics: the service ([`Tracked`]) counts requests in and out (the
//! response body's drop ends one), and the socket wrapper ([`Watched`]) notes the first byte read
//! on an idle connection. Times are tokio instants, so tests can run them on paused time.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connections::Report;
use crate::api::access_log::Outcome;
use crate::connection::{Closed, RequestBodyTimeout};
use tokio::time::{Instant, Sleep};

/// The phase of one connection, shared by its service, its socket and its watchdog.
#[derive(Debug)]
pub(super) struct Watch {
    started: Instant,
    /// Requests in flight.
    busy: AtomicU32,
    /// Milliseconds since `started` when the current phase began, shifted left one bit; the low
    /// bit is set while awaiting a request head, clear while idle.
    mark: AtomicU64,
}

const AWAITING_HEAD: u64 = 1;

impl Watch {
    /// A connection that has just opened: awaiting its first request head.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            busy: AtomicU32::new(0),
            mark: AtomicU64::new(AWAITING_HEAD),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX >> 1)
    }

    /// A request head was parsed: the connection is busy until its response is done.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        self.busy.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// True while a request is in flight.
    pub(super) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// Bytes were read: on an idle connection they begin the next request's head.
    pub(super) fn bytes_read(&self) {
        if self.busy.load(Ordering::Acquire) == 0 {
            let mark = self.mark.load(Ordering::Relaxed);
            if mark & AWAITING_HEAD == 0 {
                self.mark
                    .store((self.now_ms() << 1) | AWAITING_HEAD, Ordering::Relaxed);
            }
        }
    }

    /// Runs until the connection has spent too long awaiting a head or idle, then says which.
    pub(super) async fn watchdog(
        &self,
        header_read_timeout: Duration,
        keep_alive_idle: Duration,
    ) -> Closed {
        let header_ms = millis(header_read_timeout);
        let idle_ms = millis(keep_alive_idle);
        loop {
            let now = self.now_ms();
            // Nothing tells the watchdog that a phase changed (that would wake it on every
            // request): it looks again at least every `step`, so a head that starts arriving
            // on an idle connection is cut off between one and two header timeouts later.
            let step = now.saturating_add(header_ms.min(idle_ms));
            if self.busy.load(Ordering::Acquire) > 0 {
                tokio::time::sleep_until(self.started + Duration::from_millis(step)).await;
                continue;
            }
            let wake = {
                let mark = self.mark.load(Ordering::Relaxed);
                let (since, limit, why) = if mark & AWAITING_HEAD != 0 {
                    (mark >> 1, header_ms, Closed::HeaderTimeout)
                } else {
                    (mark >> 1, idle_ms, Closed::Idle)
                };
                let deadline = since.saturating_add(limit);
                if deadline <= now {
                    return why;
                }
                deadline.min(step)
            };
            tokio::time::sleep_until(self.started + Duration::from_millis(wake)).await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 2)
}

/// One request in flight on a connection; dropping it (with the response body) ends it.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.mark.store(self.0.now_ms() << 1, Ordering::Relaxed);
        }
    }
}

/// A response body (HTTP/2's) that keeps its request counted in flight while it is being sent,
/// and tells how the sending ended.
pub(super) struct TrackedBody<R: Report> {
    inner: Body,
    _in_flight: Option<InFlight>,
    /// Told how the sending ended, once: at the body's end or failure, or when it is dropped.
    report: Option<R>,
}

impl<R: Report> TrackedBody<R> {
    pub(super) fn new(inner: Body, in_flight: Option<InFlight>, report: Option<R>) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
            report,
        }
    }

    fn report(&mut self, outcome: Outcome) {
        if let Some(report) = self.report.take() {
            report.report(outcome);
        }
    }
}

impl<R: Report> http_body::Body for TrackedBody<R> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.report(Outcome::Completed),
            Poll::Ready(Some(Err(_))) => self.report(Outcome::BodyError),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<R: Report> Drop for TrackedBody<R> {
    /// Dropped before its end: all of it went out only if there was nothing left to send.
    fn drop(&mut self) {
        let outcome = if http_body::Body::is_end_stream(&self.inner) {
            Outcome::Completed
        } else {
            Outcome::ClientDisconnected
        };
        self.report(outcome);
    }
}

/// A request body that fails when the client sends nothing for `timeout` while the gateway is
/// waiting for more of it (nginx's `client_body_timeout`).
pub(super) struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    /// Wraps `inner`; the timer is made only if a read has to wait.
    pub(super) fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
        }
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(axum::Error::new)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(timer.as_mut().poll(cx));
                this.timer = None;
                Poll::Ready(Some(Err(axum::Error::new(RequestBodyTimeout(timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket that tells its [`Watch`] when bytes arrive.
pub(super) struct Watched<T> {
    io: T,
    watch: Arc<Watch>,
}

impl<T> Watched<T> {
    pub(super) fn new(io: T, watch: Arc<Watch>) -> Self {
        Self { io, watch }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    async fn elapsed_at(watch: &Watch, why: Closed) -> Duration {
        let start = Instant::now();
        assert_eq!(watch.watchdog(HEAD, IDLE).await, why);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_head_is_closed_after_the_header_timeout() {
        let w = Watch::new();
        assert_eq!(elapsed_at(&w, Closed::HeaderTimeout).await, HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_closed_and_idles_from_its_last_response() {
        let w = Watch::new();
        let in_flight = w.request_started();
        let dog = tokio::spawn({
            let w = w.clone();
            async move { elapsed_at(&w, Closed::Idle).await }
        });
        // Ten minutes of an upstream thinking: still open.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!dog.is_finished());
        drop(in_flight);
        assert_eq!(dog.await.unwrap(), Duration::from_secs(600) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_byte_on_an_idle_connection_starts_the_header_clock() {
        let w = Watch::new();
        drop(w.request_started());
        let dog = tokio::spawn({
            let w = w.clone();
            async move { elapsed_at(&w, Closed::HeaderTimeout).await }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        w.bytes_read();
        // Further bytes of the same head do not restart it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        w.bytes_read();
        let closed = dog.await.unwrap();
        assert!(closed >= Duration::from_secs(30) + HEAD, "{closed:?}");
        assert!(closed <= Duration::from_secs(30) + 2 * HEAD, "{closed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_requests_idle_only_when_the_last_one_ends() {
        let w = Watch::new();
        let a = w.request_started();
        let b = w.request_started();
        drop(a);
        assert_eq!(w.busy.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(w.busy.load(Ordering::Relaxed), 0);
        assert_eq!(w.mark.load(Ordering::Relaxed) & AWAITING_HEAD, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_request_body_fails_after_its_timeout() {
        use http_body_util::BodyExt;
        let (mut tx, rx) = futures_channel_body();
        tx.push(Bytes::from_static(b"part"));
        let mut body = TimedBody::new(rx, Duration::from_secs(30));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "part");
        let start = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert!(err.to_string().contains("no request body bytes"), "{err}");
        drop(tx);
    }

    /// A body fed by the test: chunks pushed now, then nothing until the sender is dropped.
    fn futures_channel_body() -> (Feeder, Body) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, io::Error>(b), rx))
        });
        (Feeder(tx), Body::from_stream(stream))
    }

    struct Feeder(tokio::sync::mpsc::UnboundedSender<Bytes>);

    impl Feeder {
        fn push(&mut self, b: Bytes) {
            self.0.send(b).unwrap();
        }
    }
}
