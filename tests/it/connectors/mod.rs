//! The personal-subscription connectors (issue 23) end to end against the mock's fakes of their
//! upstreams (`portcullis::mock::connectors`): a CLI's login file imported, a chat and a
//! streamed chat from OpenAI and Anthropic callers, the refresh at the provider's token
//! endpoint, a revoked refresh token ending as `needs_login` with an operator notification,
//! Qwen's device login, the Gemini CLI's free tier falling back to the paid project, and the
//! connectors refused in multi-user mode.

use std::time::Duration;

use portcullis::clock::{Clock, SystemClock};
use portcullis::config::{BackendKind, Config, DeviceLoginConfig};
use portcullis::mock::MOCK_TEXT;
use portcullis::mock::connectors::{CODEX_ACCOUNT, FREE_PROJECT, jwt};
use portcullis::notify::OperatorEvent;
use serde_json::{Value, json};

use crate::harness::*;

mod browser;
mod callers;
mod revoked;

fn now_secs() -> u64 {
    SystemClock.now_millis() / 1000
}

/// A Codex CLI `auth.json` whose access token expires `exp` (Unix seconds).
fn codex_auth_json(exp: u64, refresh: &str) -> String {
    let auth = json!({"chatgpt_account_id": CODEX_ACCOUNT});
    json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": jwt(&json!({"email": "dev@example.com", "https://api.openai.com/auth": auth})),
            "access_token": jwt(&json!({"exp": exp, "https://api.openai.com/auth": auth})),
            "refresh_token": refresh,
        },
        "last_refresh": "2026-12-01T00:00:00Z",
    })
    .to_string()
}

