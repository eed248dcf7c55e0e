//! The in-task HTTP/2 client against a scripted h2c server (the `h2` crate's server side): bodies
//! larger than the protocol's default windows both ways, connection reuse and replacement,
//! refused streams, a server going away, timeouts, an abandoned body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::h2::Reason;
use ::h2::server::SendResponse;
use tokio::net::TcpListener;

use super::*;
use crate::upstream::dial::Dial;

/// What the scripted server does with the n-th request it receives (0-based, over all
/// connections).
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `200` with the request body's length as its body.
    EchoLength,
    /// `200` with a body of this many bytes, sent in 16 KiB pieces.
    Big(usize),
    /// Reset the stream with `REFUSED_STREAM` (not processed: the client may send it again).
    Refuse,
    /// GOAWAY with no stream processed, then close the connection.
    GoAway,
    /// `200`, then close the connection once the answer is out.
    EchoThenClose,
    /// Never answer.
    Silent,
    /// The head and one piece of the body, then silence.
    StallMidBody,
    /// The head, then a piece every 20 ms, for a while.
    Trickle,
}

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Streams the client reset.
    resets: Arc<AtomicUsize>,
}

async fn server(script: fn(usize) -> Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let resets = Arc::new(AtomicUsize::new(0));
    let (a, r, x) = (accepted.clone(), requests.clone(), resets.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let (r, x) = (r.clone(), x.clone());
            tokio::spawn(async move {
                let mut conn = ::h2::server::handshake(tcp).await.unwrap();
                while let Some(Ok((request, respond))) = conn.accept().await {
                    let n = r.fetch_add(1, Ordering::SeqCst);
                    match script(n) {
                        Answer::GoAway => {
                            conn.abrupt_shutdown(Reason::NO_ERROR);
                            let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
                            return;
                        }
                        Answer::EchoThenClose => {
                            let (_, body) = request.into_parts();
                            answer_length(body, respond).await;
                            conn.graceful_shutdown();
                            let _ = poll_fn(|cx| conn.poll_closed(cx)).await;
                            return;
                        }
                        answer => {
                            let x = x.clone();
                            tokio::spawn(async move {
                                serve(answer, request, respond, x).await;
                            });
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        accepted,
        requests,
        resets,
    }
}

async fn answer_length(mut body: ::h2::RecvStream, mut respond: SendResponse<Bytes>) {
    let mut length = 0;
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        length += data.len();
        let _ = body.flow_control().release_capacity(data.len());
    }
    let mut send = respond.send_response(Response::new(()), false).unwrap();
    send.send_data(Bytes::from(length.to_string()), true)
        .unwrap();
}

async fn serve(
    answer: Answer,
    request: http::Request<::h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    resets: Arc<AtomicUsize>,
) {
    let piece = Bytes::from(vec![b'x'; 16 * 1024]);
    match answer {
        Answer::EchoLength => answer_length(request.into_body(), respond).await,
        Answer::Refuse => respond.send_reset(Reason::REFUSED_STREAM),
        Answer::Silent => std::future::pending().await,
        Answer::Big(size) => {
            let mut send = respond.send_response(Response::new(()), false).unwrap();
            let mut left = size;
            while left > 0 {
                let n = left.min(piece.len());
                left -= n;
                send.reserve_capacity(n);
                while send.capacity() < n {
                    match poll_fn(|cx| send.poll_capacity(cx)).await {
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
                send.send_data(piece.slice(..n), left == 0).unwrap();
            }
        }
        Answer::StallMidBody | Answer::Trickle => {
            let mut send = respond.send_response(Response::new(()), false).unwrap();
            send.send_data(piece.slice(..5), false).unwrap();
            if matches!(answer, Answer::StallMidBody) {
                std::future::pending::<()>().await;
            }
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if send.send_data(piece.slice(..5), false).is_err() {
                    break;
                }
            }
            if let Ok(reason) = poll_fn(|cx| send.poll_reset(cx)).await
                && reason == Reason::CANCEL
            {
                resets.fetch_add(1, Ordering::SeqCst);
            }
        }
        Answer::GoAway | Answer::EchoThenClose => unreachable!("handled by the connection"),
    }
}

/// `first` for the first request, then [`Answer::EchoLength`].
fn first_then_echo(n: usize, first: Answer) -> Answer {
    if n == 0 { first } else { Answer::EchoLength }
}

fn client(addr: SocketAddr, read_idle: Duration) -> H2Client {
    let base = reqwest::Url::parse(&format!("http://{addr}/v1")).unwrap();
    let c = Dial::new(Arc::from("local"), &base, None, Duration::from_secs(2))
        .and_then(|d| H2Client::new(d, read_idle));
    c.unwrap()
}

async fn send(
    c: &H2Client,
    method: Method,
    body: Bytes,
) -> Result<Response<H2Body>, UpstreamError> {
    c.send(
        &method,
        ("/v1/chat/completions", None),
        &HeaderLines::default(),
        &[],
        body,
    )
    .await
}

async fn post(c: &H2Client, body: &'static [u8]) -> Result<Response<H2Body>, UpstreamError> {
    send(c, Method::POST, Bytes::from_static(body)).await
}

async fn read_all(resp: Response<H2Body>) -> Result<Vec<u8>, UpstreamError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = poll_fn(|cx| body.poll_chunk(cx)).await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn text(resp: Result<Response<H2Body>, UpstreamError>) -> String {
    String::from_utf8(read_all(resp.unwrap()).await.unwrap()).unwrap()
}

#[tokio::test]
async fn requests_share_one_connection() {
    let s = server(|_| Answer::EchoLength).await;
    let c = client(s.addr, Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(text(post(&c, b"{\"model\":\"m\"}").await).await, "13");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(c.connections(), 1);
}

#[tokio::test]
async fn bodies_past_the_default_windows_go_both_ways_whole() {
    let s = server(|n| {
        if n == 0 {
            Answer::EchoLength
        } else {
            Answer::Big(3 * 1024 * 1024 + 7)
        }
    })
    .await;
    let c = client(s.addr, Duration::from_secs(5));
    let body = Bytes::from(vec![b'a'; 1024 * 1024 + 3]);
    assert_eq!(text(send(&c, Method::POST, body).await).await, "1048579");
    // Larger than the stream window too: the window is released as the body is read.
    let got = read_all(post(&c, b"{}").await.unwrap()).await.unwrap();
    assert_eq!(got.len(), 3 * 1024 * 1024 + 7);
}

#[tokio::test]
async fn a_refused_stream_is_sent_again() {
    let s = server(|n| first_then_echo(n, Answer::Refuse)).await;
    let c = client(s.addr, Duration::from_secs(5));
    assert_eq!(text(post(&c, b"abc").await).await, "3");
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1, "the connection stays");
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced() {
    let s = server(|n| first_then_echo(n, Answer::EchoThenClose)).await;
    let c = client(s.addr, Duration::from_secs(5));
    assert_eq!(text(post(&c, b"ab").await).await, "2");
    // Closed by the server after its answer: noticed at the latest when the next request
    // finds it unusable, which then goes on a new connection.
    assert_eq!(text(post(&c, b"abcd").await).await, "4");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_server_going_away_repeats_only_what_is_safe_to_repeat() {
    // The 1st, 2nd and 4th requests meet a GOAWAY that processed nothing.
    let s = server(|n| {
        if matches!(n, 0 | 1 | 3) {
            Answer::GoAway
        } else {
            Answer::EchoLength
        }
    })
    .await;
    let c = client(s.addr, Duration::from_secs(5));
    let err = post(&c, b"{}").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Transport { .. }), "{err:?}");
    assert_eq!(
        s.requests.load(Ordering::SeqCst),
        1,
        "a POST is not repeated"
    );
    let got = send(&c, Method::GET, Bytes::new()).await;
    assert_eq!(text(got).await, "0");
    assert_eq!(s.requests.load(Ordering::SeqCst), 3);
    let mut headers = HeaderLines::default();
    let key = HeaderName::from_static("idempotency-key");
    headers.append(key, HeaderValue::from_static("k1"));
    let target = ("/v1/chat/completions", None);
    let body = Bytes::from_static(b"xyz");
    let got = c.send(&Method::POST, target, &headers, &[], body).await;
    assert_eq!(text(got).await, "3");
    assert_eq!(s.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn silence_past_the_idle_limit_fails_the_head_or_the_body() {
    let s = server(|n| {
        if n == 0 {
            Answer::Silent
        } else {
            Answer::StallMidBody
        }
    })
    .await;
    let c = client(s.addr, Duration::from_millis(200));
    let err = post(&c, b"{}").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err:?}");
    let resp = post(&c, b"{}").await.unwrap();
    let err = read_all(resp).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout { .. }), "{err:?}");
    // Chunks closer together than the limit keep a long answer alive.
    let s = server(|_| Answer::Trickle).await;
    let c = client(s.addr, Duration::from_millis(200));
    let mut body = post(&c, b"{}").await.unwrap().into_body();
    let mut pieces = 0;
    while pieces < 15 {
        let chunk = poll_fn(|cx| body.poll_chunk(cx)).await.unwrap().unwrap();
        pieces += chunk.len() / 5;
    }
}

#[tokio::test]
async fn an_abandoned_body_resets_its_stream_and_the_connection_carries_on() {
    let s = server(|n| first_then_echo(n, Answer::Trickle)).await;
    let c = client(s.addr, Duration::from_secs(5));
    let mut body = post(&c, b"{}").await.unwrap().into_body();
    let first = poll_fn(|cx| body.poll_chunk(cx)).await.unwrap().unwrap();
    assert_eq!(first.len(), 5);
    drop(body);
    assert_eq!(text(post(&c, b"abcdef").await).await, "6");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    for _ in 0..100 {
        if s.resets.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server saw no reset");
}

#[test]
fn the_head_leaves_out_what_http2_forbids_and_states_the_length() {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "trailers"),
        ("host", "elsewhere"),
        ("content-length", "999"),
        ("content-type", "application/json"),
        ("x-extra", "1"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    let defaults = [
        (header::USER_AGENT, HeaderValue::from_static("ua")),
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
    ];
    let uri: Uri = "https://api.example/v1/x".parse().unwrap();
    let headers = HeaderLines::from(headers);
    let req = request(&Method::POST, uri.clone(), &headers, &defaults, 12);
    let mut names: Vec<&str> = req.headers().keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["content-length", "content-type", "user-agent", "x-extra"]
    );
    assert_eq!(req.headers()["content-length"], "12");
    assert_eq!(req.headers()["content-type"], "application/json");
    assert_eq!(req.version(), Version::HTTP_2);
    let get = request(&Method::GET, uri, &HeaderLines::default(), &[], 0);
    assert!(get.headers().is_empty(), "a bodiless GET states no length");
}

#[test]
fn the_target_becomes_an_absolute_uri_or_a_clear_refusal() {
    let base = reqwest::Url::parse("https://api.example:8443/v1").unwrap();
    let c = Dial::new(
        Arc::from("b"),
        &base,
        Some(super::super::tls::client_config(Vec::new(), true).unwrap()),
        Duration::from_secs(1),
    )
    .and_then(|d| H2Client::new(d, Duration::from_secs(1)))
    .unwrap();
    let uri = c.uri(("/v1/models", Some("a=1"))).unwrap();
    assert_eq!(uri.to_string(), "https://api.example:8443/v1/models?a=1");
    for bad in ["v1/models", "/v1/a b", "/v1/\r\nx"] {
        let err = c.uri((bad, None)).unwrap_err();
        assert!(matches!(err, UpstreamError::Setup { .. }), "{bad}: {err:?}");
    }
}
