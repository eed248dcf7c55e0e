//! HTTPS backends: the gateway in front of the mock serving TLS with a test CA the backend
//! trusts through `tls_ca_file`. HTTP/1.1 over rustls from the request's task (one connection
//! for sequential requests, sessions resumed on new ones), HTTP/2 by ALPN through reqwest with
//! `http2_prior_knowledge` (a connection per event loop); without the CA the certificate fails
//! (502, the reason only in the log); a bad `tls_ca_file` stops the configuration from loading.

use std::io::Write;

use portcullis::config::{BackendKind, Config};
use portcullis::mock::MOCK_TEXT;
use portcullis::mock::tls::Alpn;

use crate::harness::*;

/// One OpenAI backend at `https://localhost:PORT/v1`, trusting the mock's CA when `trust`.
fn tls_config(tls: &TlsMock, trust: bool, h2: bool) -> Config {
    let mut c = config_for(&tls.mock);
    c.backends.clear();
    let url = format!("https://localhost:{}/v1", tls.mock.addr.port());
    let mut b = backend(BackendKind::Openai, url, Some(OPENAI_KEY));
    b.tls_ca_file = trust.then(|| tls.ca.clone());
    b.http2_prior_knowledge = h2;
    c.backends.insert("openai".into(), b);
    c
}

async fn chat_text(gw: &Gateway) -> String {
    let answer = post_for_json(
        &format!("http://{}/v1/chat/completions", gw.addr),
        chat("mock-gpt", false),
    )
    .await;
    answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn streamed_text(gw: &Gateway) -> (usize, String) {
    let resp = chat_scripted(gw.addr, "chunks=4", true).await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    (events.len(), openai_text(&events))
}

async fn sequential_requests_share_one_connection(h2: bool) {
    let tls = start_tls_mock(Alpn::Both).await;
    let gw = start_gateway(tls_config(&tls, true, h2)).await;
    for _ in 0..5 {
        assert_eq!(chat_text(&gw).await, MOCK_TEXT);
    }
    let (events, text) = streamed_text(&gw).await;
    assert!(events >= 4, "{events} events");
    assert_eq!(text, MOCK_TEXT);
    let stats = &tls.mock.stats;
    assert_eq!(stats.requests(), 6);
    assert_eq!(stats.connections(), 1);
    assert_eq!(stats.tls_handshakes(), 1);
    let version = stats.last_request().unwrap().version;
    assert_eq!(version, if h2 { "HTTP/2.0" } else { "HTTP/1.1" });
}

#[tokio::test]
async fn http1_over_tls_serves_chat_and_streams_on_one_connection() {
    sequential_requests_share_one_connection(false).await;
}

#[tokio::test]
async fn http2_prior_knowledge_speaks_h2_over_tls_on_one_connection() {
    sequential_requests_share_one_connection(true).await;
}

/// With `serve`'s event loops, each loop sends its HTTP/2 requests on a connection of its own
/// (one shared connection would be driven from one loop's thread, and every other loop's
/// requests would cross to it and back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_loop_keeps_its_own_http2_connection() {
    let tls = start_tls_mock(Alpn::Both).await;
    let state = portcullis::state::AppState::new(tls_config(&tls, true, true)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(portcullis::server::run_event_loops(
        listener,
        state,
        2,
        async move {
            let _ = stopped.await;
        },
    ));
    // Two client connections open at once land on the two loops (the fewest served first);
    // each then carries three requests.
    let (a, b) = (client(), client());
    let url = format!("http://{addr}/v1/chat/completions");
    for _ in 0..3 {
        for c in [&a, &b] {
            let answer: serde_json::Value = c
                .post(&url)
                .json(&chat("mock-gpt", false))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["choices"][0]["message"]["content"], MOCK_TEXT);
        }
    }
    let stats = &tls.mock.stats;
    assert_eq!(stats.requests(), 6);
    assert_eq!(stats.last_request().unwrap().version, "HTTP/2.0");
    assert_eq!(stats.connections(), 2);
    assert_eq!(stats.tls_handshakes(), 2);
    drop((a, b));
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_second_connection_resumes_the_tls_session() {
    let tls = start_tls_mock(Alpn::Both).await;
    let gw = start_gateway(tls_config(&tls, true, false)).await;
    // A slow stream holds the first connection while a second request needs another.
    let slow = chat_scripted(gw.addr, "chunks=3; chunk_delay_ms=200", true).await;
    assert_eq!(slow.status(), 200);
    assert_eq!(chat_text(&gw).await, MOCK_TEXT);
    assert_eq!(openai_text(&sse_events(slow).await), MOCK_TEXT);
    let stats = &tls.mock.stats;
    assert_eq!(stats.tls_handshakes(), 2);
    assert_eq!(stats.tls_resumed(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_502_without_its_details() {
    let tls = start_tls_mock(Alpn::Both).await;
    for h2 in [false, true] {
        let gw = start_gateway(tls_config(&tls, false, h2)).await;
        let resp = chat_scripted(gw.addr, "", false).await;
        assert_eq!(resp.status(), 502, "h2: {h2}");
        let body = resp.text().await.unwrap().to_ascii_lowercase();
        assert!(body.contains("could not be reached"), "{body}");
        for detail in ["certificate", "issuer", "rustls"] {
            assert!(!body.contains(detail), "{detail} in {body}");
        }
    }
    assert_eq!(tls.mock.stats.requests(), 0);
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn backend_yaml(port: u16, ca: &str) -> String {
    format!(
        "backends:\n  openai:\n    type: openai\n    base_url: https://localhost:{port}/v1\n    api_key: {OPENAI_KEY}\n{ca}"
    )
}

#[tokio::test]
async fn the_log_names_the_certificate_failure() {
    let tls = start_tls_mock(Alpn::Both).await;
    let file = yaml(&backend_yaml(tls.mock.addr.port(), ""));
    let mut cmd = serve_json();
    cmd.arg("--config")
        .arg(file.path())
        .arg("--disable-auth")
        .env("PORTCULLIS_SERVER__EVENT_LOOPS", "2");
    let mut served = spawn_served(cmd);
    let status = client()
        .post(format!("{}/v1/chat/completions", served.url))
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 502);
    let failed = served.next_json(|v| v["message"] == "upstream request failed");
    let error = failed["error"].as_str().unwrap().to_owned();
    assert!(error.contains("certificate"), "{error}");
}

#[test]
fn a_bad_tls_ca_file_stops_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (path, why) in [
        (&not_pem, "holds no certificate"),
        (&missing, "cannot read"),
    ] {
        let ca = format!("    tls_ca_file: {}\n", path.display());
        let file = yaml(&backend_yaml(443, &ca));
        let out = portcullis()
            .args(["check-config", "--disable-auth", "--config"])
            .arg(file.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("backends.openai.tls_ca_file"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(why), "{err}");
    }
}
