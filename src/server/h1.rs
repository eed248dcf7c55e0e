//! One client's HTTP/1.1 connection, served by the gateway itself (hyper serves HTTP/2).
//!
//! The loop reads a request head ([`h1_wire::parse_request`]), hands the router a `Request`
//! whose body reads straight from the connection's buffer, and writes the answer: its head and,
//! while the body has frames ready, its data in one buffer, written when the body has to wait
//! (a stream's events go out as they come) or ends. Requests are answered in order; pipelined
//! ones wait in the buffer.
//!
//! What the connection does around a request:
//! - `Expect: 100-continue` gets its `100 Continue` as soon as the head is read.
//! - A refused head gets its status (400, 431, 501) and the connection closes.
//! - A client that hangs up while its request is being handled (its body read) cancels it.
//! - After the answer, the rest of a body the handler did not read is skipped when it is already
//!   in the buffer; otherwise the connection closes (`connection: close` tells the client).
//! - A handler that panics gets its client a 500.
//! - Framing is the server's: `Content-Length` when the body's length is known, else chunked
//!   (HTTP/1.0: until the close); none for HEAD, 1xx, 204 and 304; `Date` when absent.
//!
//! The watchdog ([`super::watch`]) sees the phases as before: bytes read while idle start a
//! head, a parsed head starts a request, a written answer ends it.

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{Method, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::io::poll_read_buf;

use super::connections::{Answer, App, Report, poll_answer};
use super::h1_wire::{self, BodyFraming, HeadError, KnownHead, RequestHead, ResponseFrame};
use super::watch::{TimedBody, Watch};
use crate::api::access_log::Outcome;
use crate::clock::{Clock, SystemClock};
use crate::upstream::h1_wire::{Decoded, Framing};

/// The client connection preface of HTTP/2 (prior knowledge, h2c).
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Read buffer: what is allocated first, and the least free room before a read.
const READ_CHUNK: usize = 8 * 1024;
const MIN_ROOM: usize = 2 * 1024;
/// Largest read while a long body arrives.
const BODY_CHUNK: usize = 256 * 1024;
/// Answer bytes gathered before they are written even if the body has more ready.
const WRITE_BATCH: usize = 64 * 1024;
/// Data frames at least this large are written from their own buffer, not copied.
const COPY_LIMIT: usize = 16 * 1024;
/// How long, and how much, a closing connection keeps reading what the client still sends, so
/// that the answer is not lost to a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// What one connection needs.
pub(super) struct H1<S> {
    pub app: S,
    pub addr: SocketAddr,
    pub watch: Arc<Watch>,
    pub max_head: usize,
    pub body_timeout: Duration,
    /// Set when the server shuts down: the connection closes after the answer in progress.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// How a connection ended.
pub(super) enum Served {
    /// Closed.
    Done,
    /// The client spoke HTTP/2 (prior knowledge): the socket, and what was read of it.
    H2(TcpStream, Bytes),
}

/// The read side: the socket's read half, what was read and not used yet, and where the current
/// request's body stands.
struct ReadSide {
    io: OwnedReadHalf,
    buf: BytesMut,
    /// What the requests' heads repeat (`h1_wire::KnownHead`).
    known: KnownHead,
    body: Framing,
    /// The client closed its side.
    eof: bool,
    /// A read failed or the body was malformed: the connection cannot carry another request.
    broken: bool,
}

type Shared = Arc<Mutex<ReadSide>>;

fn lock(side: &Shared) -> MutexGuard<'_, ReadSide> {
    side.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReadSide {
    /// Reads more into the buffer, with room for at least `want` bytes (at most [`BODY_CHUNK`]).
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_ROOM.max(want.min(BODY_CHUNK)) {
            self.buf.reserve(READ_CHUNK.max(want.min(BODY_CHUNK)));
        }
        let read = poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf);
        match read {
            Poll::Ready(Ok(0)) => self.eof = true,
            Poll::Ready(Err(_)) => {
                self.eof = true;
                self.broken = true;
            }
            _ => {}
        }
        read
    }
}

/// What [`read_head`] found.
#[allow(clippy::large_enum_variant)] // returned once per request and taken apart at once: a box would cost an allocation each time
enum Head {
    Request(RequestHead),
    H2,
    Closed,
}