/// A Gemini CLI or Qwen Code credentials file whose token expires at `exp` (Unix seconds).
fn oauth_creds(exp: u64, refresh: &str, extra: Value) -> String {
    let mut v = json!({
        "access_token": format!("mock-at-{exp}-cli"),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expiry_date": exp * 1000,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string()
}

struct Env {
    mock: Mock,
    sg: StoredGateway,
    dir: tempfile::TempDir,
}

/// A gateway (clock at the real time: the mock's tokens expire by it) with a store, whose
/// connector backends `add` configures against the mock.
async fn env(add: impl FnOnce(&mut Config, &Mock, &std::path::Path)) -> Env {
    let mock = start_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(&mock);
    add(&mut config, &mock, dir.path());
    let sg = start_gateway_with_store(config, dir.path(), SystemClock.now_millis()).await;
    Env { mock, sg, dir }
}

fn connector(
    kind: BackendKind,
    base: String,
    file: &std::path::Path,
) -> portcullis::config::BackendConfig {
    let mut b = backend(kind, base, None);
    b.credentials_file = Some(file.display().to_string());
    b
}

/// Connector backend `name` of `kind` on the mock, importing `file`, its login renewed at the
/// mock's token endpoint (Qwen's API is wherever its login's `resource_url` says; its device
/// flow is the mock's too).
fn add_connector(
    c: &mut Config,
    mock: &Mock,
    name: &str,
    kind: BackendKind,
    file: &std::path::Path,
) {
    use portcullis::config::DeviceLoginKind;
    let at = |path: &str| format!("http://{}{path}", mock.addr);
    let (base, token, login_kind) = match kind {
        BackendKind::Codex => (
            at("/backend-api/codex"),
            "/oauth/token",
            DeviceLoginKind::Codex,
        ),
        BackendKind::GeminiCli => (at(""), "/oauth2/token", DeviceLoginKind::GeminiCli),
        // Not the account's API: the login's resource_url says where that is.
        BackendKind::QwenCode => (
            "http://127.0.0.1:9/v1".to_owned(),
            "/api/v1/oauth2/token",
            DeviceLoginKind::QwenCode,
        ),
        _ => (at(""), "/refreshToken", DeviceLoginKind::Kiro),
    };
    c.backends.insert(name.into(), connector(kind, base, file));
    let mut l = login(login_kind, name, at(token));
    if kind == BackendKind::QwenCode {
        l.device_authorization_url = Some(at("/api/v1/oauth2/device/code"));
    }
    c.auth.device_login.insert(name.into(), l);
}

/// The Kiro IDE's token file after a social sign-in, its access token expiring at `exp`
/// (Unix seconds).
fn kiro_token(exp: u64, refresh: &str) -> String {
    use portcullis::mock::connectors::KIRO_PROFILE_ARN;
    json!({"accessToken": format!("mock-at-{exp}-kiro"), "refreshToken": refresh,
           "expiresAt": portcullis::clock::iso8601(exp * 1000), "authMethod": "social",
           "provider": "Google", "profileArn": KIRO_PROFILE_ARN, "region": "us-east-1"})
    .to_string()
}

/// POSTs `body` to the mock's control endpoint `path` (revoke a refresh token, spend a quota).
async fn mock_post(mock: &Mock, path: &str, body: &str) {
    let resp = client()
        .post(format!("http://{}{path}", mock.addr))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

fn login(
    kind: portcullis::config::DeviceLoginKind,
    backend: &str,
    token_url: String,
) -> DeviceLoginConfig {
    DeviceLoginConfig {
        kind: Some(kind),
        backend: Some(backend.to_owned()),
        token_url: Some(token_url),
        ..Default::default()
    }
}

/// The text of an OpenAI chat answer, or of an Anthropic message.
fn text_of(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .or(v["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

async fn openai_chat(gw: &Gateway, model: &str, stream: bool) -> (u16, String) {
    let resp = post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat(model, stream),
    )
    .await;
    let status = resp.status().as_u16();
    if stream && status == 200 {
        return (status, openai_text(&sse_events(resp).await));
    }
    let v: Value = resp.json().await.unwrap();
    (
        status,
        if status == 200 {
            text_of(&v)
        } else {
            v.to_string()
        },
    )
}

async fn anthropic_message(gw: &Gateway, model: &str, stream: bool) -> (u16, String) {
    let body = json!({"model": model, "max_tokens": 64, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]});
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    if stream && status == 200 {
        let text: String = sse_events(resp)
            .await
            .iter()
            .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect();
        return (status, text);
    }
    let v: Value = resp.json().await.unwrap();
    (
        status,
        if status == 200 {
            text_of(&v)
        } else {
            v.to_string()
        },
    )
}

fn last_body(mock: &Mock) -> Value {
    serde_json::from_slice(&mock.stats.last_request().unwrap().body).unwrap()
}

fn bearer(mock: &Mock) -> String {
    mock.stats
        .last_request()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_codex_login_answers_openai_and_anthropic_callers_and_is_refreshed() {
    let e = env(|c, mock, dir| {
        let file = dir.join("auth.json");
        std::fs::write(&file, codex_auth_json(now_secs() + 3600, "rt-codex-1")).unwrap();
        add_connector(c, mock, "codex", BackendKind::Codex, &file);
    })
    .await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    let creds = pool.status(Some("codex")).unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");

    // A caller asking for one JSON answer: the backend only streams, the gateway collects.
    let (status, text) = openai_chat(&e.sg.gw, "codex:gpt-5-codex", false).await;
    assert_eq!((status, text.as_str()), (200, MOCK_TEXT));
    let seen = e.mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/backend-api/codex/responses");
    assert_eq!(seen.header("chatgpt-account-id"), Some(CODEX_ACCOUNT));
    assert_eq!(seen.header("originator"), Some("codex_cli_rs"));
    let body = last_body(&e.mock);
    assert_eq!(
        (body["stream"].clone(), body["store"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        openai_chat(&e.sg.gw, "codex:gpt-5-codex", true).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, "codex:gpt-5-codex", false).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, "codex:gpt-5-codex", true).await,
        (200, MOCK_TEXT.to_owned())
    );

    // The refresh worker renews at OpenAI's token endpoint; the next request carries the new token.
    let before = bearer(&e.mock);
    let s = pool.refresh_due(Some("codex")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
    assert_eq!(e.mock.stats.fakes().refreshes(), 1);
    assert_eq!(
        openai_chat(&e.sg.gw, "codex:gpt-5-codex", false).await.0,
        200
    );
    assert_ne!(bearer(&e.mock), before);
    // The rotated-away refresh token is refused if used again; the gateway holds the new one.
    let s = pool.refresh_due(Some("codex")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");

    // The model list shows the connector's models.
    let models = get_json(format!("{}/v1/models", e.sg.gw.url)).await;
    assert!(models.to_string().contains("codex:gpt-5-codex"), "{models}");
}

#[tokio::test]
async fn a_revoked_refresh_token_ends_as_needs_login_with_a_notification() {
    let e = env(|c, mock, dir| {
        let file = dir.join("auth.json");
        // Expired: the first use needs a refresh, and its refresh token is revoked.
        std::fs::write(&file, codex_auth_json(now_secs() - 60, "rt-revoked")).unwrap();
        add_connector(c, mock, "codex", BackendKind::Codex, &file);
    })
    .await;
    mock_post(&e.mock, "/mock/oauth/revoke", "rt-revoked").await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    let s = pool.refresh_due(None).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (0, 1), "{s:?}");
    let id = pool.status(Some("codex")).unwrap()[0].id.clone();
    assert!(pool.needs_login(&id));
    assert!(
        e.sg.notes.events().iter().any(|ev| matches!(ev, OperatorEvent::CredentialNeedsLogin { provider, .. } if provider == "codex")),
        "{:?}",
        e.sg.notes.events()
    );
    // Nothing usable: the caller is told when to come back, in its protocol.
    let (status, body) = openai_chat(&e.sg.gw, "codex:gpt-5-codex", false).await;
    assert!(matches!(status, 429 | 503), "{status} {body}");

    // Logging in again with the CLI rewrites its file: the gateway imports it and recovers.
    std::fs::write(
        e.dir.path().join("auth.json"),
        codex_auth_json(now_secs() + 3600, "rt-fresh"),
    )
    .unwrap();
    pool.import_changed_files().await;
    assert!(!pool.needs_login(&id));
    assert_eq!(
        pool.status(Some("codex")).unwrap().len(),
        1,
        "the same login is updated, not added"
    );
    assert_eq!(
        openai_chat(&e.sg.gw, "codex:gpt-5-codex", false).await,
        (200, MOCK_TEXT.to_owned())
    );
}

#[tokio::test]
async fn a_gemini_cli_login_pays_with_the_free_tier_then_the_plans_project() {
    let e = env(|c, mock, dir| {
        let file = dir.join("oauth_creds.json");
        std::fs::write(
            &file,
            oauth_creds(now_secs() + 3600, "rt-gemini", json!({})),
        )
        .unwrap();
        add_connector(c, mock, "gemini-oauth-auto", BackendKind::GeminiCli, &file);
        c.backends.get_mut("gemini-oauth-auto").unwrap().project = Some("paid-project".into());
        c.auth.disable_cooling = false;
    })
    .await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    assert_eq!(pool.status(Some("gemini-oauth-auto")).unwrap().len(), 2);

    let model = "gemini-oauth-auto:gemini-2.5-pro";
    assert_eq!(
        openai_chat(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    let seen = e.mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/v1internal:generateContent");
    let body = last_body(&e.mock);
    assert_eq!(body["project"], FREE_PROJECT);
    assert_eq!(body["model"], "gemini-2.5-pro");
    assert!(body["request"]["contents"].is_array(), "{body}");
    assert_eq!(
        openai_chat(&e.sg.gw, model, true).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        e.mock.stats.last_request().unwrap().path,
        "/v1internal:streamGenerateContent"
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, model, true).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );

    // The free tier's quota is spent: the plan's project answers, and the free one cools down
    // until the reset Google gave.
    mock_post(&e.mock, "/mock/code-assist/exhaust-free", "").await;
    assert_eq!(
        openai_chat(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(last_body(&e.mock)["project"], "paid-project");
    let free = pool
        .status(Some("gemini-oauth-auto"))
        .unwrap()
        .into_iter()
        .find(|c| c.label.as_deref().is_some_and(|l| l.contains("free tier")))
        .unwrap();
    let until = free.cooldown_until.expect("the free tier cools down");
    let now = SystemClock.now_millis();
    assert!(
        until >= now + 3_500_000,
        "cooldown until {until}, now {now}"
    );

    // Google's token endpoint renews the login (the CLI's public client).
    let s = pool.refresh_due(Some("gemini-oauth-auto")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (2, 0), "{s:?}");
}

#[tokio::test]
async fn a_qwen_device_login_reaches_the_accounts_own_api() {
    let e = env(|c, mock, dir| {
        add_connector(
            c,
            mock,
            "qwen-oauth",
            BackendKind::QwenCode,
            &dir.join("absent.json"),
        );
        c.backends
            .get_mut("qwen-oauth")
            .unwrap()
            .forward_headers
            .clear();
    })
    .await;
    let pool = e.sg.state.pool();
    let (flow, _) = pool.start_login("qwen-oauth").await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), pool.flow_ended(&flow))
        .await
        .expect("the login ends")
        .expect("a known login");
    assert!(format!("{ended:?}").contains("Done"), "{ended:?}");
    let model = "qwen-oauth:qwen3-coder-plus";
    assert_eq!(
        openai_chat(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        e.mock.stats.last_request().unwrap().path,
        "/qwen/v1/chat/completions"
    );
    assert_eq!(
        openai_chat(&e.sg.gw, model, true).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, model, true).await,
        (200, MOCK_TEXT.to_owned())
    );
    let s = pool.refresh_due(Some("qwen-oauth")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
    assert_eq!(openai_chat(&e.sg.gw, model, false).await.0, 200);
}

#[tokio::test]
async fn a_qwen_code_file_is_imported_with_its_resource_url() {
    let e = env(|c, mock, dir| {
        let file = dir.join("oauth_creds.json");
        let creds = oauth_creds(
            now_secs() + 3600,
            "rt-qwen",
            json!({"resource_url": format!("http://{}/qwen", mock.addr)}),
        );
        std::fs::write(&file, creds).unwrap();
        add_connector(c, mock, "qwen-oauth", BackendKind::QwenCode, &file);
    })
    .await;
    e.sg.state.pool().import_changed_files().await;
    assert_eq!(
        openai_chat(&e.sg.gw, "qwen-oauth:qwen3-coder-plus", false).await,
        (200, MOCK_TEXT.to_owned())
    );
}

#[tokio::test]
async fn connectors_are_refused_in_multi_user_mode() {
    let e = env(|c, mock, dir| {
        let file = dir.join("auth.json");
        std::fs::write(&file, codex_auth_json(now_secs() + 3600, "rt")).unwrap();
        // Not named like a seed connector: its type is what withholds it.
        c.backends.insert(
            "work".into(),
            connector(
                BackendKind::Codex,
                format!("http://{}/backend-api/codex", mock.addr),
                &file,
            ),
        );
        c.access_mode.mode = portcullis::config::AccessMode::MultiUser;
        c.server.host = "127.0.0.1".into();
        c.notifications.enabled = Some(false);
    })
    .await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    assert!(pool.status(Some("work")).map_or(true, |c| c.is_empty()));
    let text = std::fs::read_to_string(e.dir.path().join("auth.json")).unwrap();
    let refused = pool
        .import_login("work", std::path::Path::new("auth.json"), &text)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("multi-user"), "{refused}");
    let (status, body) = openai_chat(&e.sg.gw, "work:gpt-5", false).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("multi-user"), "{body}");
}

#[tokio::test]
async fn a_kiro_social_login_is_refreshed_and_speaks_the_event_stream() {
    use portcullis::mock::connectors::KIRO_PROFILE_ARN;
    let e = env(|c, mock, dir| {
        let file = dir.join("kiro-auth-token.json");
        // Expired a minute ago.
        std::fs::write(&file, kiro_token(now_secs() - 60, "rt-kiro")).unwrap();
        add_connector(c, mock, "kiro-oauth-auto", BackendKind::Kiro, &file);
        c.auth.disable_cooling = false;
    })
    .await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    // Expired in the file: renewed at import, at Kiro's social refresh.
    assert_eq!(e.mock.stats.fakes().refreshes(), 1);
    let s = pool.refresh_due(Some("kiro-oauth-auto")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");

    let model = "kiro-oauth-auto:claude-sonnet-4-5";
    assert_eq!(
        openai_chat(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    let seen = e.mock.stats.last_request().unwrap();
    assert_eq!(seen.path, "/generateAssistantResponse");
    assert_eq!(seen.header("x-amzn-codewhisperer-optout"), Some("true"));
    let body = last_body(&e.mock);
    assert_eq!(body["profileArn"], KIRO_PROFILE_ARN);
    let current = &body["conversationState"]["currentMessage"]["userInputMessage"];
    assert_eq!(current["modelId"], "claude-sonnet-4.5", "{body}");
    let stream = client()
        .post(format!("{}/v1/chat/completions", e.sg.gw.url))
        .json(&chat(model, true))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        stream.headers()
    );
    assert_eq!(openai_text(&sse_events(stream).await), MOCK_TEXT);
    assert_eq!(
        anthropic_message(&e.sg.gw, model, false).await,
        (200, MOCK_TEXT.to_owned())
    );
    assert_eq!(
        anthropic_message(&e.sg.gw, model, true).await,
        (200, MOCK_TEXT.to_owned())
    );

    // The month's quota is spent: the caller hears Kiro's answer once, the credential cools
    // down, and later callers get the gateway's 429 with the time to come back.
    mock_post(&e.mock, "/mock/kiro/exhaust", "").await;
    let (status, body) = openai_chat(&e.sg.gw, model, false).await;
    assert_eq!(status, 402, "{body}");
    assert!(body.contains("reached the limit"), "{body}");
    let cred = &pool.status(Some("kiro-oauth-auto")).unwrap()[0];
    assert!(
        cred.cooldown_until
            .is_some_and(|u| u > SystemClock.now_millis()),
        "{cred:?}"
    );
    let later = post_json(
        &format!("{}/v1/chat/completions", e.sg.gw.url),
        chat(model, false),
    )
    .await;
    assert_eq!(later.status(), 429);
    assert!(later.headers().contains_key("retry-after"));
}
