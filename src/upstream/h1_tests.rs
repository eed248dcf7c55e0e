//! The in-task HTTP/1.1 client against a scripted raw-TCP server: connection reuse, servers
//! that close connections, timeouts, broken bodies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::upstream::dial::{Dial, Target};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;

/// What the scripted server does with the n-th request on a connection (0-based).
#[derive(Clone, Copy)]
enum Answer {
    /// `200` with a JSON body, keep the connection.
    Json,
    /// `200` with a JSON body, then close the connection a moment later (an idle timeout).
    JsonThenClose,
    /// `200` with `Connection: close`, then close.
    ConnectionClose,
    /// Read the request, never answer.
    Silent,
    /// Head and half of a chunked body, then silence.
    StallMidBody,
    /// Head and half of a chunked body, then close.
    CloseMidBody,
    /// Two chunks 50 ms apart (a slow but live stream).
    SlowChunks,
    /// Six chunks 40 ms apart, then silence.
    TrickleThenStall,
    /// Read the request, close without a byte of answer.
    CloseUnanswered,
    /// `200` with a JSON body followed by bytes nobody asked for.
    JsonAndGarbage,
    /// An HTTP/1.0 answer without a length: the body runs to the connection's end.
    UntilClose,
    /// `200` with the request body's length as its body.
    EchoLength,
}

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Connections the server has closed.
    closed: Arc<AtomicUsize>,
}

