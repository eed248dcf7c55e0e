//! HTTP/2 to backends with `http2_prior_knowledge` (h2c to `http://`, or over TLS with ALPN
//! `h2`), through the `h2` crate from the request's own task.
//!
//! reqwest over hyper passed each HTTP/2 request through its client layers (the URL parsed
//! again twice, a pool keyed by a SipHash, its timeouts), hyper's dispatch channel to the
//! connection's task, and a task of its own per request to pipe the body: 114,000 instructions
//! per request against 48,000 for HTTP/1.1 over the same TLS (`bench/PROFILE.md` §14). Here the
//! request's task opens the stream itself, hands over the whole body at once (the `h2` crate
//! sends it as the flow-control windows allow), waits for the head and reads the body off the
//! stream, releasing the window as it goes. Only the connection's own task remains: `h2` needs
//! one to read frames and write what the streams queued.
//!
//! Each event loop keeps one connection per backend for its own requests (every other thread —
//! background jobs, `event_loops: 0` — shares one), so that connection's task runs on the same
//! thread as the requests it carries. A connection that has ended, or has been idle for 90 s,
//! is replaced at the next request. A request that found its connection unusable before it was
//! sent goes on a new one; one the server refused (`REFUSED_STREAM`, which guarantees it was not
//! processed) is sent again, and one whose connection failed or went away before its answer only
//! when repeating it is safe (an idempotent method or an `Idempotency-Key`). The idle-read
//! timeout covers the wait for a stream slot, the head, and each silence in the body; dropping
//! the body before its end resets the stream (the connection carries on).

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use ::h2::client::SendRequest;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri, Version, header};
use tokio::time::Instant;

use super::dial::Dial;
use super::h1::{IdleTimer, idempotent};
use super::{HeaderLines, UpstreamError};

/// A connection unused this long is replaced rather than reused (reqwest's pool did the same).
const IDLE_EXPIRY: Duration = Duration::from_secs(90);
/// Connections tried for one request (see the module's retry rules).
const MAX_ATTEMPTS: usize = 3;
/// Receive windows: per stream and per connection (hyper's defaults for its client). The
/// protocol's default of 64 KiB would stall a long answer on a round trip per window.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// One open connection: the handle that opens streams on it, and whether its task has ended.
struct Conn {
    send: SendRequest<Bytes>,
    ended: Arc<AtomicBool>,
    used: Instant,
}

/// Sets the flag when the connection's task ends, however it ends (the runtime it runs on may
/// stop first: the task is then dropped, never completed).
struct EndFlag(Arc<AtomicBool>);

impl Drop for EndFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The HTTP/2 connections of one backend.
pub(crate) struct H2Client {
    dial: Dial,
    scheme: Scheme,
    authority: Authority,
    read_idle: Duration,
    /// Each event loop's connection by its thread; `None`: the one other threads share.
    conns: Mutex<HashMap<Option<ThreadId>, Conn>>,
}

impl std::fmt::Debug for H2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Client")
            .field("dial", &self.dial)
            .finish_non_exhaustive()
    }
}

impl H2Client {
    /// A client whose connections `dial` opens (`None` if its authority is not one HTTP/2
    /// can carry).
    pub(crate) fn new(dial: Dial, read_idle: Duration) -> Option<Self> {
        let scheme = if dial.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let authority = Authority::try_from(dial.authority.as_bytes()).ok()?;
        Some(Self {
            dial,
            scheme,
            authority,
            read_idle,
            conns: Mutex::new(HashMap::new()),
        })
    }

