//! Client connections: accepting them up to a cap, serving each (HTTP/1.1 by the gateway's own
//! [`super::h1`], h2c by hyper when a new connection starts with HTTP/2's preface), closing the
//! ones that send nothing (see [`super::watch`]), and draining them at shutdown.
//!
//! Limits, all in `server.*`: `max_connections` open at once (beyond it a new connection is
//! closed as soon as it is accepted, and counted), `header_read_timeout` for a request head to
//! arrive, `keep_alive_idle` between requests, `request_body_timeout` between two reads of a
//! request body, and `max_header_bytes` for a request head (HTTP/1.1 read buffer, HTTP/2 header
//! list).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::h1::{self, H1, Served};
use super::quiet::Quiet;
use super::watch::{InFlight, TimedBody, TrackedBody, Watch, Watched};
use crate::api::access_log::Outcome;
use crate::api::error::ApiError;
use crate::config::ServerConfig;
use crate::connection::{Closed, ConnectionStats, OpenSlot};
use crate::protocol::Protocol;

/// The connection limits of one server, from `server.*`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_idle: Duration,
    pub request_body_timeout: Duration,
    pub max_header_bytes: usize,
}

impl ConnectionLimits {
    /// The configured limits; `max_connections` unset is half the open-file limit (the other
    /// half is for upstream connections, the store and logs), between 64 and 16,384.
    pub fn of(server: &ServerConfig) -> Self {
        Self {
            max_connections: server
                .max_connections
                .unwrap_or_else(|| default_max_connections(open_file_limit())),
            header_read_timeout: server.header_read_timeout.0,
            keep_alive_idle: server.keep_alive_idle.0,
            request_body_timeout: server.request_body_timeout.0,
            max_header_bytes: server.max_header_bytes,
        }
    }
}

fn default_max_connections(open_files: Option<u64>) -> usize {
    let half = open_files.map_or(1024, |n| n.saturating_sub(64) / 2);
    usize::try_from(half.clamp(64, 16_384)).unwrap_or(16_384)
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere or unlimited.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(3)? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish for
/// at most `grace` and closes the rest.
pub(super) async fn serve_connections<L, S>(
    mut listener: L,
    app: S,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    L::Io: Accepted,
    S: App,
{
    let builder = Arc::new(h2_builder(&limits));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (io, addr) = listener.accept() => {
                let Some(slot) = stats.admit(limits.max_connections) else {
                    drop(io);
                    continue;
                };
                connections.spawn(serve_one(Conn {
                    io,
                    addr,
                    app: app.clone(),
                    builder: builder.clone(),
                    limits,
                    stop: stop_rx.clone(),
                    slot,
                }));
            }
        }
    }
    drop(listener);
    tracing::info!(
        grace_secs = grace.as_secs(),
        open = connections.len(),
        "shutting down: draining in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace period elapsed; closing the remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// One hyper builder per server, for h2c (prior knowledge): header list bounded, no timeouts of
/// hyper's own (the watchdog keeps them).
fn h2_builder(limits: &ConnectionLimits) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    let head = limits.max_header_bytes.max(8192);
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
    builder
}

/// An accepted connection: its socket, and what has to live as long as the connection does.
pub(super) trait Accepted: Send + 'static {
    type Guard: Send + 'static;
    fn into_parts(self) -> (TcpStream, Self::Guard);
}

impl Accepted for TcpStream {
    type Guard = ();
    fn into_parts(self) -> (TcpStream, ()) {
        (self, ())
    }
}

/// The service a server runs for each request (`server::App`; a bare router in tests). Its
/// answer is a future whose type the server knows, so the HTTP/1.1 server keeps it inside the
/// connection's own state rather than in a box of its own per request (`bench/PROFILE.md` §18:
/// building the gateway's request future, 7 KB then, and copying it into a box cost ~700
/// instructions and an allocation per request). `peer` is the client's address: passed, not put
/// in the request's extensions, whose first entry costs an allocation and its drop (§21).
pub(super) trait App: Clone + Send + Sync + 'static {
    /// What is told how the sending of an answer ended (the access log's line).
    type Report: Report;

    fn answer(
        &self,
        req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = Answer<Self::Report>> + Send + 'static;
}

/// What a request's future gives: its response (a failure is a response too), and what the
/// server tells how sending it ended.
pub(super) type Answer<R> = Result<(http::Response<Body>, R), Infallible>;

/// Told once, by the server, how the sending of an answer ended: after its last byte was
/// written, or when it could not be. The server reports instead of wrapping the answer's body
/// (a box and a layer per poll, `bench/PROFILE.md` §24).
pub(super) trait Report: Send + Unpin + 'static {
    fn report(self, outcome: Outcome);
}

/// Nothing to tell (a bare router, in tests).
impl Report for () {
    fn report(self, _: Outcome) {}
}

impl App for axum::Router {
    type Report = ();

    fn answer(
        &self,
        mut req: http::Request<Body>,
        peer: SocketAddr,
    ) -> impl Future<Output = Answer<()>> + Send + 'static {
        req.extensions_mut().insert(ConnectInfo(peer));
        let answered = tower_service::Service::call(&mut self.clone(), req);
        async move { answered.await.map(|response| (response, ())) }
    }
}

/// What a connection's task needs.
struct Conn<I, S> {
    io: I,
    addr: SocketAddr,
    app: S,
    builder: Arc<http2::Builder<TokioExecutor>>,
    limits: ConnectionLimits,
    stop: tokio::sync::watch::Receiver<bool>,
    slot: OpenSlot,
}

