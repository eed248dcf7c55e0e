//! Regressions for the attacks of the security review (issue 14): each test replays an attack
//! that worked against the earlier gateway — path traversal through model ids, URL credentials
//! on the health page, client headers choosing the billed organisation, one caller's refusals
//! cooling a whole pool, an upstream echoing the gateway's key, secrets in captures and logs.

use std::sync::Mutex;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;
use crate::hostile::{Answer, Hostile, Seen, hostile};

pub(crate) fn http_response(status: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// Sends raw bytes to the gateway and returns everything it answers until it closes.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn model_ids_cannot_walk_out_of_the_model_path() {
    let (mock, gw) = start().await;
    let c = client();
    let attacks: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/v1/models/openai:..%2Ffiles", None),
        (
            "GET",
            "/v1/models/openai:..%2F..%2Fadmin%2Fsecret%3Fa=b",
            None,
        ),
        ("GET", "/v1/models/..%2Fchat%2Fcompletions", None),
        (
            "GET",
            "/v1/models/gpt-4o%2F..%2F..%2Forganization%2Fusers%3Flimit=100%23",
            None,
        ),
        ("GET", "/v1/models/openai:a%5Cb", None),
        ("GET", "/v1/models/openai:..", None),
        ("GET", "/v1/models/openai:x%0Ay", None),
        (
            "GET",
            "/v1beta/models/gemini:..%2Ffiles%3FpageSize=100",
            None,
        ),
        (
            "POST",
            "/v1beta/models/gemini:..%2F..%2Fupload%2Fv1beta%2Ffiles%23:generateContent",
            Some("{}"),
        ),
        (
            "POST",
            "/v1beta/models/x%2F..%2F..%2F..%2Fadmin%3Fa=:generateContent",
            Some(r#"{"contents":[]}"#),
        ),
        (
            "POST",
            "/v1beta/models/..%2F..%2Fv1%2Fchat%2Fcompletions%23:generateContent",
            Some("{}"),
        ),
    ];
    for (method, path, body) in attacks {
        let url = format!("{}{path}", gw.url);
        let req = match *method {
            "GET" => c.get(&url),
            _ => c.post(&url).body(body.unwrap_or("{}").to_owned()),
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        let message = if path.starts_with("/v1beta") {
            google_error(&v)
        } else {
            openai_error(&v)
        };
        assert!(message.contains("model id"), "{path}: {message}");
    }
    // Anthropic callers get the refusal in their shape.
    let resp = c
        .get(format!(
            "{}/v1/models/anthropic:..%2F..%2Fv1%2Forganizations",
            gw.url
        ))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    anthropic_error(&resp.json().await.unwrap());
    assert_eq!(mock.stats.requests(), 0, "nothing reached the upstream");

    // A plain id still works, as one segment.
    let resp = c
        .get(format!("{}/v1/models/mock-gpt", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.stats.last_request().unwrap().path,
        "/v1/models/mock-gpt"
    );
}

#[tokio::test]
async fn health_shows_no_url_credentials_and_details_only_to_local_callers() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("wire.jsonl");
    let mut config = config_for(&mock);
    config.logging.capture_file = Some(capture.clone());
    let mut leaky = backend(
        portcullis::config::BackendKind::Openai,
        format!("http://admin:hunter2SECRETpass@{}/v1", mock.addr),
        None,
    );
    leaky.forward_headers = vec!["x-mock".into()];
    config.backends.insert("leaky".into(), leaky);
    config.backends.insert(
        "azure".into(),
        backend(
            portcullis::config::BackendKind::Openai,
            format!("http://{}/v1?api-key=AZUREqueryKEYsecret123", mock.addr),
            None,
        ),
    );
    let state = portcullis::state::AppState::new(config).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    let c = client();

    let text = c
        .get(format!("{}/internal/health", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(&format!("\"http://{}/v1\"", mock.addr)),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("admin@"),
        "{text}"
    );
    assert!(
        !text.contains("AZUREquery") && !text.contains("api-key"),
        "{text}"
    );

    // Relayed by a proxy (a remote caller): liveness only.
    for relayed in ["x-forwarded-for", "forwarded", "x-real-ip", "via"] {
        let v = get_json_with(
            format!("{}/internal/health", gw.url),
            &[(relayed, "203.0.113.9")],
        )
        .await;
        assert_eq!(v["status"], "ok");
        assert!(v.get("backends").is_none(), "{relayed}: {v}");
    }

    // The URL's Basic credential, echoed by the upstream, is scrubbed; the capture shows the
    // destination without it.
    let resp = c
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-mock", "status=400; echo_credential=1")
        .json(&chat("leaky:m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:hunter2SECRETpass");
    assert!(
        body.contains("received authorization"),
        "the mock echoed: {body}"
    );
    assert!(
        !body.contains(&basic) && !body.contains("hunter2"),
        "{body}"
    );
    state.capture().flush();
    let captured = std::fs::read_to_string(&capture).unwrap();
    assert!(captured.contains("\"destination\""), "{captured}");
    assert!(!captured.contains("hunter2SECRETpass"), "{captured}");
    assert!(!captured.contains(&basic[..20]), "{captured}");
}

#[tokio::test]
async fn client_headers_go_upstream_only_by_allow_list() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config
        .backends
        .get_mut("anthropic")
        .unwrap()
        .forward_headers
        .push("OpenAI-Organization".into());
    let gw = start_gateway(config).await;
    let body = chat("mock-gpt", false).to_string();
    let request = |path: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n\
openai-organization: org-bogus\r\nopenai-project: proj-bogus\r\nx-goog-user-project: bogus\r\nx-evil: 1\r\n\
via: 1.1 evil\r\nmax-forwards: 3\r\nproxy-connection: keep-alive\r\nx-stainless-lang: python\r\n\
anthropic-beta: tools-2024\r\nx-hop: secret{extra}\r\nconnection: close, x-hop, anthropic-beta\r\n\
content-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let answer = raw_exchange(gw.addr, request("/v1/chat/completions", "").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = mock.stats.last_request().unwrap();
    for dropped in [
        "openai-organization",
        "openai-project",
        "x-goog-user-project",
        "x-evil",
        "via",
        "max-forwards",
        "proxy-connection",
        "x-hop",
        "anthropic-beta",
    ] {
        assert_eq!(seen.header(dropped), None, "{dropped} was forwarded");
    }
    assert_eq!(seen.header("x-stainless-lang"), Some("python"));
    assert_eq!(seen.header("content-type"), Some("application/json"));

    // A backend that names a header in `forward_headers` gets it.
    let body = json!({"model": "claude-x", "max_tokens": 5, "messages": []}).to_string();
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n\
openai-organization: org-chosen\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_exchange(gw.addr, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = mock.stats.last_request().unwrap();
    assert_eq!(seen.header("openai-organization"), Some("org-chosen"));
}

#[tokio::test]
async fn gemini_query_keeps_only_allowed_parameters_however_encoded() {
    let (mock, gw) = start().await;
    for hidden in ["%6Bey", "k%65y", "key+", "+key", "key"] {
        let resp = client()
            .post(format!(
                "{}/v1beta/models/gemini-pro:streamGenerateContent?{hidden}=client-key-SECRET&userProject=p&alt=sse",
                gw.url
            ))
            .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{hidden}");
        let _ = resp.text().await;
        let seen = mock.stats.last_request().unwrap();
        assert_eq!(seen.query.as_deref(), Some("alt=sse"), "{hidden}");
    }
}

pub(crate) const EVIL_KEY: &str = "sk-upstreamEVILsecret0123456789abcd";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every form of the key a careless upstream might echo.
pub(crate) fn leaked(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    let forms: [(&str, String); 5] = [
        ("raw", EVIL_KEY.to_ascii_lowercase()),
        ("tail", EVIL_KEY[10..].to_ascii_lowercase()),
        (
            "reversed",
            EVIL_KEY
                .chars()
                .rev()
                .collect::<String>()
                .to_ascii_lowercase(),
        ),
        (
            "base64",
            b64(&format!("u:{EVIL_KEY}"))[4..30].to_ascii_lowercase(),
        ),
        ("hint", "sk-upst…".to_owned()),
    ];
    forms
        .iter()
        .find(|(_, f)| lower.contains(f.as_str()))
        .map(|(n, _)| *n)
}

pub(crate) fn evil_gateway_config(upstream: &Hostile) -> portcullis::config::Config {
    let mut c = portcullis::config::Config::default();
    c.server.port = 0;
    c.auth.disable_auth = true;
    c.auth.credentials_dir = Some("/nonexistent/portcullis-test-auths".into());
    c.backends.insert(
        "evil".into(),
        backend(
            portcullis::config::BackendKind::Openai,
            format!("http://{}/v1", upstream.addr),
            Some(EVIL_KEY),
        ),
    );
    c
}

#[tokio::test]
async fn upstream_echoes_of_the_key_never_reach_the_client() {
    let upstream = hostile(Box::new(|seen: &Seen| {
        let key = seen.credential();
        let mode = seen.header("x-mock").unwrap_or("").to_owned();
        let basic = b64(&format!("user:{key}"));
        Answer::Whole(match mode.as_str() {
            "header" => http_response(
                "200 OK",
                &[
                    ("content-type", "application/json".into()),
                    ("x-debug-auth", key.clone()),
                    ("www-authenticate", format!("Basic {basic}")),
                    ("x-fine", "kept".into()),
                ],
                r#"{"id":"x","choices":[]}"#,
            ),
            "body" => http_response(
                "200 OK",
                &[("content-type", "application/json".into())],
                &format!(r#"{{"id":"x","echo":"{key}","auth":"Basic {basic}"}}"#),
            ),
            _ => {
                let upper = key.to_uppercase();
                let reversed: String = key.chars().rev().collect();
                let split = format!("{}\u{200B}{}", &key[..12], &key[12..]);
                let msg = format!(
                    "bad key {key}; {upper}; {reversed}; Basic {basic}; {split}; {}",
                    key.replace('-', "%2D")
                );
                let body = json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": null}});
                http_response(
                    "400 Bad Request",
                    &[
                        ("content-type", "application/json".into()),
                        ("x-echo", key.clone()),
                    ],
                    &body.to_string(),
                )
            }
        })
    }))
    .await;
    let mut config = evil_gateway_config(&upstream);
    config.backends.get_mut("evil").unwrap().forward_headers = vec!["x-mock".into()];
    let gw = start_gateway(config).await;
    for mode in ["header", "body", "error"] {
        let resp = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .header("x-mock", mode)
            .json(&chat("m", false))
            .send()
            .await
            .unwrap();
        let headers = format!("{:?}", resp.headers());
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_eq!(leaked(&headers), None, "{mode}: {headers}");
        assert_eq!(leaked(&body), None, "{mode}: {body}");
        match mode {
            "header" => assert!(headers.contains("x-fine"), "{headers}"),
            "body" => assert!(body.contains("\"echo\":\"***\""), "{body}"),
            _ => {
                assert_eq!(status, 400);
                assert!(body.contains("bad key ***"), "{body}");
            }
        }
    }
    let first = upstream.seen.lock().unwrap()[0].clone();
    assert_eq!(first.credential(), EVIL_KEY);
    assert!(
        first.line.starts_with("POST /v1/chat/completions "),
        "{}",
        first.line
    );
}

#[tokio::test]
async fn a_key_split_across_stream_chunks_is_scrubbed_and_masked_in_the_capture() {
    let (go, wait) = tokio::sync::mpsc::channel::<()>(1);
    let wait = Mutex::new(Some(wait));
    let upstream = hostile(Box::new(move |seen: &Seen| {
        let key = seen.credential();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        let first = format!(
            "{head}data: {{\"choices\":[{{\"delta\":{{\"content\":\"hi\"}}}}]}}\n\ndata: {{\"echo\":\"{}",
            &key[..15]
        );
        let second = format!("{}\"}}\n\ndata: [DONE]\n\n", &key[15..]);
        Answer::Parts(
            vec![first.into_bytes(), second.into_bytes()],
            wait.lock().unwrap().take().unwrap(),
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("wire.jsonl");
    let mut config = evil_gateway_config(&upstream);
    config.logging.capture_file = Some(capture.clone());
    let state = portcullis::state::AppState::new(config).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    let mut resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&chat("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The complete event arrives; the key's beginning is held until the rest comes.
    let first = resp.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains("\"content\":\"hi\""), "{first}");
    assert_eq!(leaked(&first), None, "{first}");
    go.send(()).await.unwrap();
    let mut rest = String::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(
        (first.clone() + &rest).contains("\"echo\":\"***\"}"),
        "{first}{rest}"
    );
    assert!(
        !(first.clone() + &rest).contains("sk-upstream"),
        "{first}{rest}"
    );
    state.capture().flush();
    let captured = std::fs::read_to_string(&capture).unwrap();
    assert!(captured.contains("stream_chunk"), "{captured}");
    assert!(!captured.contains(&EVIL_KEY[..15]), "{captured}");
    assert!(!captured.contains(&EVIL_KEY[15..]), "{captured}");
}

#[tokio::test]
async fn oversized_upstream_headers_give_a_502_not_a_cut_off_200() {
    let upstream = hostile(Box::new(|_: &Seen| {
        Answer::Whole(http_response(
            "200 OK",
            &[
                ("content-type", "application/json".into()),
                ("x-big", "a".repeat(70 * 1024)),
            ],
            "{}",
        ))
    }))
    .await;
    let gw = start_gateway(evil_gateway_config(&upstream)).await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&chat("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert!(openai_error(&v).contains("headers"), "{v}");
}

#[tokio::test]
async fn a_pipelined_second_request_is_answered() {
    let (_mock, gw) = start().await;
    let body = chat("mock-gpt", false).to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}\
GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        raw_exchange(gw.addr, req.as_bytes()),
    )
    .await
    .expect("the gateway answered both requests and closed");
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
}

#[tokio::test]
async fn an_endless_model_list_is_read_only_up_to_a_limit() {
    // Review finding: the model list was read whole (a 700 MB answer took 750 MB of memory).
    let mut upstream = hostile(Box::new(|_: &Seen| Answer::Endless { chunked: true })).await;
    let gw = start_gateway(evil_gateway_config(&upstream)).await;
    let resp = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert!(openai_error(&v).contains("list"), "{v}");
    upstream.assert_cut_short(1, "model list").await;
}
