//! HTTP/1.1 to backends, plain (local model servers such as vLLM, Ollama or llama.cpp, and
//! TLS-terminating sidecars) or over TLS (`https://`, see [`super::tls`]), driven from the
//! request's own task.
//!
//! A general-purpose client (reqwest over hyper-util) runs every connection in a task of its own:
//! the request crosses to that task over a channel and the answer comes back over another, and on
//! a multi-threaded runtime the two tasks often sit on different threads, so each request wakes a
//! second thread (expensive on a VM: an inter-processor interrupt and a VM exit). Here the task
//! that read the client's request polls the upstream connection itself while it waits for the
//! answer's head and while it reads the body: one task writes the request upstream and relays the
//! answer, woken only by its two sockets.
//!
//! Idle connections wait in a per-backend list, newest used first. Nobody polls them there, so a
//! connection is driven once when it is taken out: one the server closed meanwhile is noticed
//! then and dropped, and a request that could not be written on it is sent on another (hyper
//! hands the unsent request back). A connection idle for 90 s is dropped, at most 128 wait.
//! Over TLS the connect timeout covers the TCP connect and the TLS handshake; SNI is the base
//! URL's host, ALPN `http/1.1`, and a certificate that does not verify fails the connect like a
//! refused connection. HTTP/2 (h2c or over TLS with `http2_prior_knowledge`), URLs with
//! credentials and backends reached through a proxy use reqwest (see `Backend`).

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsConnector;

use super::UpstreamError;
use super::tls::Stream;

/// An idle connection older than this is dropped rather than reused.
const IDLE_EXPIRY: Duration = Duration::from_secs(90);
/// Most idle connections kept per backend.
const MAX_IDLE: usize = 128;
/// Connections tried for one request whose earlier attempts could not even be written.
const MAX_ATTEMPTS: usize = 3;

/// One upstream connection: the handle requests are sent on and the state machine that does
/// its I/O, which whoever is waiting on the connection polls.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    io: http1::Connection<TokioIo<Stream>, Full<Bytes>>,
    /// The I/O state machine has finished (the connection is closed or failed): never polled again.
    ended: bool,
    /// The thread that opened the connection: its socket is registered with that thread's event
    /// loop, so a request on that thread reuses it without involving another thread.
    home: std::thread::ThreadId,
}

impl Conn {
    /// Drives the connection's I/O; true once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && Pin::new(&mut self.io).poll(cx).is_ready() {
            self.ended = true;
        }
        self.ended
    }

    /// Drives the I/O once more and tells whether another request can be sent now.
    fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.drive(cx) && matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(())))
    }
}

/// Where to connect.
#[derive(Debug)]
enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

/// TLS to an `https://` backend: the backend's shared client configuration and the name its
/// certificate must carry (also sent as SNI unless it is an IP address).
struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

