//! The server's HTTP/1.1 connection, from a raw socket: what a client sends byte for byte and
//! what it gets back.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::{any, get, post};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::api::access_log::Outcome;
use crate::config::ServerConfig;
use crate::connection::ConnectionStats;
use crate::server::connections::{Answer, App, ConnectionLimits, Report, serve_connections};

struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(app: impl App) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServerConfig {
            max_header_bytes: 16 * 1024,
            ..ServerConfig::default()
        };
        let limits = ConnectionLimits::of(&config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_connections(
            listener,
            app,
            limits,
            Arc::new(ConnectionStats::default()),
            Duration::from_secs(5),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Everything until the server closes.
async fn read_all(sock: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
        .await
        .expect("the server closes")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until `text` has been received `times` times in all.
async fn read_until(sock: &mut TcpStream, text: &str, times: usize) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&out).matches(text).count() < times {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .expect("more arrives")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn echo_app() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { format!("got {} bytes: {:?}", body.len(), body) }),
        )
        .route("/ignore", post(|| async { "not read" }))
}

#[tokio::test]
async fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let server = Server::start(echo_app()).await;
    let mut sock = server.connect().await;
    sock.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_until(&mut sock, "hello", 1).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(
        first.contains("content-length: 5\r\n") && first.contains("date: "),
        "{first}"
    );
    sock.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          GET /hello HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          2;ext=1\r\nde\r\n1\r\nf\r\n0\r\nTrailer: t\r\n\r\n\
          GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let rest = read_all(&mut sock).await;
    let order: Vec<_> = rest
        .match_indices("got 3 bytes: b\"abc\"")
        .chain(rest.match_indices("got 3 bytes: b\"def\""))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(order.len(), 2, "{rest}");
    assert!(order[0] < order[1], "{rest}");
    assert_eq!(rest.matches("HTTP/1.1 200 OK").count(), 4, "{rest}");
    assert!(rest.ends_with("connection: close\r\n\r\nhello"), "{rest}");
    server.shut_down().await;
}

#[tokio::test]
async fn expect_100_continue_gets_its_continue_before_the_body_is_sent() {
    let server = Server::start(echo_app()).await;
    let mut sock = server.connect().await;
    sock.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .await
    .unwrap();
    let cont = read_until(&mut sock, "\r\n\r\n", 1).await;
    assert_eq!(cont, "HTTP/1.1 100 Continue\r\n\r\n");
    sock.write_all(b"wxyz").await.unwrap();
    let answer = read_until(&mut sock, "wxyz", 1).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.shut_down().await;
}

/// `GET /stream` answers with what `tx` sends, as it comes, and ends when `tx` is dropped
/// (once: a second request finds the stream taken and gets a 500).
fn channel_app<T: Into<Bytes> + Send + 'static>() -> (Router, mpsc::Sender<T>) {
    let (tx, rx) = mpsc::channel::<T>(1);
    let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let app = Router::new().route(
        "/stream",
        get(move || {
            let rx = rx.clone();
            async move {
                let rx = rx.lock().await.take().unwrap();
                let frames = futures_util::stream::unfold(rx, |mut rx| async move {
                    let frame = rx.recv().await?;
                    Some((Ok::<_, std::io::Error>(frame.into()), rx))
                });
                Body::from_stream(frames)
            }
        }),
    );
    (app, tx)
}