/// Serves the connection until it closes (or turns out to be HTTP/2).
pub(super) async fn serve<S: App>(tcp: TcpStream, h: H1<S>) -> Served {
    let (read, mut write) = tcp.into_split();
    let side: Shared = Arc::new(Mutex::new(ReadSide {
        io: read,
        buf: BytesMut::with_capacity(READ_CHUNK),
        known: KnownHead::default(),
        body: Framing::Length(0),
        eof: false,
        broken: false,
    }));
    let mut out = Vec::with_capacity(READ_CHUNK);
    let mut first = true;
    loop {
        let head = match read_head(&side, &h, first).await {
            Ok(Head::Request(head)) => head,
            Ok(Head::Closed) => return Served::Done,
            Ok(Head::H2) => return into_h2(side, write),
            Err(refused) => {
                tracing::debug!(client = %h.addr, %refused, "refused a request head");
                let answer = h1_wire::plain_response(refused.status(), &http_date());
                let _ = write.write_all(&answer).await;
                linger(side, write).await;
                return Served::Done;
            }
        };
        first = false;
        let in_flight = h.watch.request_started();
        let RequestHead {
            request,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        if expect_continue && write.write_all(h1_wire::CONTINUE).await.is_err() {
            return Served::Done;
        }
        let head_request = request.method() == Method::HEAD;
        let version = request.version();
        let body = if framing == Framing::Length(0) {
            Body::empty()
        } else {
            lock(&side).body = framing;
            Body::new(TimedBody::new(
                RequestBody { side: side.clone() },
                h.body_timeout,
            ))
        };
        let request = request.map(|()| body);
        let handler = pin!(h.app.answer(request, h.addr));
        let Some((response, report)) = answer(handler, &side).await else {
            tracing::debug!(client = %h.addr, "the client closed while its request was handled");
            return Served::Done;
        };
        let reusable = body_done(&side);
        let close = !keep_alive || !reusable || *h.stop.borrow();
        let respond = Respond {
            head_request,
            version,
            close,
            keep_alive_10: version == Version::HTTP_10,
        };
        let written = write_response(&mut write, &mut out, response, respond).await;
        if let Some(report) = report {
            report.report(match written {
                Ok(_) => Outcome::Completed,
                Err(Unsent::Body) => Outcome::BodyError,
                Err(Unsent::Client) => Outcome::ClientDisconnected,
            });
        }
        let Ok(close) = written else {
            return Served::Done;
        };
        drop(in_flight);
        if close {
            if !reusable {
                linger(side, write).await;
            }
            return Served::Done;
        }
        if out.capacity() > WRITE_BATCH * 2 {
            out = Vec::with_capacity(READ_CHUNK);
        }
    }
}

/// Reads until a request head is complete (or the connection closes, or HTTP/2's preface
/// arrives first on a new connection).
async fn read_head<S>(side: &Shared, h: &H1<S>, first: bool) -> Result<Head, HeadError> {
    poll_fn(|cx| {
        let mut guard = lock(side);
        let s = &mut *guard;
        loop {
            if !s.buf.is_empty() {
                let preface = &H2_PREFACE[..s.buf.len().min(H2_PREFACE.len())];
                if first && s.buf.starts_with(preface) {
                    if s.buf.len() >= H2_PREFACE.len() {
                        return Poll::Ready(Ok(Head::H2));
                    }
                } else if let Some(head) =
                    h1_wire::parse_request(&mut s.buf, &mut s.known, h.max_head)?
                {
                    return Poll::Ready(Ok(Head::Request(head)));
                }
            }
            if s.eof || (s.buf.is_empty() && *h.stop.borrow()) {
                return Poll::Ready(Ok(Head::Closed));
            }
            match s.poll_fill(cx, 0) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => h.watch.bytes_read(),
                Poll::Ready(_) => {}
            }
        }
    })
    .await
}

