//! Every connector from every caller dialect (OpenAI chat and Responses, Anthropic Messages,
//! Gemini), whole and streamed: four logins imported at once, 32 answers in the caller's shape.

use portcullis::config::BackendKind;
use portcullis::mock::MOCK_TEXT;
use serde_json::json;

use super::{add_connector, codex_auth_json, env, kiro_token, now_secs, oauth_creds};
use crate::harness::*;

#[tokio::test]
async fn every_connector_answers_every_caller_dialect_whole_and_streamed() {
    use crate::translation::CALLERS;
    let e = env(|c, mock, dir| {
        let live = now_secs() + 3600;
        let qwen_api = json!({"resource_url": format!("http://{}/qwen", mock.addr)});
        for (name, kind, text) in [
            (
                "openai-codex",
                BackendKind::Codex,
                codex_auth_json(live, "rt-c"),
            ),
            (
                "gemini-oauth-free",
                BackendKind::GeminiCli,
                oauth_creds(live, "rt-g", json!({})),
            ),
            (
                "qwen-oauth",
                BackendKind::QwenCode,
                oauth_creds(live, "rt-q", qwen_api),
            ),
            (
                "kiro-oauth-auto",
                BackendKind::Kiro,
                kiro_token(live, "rt-k"),
            ),
        ] {
            let file = dir.join(format!("{name}.json"));
            std::fs::write(&file, text).unwrap();
            add_connector(c, mock, name, kind, &file);
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
