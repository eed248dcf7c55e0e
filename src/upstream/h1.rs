//! HTTP/1.1 to backends, plain (local model servers such as vLLM, Ollama or llama.cpp, and
//! TLS-terminating sidecars) or over TLS (`https://`, see [`super::tls`]), driven from the
//! request's own task.
//!
//! A general-purpose client (reqwest over hyper-util) runs every connection in a task of its own:
//! the request crosses to that task over a channel and the answer comes back over another, and on
//! a multi-threaded runtime the two tasks often sit on different threads, so each request wakes a
//! second thread (expensive on a VM: an inter-processor interrupt and a VM exit). Even hyper's
//! own connection, polled in place, passes each request through a dispatch channel and builds a
//! `Request` for it. Here the task that read the client's request writes the request head
//! straight from the prepared headers ([`super::h1_wire`]), reads the answer's head and body off
//! the socket itself, and relays it: one task, woken only by its two sockets, no channel.
//!
//! Idle connections wait in a per-backend list, newest used first. Nobody polls them there, so a
//! connection is read once when it is taken out: one the server closed meanwhile (or that holds
//! bytes nobody asked for) is noticed then and dropped. A request that could not be written
//! whole on a reused connection is sent on another; one whose reused connection closed before a
//! byte of the answer is sent again only if repeating it is safe (an idempotent method or an
//! `Idempotency-Key`), since the server may have acted on it. A connection idle for 90 s is
//! dropped, at most 128 wait.
//! Over TLS the connect timeout covers the TCP connect and the TLS handshake; SNI is the base
//! URL's host, ALPN `http/1.1`, and a certificate that does not verify fails the connect like a
//! refused connection (see [`super::dial`]). HTTP/2 has a client of its own ([`super::h2`]); URLs
//! with credentials and backends reached through a proxy use reqwest (see `Backend`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};

use super::dial::Dial;
use super::h1_wire::{self, Decoded, Framing, WireError};
use super::tls::Stream;
use super::{HeaderLines, UpstreamError};

/// An idle connection older than this is dropped rather than reused.
const IDLE_EXPIRY: Duration = Duration::from_secs(90);
/// Most idle connections kept per backend.
const MAX_IDLE: usize = 128;
/// Connections tried for one request: another is taken when a reused one could not take the
/// request whole, or closed before answering one that is safe to repeat.
const MAX_ATTEMPTS: usize = 3;
/// A request body up to this size is copied behind the head and written with it in one write.
const INLINE_BODY: usize = 32 * 1024;
/// Room made in a connection's read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// One upstream connection: its byte stream and what has been read from it and not yet used.
struct Conn {
    io: Stream,
    buf: BytesMut,
    /// The names of the answers' headers so far (`h1_wire::KnownNames`).
    names: h1_wire::KnownNames,
    /// The thread that opened the connection: its socket is registered with that thread's event
    /// loop, so a request on that thread reuses it without involving another thread.
    home: std::thread::ThreadId,
    /// The idle-read timer of the requests it carried, kept for the next one: pushing a
    /// registered timer's deadline later is one atomic update, where a timer per request is an
    /// allocation and a timer-wheel insertion and removal. Only ever made and used on `home`'s
    /// thread (a timer belongs to the runtime that made it).
    timer: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    /// Reads what the socket has into the buffer: the bytes read, 0 at the connection's end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }

    /// True while an idle connection can take a request: the server has neither closed it nor
    /// sent anything unasked (either makes it unusable).
    fn alive(&mut self, cx: &mut Context<'_>) -> bool {
        self.buf.is_empty() && self.poll_fill(cx).is_pending()
    }

    /// Reads until the answer's head is complete.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        timer: &mut IdleTimer,
    ) -> Poll<Result<h1_wire::Head, HeadError>> {
        loop {
            // Parsed again only when something arrived (or was left over from before).
            if !self.buf.is_empty()
                && let Some(head) = h1_wire::parse_head(&mut self.buf, &mut self.names, method)?
            {
                return Poll::Ready(Ok(head));
            }
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) if self.buf.is_empty() => {
                    return Poll::Ready(Err(HeadError::Closed));
                }
                Poll::Ready(Ok(0)) => {
                    let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Poll::Ready(Err(HeadError::Failed(eof.into())));
                }
                Poll::Ready(Ok(_)) => timer.activity(),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(HeadError::Failed(e.into()))),
                Poll::Pending if timer.expired(cx) => {
                    return Poll::Ready(Err(HeadError::Timeout));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes `head` and then `body` whole, `written` bytes of them being out already, and
    /// flushes (TLS keeps what it encrypted until then).
    fn poll_write_request(
        &mut self,
        cx: &mut Context<'_>,
        head: &[u8],
        body: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        let mut io = Pin::new(&mut self.io);
        while *written < head.len() + body.len() {
            let n = if *written < head.len() {
                let parts = [IoSlice::new(&head[*written..]), IoSlice::new(body)];
                ready!(io.as_mut().poll_write_vectored(cx, &parts))?
            } else {
                ready!(io.as_mut().poll_write(cx, &body[*written - head.len()..]))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        io.poll_flush(cx)
    }
}

/// The connections of one backend.
pub(crate) struct H1Client {
    /// Where connections go; its authority is every request's `Host`.
    pub(super) dial: Dial,
    read_idle: Duration,
    idle: Mutex<VecDeque<Idle>>,
}

/// A connection waiting for its next request.
struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

impl std::fmt::Debug for H1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Client")
            .field("dial", &self.dial)
            .finish_non_exhaustive()
    }
}