/// The router's answer, and what is told how its sending ends; `None` when the client closed
/// before it was ready (the handler is dropped, which cancels what it was doing). A handler that
/// panics is answered 500.
async fn answer<F, R>(
    mut handler: Pin<&mut F>,
    side: &Shared,
) -> Option<(Response<Body>, Option<R>)>
where
    F: Future<Output = Answer<R>>,
{
    let mut watching = true;
    poll_fn(|cx| {
        if let Poll::Ready(response) = poll_answer(handler.as_mut(), cx) {
            return Poll::Ready(Some(response));
        }
        // Once the body is read and nobody holds it, the only thing the client can still send
        // is the next request or its end.
        if watching && Arc::strong_count(side) == 1 {
            let mut s = lock(side);
            if !s.body.finished() || !s.buf.is_empty() || s.eof {
                watching = false;
            } else {
                match s.poll_fill(cx, 0) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                    Poll::Ready(Ok(_)) => watching = false,
                    Poll::Pending => {}
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// Whether the request's body is behind the connection, so that it can read the next request:
/// read whole, or its rest already in the buffer (and skipped). Not when the body is still
/// held (a handler that kept it) or a read failed.
fn body_done(side: &Shared) -> bool {
    if Arc::strong_count(side) != 1 {
        return false;
    }
    let mut s = lock(side);
    if s.broken {
        return false;
    }
    let ReadSide { buf, body, .. } = &mut *s;
    matches!(h1_wire::discard(body, buf), Ok(true))
}

/// The request's side of writing an answer.
#[derive(Clone, Copy)]
struct Respond {
    head_request: bool,
    version: Version,
    /// The connection closes after this answer.
    close: bool,
    /// An HTTP/1.0 client, kept alive.
    keep_alive_10: bool,
}

/// Why an answer did not go out whole.
enum Unsent {
    /// Its body failed midway, or did not match the length it gave.
    Body,
    /// Writing to the client failed.
    Client,
}

impl From<io::Error> for Unsent {
    fn from(_: io::Error) -> Self {
        Unsent::Client
    }
}

/// Writes the answer; `Ok(close)`: whether the connection closes now. An error is a client
/// gone or a body that failed midway (or did not match its length): the connection closes.
async fn write_response(
    write: &mut OwnedWriteHalf,
    out: &mut Vec<u8>,
    response: Response<Body>,
    r: Respond,
) -> Result<bool, Unsent> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let framing = if r.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodyFraming::None
    } else if body.is_end_stream() {
        BodyFraming::Length(0)
    } else if let Some(n) = body.size_hint().exact() {
        BodyFraming::Length(n)
    } else if r.version == Version::HTTP_11 {
        BodyFraming::Chunked
    } else {
        BodyFraming::Close
    };
    let close = r.close || framing == BodyFraming::Close || status.is_informational();
    out.clear();
    h1_wire::encode_response_head(
        out,
        &ResponseFrame {
            status,
            body: framing,
            close,
            keep_alive_10: r.keep_alive_10 && !close,
            date: &http_date(),
        },
        &parts.headers,
    );
    if matches!(framing, BodyFraming::None | BodyFraming::Length(0)) {
        write.write_all(out).await?;
        return Ok(close);
    }
    let chunked = framing == BodyFraming::Chunked;
    let mut left = match framing {
        BodyFraming::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        // Gather what the body has ready; write when it has to wait.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let mut waited = false;
                if !out.is_empty() {
                    waited = write_all_noting_waits(write, out).await?;
                    out.clear();
                }
                // Its `Pending` arranged this task's wake-up for when it has more: wait for that
                // rather than polling it again at once, which found nothing (an event stream's
                // chunk went through every layer of its body twice). Unless the write waited:
                // the wake-up may have come, and been used, meanwhile.
                if !waited {
                    woken().await;
                }
                continue;
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "an answer's body failed midway: closing");
                return Err(Unsent::Body);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Empty data and trailers are not sent.
                _ => continue,
            },
        };
        if data.len() as u64 > left {
            tracing::debug!("an answer's body is longer than it said: closing");
            return Err(Unsent::Body);
        }
        left -= data.len() as u64;
        if chunked {
            h1_wire::chunk_head(out, data.len());
        }
        if data.len() >= COPY_LIMIT {
            write.write_all(out).await?;
            out.clear();
            write.write_all(&data).await?;
        } else {
            out.extend_from_slice(&data);
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= WRITE_BATCH {
            write.write_all(out).await?;
            out.clear();
        }
    }
    if chunked {
        out.extend_from_slice(h1_wire::LAST_CHUNK);
    } else if framing != BodyFraming::Close && left != 0 {
        tracing::debug!("an answer's body is shorter than it said: closing");
        return Err(Unsent::Body);
    }
    if !out.is_empty() {
        write.write_all(out).await?;
    }
    Ok(close)
}

/// `write_all`, telling whether it had to wait (the task gave way while the socket was full).
async fn write_all_noting_waits(write: &mut OwnedWriteHalf, out: &[u8]) -> io::Result<bool> {
    let mut waited = false;
    let mut writing = pin!(write.write_all(out));
    poll_fn(|cx| match writing.as_mut().poll(cx) {
        Poll::Pending => {
            waited = true;
            Poll::Pending
        }
        Poll::Ready(done) => Poll::Ready(done.map(|()| waited)),
    })
    .await
}

/// Pending once, then ready: waits for the task's next wake-up, which something polled just
/// before (and found `Pending`) has arranged, with nothing awaited in between that could have
/// given way (a wake-up while the task runs makes it run again at once).
fn woken() -> impl Future<Output = ()> {
    let mut parked = false;
    poll_fn(move |_| {
        if std::mem::replace(&mut parked, true) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// After an answer the client may not have expected so soon (a refused head, an unread body):
/// the write side is shut, and what the client still sends is read and dropped for a moment,
/// so that closing does not reset the connection before the client has read the answer.
async fn linger(side: Shared, mut write: OwnedWriteHalf) {
    let _ = write.shutdown().await;
    let Ok(side) = Arc::try_unwrap(side) else {
        return;
    };
    let mut s = side.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut drained = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while drained < LINGER_BYTES && !s.eof {
            s.buf.clear();
            match poll_fn(|cx| s.poll_fill(cx, READ_CHUNK)).await {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    })
    .await;
}

/// The socket back whole, for hyper's HTTP/2 server, with the bytes already read.
fn into_h2(side: Shared, write: OwnedWriteHalf) -> Served {
    let Ok(side) = Arc::try_unwrap(side) else {
        return Served::Done;
    };
    let s = side.into_inner().unwrap_or_else(PoisonError::into_inner);
    match s.io.reunite(write) {
        Ok(tcp) => Served::H2(tcp, s.buf.freeze()),
        Err(_) => Served::Done,
    }
}

/// A request's body, read from the connection's buffer as the handler asks for it.
struct RequestBody {
    side: Shared,
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut s = lock(&self.side);
        loop {
            // A body of known length up to `BODY_CHUNK` that is partly here: what the socket
            // already holds of the rest is read first, so that the body is handed over in one
            // piece (the handler then keeps it without copying the pieces together).
            if let Framing::Length(left) = s.body {
                let have = s.buf.len() as u64;
                if have > 0 && have < left && left <= BODY_CHUNK as u64 && !s.eof {
                    let rest = usize::try_from(left - have).unwrap_or(BODY_CHUNK);
                    match s.poll_fill(cx, rest) {
                        Poll::Ready(Ok(n)) if n > 0 => continue,
                        Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                        _ => {}
                    }
                }
            }
            let ReadSide { buf, body, .. } = &mut *s;
            match body.decode(buf) {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Decoded::End) => return Poll::Ready(None),
                Ok(Decoded::More) => {}
                Err(e) => {
                    s.broken = true;
                    return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, e))));
                }
            }
            if s.eof {
                s.broken = true;
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the client closed before its request body ended",
                ))));
            }
            let want = match s.body {
                Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
                _ => READ_CHUNK,
            };
            match s.poll_fill(cx, want) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.side).body.finished()
    }

    fn size_hint(&self) -> SizeHint {
        match lock(&self.side).body {
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// The `Date` header's value for now, formatted once a second per thread.
fn http_date() -> [u8; 29] {
    thread_local! {
        static CACHE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((0, [0; 29])) };
    }
    // The header says when the answer was sent: the real clock, whatever the state's says.
    let now = SystemClock.now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let (at, text) = cache.get();
        if at == secs && at != 0 {
            return text;
        }
        let mut text = [0u8; 29];
        let formatted = httpdate::fmt_http_date(now);
        if formatted.len() == text.len() {
            text.copy_from_slice(formatted.as_bytes());
        }
        cache.set((secs, text));
        text
    })
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
