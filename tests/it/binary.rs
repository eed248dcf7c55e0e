//! The `portcullis` binary: configuration layering and its error messages, `check-config`
//! masking, `serve` against the mock with its access log, and `demo`.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use portcullis::mock::MOCK_TEXT;

use crate::harness::*;

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

const CLIENT_KEY: &str = "client-key-for-binary-tests-0123";

fn check_config(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = portcullis();
    cmd.arg("check-config").args(args);
    cmd.env("PORTCULLIS_API_KEYS", CLIENT_KEY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn port_of(stdout: &str) -> u64 {
    let doc: serde_norway::Value = serde_norway::from_str(stdout).unwrap();
    doc["server"]["port"].as_u64().unwrap()
}

#[test]
fn precedence_is_cli_then_env_then_yaml_then_default() {
    let file = yaml("server:\n  port: 1111\n");
    let path = file.path().to_str().unwrap();
    let env = [("PORTCULLIS_SERVER__PORT", "2222")];
    let (code, out, err) = check_config(&["--config", path, "--port", "3333"], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(port_of(&out), 3333);
    assert_eq!(port_of(&check_config(&["--config", path], &env).1), 2222);
    assert_eq!(port_of(&check_config(&["--config", path], &[]).1), 1111);
    assert_eq!(port_of(&check_config(&[], &[]).1), 8080);
    // PORTCULLIS_CONFIG names the file when --config is absent.
    assert_eq!(
        port_of(&check_config(&[], &[("PORTCULLIS_CONFIG", path)]).1),
        1111
    );
}

#[test]
fn a_redis_url_is_checked_at_startup_naming_its_source_and_masked_when_shown() {
    let bad = "http://:hunter2-pass@cache:6379";
    let file = yaml(&format!("storage:\n  redis_url: \"{bad}\"\n"));
    let from_yaml = ["--config", file.path().to_str().unwrap()];
    let from_cli = ["--redis-url", bad];
    let env = [("PORTCULLIS_REDIS_URL", bad)];
    for (args, env, source) in [
        (&from_yaml[..], &[][..], "YAML file"),
        (&from_cli[..], &[][..], "command line --redis-url"),
        (
            &[][..],
            &env[..],
            "environment variable PORTCULLIS_REDIS_URL",
        ),
    ] {
        let (code, _, err) = check_config(args, env);
        assert_eq!(code, 2, "{source}: {err}");
        assert!(err.contains("`storage.redis_url`"), "{err}");
        assert!(err.contains(source), "{source}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let good = "redis://:hunter2-pass@127.0.0.1:6379/0";
    let (code, out, err) = check_config(&["--redis-url", good], &[]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(doc["storage"]["redis_prefix"], "portcullis:");
    assert_eq!(doc["limits"]["on_redis_error"], "closed");
    assert!(!out.contains("hunter2"), "{out}");
    let (code, _, err) = check_config(
        &["--redis-url", good],
        &[("PORTCULLIS_STORAGE__REDIS_PREFIX", "")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("`storage.redis_prefix`"), "{err}");
}

#[test]
fn errors_name_the_source_and_the_key() {
    let bad_type = yaml("server:\n  port: lots\n");
    let (code, _, err) = check_config(&["--config", bad_type.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("server.port") && err.contains(bad_type.path().to_str().unwrap()),
        "{err}"
    );

    let (code, _, err) = check_config(&[], &[("PORTCULLIS_SERVER__PORT", "lots")]);
    assert_eq!(code, 2);
    assert!(err.contains("PORTCULLIS_SERVER__PORT"), "{err}");

    let unknown = yaml("server:\n  prot: 1\n");
    let (code, _, err) = check_config(&["--config", unknown.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("prot"), "{err}");

    let bad_default =
        yaml("backends:\n  openai:\n    type: openai\nrouting:\n  default_backend: nope:gpt\n");
    let (code, _, err) = check_config(&["--config", bad_default.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("routing.default_backend") && err.contains("YAML file"),
        "{err}"
    );
    let (code, _, err) = check_config(
        &[
            "--config",
            bad_default.path().to_str().unwrap(),
            "--default-backend",
            "zzz",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--default-backend"), "{err}");

    let missing_env =
        yaml("backends:\n  groq:\n    type: openai\n    api_key_env: GROQ_KEY_NOT_SET\n");
    let (code, _, err) = check_config(&["--config", missing_env.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("GROQ_KEY_NOT_SET") && err.contains("backends.groq.api_key_env"),
        "{err}"
    );

    let (code, _, err) = check_config(&["--config", "/nonexistent/portcullis.yaml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/portcullis.yaml"), "{err}");

    let bad_url = yaml("backends:\n  x:\n    type: openai\n    base_url: localhost:11434\n");
    let (code, _, err) = check_config(&["--config", bad_url.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("backends.x.base_url"), "{err}");
}

#[test]
fn check_config_masks_secrets_and_shows_env_backends() {
    let secret = "sk-proj-VERYSECRETVALUE-abcd";
    let file = yaml("backends:\n  mine:\n    type: anthropic\n    api_key_env: MY_ANTHROPIC\n");
    let (code, out, err) = check_config(
        &["--config", file.path().to_str().unwrap()],
        &[("MY_ANTHROPIC", secret)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("VERYSECRETVALUE"), "{out}");
    assert!(out.contains("sk-proj-…cd"), "a masked hint is shown: {out}");

    let (code, out, _) = check_config(
        &[],
        &[
            ("OPENAI_API_KEY", secret),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("GEMINI_API_KEY", "g-key-0123456789"),
        ],
    );
    assert_eq!(code, 0);
    assert!(!out.contains("VERYSECRETVALUE"), "{out}");
    let doc: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(
        doc["backends"]["openai"]["base_url"].as_str(),
        Some("http://127.0.0.1:11434/v1")
    );
    assert_eq!(doc["backends"]["gemini"]["type"].as_str(), Some("gemini"));
    assert!(doc["backends"]["anthropic"].is_null());
}

#[test]
fn serve_without_any_backend_explains_what_to_do() {
    let out = portcullis()
        .args(["serve", "--port", "0", "--disable-auth"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no backend configured") && err.contains("OPENAI_API_KEY"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_relays_to_the_mock_and_logs_one_line_per_request() {
    let mock = start_mock().await;
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json"])
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr))
        .env("PORTCULLIS_API_KEYS", CLIENT_KEY);
    let mut served = spawn_served(cmd);
    let url = served.url.clone();

    let resp = client()
        .post(format!("{url}/v1/chat/completions?key=query-secret"))
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("user-agent", "it-test/1.0")
        .json(&serde_json::json!({"model": "mock-gpt", "stream": true, "stream_options": {"include_usage": true}, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai_text(&sse_events(resp).await), MOCK_TEXT);
    let line = served.next_access();
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/v1/chat/completions");
    assert_eq!(line["status"], 200);
    assert_eq!(line["backend"], "openai");
    assert_eq!(line["model"], "mock-gpt");
    assert_eq!(line["upstream_status"], 200);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["user_agent"], "it-test/1.0");
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(
        line["total_tokens"].as_u64().unwrap() > 0,
        "stream usage is logged: {line}"
    );
    let text = line.to_string();
    assert!(
        !text.contains("query-secret")
            && !text.contains("client-secret")
            && !text.contains(OPENAI_KEY)
    );

    let resp = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-api-key", CLIENT_KEY)
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let line = served.next_access();
    assert_eq!(line["status"], 400);

    // A wrong key: 401, logged as such, without the key.
    let resp = client()
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", "Bearer wrong-key-value-987")
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let line = served.next_access();
    assert_eq!(line["status"], 401);
    assert_eq!(line["auth_failure"], "invalid");
    assert!(!line.to_string().contains("wrong-key-value-987"));
}

#[tokio::test]
async fn demo_works_offline_and_prints_how_to_use_it() {
    let mut child = ChildGuard(
        portcullis()
            .args(["demo", "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    while !banner.contains("Ctrl-C") {
        banner.push_str(&rx.recv_timeout(Duration::from_secs(20)).unwrap());
        banner.push('\n');
    }
    assert!(banner.contains("curl"), "{banner}");
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .trim_end_matches(['(', ')', ',', '"'])
        .to_owned();
    assert!(
        banner.contains(&format!("base_url=\"{url}/v1\"")),
        "{banner}"
    );
    let resp = post_json(
        &format!("{url}/v1/chat/completions"),
        chat("mock-gpt", true),
    )
    .await;
    assert_eq!(openai_text(&sse_events(resp).await), MOCK_TEXT);
    let resp = post_json(
        &format!("{url}/v1/messages"),
        serde_json::json!({"model": "mock-claude", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let (code, out, err) = check_config(
        &["--config", path],
        &[
            ("OPENAI_API_KEY", "sk-example-0123456789"),
            ("ANTHROPIC_API_KEY", "sk-ant-example-0123456789"),
            ("CI_BOT_KEY", "ci-bot-example-key-0123"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let doc: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(
        doc["routing"]["aliases"]["fast"].as_str(),
        Some("ollama:llama3.2:3b")
    );
    assert!(!out.contains("sk-example-0123456789"));
    // Its SSO section is valid once switched on and given the secret it names.
    let (code, _, err) = check_config(
        &["--config", path, "--sso-enabled"],
        &[
            ("OPENAI_API_KEY", "sk-example-0123456789"),
            ("ANTHROPIC_API_KEY", "sk-ant-example-0123456789"),
            ("CI_BOT_KEY", "ci-bot-example-key-0123"),
            ("GOOGLE_CLIENT_SECRET", "GOCSPX-example"),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn sso_settings_come_from_yaml_env_and_the_command_line() {
    // --sso-enabled with no provider: a clear startup error naming the key.
    let (code, _, err) = check_config(&["--sso-enabled"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("sso.providers") && err.contains("no identity provider"),
        "{err}"
    );
    // --sso-config holds the section (bare or under `sso:`); secrets from the environment are
    // masked; the seed's env names override single keys.
    let bare = yaml(
        "enabled: true\nproviders:\n  google:\n    type: oidc\n    issuer: https://accounts.google.com\n    client_id: abc.apps.googleusercontent.com\n    client_secret_env: GOOGLE_SECRET\n",
    );
    let (code, out, err) = check_config(
        &["--sso-config", bare.path().to_str().unwrap()],
        &[
            ("GOOGLE_SECRET", "GOCSPX-verysecretvalue-wxyz"),
            ("SSO_SESSION_LIFETIME_HOURS", "48"),
            ("SSO_AUTH_MODE", "enterprise"),
            ("SSO_AUTH_API_URL", "https://authz.example.com/check"),
            ("SSO_AUTH_API_SECRET", "authz-bearer-secret-9876"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("verysecretvalue"), "{out}");
    let doc: serde_norway::Value = serde_norway::from_str(&out).unwrap();
    assert_eq!(doc["sso"]["enabled"].as_bool(), Some(true));
    assert_eq!(doc["sso"]["session_lifetime_hours"].as_u64(), Some(48));
    assert_eq!(
        doc["sso"]["authorization"]["mode"].as_str(),
        Some("enterprise")
    );
    let api_secret = doc["sso"]["authorization"]["api_secret"].as_str().unwrap();
    assert!(
        api_secret.contains("…876") && !api_secret.contains("bearer-secret"),
        "{api_secret}"
    );
    let wrapped = yaml(
        "sso:\n  enabled: true\n  providers:\n    gh:\n      type: github\n      client_id: Iv1.x\n      client_secret: s3cret-value\n",
    );
    let (code, out, err) = check_config(&["--sso-config", wrapped.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("github"), "{out}");
    // Enterprise mode without the API URL, and a provider without a secret, are refused.
    let (code, _, err) = check_config(
        &["--sso-config", wrapped.path().to_str().unwrap()],
        &[("SSO_AUTH_MODE", "enterprise")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("sso.authorization.api_url"), "{err}");
    let no_secret = yaml(
        "sso:\n  enabled: true\n  providers:\n    g:\n      type: oidc\n      issuer: https://accounts.google.com\n      client_id: x\n",
    );
    let (code, _, err) = check_config(&["--config", no_secret.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("sso.providers.g.client_secret"), "{err}");
    // A short management key is refused.
    let (code, _, err) = check_config(&["--management-key", "short"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("management.key"), "{err}");
}

#[tokio::test]
async fn serve_runs_its_event_loops_and_drains_them_on_sigterm() {
    let mock = start_mock().await;
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json"])
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr))
        .env("PORTCULLIS_API_KEYS", CLIENT_KEY)
        .env("PORTCULLIS_FORWARD_HEADERS", "x-mock")
        .env("PORTCULLIS_SERVER__EVENT_LOOPS", "3");
    let served = spawn_served(cmd);
    assert_eq!(served.listening["event_loops"], 3);
    let url = served.url.clone();

    // Concurrent requests, each on a connection of its own, all answered.
    let sends = (0..24).map(|_| {
        let url = url.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(CLIENT_KEY)
                .json(&chat("mock-gpt", false))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    });
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(answer["choices"][0]["message"]["content"], MOCK_TEXT);
    }
    // Every loop served some of them: the acceptor spreads connections by live count (an
    // unbalanced accept would leave a loop idle). Wake-ups per loop thread from /proc.
    let wakeups: Vec<u64> = std::fs::read_dir(format!("/proc/{}/task", served.child.0.id()))
        .unwrap()
        .map(|t| t.unwrap().path())
        .filter(|t| {
            // Thread names are cut at 15 bytes.
            std::fs::read_to_string(t.join("comm")).is_ok_and(|n| n.starts_with("portcullis-loop"))
        })
        .map(|t| {
            let status = std::fs::read_to_string(t.join("status")).unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(wakeups.len(), 3, "{wakeups:?}");
    assert!(wakeups.iter().all(|w| *w >= 5), "{wakeups:?}");

    let log = stream_across_sigterm(served).await;
    assert!(log.contains("draining in-flight requests"), "{log}");
}

/// SIGTERM while a slow stream is in flight (sent once its head has arrived): the stream
/// completes, then the process exits cleanly. Returns the process's log.
async fn stream_across_sigterm(served: Served) -> String {
    let resp = client()
        .post(format!("{}/v1/chat/completions", served.url))
        .bearer_auth(CLIENT_KEY)
        .header("x-mock", "chunks=6; chunk_delay_ms=150")
        .json(&chat("mock-gpt", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stopping = tokio::task::spawn_blocking(move || served.stop());
    let events = sse_events(resp).await;
    let (clean, log) = stopping.await.unwrap();
    assert_eq!(openai_text(&events), MOCK_TEXT, "{events:?}\n{log}");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(clean, "{log}");
    log
}

#[test]
fn too_many_event_loops_is_a_configuration_error() {
    let (code, _, err) = check_config(&[], &[("PORTCULLIS_SERVER__EVENT_LOOPS", "5000")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.event_loops") && err.contains("at most 1024"),
        "{err}"
    );
}

/// Two loops. A kept-alive client holds loop 0 (so the next connection goes to loop 1) after a
/// request that left an upstream connection opened on loop 0; the stream on loop 1 then reuses
/// that connection. On SIGTERM loop 0 has nothing in flight and drains at once, but the stream's
/// upstream connection lives on loop 0's runtime (its socket in that reactor, or, for reqwest,
/// its connection task), which must keep running until loop 1 has drained too.
async fn a_stream_outlives_the_loop_that_opened_its_upstream_connection(h2c: bool) {
    let mock = start_mock().await;
    let base = format!("http://{}/v1", mock.addr);
    let file = yaml(&format!(
        "backends:\n  openai:\n    type: openai\n    base_url: {base}\n    api_key: {OPENAI_KEY}\n    http2_prior_knowledge: {h2c}\n    forward_headers: [x-mock]\n"
    ));
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json", "--config"])
        .arg(file.path())
        .env("PORTCULLIS_API_KEYS", CLIENT_KEY)
        .env("PORTCULLIS_SERVER__EVENT_LOOPS", "2");
    let served = spawn_served(cmd);
    let url = served.url.clone();
    let held = client();
    let answer: serde_json::Value = held
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], MOCK_TEXT);
    stream_across_sigterm(served).await;
    drop(held);
}

#[tokio::test]
async fn a_stream_outlives_the_loop_that_opened_its_http1_upstream_connection() {
    a_stream_outlives_the_loop_that_opened_its_upstream_connection(false).await;
}

#[tokio::test]
async fn a_stream_outlives_the_loop_that_opened_its_h2c_upstream_connection() {
    a_stream_outlives_the_loop_that_opened_its_upstream_connection(true).await;
}