async fn serve_one<I: Accepted, S: App>(c: Conn<I, S>) {
    let Conn {
        io,
        addr,
        app,
        builder,
        limits,
        mut stop,
        slot,
    } = c;
    let (tcp, _guard) = io.into_parts();
    let watch = Watch::new();
    let h1 = h1::serve(
        tcp,
        H1 {
            app: app.clone(),
            addr,
            watch: watch.clone(),
            max_head: limits.max_header_bytes.max(8192),
            body_timeout: limits.request_body_timeout,
            stop: stop.clone(),
        },
    );
    let mut h1 = pin!(h1);
    // The watchdog and the stop signal are polled only when they woke, not on every wake of
    // the connection; the connection first.
    let served = tokio::select! {
        biased;
        served = h1.as_mut() => served,
        why = Quiet::new(watch.watchdog(limits.header_read_timeout, limits.keep_alive_idle)) => {
            slot.closed(why);
            tracing::debug!(client = %addr, reason = ?why, "closing a client connection");
            return;
        }
        () = Quiet::new(async { let _ = stop.wait_for(|stop| *stop).await; }) => {
            if !watch.is_busy() {
                return;
            }
            // The answer in progress is finished, then the connection closes.
            h1.await
        }
    };
    let Served::H2(tcp, read) = served else {
        return;
    };
    let service = Tracked {
        app,
        watch: watch.clone(),
        addr,
        body_timeout: limits.request_body_timeout,
    };
    let io = TokioIo::new(Watched::new(Prefixed { read, tcp }, watch.clone()));
    let mut conn = pin!(builder.serve_connection(io, service));
    let why = tokio::select! {
        biased;
        _ = conn.as_mut() => return,
        why = Quiet::new(watch.watchdog(limits.header_read_timeout, limits.keep_alive_idle)) => why,
        () = Quiet::new(async { let _ = stop.wait_for(|stop| *stop).await; }) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
            return;
        }
    };
    slot.closed(why);
    tracing::debug!(client = %addr, reason = ?why, "closing a client connection");
    if why == Closed::Idle {
        // Nothing in flight: the client gets its GOAWAY.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
    }
}

/// A socket whose first bytes were already read: they are read again first.
struct Prefixed {
    read: bytes::Bytes,
    tcp: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.tcp).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        let bytes = self.read.split_to(n);
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The router as one connection's hyper service: each request is answered with the client's
/// address, its body times out when it stalls, and it counts as in flight on the connection
/// until its response body is done.
#[derive(Clone)]
struct Tracked<S> {
    app: S,
    watch: Arc<Watch>,
    addr: SocketAddr,
    body_timeout: Duration,
}

impl<S: App> hyper::service::Service<http::Request<Incoming>> for Tracked<S> {
    type Response = http::Response<TrackedBody<S::Report>>;
    type Error = Infallible;
    /// hyper needs a future type it can name: boxed here (HTTP/2 only).
    type Future = TrackedFuture<Pin<Box<dyn Future<Output = Answer<S::Report>> + Send>>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let in_flight = self.watch.request_started();
        let timeout = self.body_timeout;
        let req = req.map(|body| Body::new(TimedBody::new(body, timeout)));
        TrackedFuture {
            inner: Box::pin(self.app.answer(req, self.addr)),
            in_flight: Some(in_flight),
        }
    }
}

/// Polls a handler for its answer, and what is told how its sending ends. A handler that panics
/// gets its client a 500 instead of a dropped connection (the future is not polled again: it is
/// finished), with nothing to tell. Both servers use it.
pub(super) fn poll_answer<F, R>(
    handler: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<(http::Response<Body>, Option<R>)>
where
    F: Future<Output = Answer<R>>,
{
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.poll(cx))) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(Ok((response, report)))) => Poll::Ready((response, Some(report))),
        Ok(Poll::Ready(Err(never))) => match never {},
        Err(_) => {
            tracing::error!("a request handler panicked: answered 500");
            let response = ApiError::internal().into_response_for(Protocol::OpenAi);
            Poll::Ready((response, None))
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer, its body holding the request's place in flight.
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, R: Report> Future for TrackedFuture<F>
where
    F: Future<Output = Answer<R>>,
{
    type Output = Result<http::Response<TrackedBody<R>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready((response, report)) = poll_answer(this.inner, cx) else {
            return Poll::Pending;
        };
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(
            response.map(|body| TrackedBody::new(body, in_flight, report))
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;

    #[test]
    fn the_default_cap_is_half_the_open_file_limit_within_bounds() {
        assert_eq!(default_max_connections(Some(1024)), 480);
        assert_eq!(default_max_connections(Some(65_536)), 16_384);
        assert_eq!(default_max_connections(Some(100)), 64);
        assert_eq!(default_max_connections(None), 1024);
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_its_client_a_500_and_the_server_goes_on() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if true {
                        panic!("boom");
                    }
                    "never"
                }),
            )
            .route("/ok", axum::routing::get(|| async { "fine" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits::of(&ServerConfig::default());
        let stats = Arc::new(ConnectionStats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_connections(
            listener,
            app,
            limits,
            stats,
            Duration::from_secs(1),
            async move {
                let _ = stopped.await;
            },
        ));
        for (path, want) in [("/boom", "HTTP/1.1 500"), ("/ok", "HTTP/1.1 200")] {
            let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            sock.write_all(req.as_bytes()).await.unwrap();
            let mut answer = String::new();
            sock.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with(want), "{path}: {answer}");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n >= 64));
        }
    }
}
