//! The secret-leak search (PRODUCT §2.2): configure known secrets, drive every endpoint —
//! successes, refusals, lockout, upstream faults, an upstream that echoes the credential it got —
//! then search all log output, every wire-capture file, every response (headers and bodies) and
//! `check-config` output for any of them. None may appear.

use std::io::Write;

use serde_json::json;

use crate::harness::*;

const CLIENT_KEY: &str = "pcl-client-SECRET-aaaa1111bbbb";
const SECOND_KEY: &str = "pcl-client-SECRET-cccc2222dddd";
const UP_OPENAI: &str = "sk-up-openai-SECRET-eeee3333";
const UP_ANTHROPIC: &str = "sk-ant-up-SECRET-ffff4444";
const UP_GEMINI: &str = "AIza-up-gemini-SECRET-5555";
const WRONG_KEY: &str = "pcl-wrong-SECRET-gggg6666";

const SECRETS: &[&str] = &[
    CLIENT_KEY,
    SECOND_KEY,
    UP_OPENAI,
    UP_ANTHROPIC,
    UP_GEMINI,
    WRONG_KEY,
];

fn config_yaml(mock: &Mock, capture: &std::path::Path) -> String {
    format!(
        "logging:\n  level: debug\n  capture_file: {}\n  capture_max_bytes: 200000\nauth:\n  disable_cooling: true\n  api_keys:\n    - name: second\n      key_env: SECOND_CLIENT_KEY\n\
backends:\n  openai:\n    type: openai\n    base_url: http://{m}/v1\n    api_key_env: UP_OPENAI\n    forward_headers: [x-mock]\n  anthropic:\n    type: anthropic\n    base_url: http://{m}\n    api_key_env: UP_ANTHROPIC\n    forward_headers: [x-mock]\n  gemini:\n    type: gemini\n    base_url: http://{m}\n    api_key_env: UP_GEMINI\n    forward_headers: [x-mock]\n",
        capture.display(),
        m = mock.addr
    )
}

/// The gateway's configuration file (in a temp dir, beside the capture) and the environment that
/// holds the secrets it names.
struct Setup {
    _mock: Mock,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

const ENV: [(&str, &str); 5] = [
    ("PORTCULLIS_API_KEYS", CLIENT_KEY),
    ("SECOND_CLIENT_KEY", SECOND_KEY),
    ("UP_OPENAI", UP_OPENAI),
    ("UP_ANTHROPIC", UP_ANTHROPIC),
    ("UP_GEMINI", UP_GEMINI),
];

async fn setup() -> Setup {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("wire.jsonl");
    let config = dir.path().join("config.yaml");
    std::fs::File::create(&config)
        .unwrap()
        .write_all(config_yaml(&mock, &capture).as_bytes())
        .unwrap();
    Setup {
        _mock: mock,
        dir,
        config,
    }
}

/// Fails naming `what` if `text` holds any of the secrets, or the distinctive middle of one.
fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} found in {what}");
    }
    assert!(
        !text.contains("SECRET-"),
        "a secret fragment was found in {what}"
    );
}

/// Status, headers and body of a response, as one text.
async fn record(resp: reqwest::Response) -> String {
    let mut out = format!("{} {:?}\n", resp.status(), resp.headers());
    out.push_str(&resp.text().await.unwrap_or_default());
    out
}

/// Every endpoint, authenticated in each client header form, with and without upstream faults
/// (an upstream that echoes the credential it got among them); returns the responses.
async fn drive_every_endpoint(c: &reqwest::Client, url: &str) -> String {
    let mut seen = String::new();
    let auth = format!("Bearer {CLIENT_KEY}");
    let anth = json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let anth_stream = json!({"model": "claude-x", "max_tokens": 5, "stream": true, "messages": []});
    let gem = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    for mock_header in [
        "",
        "status=429; retry_after=2",
        "status=401; echo_credential=1",
        "status=400; echo_credential=1",
        "status=500; echo_credential=1",
        "chunks=5; drop_after=2",
    ] {
        let post = |target: String, key: (&str, &str), body: &serde_json::Value| {
            let mut b = c.post(target).json(body);
            if !key.0.is_empty() {
                b = b.header(key.0, key.1);
            }
            if !mock_header.is_empty() {
                b = b.header("x-mock", mock_header);
            }
            b.send()
        };
        for (path, body) in [
            ("/v1/chat/completions", chat("mock-gpt", false)),
            ("/v1/chat/completions", chat("openai:mock-gpt", true)),
            (
                "/v1/responses",
                json!({"model": "mock-gpt", "input": "hi", "stream": true}),
            ),
            ("/v1/embeddings", json!({"model": "e", "input": "hi"})),
        ] {
            let resp = post(
                format!("{url}{path}"),
                ("authorization", auth.as_str()),
                &body,
            );
            seen += &record(resp.await.unwrap()).await;
        }
        for (path, body, key) in [
            ("/v1/messages", &anth, SECOND_KEY),
            ("/v1/messages", &anth_stream, SECOND_KEY),
            ("/v1/messages/count_tokens", &anth, CLIENT_KEY),
        ] {
            let resp = post(format!("{url}{path}"), ("x-api-key", key), body);
            seen += &record(resp.await.unwrap()).await;
        }
        for action in [
            "generateContent",
            "streamGenerateContent?alt=sse",
            "countTokens",
        ] {
            let target = format!("{url}/v1beta/models/mock-gemini:{action}");
            let sep = if target.contains('?') { '&' } else { '?' };
            let resp = post(format!("{target}{sep}key={CLIENT_KEY}"), ("", ""), &gem);
            seen += &record(resp.await.unwrap()).await;
        }
    }
    for path in [
        "/v1/models",
        "/v1beta/models",
        "/v1beta/models/mock-gemini",
        "/health",
        "/internal/health",
    ] {
        let resp = c
            .get(format!("{url}{path}"))
            .header("x-goog-api-key", CLIENT_KEY);
        seen += &record(resp.send().await.unwrap()).await;
    }
    seen
}