impl H1Client {
    /// A client whose connections `dial` opens.
    pub(crate) fn new(dial: Dial, read_idle: Duration) -> Self {
        Self {
            dial,
            read_idle,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// Sends a request (`target`: the path and query of an origin-form target) and returns
    /// the answer once its head has arrived; the body is read through [`H1Body`], which gives
    /// the connection back when it has been read whole. `defaults` are headers sent when
    /// `headers` has none of that name.
    pub(crate) async fn send(
        self: &Arc<Self>,
        method: &Method,
        target: (&str, Option<&str>),
        headers: &HeaderLines,
        defaults: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<H1Answer, UpstreamError> {
        let inline = body.len() <= INLINE_BODY;
        let mut head = Vec::with_capacity(512 + if inline { body.len() } else { 0 });
        h1_wire::encode_head(
            &mut head,
            method,
            target,
            &self.dial.authority,
            headers,
            defaults,
            body.len(),
        )
        .map_err(|message| UpstreamError::Setup {
            backend: self.dial.backend.to_string(),
            message,
        })?;
        let body = if inline {
            head.extend_from_slice(&body);
            Bytes::new()
        } else {
            body
        };
        let mut timer = IdleTimer::new(self.read_idle);
        for _ in 0..MAX_ATTEMPTS {
            let (mut conn, reused) = match self.checkout().await {
                Some(c) => (c, true),
                // Boxed: a connect (with its TLS handshake) is rare and its state large, and
                // every request's future would otherwise be that much larger to move.
                None => (Box::pin(self.connect()).await?, false),
            };
            timer.borrow_from(&mut conn);
            let mut written = 0;
            let sent =
                poll_fn(
                    |cx| match conn.poll_write_request(cx, &head, &body, &mut written) {
                        Poll::Pending if timer.expired(cx) => Poll::Ready(None),
                        other => other.map(Some),
                    },
                )
                .await;
            match sent {
                Some(Ok(())) => {}
                // Not written whole, so not acted on: a reused connection the server was
                // closing. Try another one.
                Some(Err(_)) if reused => continue,
                Some(Err(e)) => return Err(self.transport(e)),
                None => return Err(self.timeout()),
            }
            let answer = poll_fn(|cx| conn.poll_head(cx, method, &mut timer)).await;
            let head = match answer {
                Ok(head) => head,
                // The server closed a reused connection as the request went out, before
                // answering a byte (an idle close crossing the request). Sent again only when
                // repeating it is safe.
                Err(HeadError::Closed) if reused && idempotent(method, headers) => continue,
                Err(HeadError::Closed) => {
                    return Err(self.transport("the connection closed before an answer"));
                }
                Err(HeadError::Failed(e)) => return Err(self.transport(e)),
                Err(HeadError::Timeout) => return Err(self.timeout()),
            };
            timer.activity();
            let mut body = H1Body {
                conn: Some(conn),
                framing: head.framing,
                keep_alive: head.keep_alive,
                client: self.clone(),
                timer,
            };
            if body.framing.finished() {
                body.finish();
            }
            return Ok(H1Answer {
                status: head.status,
                headers: head.headers,
                body,
            });
        }
        Err(self.transport("no connection could take the request"))
    }

    fn timeout(&self) -> UpstreamError {
        UpstreamError::Timeout {
            backend: self.dial.backend.clone(),
        }
    }

    fn transport(&self, e: impl Into<super::BoxError>) -> UpstreamError {
        UpstreamError::Transport {
            backend: self.dial.backend.clone(),
            source: e.into(),
        }
    }

    /// The most recently used idle connection that is still open, if any.
    async fn checkout(&self) -> Option<Box<Conn>> {
        loop {
            let mut conn = {
                let mut idle = self.idle.lock().ok()?;
                let now = Instant::now();
                while idle
                    .front()
                    .is_some_and(|i| now.duration_since(i.since) > IDLE_EXPIRY)
                {
                    idle.pop_front();
                }
                let here = std::thread::current().id();
                let at = idle.iter().rposition(|i| i.conn.home == here);
                match at {
                    Some(at) => idle.remove(at)?.conn,
                    None => idle.pop_back()?.conn,
                }
            };
            if poll_fn(|cx| Poll::Ready(conn.alive(cx))).await {
                return Some(conn);
            }
        }
    }

    fn checkin(&self, conn: Box<Conn>) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// A new connection (boxed once: it moves between requests and the idle list).
    async fn connect(&self) -> Result<Box<Conn>, UpstreamError> {
        Ok(Box::new(Conn {
            io: self.dial.open().await?,
            buf: BytesMut::new(),
            names: h1_wire::KnownNames::default(),
            home: std::thread::current().id(),
            timer: None,
        }))
    }

    /// Idle connections waiting.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

impl std::fmt::Debug for H1Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Body").finish_non_exhaustive()
    }
}

/// Why no answer head was read.
enum HeadError {
    /// The connection ended before a byte of an answer.
    Closed,
    /// A malformed head, or the connection failed (or ended) mid-head.
    Failed(super::BoxError),
    Timeout,
}

impl From<WireError> for HeadError {
    fn from(e: WireError) -> Self {
        HeadError::Failed(e.into())
    }
}

/// Whether a request may be sent a second time without asking (RFC 9110 §9.2.2, and an
/// `Idempotency-Key` for the others).
pub(super) fn idempotent(method: &Method, headers: &HeaderLines) -> bool {
    const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
    method.is_idempotent() || headers.contains(&IDEMPOTENCY_KEY)
}

/// An answer from [`H1Client::send`]: its status and headers, its body still to be read.
pub(crate) struct H1Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderLines,
    pub(crate) body: H1Body,
}

impl std::fmt::Debug for H1Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Answer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// The body of an answer from [`H1Client::send`]. Reading it drives the connection; once it has
/// been read to the end the connection goes back to the idle list (dropped earlier, it is closed:
/// HTTP/1.1 cannot abandon half an answer and reuse the connection).
pub(crate) struct H1Body {
    /// `None` once the body has ended or failed.
    conn: Option<Box<Conn>>,
    framing: Framing,
    keep_alive: bool,
    client: Arc<H1Client>,
    timer: IdleTimer,
}

impl H1Body {
    /// The next chunk of the body, `None` at its end.
    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        loop {
            let Some(conn) = &mut self.conn else {
                return Poll::Ready(None);
            };
            let failure = match self.framing.decode(&mut conn.buf) {
                Ok(Decoded::Data(data)) => {
                    if self.framing.finished() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(Decoded::End) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Err(e) => self.client.transport(e),
                Ok(Decoded::More) => match conn.poll_fill(cx) {
                    Poll::Ready(Ok(0)) if self.framing == Framing::Close => {
                        self.conn = None;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Ok(0)) => self.client.transport("the connection closed mid-body"),
                    Poll::Ready(Ok(_)) => {
                        self.timer.activity();
                        continue;
                    }
                    Poll::Ready(Err(e)) => self.client.transport(e),
                    Poll::Pending if self.timer.expired(cx) => self.client.timeout(),
                    Poll::Pending => return Poll::Pending,
                },
            };
            self.conn = None;
            return Poll::Ready(Some(Err(failure)));
        }
    }

