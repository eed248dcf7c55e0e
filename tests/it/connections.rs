//! Client connections under the gateway's limits: slow clients (a trickled head, a stalled body)
//! are cut off, idle keep-alive connections are closed while busy ones are not, and connections
//! beyond `server.max_connections` are closed at once — each counted in `/internal/health`.

use std::time::{Duration, Instant};

use portcullis::config::HumanDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

fn ms(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_millis(n))
}

/// Reads until the gateway closes the connection (or `bound` passes: then the test fails);
/// returns what was read and when the close came.
async fn read_until_closed(sock: &mut TcpStream, bound: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + bound).into(), sock.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {bound:?}; read {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), start.elapsed());
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connection_counts(gw: &Gateway) -> serde_json::Value {
    get_json(format!("{}/internal/health", gw.url)).await["connections"].clone()
}

#[tokio::test]
async fn slow_clients_trickling_a_head_are_closed_after_the_header_timeout() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.header_read_timeout = ms(400);
    let gw = start_gateway(config).await;
    // 200 clients, each sending one header line every 100 ms and never finishing the head.
    let mut clients = Vec::new();
    for i in 0..200 {
        let addr = gw.addr;
        clients.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(addr).await.unwrap();
            sock.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            let start = Instant::now();
            let mut buf = [0u8; 256];
            for line in 0.. {
                let header = format!("X-Trickle-{line}: {i}\r\n");
                if sock.write_all(header.as_bytes()).await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(100), sock.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) => assert!(start.elapsed() < Duration::from_secs(10), "never closed"),
                }
            }
            start.elapsed()
        }));
    }
    for c in clients {
        let lasted = c.await.unwrap();
        assert!(
            lasted >= Duration::from_millis(300),
            "closed early: {lasted:?}"
        );
        assert!(lasted < Duration::from_secs(5), "closed late: {lasted:?}");
    }
    let counts = connection_counts(&gw).await;
    assert!(
        counts["header_timeouts"].as_u64().unwrap() >= 200,
        "{counts}"
    );
    // Only the health request's own connection is open.
    assert_eq!(counts["open"], 1, "{counts}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.header_read_timeout = ms(300);
    let gw = start_gateway(config).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    let (got, after) = read_until_closed(&mut sock, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{got}");
    assert!(after >= Duration::from_millis(250), "{after:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_but_busy_ones_are_not() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.keep_alive_idle = ms(300);
    config.server.header_read_timeout = ms(300);
    let gw = start_gateway(config).await;

    // A request answered, then nothing: the connection is closed after the idle time.
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, after) = read_until_closed(&mut sock, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(after >= Duration::from_millis(250), "{after:?}");

    // An upstream that takes 1.5 s (five idle periods) to answer: the client still gets it,
    // on a keep-alive connection that then serves a second request.
    let http = client();
    for _ in 0..2 {
        let resp = http
            .post(format!("{}/v1/chat/completions", gw.url))
            .header("x-mock", "header_delay_ms=1500")
            .json(&chat("gpt-4o-mini", false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["choices"][0]["message"]["content"].is_string(),
            "{body}"
        );
    }
    let counts = connection_counts(&gw).await;
    assert!(counts["idle_closed"].as_u64().unwrap() >= 1, "{counts}");
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_gets_408() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.request_body_timeout = ms(300);
    let gw = start_gateway(config).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    sock.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"model\":\"gpt-4o-mini\",",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout"), "{answer}");
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(mock.stats.requests(), 0, "nothing went upstream");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_counted() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.max_connections = Some(3);
    let gw = start_gateway(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        // A complete request, so each is surely accepted and counted before the next.
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // The fourth is accepted by the kernel and closed by the gateway without an answer.
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (got, after) = read_until_closed(&mut fourth, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "{got}");
    assert!(after < Duration::from_secs(1), "{after:?}");
    // One closes: a new connection is served again (once the gateway has seen the close).
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    let counts = loop {
        if let Ok(resp) = client()
            .get(format!("{}/internal/health", gw.url))
            .send()
            .await
        {
            break resp.json::<serde_json::Value>().await.unwrap()["connections"].clone();
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::task::yield_now().await;
    };
    assert!(counts["refused"].as_u64().unwrap() >= 1, "{counts}");
    assert_eq!(counts["open"], 3, "{counts}");
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.server.max_header_bytes = 16 * 1024;
    let gw = start_gateway(config).await;
    let mut sock = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let (got, _) = read_until_closed(&mut sock, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    // A normal request on a new connection is unaffected.
    let ok = client()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[test]
fn connection_limits_out_of_range_are_refused_by_name() {
    let check = |edit: &dyn Fn(&mut portcullis::config::Config)| {
        let mut c = portcullis::config::Config::default();
        c.auth.disable_auth = true;
        edit(&mut c);
        portcullis::config::validate::validate(&c, &|_| "the test".to_owned())
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(check(&|_| {}), None);
    let zero = check(&|c| c.server.max_connections = Some(0)).unwrap();
    assert!(zero.contains("server.max_connections"), "{zero}");
    let tiny = check(&|c| c.server.max_header_bytes = 1024).unwrap();
    assert!(tiny.contains("server.max_header_bytes"), "{tiny}");
    let never = check(&|c| c.server.keep_alive_idle = HumanDuration(Duration::ZERO)).unwrap();
    assert!(never.contains("server.keep_alive_idle"), "{never}");
    let long = check(&|c| c.server.header_read_timeout = ms(2 * 3_600_000)).unwrap();
    assert!(long.contains("server.header_read_timeout"), "{long}");
}