async fn server(script: fn(usize) -> Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (a, r, c) = (accepted.clone(), requests.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let (r, c) = (r.clone(), c.clone());
            tokio::spawn(async move {
                connection(tcp, script, r).await;
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Server {
        addr,
        accepted,
        requests,
        closed,
    }
}

async fn connection(mut tcp: TcpStream, script: fn(usize) -> Answer, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    for n in 0.. {
        // Read one request: head, then Content-Length bytes.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        assert!(head.contains("\r\nhost: "), "{head}");
        buf.drain(..head_end + len);
        requests.fetch_add(1, Ordering::SeqCst);
        const JSON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
        const CHUNKED_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
        match script(n) {
            Answer::Json => tcp.write_all(JSON).await.unwrap(),
            Answer::JsonThenClose => {
                tcp.write_all(JSON).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                return;
            }
            Answer::ConnectionClose => {
                tcp.write_all(
                    b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
                )
                .await
                .unwrap();
                return;
            }
            Answer::Silent => std::future::pending::<()>().await,
            Answer::StallMidBody => {
                tcp.write_all(CHUNKED_HEAD).await.unwrap();
                std::future::pending::<()>().await;
            }
            Answer::CloseMidBody => {
                tcp.write_all(CHUNKED_HEAD).await.unwrap();
                return;
            }
            Answer::CloseUnanswered => return,
            Answer::JsonAndGarbage => {
                tcp.write_all(JSON).await.unwrap();
                tcp.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
            }
            Answer::UntilClose => {
                tcp.write_all(b"HTTP/1.0 200 OK\r\n\r\nno length here")
                    .await
                    .unwrap();
                return;
            }
            Answer::EchoLength => {
                let body = len.to_string();
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                tcp.write_all(format!("{head}{body}").as_bytes())
                    .await
                    .unwrap();
            }
            Answer::TrickleThenStall => {
                tcp.write_all(CHUNKED_HEAD).await.unwrap();
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    tcp.write_all(b"1\r\nx\r\n").await.unwrap();
                }
                std::future::pending::<()>().await;
            }
            Answer::SlowChunks => {
                tcp.write_all(CHUNKED_HEAD).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                tcp.write_all(b"5\r\nworld\r\n0\r\n\r\n").await.unwrap();
            }
        }
    }
}

fn client(addr: SocketAddr, read_idle: Duration) -> Arc<H1Client> {
    let base = reqwest::Url::parse(&format!("http://{addr}/v1")).unwrap();
    let c = Dial::new(Arc::from("local"), &base, None, Duration::from_secs(2))
        .map(|d| H1Client::new(d, read_idle));
    Arc::new(c.unwrap())
}

/// A TLS configuration trusting a fresh test CA (besides the system's roots, if any).
fn tls_config() -> Arc<rustls::ClientConfig> {
    let ca = rcgen::generate_simple_self_signed(["localhost".to_owned()]).unwrap();
    let ca = ca.cert.der().clone();
    super::super::tls::client_config(vec![ca], false).unwrap()
}

async fn post(c: &Arc<H1Client>) -> Result<H1Answer, UpstreamError> {
    send(c, Method::POST, Bytes::from_static(b"{\"model\":\"m\"}")).await
}

async fn send(c: &Arc<H1Client>, method: Method, body: Bytes) -> Result<H1Answer, UpstreamError> {
    let target = ("/v1/chat/completions", None);
    c.send(&method, target, &HeaderLines::default(), &[], body)
        .await
}

async fn read_all(resp: H1Answer) -> Result<Vec<u8>, UpstreamError> {
    let mut body = resp.body;
    let mut out = Vec::new();
    while let Some(chunk) = poll_fn(|cx| body.poll_chunk(cx)).await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[test]
fn http_urls_and_https_ones_with_a_tls_configuration_get_a_client() {
    let url = |s: &str| reqwest::Url::parse(s).unwrap();
    let make = |s: &str| {
        Dial::new(Arc::from("b"), &url(s), None, Duration::ZERO)
            .map(|d| H1Client::new(d, Duration::ZERO))
    };
    assert!(make("https://api.openai.com/v1").is_none());
    let tls = tls_config();
    let with_tls = |s: &str| {
        let c = Dial::new(Arc::from("b"), &url(s), Some(tls.clone()), Duration::ZERO)
            .map(|d| H1Client::new(d, Duration::ZERO));
        c.unwrap()
    };
    let c = with_tls("https://api.openai.com/v1");
    assert_eq!(c.dial.authority, "api.openai.com");
    assert!(matches!(&c.dial.tls, Some(t) if t.name.to_str() == "api.openai.com"));
    assert!(matches!(&c.dial.target, Target::Name(h, 443) if h == "api.openai.com"));
    let c = with_tls("https://[::1]:8443/v1");
    assert!(matches!(&c.dial.tls, Some(t) if matches!(t.name, ServerName::IpAddress(_))));
    assert!(with_tls("http://localhost:8000/v1").dial.tls.is_none());
    assert!(make("http://user:secret@localhost:8000/v1").is_none());
    let c = make("http://localhost:8000/v1").unwrap();
    assert_eq!(c.dial.authority, "localhost:8000");
    assert!(matches!(&c.dial.target, Target::Name(h, 8000) if h == "localhost"));
    let c = make("http://[::1]/x").unwrap();
    assert_eq!(c.dial.authority, "[::1]");
    assert!(matches!(c.dial.target, Target::Addr(a) if a == "[::1]:80".parse().unwrap()));
    let c = make("http://10.0.0.7:80/").unwrap();
    assert_eq!(c.dial.authority, "10.0.0.7");
}

#[tokio::test]
async fn one_connection_serves_every_sequential_request() {
    let s = server(|_| Answer::Json).await;
    let c = client(s.addr, Duration::from_secs(5));
    for _ in 0..20 {
        let resp = post(&c).await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(read_all(resp).await.unwrap(), b"{\"ok\":true}");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(s.requests.load(Ordering::SeqCst), 20);
    assert_eq!(c.idle_count(), 1);
}

#[tokio::test]
async fn concurrent_requests_open_connections_and_keep_them_idle() {
    let s = server(|_| Answer::Json).await;
    let c = client(s.addr, Duration::from_secs(5));
    let sends = (0..8).map(|_| {
        let c = c.clone();
        async move { read_all(post(&c).await.unwrap()).await.unwrap() }
    });
    let bodies = futures_util::future::join_all(sends).await;
    assert!(bodies.iter().all(|b| b == b"{\"ok\":true}"));
    let opened = s.accepted.load(Ordering::SeqCst);
    assert!((1..=8).contains(&opened), "{opened}");
    assert_eq!(c.idle_count(), opened);
    // The next round reuses them all.
    for _ in 0..8 {
        read_all(post(&c).await.unwrap()).await.unwrap();
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), opened);
}

#[tokio::test]
async fn connections_the_server_closes_are_not_reused() {
    // `Connection: close` answers: each request needs a new connection, none is kept.
    let s = server(|_| Answer::ConnectionClose).await;
    let c = client(s.addr, Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(read_all(post(&c).await.unwrap()).await.unwrap(), b"ok");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(c.idle_count(), 0);

    // A server that closes an idle keep-alive connection (no `Connection: close`): the closed
    // connection is noticed when taken out and the request goes on a fresh one.
    let s = server(|_| Answer::JsonThenClose).await;
    let c = client(s.addr, Duration::from_secs(5));
    for round in 1..=3 {
        assert_eq!(
            read_all(post(&c).await.unwrap()).await.unwrap(),
            b"{\"ok\":true}"
        );
        // The server has closed it; `yield_now` lets the runtime's I/O driver see the FIN.
        while s.closed.load(Ordering::SeqCst) < round {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    assert_eq!(s.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn silence_before_the_head_is_a_timeout() {
    let s = server(|_| Answer::Silent).await;
    let c = client(s.addr, Duration::from_millis(150));
    let started = Instant::now();
    let err = post(&c).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(c.idle_count(), 0);
}

#[tokio::test]
async fn a_body_that_stalls_or_breaks_fails_and_its_connection_is_dropped() {
    let s = server(|_| Answer::StallMidBody).await;
    let c = client(s.addr, Duration::from_millis(150));
    let resp = post(&c).await.unwrap();
    let mut body = resp.body;
    let first = poll_fn(|cx| body.poll_chunk(cx)).await.unwrap().unwrap();
    assert_eq!(first, "hello");
    let err = poll_fn(|cx| body.poll_chunk(cx))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err}");
    assert_eq!(c.idle_count(), 0);

    let s = server(|_| Answer::CloseMidBody).await;
    let c = client(s.addr, Duration::from_secs(5));
    let err = read_all(post(&c).await.unwrap()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err}");
    assert_eq!(c.idle_count(), 0);
}

#[tokio::test]
async fn a_slow_live_stream_is_not_cut_and_the_connection_is_reused() {
    // Each gap (50 ms) is under the idle limit (400 ms); the total may exceed it.
    let s = server(|_| Answer::SlowChunks).await;
    let c = client(s.addr, Duration::from_millis(400));
    for _ in 0..3 {
        assert_eq!(
            read_all(post(&c).await.unwrap()).await.unwrap(),
            b"helloworld"
        );
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_idle_limit_counts_from_the_last_chunk_however_long_the_stream_runs() {
    // Gaps of 40 ms under a 100 ms limit, for 200 ms in all: the timer armed at the first wait
    // comes due mid-stream and is moved on, not taken for silence; the silence after the last
    // chunk is then cut a full limit after it.
    let s = server(|_| Answer::TrickleThenStall).await;
    let c = client(s.addr, Duration::from_millis(100));
    let mut body = post(&c).await.unwrap().body;
    let mut got = Vec::new();
    let mut last = Instant::now();
    let err = loop {
        match poll_fn(|cx| body.poll_chunk(cx)).await {
            Some(Ok(chunk)) => {
                got.extend_from_slice(&chunk);
                last = Instant::now();
            }
            Some(Err(e)) => break e,
            None => panic!("the stream never ends"),
        }
    };
    assert_eq!(got, b"helloxxxxx");
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err}");
    assert!(
        last.elapsed() >= Duration::from_millis(100),
        "{:?}",
        last.elapsed()
    );
}

#[tokio::test]
async fn a_connection_keeps_its_idle_timer_and_each_request_gets_the_full_limit() {
    // Each answer waits 50 ms mid-body, which arms the idle timer (limit 200 ms); the last one
    // never answers.
    let script: fn(usize) -> Answer = |n| {
        if n < 3 {
            Answer::SlowChunks
        } else {
            Answer::Silent
        }
    };
    let s = server(script).await;
    let c = client(s.addr, Duration::from_millis(200));
    let kept = |c: &H1Client| {
        let idle = c.idle.lock().unwrap();
        idle.iter().filter(|i| i.conn.timer.is_some()).count()
    };
    assert_eq!(
        read_all(post(&c).await.unwrap()).await.unwrap(),
        b"helloworld"
    );
    assert_eq!(kept(&c), 1, "the connection went back with its timer");
    // The kept timer is still registered, due 200 ms after the first request's wait: the next
    // request's wait straddles that moment and must not be cut by it.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        read_all(post(&c).await.unwrap()).await.unwrap(),
        b"helloworld"
    );
    // Idle past the limit: the kept timer fired with nobody waiting; the next wait starts anew.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        read_all(post(&c).await.unwrap()).await.unwrap(),
        b"helloworld"
    );
    assert_eq!(
        s.accepted.load(Ordering::SeqCst),
        1,
        "one connection throughout"
    );
    // And the kept timer still ends a silent answer.
    let started = Instant::now();
    let err = post(&c).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_abandoned_body_closes_its_connection() {
    let s = server(|_| Answer::StallMidBody).await;
    let c = client(s.addr, Duration::from_secs(5));
    let resp = post(&c).await.unwrap();
    drop(resp);
    assert_eq!(c.idle_count(), 0);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = post(&client(addr, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn the_connect_timeout_covers_a_tls_handshake_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        while tcp.read(&mut buf).await.unwrap_or(0) > 0 {}
    });
    let base = reqwest::Url::parse(&format!("https://{addr}/v1")).unwrap();
    let connect = Duration::from_millis(150);
    let c = Dial::new(Arc::from("b"), &base, Some(tls_config()), connect)
        .map(|d| H1Client::new(d, Duration::from_secs(30)));
    let c = Arc::new(c.unwrap());
    let started = Instant::now();
    let err = post(&c).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= connect);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_reused_connection_closed_unanswered_resends_only_what_is_safe_to_repeat() {
    // The first request on each connection is answered, the second one meets a close.
    let script: fn(usize) -> Answer = |n| {
        if n == 0 {
            Answer::Json
        } else {
            Answer::CloseUnanswered
        }
    };
    let s = server(script).await;
    let c = client(s.addr, Duration::from_secs(5));
    let get = || send(&c, Method::GET, Bytes::new());
    read_all(get().await.unwrap()).await.unwrap();
    // A GET is sent again on a new connection.
    assert_eq!(
        read_all(get().await.unwrap()).await.unwrap(),
        b"{\"ok\":true}"
    );
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(s.requests.load(Ordering::SeqCst), 3);
    // A POST is not: the server may have acted on it.
    let err = post(&c).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 4);
    assert_eq!(c.idle_count(), 0);
    // Unless it carries an idempotency key.
    read_all(post(&c).await.unwrap()).await.unwrap();
    let mut headers = HeaderLines::default();
    let key = HeaderName::from_static("idempotency-key");
    headers.append(key, HeaderValue::from_static("k-1"));
    let target = ("/v1/chat/completions", None);
    let body = Bytes::from_static(b"{}");
    let resp = c.send(&Method::POST, target, &headers, &[], body).await;
    assert_eq!(read_all(resp.unwrap()).await.unwrap(), b"{\"ok\":true}");
}

#[tokio::test]
async fn a_connection_with_bytes_nobody_asked_for_is_not_reused() {
    let s = server(|_| Answer::JsonAndGarbage).await;
    let c = client(s.addr, Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(
            read_all(post(&c).await.unwrap()).await.unwrap(),
            b"{\"ok\":true}"
        );
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_body_without_length_runs_to_the_close_and_is_not_reused() {
    let s = server(|_| Answer::UntilClose).await;
    let c = client(s.addr, Duration::from_secs(5));
    for _ in 0..2 {
        let resp = post(&c).await.unwrap();
        assert_eq!(read_all(resp).await.unwrap(), b"no length here");
        assert_eq!(c.idle_count(), 0);
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_large_request_body_goes_out_whole() {
    let s = server(|_| Answer::EchoLength).await;
    let c = client(s.addr, Duration::from_secs(5));
    for len in [0, 10, INLINE_BODY, INLINE_BODY + 1, 3 << 20] {
        let body = Bytes::from(vec![b'x'; len]);
        let resp = send(&c, Method::POST, body).await.unwrap();
        assert_eq!(read_all(resp).await.unwrap(), len.to_string().as_bytes());
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}