    /// The body has been read whole: its connection goes back to the idle list if the answer
    /// allows it and nothing unasked follows the answer.
    fn finish(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            self.timer.give_back(&mut conn);
            self.client.checkin(conn);
        }
    }
}

/// The idle-read deadline: the longest silence while waiting for the head or the next chunk.
/// The timer is armed only when a wait actually happens, and a chunk only records the time (no
/// timer-wheel update per chunk). Its `Sleep` is the connection's when the connection has one
/// ([`Conn::timer`]), so a request on a reused connection makes no timer of its own.
pub(super) struct IdleTimer {
    limit: Duration,
    /// The last activity, from the first wait on (`None` until a wait has happened).
    last: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    pub(super) fn new(limit: Duration) -> Self {
        Self {
            limit,
            last: None,
            sleep: None,
        }
    }

    /// Takes over the connection's timer when this request has none yet and runs on the
    /// connection's home thread (where that timer was made).
    fn borrow_from(&mut self, conn: &mut Conn) {
        if self.sleep.is_none() && conn.home == std::thread::current().id() {
            self.sleep = conn.timer.take();
        }
    }

    /// Leaves the timer with the connection for its next request, when it was made on the
    /// connection's home thread (a timer first armed on another thread is dropped).
    fn give_back(&mut self, conn: &mut Conn) {
        if conn.home == std::thread::current().id() {
            conn.timer = self.sleep.take();
        }
    }

    /// Something arrived: the silence starts again (recorded only once a wait has happened;
    /// until then every poll found data at once, so the first wait starts the count).
    pub(super) fn activity(&mut self) {
        if let Some(last) = &mut self.last {
            *last = Instant::now();
        }
    }

    /// True once `limit` has passed since the last activity; otherwise arranges a wake-up then.
    ///
    /// The timer is not moved at each wait: activity only ever moves the deadline later, so a
    /// timer armed for an earlier one fires first, and is moved on then (a stream of chunks
    /// pushes it once per `limit` instead of once per chunk).
    pub(super) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = *self.last.get_or_insert_with(Instant::now) + self.limit;
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() > deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        if sleep.deadline() >= deadline {
            return true;
        }
        // Fired at a deadline that activity has moved on since: armed again for the real one
        // (one atomic update while the timer is still registered, as for a kept timer).
        sleep.as_mut().reset(deadline);
        sleep.as_mut().poll(cx).is_ready()
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