#[tokio::test]
async fn a_streamed_answer_is_chunked_and_each_event_goes_out_as_it_comes() {
    let (app, tx) = channel_app::<&'static str>();
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    sock.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut sock, "\r\n\r\n", 1).await;
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    tx.send("data: one\n\n").await.unwrap();
    let got = read_until(&mut sock, "data: one", 1).await;
    assert_eq!(got, "b\r\ndata: one\n\n\r\n");
    tx.send("data: two\n\n").await.unwrap();
    drop(tx);
    let got = read_until(&mut sock, "0\r\n\r\n", 1).await;
    assert_eq!(got, "b\r\ndata: two\n\n\r\n0\r\n\r\n");
    // The connection is still usable.
    sock.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut sock).await;
    assert!(
        answer.starts_with("HTTP/1.1 500"),
        "the stream was taken: {answer}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_frame_that_comes_while_the_answer_waits_on_a_full_socket_is_not_stranded() {
    // The body's wake-up is used up by the write it came during: the write must not be taken
    // for the wait the body arranged (the answer would then stall with a frame ready).
    let (app, tx) = channel_app::<Bytes>();
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    sock.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Frames smaller than the server copies, one at a time, never read by the client: the
    // sockets fill up, and the server waits writing what it gathered. One more frame is then
    // in the channel, its wake-up spent on the waiting write.
    let frame = Bytes::from(vec![b'x'; 15 * 1024]);
    let mut sent = 0usize;
    'fill: loop {
        match tx.try_send(frame.clone()) {
            Ok(()) => sent += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The server runs whenever this task gives way: a frame it does not take in
                // a thousand turns is one it cannot take until the client reads.
                for _ in 0..1000 {
                    tokio::task::yield_now().await;
                    if tx.capacity() > 0 {
                        continue 'fill;
                    }
                }
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 10, "the sockets filled after {sent} frames");
    drop(tx);
    // Read everything: the last frame and the end of the answer arrive.
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut tail = Vec::new();
    while !tail.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .expect("the answer goes on")
            .unwrap();
        assert!(n > 0, "the server closed");
        got += n;
        tail.extend_from_slice(&buf[..n]);
        let keep = tail.len().saturating_sub(16);
        tail.drain(..keep);
    }
    let body = sent * frame.len();
    assert!(got > body, "{got} bytes for {body} of body");
    server.shut_down().await;
}

#[tokio::test]
async fn head_http_1_0_and_no_content_answers_are_framed_by_the_rules() {
    let app = echo_app()
        .route(
            "/none",
            get(|| async { (http::StatusCode::NO_CONTENT, "ignored") }),
        )
        .route(
            "/stream10",
            get(|| async {
                Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
                    Bytes::from_static(b"streamed"),
                )]))
            }),
        );
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    sock.write_all(
        b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /none HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let all = read_all(&mut sock).await;
    let answers: Vec<_> = all.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 3, "{all}");
    assert!(answers[0].contains("content-length: 5\r\n") && answers[0].ends_with("\r\n\r\n"));
    assert!(
        answers[1].starts_with("204") && answers[1].ends_with("\r\n\r\n"),
        "{all}"
    );
    assert!(answers[2].ends_with("hello"), "{all}");

    let mut sock = server.connect().await;
    sock.write_all(b"GET /stream10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let all = read_all(&mut sock).await;
    assert!(
        all.contains("connection: close\r\n") && all.ends_with("\r\n\r\nstreamed"),
        "an unknown length to HTTP/1.0 ends with the connection: {all}"
    );
    let mut sock = server.connect().await;
    sock.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut sock, "hello", 1).await;
    assert!(got.contains("connection: keep-alive\r\n"), "{got}");
    sock.write_all(b"GET /hello HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    assert!(read_all(&mut sock).await.ends_with("hello"));
    server.shut_down().await;
}

#[tokio::test]
async fn refused_heads_get_their_status_and_nothing_behind_them_is_served() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = echo_app().route(
        "/admin",
        any(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "admin" }
        }),
    );
    let server = Server::start(app).await;
    for (request, status) in [
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
             0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
            "400",
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n\
             GET /admin HTTP/1.1\r\nHost: x\r\n\r\n",
            "501",
        ),
        ("GET /hello HTTP/1.1\r\n\r\n", "400"),
        ("\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03", "400"),
    ] {
        let mut sock = server.connect().await;
        sock.write_all(request.as_bytes()).await.unwrap();
        let answer = read_all(&mut sock).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?}: {answer}"
        );
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }
    let mut sock = server.connect().await;
    let big = format!(
        "GET /hello HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    sock.write_all(big.as_bytes()).await.unwrap();
    assert!(read_all(&mut sock).await.starts_with("HTTP/1.1 431 "));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    server.shut_down().await;
}

