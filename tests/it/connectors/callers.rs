//! Every connector from every caller dialect (OpenAI chat and Responses, Anthropic Messages,
//! Gemini), whole and streamed: four logins imported at once, 32 answers in the caller's shape.

use portcullis::config::BackendKind;
use portcullis::mock::MOCK_TEXT;
use serde_json::json;

use super::{codex_auth_json, connector, env, now_secs, oauth_creds};
use crate::harness::*;

#[tokio::test]
async fn every_connector_answers_every_caller_dialect_whole_and_streamed() {
    use crate::translation::CALLERS;
    use portcullis::mock::connectors::KIRO_PROFILE_ARN;
    let e = env(|c, mock, dir| {
        let live = now_secs() + 3600;
        let files = [
            ("auth.json", codex_auth_json(live, "rt-c")),
            ("gemini.json", oauth_creds(live, "rt-g", json!({}))),
            (
                "qwen.json",
                oauth_creds(
                    live,
                    "rt-q",
                    json!({"resource_url": format!("http://{}/qwen", mock.addr)}),
                ),
            ),
            (
                "kiro.json",
                json!({"accessToken": format!("mock-at-{live}-k"), "refreshToken": "rt-k",
                       "expiresAt": portcullis::clock::iso8601(live * 1000),
                       "authMethod": "social", "profileArn": KIRO_PROFILE_ARN})
                .to_string(),
            ),
        ];
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let base = format!("http://{}", mock.addr);
        for (name, kind, url, file) in [
            (
                "openai-codex",
                BackendKind::Codex,
                format!("{base}/backend-api/codex"),
                "auth.json",
            ),
            (
                "gemini-oauth-free",
                BackendKind::GeminiCli,
                base.clone(),
                "gemini.json",
            ),
            (
                "qwen-oauth",
                BackendKind::QwenCode,
                "http://127.0.0.1:9/v1".to_owned(),
                "qwen.json",
            ),
            (
                "kiro-oauth-auto",
                BackendKind::Kiro,
                base.clone(),
                "kiro.json",
            ),
        ] {
            c.backends
                .insert(name.into(), connector(kind, url, &dir.join(file)));
        }
    })
    .await;
    e.sg.state.pool().import_changed_files().await;
    for model in [
        "openai-codex:gpt-5-codex",
        "gemini-oauth-free:gemini-2.5-flash",
        "qwen-oauth:qwen3-coder-plus",
        "kiro-oauth-auto:claude-sonnet-4.5",
    ] {
        for caller in CALLERS {
            for stream in [false, true] {
                let resp = client()
                    .post(format!("{}{}", e.sg.gw.url, caller.path(model, stream)))
                    .header("anthropic-version", "2023-06-01")
                    .json(&caller.body(model, stream))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let what = format!("{model} from {caller:?}, stream {stream}");
                if status != 200 {
                    panic!("{what}: {status} {}", resp.text().await.unwrap());
                }
                let text = if stream {
                    caller.streamed_text(&sse_events(resp).await)
                } else {
                    caller.text(&resp.json().await.unwrap())
                };
                assert_eq!(text, MOCK_TEXT, "{what}");
            }
        }
    }
}