/// A secret typed as the model or into the path, which must reach the access log masked (the
/// gateway echoing the client's own text back to it is not searched).
async fn send_secrets_as_models(c: &reqwest::Client, url: &str) {
    let auth = format!("Bearer {CLIENT_KEY}");
    for target in [
        format!("/v1/models/openai:{UP_OPENAI}"),
        format!("/v1/models/{UP_GEMINI}"),
    ] {
        let req = c
            .get(format!("{url}{target}"))
            .header("authorization", &auth);
        let _ = req.send().await.unwrap().text().await;
    }
    let req = c
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", &auth)
        .json(&chat(UP_ANTHROPIC, false));
    let _ = req.send().await.unwrap().text().await;
}

/// Refusals in every protocol: a missing key, then wrong ones until the lockout blocks even the
/// right one; returns the responses.
async fn drive_refusals_into_the_lockout(c: &reqwest::Client, url: &str) -> String {
    let chat_url = format!("{url}/v1/chat/completions");
    let anth = json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let gem = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let mut seen = record(
        c.post(&chat_url)
            .json(&chat("m", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Distinct wrong values (a repeated one counts once).
    for i in 0..6 {
        for req in [
            c.post(&chat_url)
                .header("authorization", format!("Bearer {WRONG_KEY}{i}"))
                .json(&chat("m", false)),
            c.post(format!("{url}/v1/messages"))
                .header("x-api-key", format!("{WRONG_KEY}{i}"))
                .json(&anth),
            c.post(format!(
                "{url}/v1beta/models/m:generateContent?key={WRONG_KEY}{i}"
            ))
            .json(&gem),
        ] {
            seen += &record(req.send().await.unwrap()).await;
        }
    }
    let right = c
        .post(&chat_url)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .json(&chat("m", false));
    seen += &record(right.send().await.unwrap()).await;
    seen
}

/// Every wire-capture file in `dir` (rotated ones included), concatenated.
fn captured(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("wire.jsonl")
        {
            all += &std::fs::read_to_string(&p).unwrap();
        }
    }
    all
}

#[tokio::test]
async fn no_secret_appears_in_responses_logs_or_captures() {
    let s = setup().await;
    let mut cmd = serve_json();
    cmd.args(["--config", s.config.to_str().unwrap()]).envs(ENV);
    let served = spawn_served(cmd);
    let c = client();
    let mut seen = drive_every_endpoint(&c, &served.url).await;
    send_secrets_as_models(&c, &served.url).await;
    seen += &drive_refusals_into_the_lockout(&c, &served.url).await;
    assert!(
        seen.contains("429") && seen.contains("auth_blocked"),
        "the lockout was reached"
    );

    // Graceful stop, so the capture is flushed.
    let (clean_exit, logs) = served.stop();
    assert!(clean_exit);
    let captured = captured(s.dir.path());
    assert!(captured.lines().count() > 100, "the capture has records");
    assert!(captured.contains("\"direction\":\"stream_chunk\""));
    assert!(
        logs.lines()
            .filter(|l| l.contains("portcullis::access"))
            .count()
            > 60,
        "the log has access lines"
    );
    assert_no_secret("logs", &logs);
    assert_no_secret("capture", &captured);
    assert_no_secret("responses", &seen);
}

#[tokio::test]
async fn no_secret_appears_in_check_config_output() {
    let s = setup().await;
    let mut check = portcullis();
    check
        .args(["check-config", "--config", s.config.to_str().unwrap()])
        .args(["--api-keys", SECOND_KEY])
        .envs(ENV);
    let out = check.output().unwrap();
    assert!(out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_no_secret("check-config", &text);
}