#[tokio::test]
async fn an_unread_body_is_skipped_when_here_else_the_connection_closes() {
    let server = Server::start(echo_app()).await;
    let mut sock = server.connect().await;
    sock.write_all(
        b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345\
          GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let all = read_all(&mut sock).await;
    assert!(all.contains("not read") && all.ends_with("hello"), "{all}");

    let mut sock = server.connect().await;
    sock.write_all(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n12345")
        .await
        .unwrap();
    let all = read_all(&mut sock).await;
    assert!(
        all.contains("connection: close\r\n") && all.ends_with("not read"),
        "{all}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_its_request() {
    let (dropped_tx, dropped) = oneshot::channel::<()>();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    struct OnDrop(Option<oneshot::Sender<()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let app = Router::new().route(
        "/slow",
        post(move |body: Bytes| {
            let guard = OnDrop(dropped_tx.lock().unwrap().take());
            async move {
                let _guard = guard;
                assert_eq!(&body[..], b"hi");
                std::future::pending::<()>().await;
                "never"
            }
        }),
    );
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    sock.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    tokio::task::yield_now().await;
    drop(sock);
    tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the handler is dropped")
        .unwrap();
    server.shut_down().await;
}

#[tokio::test]
async fn a_body_cut_short_or_malformed_fails_the_handlers_read() {
    let app = Router::new().route(
        "/read",
        post(|req: Request| async move {
            match axum::body::to_bytes(req.into_body(), 1 << 20).await {
                Ok(b) => format!("read {}", b.len()),
                Err(e) => format!("failed: {e}"),
            }
        }),
    );
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    sock.write_all(b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .await
        .unwrap();
    let all = read_all(&mut sock).await;
    assert!(
        all.contains("failed: ") && all.contains("connection: close"),
        "{all}"
    );

    let mut sock = server.connect().await;
    sock.write_all(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    sock.shutdown().await.unwrap();
    let all = read_all(&mut sock).await;
    assert!(
        all.contains("failed: "),
        "the handler saw the body end early: {all}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_large_body_arrives_whole() {
    let server = Server::start(
        echo_app().route(
            "/len",
            post(|body: Bytes| async move {
                let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
                format!("{} {sum}", body.len())
            })
            .layer(axum::extract::DefaultBodyLimit::max(8 << 20)),
        ),
    )
    .await;
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    let mut sock = server.connect().await;
    let head = format!(
        "POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (mut r, mut w) = sock.split();
    let send = async {
        w.write_all(head.as_bytes()).await.unwrap();
        w.write_all(&body).await.unwrap();
    };
    let mut out = Vec::new();
    let ((), got) = tokio::join!(send, r.read_to_end(&mut out));
    got.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with(&format!("3000000 {sum}")), "{text}");
}

#[tokio::test]
async fn a_body_already_here_is_handed_over_in_one_piece() {
    use http_body_util::BodyExt;
    // The handler reads only once the whole request has been written (on loopback a write
    // returns once the receiver has queued it): the server's first read took the head and the
    // start of the body, the rest waits in the socket.
    let (written, wait) = oneshot::channel::<()>();
    let wait = Arc::new(tokio::sync::Mutex::new(Some(wait)));
    let app = Router::new().route(
        "/frames",
        post(move |req: Request| async move {
            if let Some(wait) = wait.lock().await.take() {
                let _ = wait.await;
            }
            let mut body = req.into_body();
            let (mut frames, mut len) = (0, 0);
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    frames += 1;
                    len += data.len();
                }
            }
            format!("{frames} frames, {len} bytes")
        }),
    );
    let server = Server::start(app).await;
    let mut sock = server.connect().await;
    let body = vec![b'x'; 32 * 1024];
    let mut request = format!(
        "POST /frames HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    sock.write_all(&request).await.unwrap();
    written.send(()).unwrap();
    let answer = read_all(&mut sock).await;
    assert!(answer.ends_with("1 frames, 32768 bytes"), "{answer}");
    server.shut_down().await;
}

#[tokio::test]
async fn http2_prior_knowledge_is_served_by_the_same_port() {
    let server = Server::start(echo_app()).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = client
        .post(format!("http://{}/echo", server.addr))
        .body("h2 body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "got 7 bytes: b\"h2 body\"");
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_finishes_the_answer_in_flight_and_closes() {
    let (release, released) = oneshot::channel::<()>();
    let (started_tx, started) = oneshot::channel::<()>();
    let waits = Arc::new(tokio::sync::Mutex::new(Some((started_tx, released))));
    let app = echo_app().route(
        "/wait",
        get(move || {
            let waits = waits.clone();
            async move {
                let (started, released) = waits.lock().await.take().unwrap();
                started.send(()).unwrap();
                let _ = released.await;
                "finished"
            }
        }),
    );
    let server = Server::start(app).await;
    let mut idle = server.connect().await;
    idle.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, "hello", 1).await;
    let mut busy = server.connect().await;
    busy.write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    started.await.unwrap();
    let Server {
        addr: _,
        stop,
        task,
    } = server;
    let _ = stop.unwrap().send(());
    assert_eq!(
        read_all(&mut idle).await,
        "",
        "the idle connection just closes"
    );
    release.send(()).unwrap();
    let answer = read_all(&mut busy).await;
    assert!(
        answer.contains("connection: close\r\n") && answer.ends_with("finished"),
        "{answer}"
    );
    task.await.unwrap().unwrap();
}

/// A router whose answers tell `outcomes` how their sending ended, as the access log is told.
#[derive(Clone)]
struct Reporting {
    router: Router,
    outcomes: mpsc::UnboundedSender<(String, Outcome)>,
}

struct Told(String, mpsc::UnboundedSender<(String, Outcome)>);

impl Report for Told {
    fn report(self, outcome: Outcome) {
        let _ = self.1.send((self.0, outcome));
    }
}

impl App for Reporting {
    type Report = Told;

    fn answer(
        &self,
        req: Request,
        peer: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = Answer<Told>> + Send + 'static {
        let told = Told(req.uri().path().to_owned(), self.outcomes.clone());
        let answered = self.router.answer(req, peer);
        async move { answered.await.map(|(response, ())| (response, told)) }
    }
}

#[tokio::test]
async fn the_server_tells_how_each_answer_went_out() {
    let (stream_app, tx) = channel_app::<&'static str>();
    let router = echo_app().merge(stream_app).route(
        "/broken",
        get(|| async {
            let frames = futures_util::stream::iter([
                Ok(Bytes::from_static(b"data: one\n\n")),
                Err(std::io::Error::other("the upstream broke")),
            ]);
            Body::from_stream(frames)
        }),
    );
    let (outcomes, mut told) = mpsc::unbounded_channel();
    let server = Server::start(Reporting { router, outcomes }).await;
    let mut sock = server.connect().await;
    // Written whole, and a HEAD answer (whose body is never sent) is complete too.
    sock.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut sock, "hello", 1).await;
    assert_eq!(
        told.recv().await,
        Some(("/hello".into(), Outcome::Completed))
    );
    sock.write_all(b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut sock, "\r\n\r\n", 1).await;
    assert_eq!(
        told.recv().await,
        Some(("/hello".into(), Outcome::Completed))
    );
    // A body that fails midway.
    sock.write_all(b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        told.recv().await,
        Some(("/broken".into(), Outcome::BodyError))
    );
    // A client that goes away (reset) while its stream is being sent.
    let mut sock = server.connect().await;
    sock.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut sock, "\r\n\r\n", 1).await;
    sock.set_zero_linger().unwrap();
    drop(sock);
    // Each event is written as it comes; a write after the reset fails.
    let outcome = loop {
        tokio::select! {
            biased;
            got = told.recv() => break got,
            // The body is dropped once the write failed: what it told is what is left to read.
            sent = tx.send("data: more\n\n") => if sent.is_err() {
                break told.recv().await;
            },
        }
    };
    assert_eq!(
        outcome,
        Some(("/stream".into(), Outcome::ClientDisconnected))
    );
    // Over HTTP/2, the answer's body tells.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = client
        .get(format!("http://{}/hello", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.text().await.unwrap(), "hello");
    assert_eq!(
        told.recv().await,
        Some(("/hello".into(), Outcome::Completed))
    );
    server.shut_down().await;
}
