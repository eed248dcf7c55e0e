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

#[tokio::test]
async fn no_secret_appears_in_logs_captures_responses_or_check_config() {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("wire.jsonl");
    let cfg_path = dir.path().join("config.yaml");
    std::fs::File::create(&cfg_path)
        .unwrap()
        .write_all(config_yaml(&mock, &capture).as_bytes())
        .unwrap();
    let env = [
        ("PORTCULLIS_API_KEYS", CLIENT_KEY),
        ("SECOND_CLIENT_KEY", SECOND_KEY),
        ("UP_OPENAI", UP_OPENAI),
        ("UP_ANTHROPIC", UP_ANTHROPIC),
        ("UP_GEMINI", UP_GEMINI),
    ];

    let mut cmd = portcullis();
    cmd.args([
        "serve",
        "--port",
        "0",
        "--log-format",
        "json",
        "--config",
        cfg_path.to_str().unwrap(),
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let served = spawn_served(cmd);
    let url = served.url.clone();

    let mut seen = String::new();
    let record = |resp: reqwest::Response| async move {
        let mut out = format!("{} {:?}\n", resp.status(), resp.headers());
        out.push_str(&resp.text().await.unwrap_or_default());
        out
    };
    let c = client();
    let auth = format!("Bearer {CLIENT_KEY}");
    let anth = json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let anth_stream = json!({"model": "claude-x", "max_tokens": 5, "stream": true, "messages": []});
    let gem = json!({"contents": [{"parts": [{"text": "hi"}]}]});

    // Every endpoint, authenticated, with and without faults.
    for mock_header in [
        "",
        "status=429; retry_after=2",
        "status=401; echo_credential=1",
        "status=400; echo_credential=1",
        "status=500; echo_credential=1",
        "chunks=5; drop_after=2",
    ] {
        let with = |b: reqwest::RequestBuilder| {
            if mock_header.is_empty() {
                b
            } else {
                b.header("x-mock", mock_header)
            }
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
            seen += &record(
                with(
                    c.post(format!("{url}{path}"))
                        .header("authorization", &auth),
                )
                .json(&body)
                .send()
                .await
                .unwrap(),
            )
            .await;
        }
        for body in [&anth, &anth_stream] {
            seen += &record(
                with(
                    c.post(format!("{url}/v1/messages"))
                        .header("x-api-key", SECOND_KEY),
                )
                .json(body)
                .send()
                .await
                .unwrap(),
            )
            .await;
        }
        seen += &record(
            with(
                c.post(format!("{url}/v1/messages/count_tokens"))
                    .header("x-api-key", CLIENT_KEY),
            )
            .json(&anth)
            .send()
            .await
            .unwrap(),
        )
        .await;
        for action in [
            "generateContent",
            "streamGenerateContent?alt=sse",
            "countTokens",
        ] {
            let target = format!("{url}/v1beta/models/mock-gemini:{action}");
            let sep = if target.contains('?') { '&' } else { '?' };
            seen += &record(
                with(c.post(format!("{target}{sep}key={CLIENT_KEY}")))
                    .json(&gem)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
        }
    }
    for path in [
        "/v1/models",
        "/v1beta/models",
        "/v1beta/models/mock-gemini",
        "/health",
        "/internal/health",
    ] {
        seen += &record(
            c.get(format!("{url}{path}"))
                .header("x-goog-api-key", CLIENT_KEY)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
    // A secret typed as the model or into the path reaches the access log masked (the gateway
    // echoing the client's own text back to it is not searched here).
    for target in [
        format!("/v1/models/openai:{UP_OPENAI}"),
        format!("/v1/models/{UP_GEMINI}"),
    ] {
        let _ = c
            .get(format!("{url}{target}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .text()
            .await;
    }
    let _ = c
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", &auth)
        .json(&chat(UP_ANTHROPIC, false))
        .send()
        .await
        .unwrap()
        .text()
        .await;
    // Refusals: missing, wrong (until blocked), in every protocol.
    seen += &record(
        c.post(format!("{url}/v1/chat/completions"))
            .json(&chat("m", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Distinct wrong values (a repeated one counts once).
    for i in 0..6 {
        seen += &record(
            c.post(format!("{url}/v1/chat/completions"))
                .header("authorization", format!("Bearer {WRONG_KEY}{i}"))
                .json(&chat("m", false))
                .send()
                .await
                .unwrap(),
        )
        .await;
        seen += &record(
            c.post(format!("{url}/v1/messages"))
                .header("x-api-key", format!("{WRONG_KEY}{i}"))
                .json(&anth)
                .send()
                .await
                .unwrap(),
        )
        .await;
        seen += &record(
            c.post(format!(
                "{url}/v1beta/models/m:generateContent?key={WRONG_KEY}{i}"
            ))
            .json(&gem)
            .send()
            .await
            .unwrap(),
        )
        .await;
    }
    seen += &record(
        c.post(format!("{url}/v1/chat/completions"))
            .header("authorization", &auth)
            .json(&chat("m", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        seen.contains("429") && seen.contains("auth_blocked"),
        "the lockout was reached"
    );

    // Graceful stop, so the capture is flushed.
    let (clean_exit, logs) = served.stop();
    assert!(clean_exit);

    let mut captured = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("wire.jsonl")
        {
            captured += &std::fs::read_to_string(&p).unwrap();
        }
    }
    assert!(captured.lines().count() > 100, "the capture has records");
    assert!(captured.contains("\"direction\":\"stream_chunk\""));
    assert!(
        logs.lines()
            .filter(|l| l.contains("portcullis::access"))
            .count()
            > 60,
        "the log has access lines"
    );

    let mut check = portcullis();
    check.args([
        "check-config",
        "--config",
        cfg_path.to_str().unwrap(),
        "--api-keys",
        SECOND_KEY,
    ]);
    for (k, v) in env {
        check.env(k, v);
    }
    let out = check.output().unwrap();
    assert!(out.status.success());
    let check_output =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);

    for (what, text) in [
        ("logs", &logs),
        ("capture", &captured),
        ("responses", &seen),
        ("check-config", &check_output),
    ] {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} found in {what}");
            // Not even the distinctive middle part of a secret.
            assert!(
                !text.contains("SECRET-"),
                "a secret fragment was found in {what}"
            );
        }
    }
}