/// The connections of one backend.
pub(crate) struct H1Client {
    backend: Arc<str>,
    target: Target,
    /// Set for `https://` backends.
    tls: Option<Tls>,
    /// `Host` header of every request (the base URL's authority).
    host: HeaderValue,
    connect_timeout: Duration,
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
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl H1Client {
    /// A client for `base` when it is an `http://` URL, or an `https://` one and `tls` is
    /// given, without credentials in it (reqwest turns those into Basic auth); `None` for
    /// anything else.
    pub(crate) fn new(
        backend: Arc<str>,
        base: &reqwest::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
        read_idle: Duration,
    ) -> Option<Self> {
        if !base.username().is_empty() || base.password().is_some() {
            return None;
        }
        let host = base.host_str()?;
        let port = base.port_or_known_default()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tls = match (base.scheme(), tls) {
            ("http", _) => None,
            ("https", Some(config)) => Some(Tls {
                connector: TlsConnector::from(config),
                name: ServerName::try_from(bare.to_owned()).ok()?,
            }),
            _ => return None,
        };
        let target = match bare.parse::<IpAddr>() {
            Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
            Err(_) => Target::Name(bare.to_owned(), port),
        };
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Some(Self {
            backend,
            target,
            tls,
            host: HeaderValue::from_str(&authority).ok()?,
            connect_timeout,
            read_idle,
            idle: Mutex::new(VecDeque::new()),
        })
    }

    /// Sends `req` (origin-form URI) and returns the answer once its head has arrived; the body
    /// is read through [`H1Body`], which gives the connection back when it has been read whole.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<H1Body>, UpstreamError> {
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        let mut timer = IdleTimer::new(self.read_idle);
        for _ in 0..MAX_ATTEMPTS {
            let mut conn = match self.checkout().await {
                Some(c) => c,
                None => self.connect().await?,
            };
            let mut answer = pin!(conn.sender.try_send_request(req));
            let outcome = poll_fn(|cx| {
                let ended = conn.drive(cx);
                if let Poll::Ready(r) = answer.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                if ended || timer.expired(cx) {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match outcome {
                Some(Ok(resp)) => {
                    timer.activity();
                    let client = self.clone();
                    return Ok(resp.map(|incoming| H1Body {
                        incoming,
                        conn: Some(conn),
                        client,
                        timer,
                    }));
                }
                Some(Err(mut e)) => match e.take_message() {
                    // Not written: the connection was closing. Try another one.
                    Some(unsent) => req = unsent,
                    None => return Err(self.transport(e.into_error())),
                },
                None if conn.ended => {
                    return Err(self.transport("the connection closed before an answer"));
                }
                None => {
                    return Err(UpstreamError::Timeout {
                        backend: self.backend.clone(),
                    });
                }
            }
        }
        Err(self.transport("no connection could take the request"))
    }

    fn transport(&self, e: impl Into<super::BoxError>) -> UpstreamError {
        UpstreamError::Transport {
            backend: self.backend.clone(),
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
            if poll_fn(|cx| Poll::Ready(conn.reusable(cx))).await {
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

    /// A new connection (boxed once: it moves between requests and the idle list); the
    /// connect timeout covers the TLS handshake too.
    async fn connect(&self) -> Result<Box<Conn>, UpstreamError> {
        let connecting = async {
            let tcp = match &self.target {
                Target::Addr(addr) => TcpStream::connect(*addr).await?,
                Target::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await?,
            };
            tcp.set_nodelay(true)?;
            Ok::<_, std::io::Error>(match &self.tls {
                None => Stream::Plain(tcp),
                Some(tls) => Stream::Tls(tls.connector.connect(tls.name.clone(), tcp).await?),
            })
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(UpstreamError::Connect {
                    backend: self.backend.clone(),
                    source: e.into(),
                });
            }
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    backend: self.backend.clone(),
                });
            }
        };
        let (sender, io) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.transport(e))?;
        Ok(Box::new(Conn {
            sender,
            io,
            ended: false,
            home: std::thread::current().id(),
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

/// The body of an answer from [`H1Client::send`]. Reading it drives the connection; once it has
/// been read to the end the connection goes back to the idle list (dropped earlier, it is closed:
/// HTTP/1.1 cannot abandon half an answer and reuse the connection).
pub(crate) struct H1Body {
    incoming: Incoming,
    conn: Option<Box<Conn>>,
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
            if let Some(conn) = &mut self.conn {
                conn.drive(cx);
            }
            match Pin::new(&mut self.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.timer.activity();
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(self.client.transport(e))));
                }
                Poll::Ready(None) => {
                    if let Some(mut conn) = self.conn.take()
                        && conn.reusable(cx)
                    {
                        self.client.checkin(conn);
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if self.conn.as_ref().is_some_and(|c| c.ended) {
                        // The I/O has ended but the body did not say so: treat it as broken.
                        self.conn = None;
                        return Poll::Ready(Some(Err(self
                            .client
                            .transport("the connection closed mid-body"))));
                    }
                    if self.timer.expired(cx) {
                        self.conn = None;
                        return Poll::Ready(Some(Err(UpstreamError::Timeout {
                            backend: self.client.backend.clone(),
                        })));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The idle-read deadline: the longest silence while waiting for the head or the next chunk.
/// The timer is armed only when a wait actually happens, and a chunk only records the time (no
/// timer-wheel update per chunk).
struct IdleTimer {
    limit: Duration,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            last: Instant::now(),
            sleep: None,
        }
    }

    /// Something arrived: the silence starts again (recorded only once a wait has happened;
    /// until then every poll found data at once, so the first wait starts the count).
    fn activity(&mut self) {
        if self.sleep.is_some() {
            self.last = Instant::now();
        }
    }

    /// True once `limit` has passed since the last activity; otherwise arranges a wake-up then.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                let deadline = self.last + self.limit;
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => {
                self.last = Instant::now();
                self.sleep
                    .insert(Box::pin(tokio::time::sleep_until(self.last + self.limit)))
            }
        };
        sleep.as_mut().poll(cx).is_ready()
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
