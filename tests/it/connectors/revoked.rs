//! Each connector's login whose refresh token the provider revoked: once its access token has
//! run out (the gateway's clock moved past it), the refresh worker's renewal is refused at the
//! provider's token endpoint, the credential becomes `needs_login`, and the operator is told.

use std::time::Duration;

use portcullis::config::BackendKind;
use portcullis::notify::OperatorEvent;
use serde_json::json;

use super::{add_connector, codex_auth_json, env, kiro_token, mock_post, now_secs, oauth_creds};

#[tokio::test]
async fn a_revoked_refresh_token_ends_each_connectors_login_as_needs_login() {
    let live = now_secs() + 3600;
    let e = env(|c, mock, dir| {
        let qwen_api = json!({"resource_url": format!("http://{}/qwen", mock.addr)});
        for (name, kind, text) in [
            (
                "openai-codex",
                BackendKind::Codex,
                codex_auth_json(live, "rt-revoked-codex"),
            ),
            (
                "gemini-oauth-free",
                BackendKind::GeminiCli,
                oauth_creds(live, "rt-revoked-gemini", json!({})),
            ),
            (
                "qwen-oauth",
                BackendKind::QwenCode,
                oauth_creds(live, "rt-revoked-qwen", qwen_api),
            ),
            (
                "kiro-oauth-auto",
                BackendKind::Kiro,
                kiro_token(live, "rt-revoked-kiro"),
            ),
        ] {
            let file = dir.join(format!("{name}.json"));
            std::fs::write(&file, text).unwrap();
            add_connector(c, mock, name, kind, &file);
        }
    })
    .await;
    let pool = e.sg.state.pool();
    pool.import_changed_files().await;
    for rt in [
        "rt-revoked-codex",
        "rt-revoked-gemini",
        "rt-revoked-qwen",
        "rt-revoked-kiro",
    ] {
        mock_post(&e.mock, "/mock/oauth/revoke", rt).await;
    }
    // Two hours on: every access token has run out, and every renewal is refused.
    e.sg.clock.advance(Duration::from_secs(2 * 3600));
    let s = pool.refresh_due(None).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (0, 4), "{s:?}");
    let events = e.sg.notes.events();
    for backend in [
        "openai-codex",
        "gemini-oauth-free",
        "qwen-oauth",
        "kiro-oauth-auto",
    ] {
        let creds = pool.status(Some(backend)).unwrap();
        assert_eq!(creds.len(), 1, "{backend}: {creds:?}");
        assert!(pool.needs_login(&creds[0].id), "{backend}");
        assert_eq!(creds[0].status, "needs_login", "{backend}: {:?}", creds[0]);
        assert!(
            events.iter().any(|ev| matches!(ev, OperatorEvent::CredentialNeedsLogin { provider, .. } if provider == backend)),
            "{backend}: {events:?}"
        );
    }
    // The worker's status says why, per credential, without a secret.
    let status = pool.refresh_status();
    let errors: Vec<_> = status
        .credentials
        .values()
        .filter_map(|c| c.last_error.clone())
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors.iter().all(|e| !e.contains("rt-revoked")),
        "{errors:?}"
    );
}