    /// Sends a request (`target`: the path and query) and returns the answer once its head has
    /// arrived; its body is read through [`H2Body`]. `defaults` are headers sent when `headers`
    /// has none of that name.
    pub(crate) async fn send(
        &self,
        method: &Method,
        target: (&str, Option<&str>),
        headers: &HeaderLines,
        defaults: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response<H2Body>, UpstreamError> {
        let uri = self.uri(target)?;
        let mut timer = IdleTimer::new(self.read_idle);
        let key = super::loop_clients::loop_thread();
        for _ in 0..MAX_ATTEMPTS {
            let ((mut send, ended), reused) = match self.checkout(key) {
                Some(conn) => (conn, true),
                // Boxed: a connect (with its TLS handshake) is rare and its state large.
                None => (Box::pin(self.connect(key)).await?, false),
            };
            // A stream slot (the server limits how many are open at once).
            let ready = poll_fn(|cx| match send.poll_ready(cx) {
                Poll::Pending if timer.expired(cx) => Poll::Ready(None),
                other => other.map(Some),
            })
            .await;
            match ready {
                Some(Ok(())) => {}
                // Nothing was sent: the connection had ended. Another one.
                Some(Err(e)) if reused && gone(&e) => {
                    self.forget(key, &ended);
                    continue;
                }
                Some(Err(e)) => return Err(self.transport(e)),
                None => return Err(self.timeout()),
            }
            let request = request(method, uri.clone(), headers, defaults, body.len());
            let (mut answer, mut stream) = match send.send_request(request, body.is_empty()) {
                Ok(opened) => opened,
                Err(e) if reused && gone(&e) => {
                    self.forget(key, &ended);
                    continue;
                }
                Err(e) => return Err(self.transport(e)),
            };
            if !body.is_empty()
                && let Err(e) = stream.send_data(body.clone(), true)
            {
                return Err(self.transport(e));
            }
            let answer = poll_fn(|cx| match Pin::new(&mut answer).poll(cx) {
                Poll::Pending if timer.expired(cx) => Poll::Ready(None),
                other => other.map(Some),
            })
            .await;
            match answer {
                Some(Ok(resp)) => {
                    timer.activity();
                    let (parts, recv) = resp.into_parts();
                    let body = H2Body {
                        recv,
                        timer,
                        backend: self.dial.backend.clone(),
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Some(Err(e)) => {
                    if gone(&e) {
                        self.forget(key, &ended);
                    }
                    if unprocessed(&e, method, headers) {
                        continue;
                    }
                    return Err(self.transport(e));
                }
                None => return Err(self.timeout()),
            }
        }
        Err(self.transport("no connection could take the request"))
    }

    /// The request's URI: the backend's scheme and authority, `target`'s path and query.
    fn uri(&self, (path, query): (&str, Option<&str>)) -> Result<Uri, UpstreamError> {
        let invalid = || UpstreamError::Setup {
            backend: self.dial.backend.to_string(),
            message: format!("invalid upstream path {path:?}"),
        };
        if !path.starts_with('/') {
            return Err(invalid());
        }
        let path_and_query = match query {
            Some(q) => PathAndQuery::try_from(format!("{path}?{q}")),
            None => PathAndQuery::try_from(path),
        }
        .map_err(|_| invalid())?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| invalid())
    }

    /// The connection of the current thread's loop (or the shared one) when it can still take
    /// requests.
    fn checkout(&self, key: Option<ThreadId>) -> Option<(SendRequest<Bytes>, Arc<AtomicBool>)> {
        let mut conns = self.conns.lock().ok()?;
        let conn = conns.get_mut(&key)?;
        let now = Instant::now();
        if conn.ended.load(Ordering::Acquire) || now.duration_since(conn.used) > IDLE_EXPIRY {
            // Dropping the last handle lets an idle connection close (a GOAWAY, then its end).
            conns.remove(&key);
            return None;
        }
        conn.used = now;
        Some((conn.send.clone(), conn.ended.clone()))
    }

    /// Drops the connection whose end flag is `ended` from the table, if it is still there.
    fn forget(&self, key: Option<ThreadId>, ended: &Arc<AtomicBool>) {
        if let Ok(mut conns) = self.conns.lock()
            && conns
                .get(&key)
                .is_some_and(|c| Arc::ptr_eq(&c.ended, ended))
        {
            conns.remove(&key);
        }
    }

    /// Opens a connection, starts its task on the current runtime, and keeps it for `key`'s
    /// later requests unless another request opened one meanwhile.
    async fn connect(
        &self,
        key: Option<ThreadId>,
    ) -> Result<(SendRequest<Bytes>, Arc<AtomicBool>), UpstreamError> {
        let io = self.dial.open().await?;
        let (send, connection) = ::h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| UpstreamError::Connect {
                backend: self.dial.backend.clone(),
                source: e.into(),
            })?;
        let ended = Arc::new(AtomicBool::new(false));
        let flag = EndFlag(ended.clone());
        let backend = self.dial.backend.clone();
        tokio::spawn(async move {
            let _flag = flag;
            if let Err(e) = connection.await {
                tracing::debug!(backend = %backend, error = %e, "upstream HTTP/2 connection ended");
            }
        });
        if let Ok(mut conns) = self.conns.lock() {
            let taken = conns
                .get(&key)
                .is_some_and(|c| !c.ended.load(Ordering::Acquire));
            if !taken {
                conns.insert(
                    key,
                    Conn {
                        send: send.clone(),
                        ended: ended.clone(),
                        used: Instant::now(),
                    },
                );
            }
        }
        Ok((send, ended))
    }

    fn timeout(&self) -> UpstreamError {
        UpstreamError::Timeout {
            backend: self.dial.backend.clone(),
        }
    }

    fn transport(&self, e: impl Into<super::BoxError>) -> UpstreamError {
        transport(&self.dial.backend, e)
    }

    /// Connections kept.
    #[cfg(test)]
    pub(crate) fn connections(&self) -> usize {
        self.conns.lock().map_or(0, |c| c.len())
    }
}

fn transport(backend: &Arc<str>, e: impl Into<super::BoxError>) -> UpstreamError {
    UpstreamError::Transport {
        backend: backend.clone(),
        source: e.into(),
    }
}

/// True when `e` means the connection is gone (it failed, or the server is closing it).
fn gone(e: &::h2::Error) -> bool {
    e.is_io() || e.is_go_away()
}

/// True when a request that failed with `e` before its answer's head was certainly not
/// processed (the server refused the stream), or may have been but its connection is gone and
/// repeating it is safe.
fn unprocessed(e: &::h2::Error, method: &Method, headers: &HeaderLines) -> bool {
    e.reason() == Some(::h2::Reason::REFUSED_STREAM) || (gone(e) && idempotent(method, headers))
}

/// The request head: the prepared headers without those HTTP/2 forbids or frames itself, the
/// `defaults` the headers lack, and the body's length (stated for anything but a bodiless GET
/// or HEAD, as the HTTP/1.1 client does).
fn request(
    method: &Method,
    uri: Uri,
    headers: &HeaderLines,
    defaults: &[(HeaderName, HeaderValue)],
    body_len: usize,
) -> Request<()> {
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    let out = request.headers_mut();
    out.reserve(headers.len() + defaults.len() + 1);
    for (name, value) in headers.iter() {
        if !connection_specific(name) {
            out.append(name.clone(), value.clone());
        }
    }
    for (name, value) in defaults {
        if !headers.contains(name) {
            out.insert(name.clone(), value.clone());
        }
    }
    if body_len > 0 || !matches!(*method, Method::GET | Method::HEAD) {
        out.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    request
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2), and those the client sets itself.
fn connection_specific(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::HOST
            | header::CONTENT_LENGTH
            | header::TRANSFER_ENCODING
            | header::CONNECTION
            | header::UPGRADE
            | header::TE
    ) || name == "keep-alive"
        || name == "proxy-connection"
}

/// The body of an answer from [`H2Client::send`]: the stream's data, the window released as it
/// is read. Dropped before its end, the stream is reset.
pub(crate) struct H2Body {
    recv: ::h2::RecvStream,
    timer: IdleTimer,
    backend: Arc<str>,
}

impl std::fmt::Debug for H2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Body").finish_non_exhaustive()
    }
}

impl H2Body {
    /// The next chunk of the body, `None` at its end.
    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        loop {
            return match self.recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.timer.activity();
                    // Read: the server may send that much more.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    if data.is_empty() {
                        continue;
                    }
                    Poll::Ready(Some(Ok(data)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(transport(&self.backend, e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending if self.timer.expired(cx) => {
                    Poll::Ready(Some(Err(UpstreamError::Timeout {
                        backend: self.backend.clone(),
                    })))
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

#[cfg(test)]
#[path = "h2_tests.rs"]
mod tests;
