//! Codex and the Gemini CLI logging in in a browser, as their CLIs do: the authorization link
//! (PKCE), the loopback redirect (a forged `state` turned away), the code exchanged at the mock's
//! token endpoint, the login stored and answering.

use std::time::Duration;

use portcullis::config::BackendKind;
use portcullis::mock::MOCK_TEXT;

use super::{add_connector, env, openai_chat};
use crate::harness::*;

/// The query parameters of a URL.
fn params(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn codex_and_gemini_cli_log_in_in_a_browser_as_their_clis_do() {
    let e = env(|c, mock, dir| {
        let absent = dir.join("absent.json");
        for (name, kind) in [
            ("openai-codex", BackendKind::Codex),
            ("gemini-oauth-free", BackendKind::GeminiCli),
        ] {
            add_connector(c, mock, name, kind, &absent);
            let l = c.auth.device_login.get_mut(name).unwrap();
            l.authorize_url = Some(format!("http://{}/authorize", mock.addr));
            l.redirect_port = Some(0);
        }
    })
    .await;
    let pool = e.sg.state.pool();
    for (name, model, path) in [
        ("openai-codex", "openai-codex:gpt-5-codex", "/auth/callback"),
        (
            "gemini-oauth-free",
            "gemini-oauth-free:gemini-2.5-pro",
            "/oauth2callback",
        ),
    ] {
        let login = pool.login(name).cloned().unwrap();
        let browser = login.browser().expect("a browser login");
        let waiting = browser.start().await.unwrap();
        let link = params(&waiting.url);
        assert_eq!(link["code_challenge_method"], "S256");
        assert_eq!(link["response_type"], "code");
        let redirect = link["redirect_uri"].clone();
        assert!(redirect.ends_with(path), "{redirect}");
        // The browser comes back to the loopback listener (localhost for Codex's registered URI).
        let back = redirect.replace("localhost", "127.0.0.1");
        let state = link["state"].clone();
        let browser_side = tokio::spawn(async move {
            let c = client();
            // Another page's request and a forged state are turned away; the login waits on.
            let stray = c
                .get(format!("{back}?code=mock-code-x&state=forged"))
                .send()
                .await
                .unwrap();
            assert_eq!(stray.status(), 400);
            let ok = c
                .get(format!("{back}?code=mock-code-1&state={state}"))
                .send()
                .await
                .unwrap();
            assert_eq!(ok.status(), 200);
            ok.text().await.unwrap()
        });
        let approval = browser
            .approval(waiting, Duration::from_secs(20))
            .await
            .unwrap();
        assert!(browser_side.await.unwrap().contains("close this tab"));
        let ids = pool.finish_browser_login(&login, &approval).await.unwrap();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(
            openai_chat(&e.sg.gw, model, false).await,
            (200, MOCK_TEXT.to_owned())
        );
    }
    // A Codex login from the browser carries the account from its id token.
    let codex = pool.status(Some("openai-codex")).unwrap();
    assert!(
        codex[0]
            .label
            .as_deref()
            .unwrap()
            .contains("dev@example.com"),
        "{codex:?}"
    );
}
