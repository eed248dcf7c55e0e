//! SSO end to end, on SQLite and on PostgreSQL, against a real OIDC provider
//! (`oidc-provider-mock`) and the official OpenAI Python SDK: sandbox → login link → provider →
//! callback → confirmation code → success page → token works; a lapsed session (test clock) →
//! re-authentication sandbox → login → the same token works again; the devices page and
//! revocation. Also the enterprise authorization API (allow, deny, silent → timeout, 500) and the
//! sandbox answer in every protocol and stream mode.

use std::sync::Arc;
use std::time::Duration;

use portcullis::clock::ManualClock;
use portcullis::config::{Config, SsoAuthorizationMode, SsoProviderKind};
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::store::Store;
use serde_json::{Value, json};

use crate::harness::*;
use crate::idp::*;
use crate::sso_gateway::{SsoGateway, last_code, provider, start_sso_gateway};

const MANAGEMENT_KEY: &str = "mgmt-key-0123456789abcdef";

struct Setup {
    url: String,
    store: Arc<dyn Store>,
    clock: ManualClock,
    recorder: Arc<RecordingNotifier>,
    venv: std::path::PathBuf,
    idp: Idp,
    _gw: (Mock, tokio::sync::oneshot::Sender<()>),
    _home: crate::store::StoreHome,
}

async fn setup(on_postgres: bool, tweak: impl FnOnce(&mut Config)) -> Option<Setup> {
    let venv = venv()?;
    let (store, home) = crate::store::test_store(on_postgres).await?;
    let idp = Idp::start(&venv);
    idp.set_user(
        "alice",
        json!({"email": "alice@example.com", "name": "Alice Example"}),
    )
    .await;
    let mut oidc = provider(SsoProviderKind::Oidc, "portcullis", "client-secret");
    oidc.display_name = Some("Test IdP".into());
    oidc.issuer = Some(idp.url.clone());
    let SsoGateway {
        mock,
        url,
        clock,
        recorder,
        stop,
    } = start_sso_gateway(store.clone(), [("idp", oidc)], |c| {
        c.management.key = Some(Secret::new(MANAGEMENT_KEY));
        tweak(c);
    })
    .await;
    Some(Setup {
        url,
        store,
        clock,
        recorder,
        venv,
        idp,
        _gw: (mock, stop),
        _home: home,
    })
}

impl Setup {
    /// A chat completion with `key` (or none): (status, x-portcullis-auth, body).
    async fn chat(&self, key: Option<&str>) -> (u16, Option<String>, Value) {
        let mut req = client()
            .post(format!("{}/v1/chat/completions", self.url))
            .json(&chat("openai:gpt-4o-mini", false));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let mark = r
            .headers()
            .get("x-portcullis-auth")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, mark, r.json().await.unwrap())
    }

    /// The login URL from a sandbox answer to `key`.
    async fn sandbox_link(&self, key: Option<&str>) -> (String, String) {
        let (status, mark, body) = self.chat(key).await;
        assert_eq!((status, mark.as_deref()), (200, Some("required")), "{body}");
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        (first_url(&text), text)
    }

    fn last_code(&self) -> String {
        last_code(&self.recorder)
    }

    /// Browser: login link → provider (logs in as alice) → callback. Returns the callback's
    /// response.
    async fn through_provider(&self, b: &Browser, link: &str) -> reqwest::Response {
        let r = self.leave_for_provider(b, link).await;
        let authorize = location(&r, &self.url);
        assert!(authorize.starts_with(&self.idp.url), "{authorize}");
        let q: std::collections::HashMap<String, String> = reqwest::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q["code_challenge_method"], "S256");
        for k in ["state", "nonce", "code_challenge"] {
            assert!(q[k].len() >= 43, "{k} must carry 256 bits: {authorize}");
        }
        assert_eq!(q["redirect_uri"], format!("{}/auth/callback", self.url));
        let r = b.post_form(&authorize, &[("sub", "alice")]).await;
        let callback = location(&r, &self.url);
        assert!(callback.starts_with(&self.url), "{callback}");
        b.get(&callback).await
    }

    /// The login page (GET, which never uses the link up), then its form's POST.
    async fn leave_for_provider(&self, b: &Browser, link: &str) -> reqwest::Response {
        let page = b.get(link).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("document.forms[0].submit()"),
            "one provider: the page submits itself"
        );
        let action = between(&html, "action=\"", "\"");
        let t = between(&html, "name=\"t\" value=\"", "\"");
        assert!(link.ends_with(t));
        b.post_form(&format!("{}{action}", self.url), &[("t", t)])
            .await
    }

    /// Posts `code` to the confirmation form in browser `b`.
    async fn confirm(&self, b: &Browser, code: &str) -> reqwest::Response {
        b.post_form(&format!("{}/auth/confirm", self.url), &[("code", code)])
            .await
    }

    /// A whole first login of alice in a new browser: the browser (holding the devices page's
    /// session) and the agent token the success page showed.
    async fn logged_in(&self) -> (Browser, String) {
        let (link, _) = self.sandbox_link(None).await;
        let b = Browser::default();
        assert_eq!(self.through_provider(&b, &link).await.status(), 303);
        let r = self.confirm(&b, &self.last_code()).await;
        assert_eq!(r.status(), 200);
        let token = token_on(&r.text().await.unwrap()).expect("the token is shown");
        (b, token)
    }

    /// Runs the official OpenAI SDK with `token`: whether the mock's answer came back.
    async fn sdk_works(&self, token: &str) -> (bool, String) {
        let (ok, out) = openai_sdk_chat(&self.venv, &format!("{}/v1", self.url), token).await;
        (ok && out.contains("Hello from portcullis-mock."), out)
    }
}

fn token_on(page: &str) -> Option<String> {
    let start = page.find("id=\"agent-token\">")? + "id=\"agent-token\">".len();
    Some(page[start..].split('<').next()?.to_owned())
}

/// Sandbox → link → provider → callback → confirmation (a wrong code first) → success page →
/// the official SDK works with the token; the link and the code were single-use.
async fn a_first_login(on_postgres: bool) {
    let Some(s) = setup(on_postgres, |_| {}).await else {
        return;
    };
    // 1. No key: the sandbox answer, with a login link.
    let (link, text) = s.sandbox_link(None).await;
    assert!(text.starts_with("Authentication required"), "{text}");
    assert!(
        link.starts_with(&format!("{}/auth/login?t=", s.url)),
        "{link}"
    );

    // 2-3. Provider, callback → confirmation page.
    let b = Browser::default();
    let r = s.through_provider(&b, &link).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r, &s.url), format!("{}/auth/confirm", s.url));
    assert!(b.has_cookie("portcullis_flow"));
    let page = b.get(&format!("{}/auth/confirm", s.url)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("alice@example.com"));

    // 4. A wrong code, then the console's code.
    let code = s.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = s.confirm(&b, wrong).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Incorrect code. 2 attempts remaining.")
    );
    let r = s.confirm(&b, &code).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    let page = r.text().await.unwrap();
    let token = token_on(&page).expect("the success page shows the token");
    assert!(token.starts_with("sk-pcl-"), "{token}");
    for agent in [
        "Cursor",
        "Continue",
        "Cline",
        "Aider",
        "OpenAI Python SDK",
        "OpenAI Node SDK",
        "curl",
    ] {
        assert!(page.contains(agent), "no {agent} snippet");
    }
    let browser_requests = *b.requests.lock().unwrap();
    // Browser → gateway or IdP: login page, its POST, the IdP's login form POST, callback, confirm
    // page, wrong code, right code (a real browser also GETs the IdP's form first). Plus the
    // agent's one sandboxed request.
    assert_eq!(browser_requests, 7, "browser requests in the flow");

    // 5. The official OpenAI SDK works with the token.
    let (ok, out) = s.sdk_works(&token).await;
    assert!(ok, "{out}");

    // The link was single-use; the code too.
    let again = s.leave_for_provider(&Browser::default(), &link).await;
    assert_eq!(again.status(), 410, "a used link is refused");
    let r = s.confirm(&b, &code).await;
    assert_eq!(r.status(), 400, "nothing waits for a code any more");
}

/// The session lapses (test clock): the re-authentication sandbox, bound to the token; after
/// logging in again the same token works, and no second token exists.
async fn a_lapsed_session_is_renewed_by_logging_in_again(on_postgres: bool) {
    let Some(s) = setup(on_postgres, |_| {}).await else {
        return;
    };
    let (_, token) = s.logged_in().await;
    s.clock.advance(Duration::from_secs(25 * 3600));
    let (relink, text) = s.sandbox_link(Some(&token)).await;
    assert!(text.starts_with("Re-authentication required"), "{text}");
    let b2 = Browser::default();
    let r = s.through_provider(&b2, &relink).await;
    assert_eq!(r.status(), 303);
    let r = s.confirm(&b2, &s.last_code()).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        token_on(&page).is_none(),
        "a re-authentication shows no token"
    );
    assert!(page.contains("works again"), "{page}");
    let (ok, out) = s.sdk_works(&token).await;
    assert!(ok, "same token again: {out}");
    assert_eq!(
        s.store.list_tokens(None).await.unwrap().len(),
        1,
        "no second token"
    );
}

/// The devices page shows the device, renames it (its anti-forgery field checked); the admin
/// lists and revokes it through the management API, and the next request gets the sandbox.
async fn devices_are_renamed_by_their_user_and_revoked_by_the_admin(on_postgres: bool) {
    let Some(s) = setup(on_postgres, |_| {}).await else {
        return;
    };
    let (b, token) = s.logged_in().await;
    let (ok, out) = s.sdk_works(&token).await;
    assert!(ok, "{out}");
    let devices = b.get(&format!("{}/auth/devices", s.url)).await;
    assert_eq!(devices.status(), 200);
    let html = devices.text().await.unwrap();
    let public_id = token
        .trim_start_matches("sk-pcl-")
        .split('_')
        .next()
        .unwrap();
    assert!(
        html.contains(public_id) && html.contains("127.0.0.1"),
        "{html}"
    );
    let csrf = between(&html, "name=\"csrf\" value=\"", "\"");
    let rename = format!("{}/auth/devices/{public_id}/rename", s.url);
    let r = b
        .post_form(&rename, &[("csrf", "forged"), ("name", "x")])
        .await;
    assert_eq!(r.status(), 403, "a forged form is refused");
    let r = b
        .post_form(&rename, &[("csrf", csrf), ("name", "work laptop")])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.store.get_token(public_id).await.unwrap().unwrap().name,
        "work laptop"
    );
    assert_eq!(
        Browser::default()
            .get(&format!("{}/auth/devices", s.url))
            .await
            .status(),
        401
    );

    // The admin revokes it through the management API: refused on the next request.
    let get = reqwest::Method::GET;
    let (status, listed) =
        call_with_key(&s.url, MANAGEMENT_KEY, get, "/v0/management/tokens", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["tokens"][0]["name"], "work laptop");
    assert_eq!(listed["tokens"][0]["user"], "alice@example.com");
    assert!(
        !listed.to_string().contains("argon2"),
        "no hashes: {listed}"
    );
    let path = format!("/v0/management/tokens/{public_id}");
    let delete = reqwest::Method::DELETE;
    let (status, v) = call_with_key(&s.url, MANAGEMENT_KEY, delete, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "revoked");
    let (status, mark, _) = s.chat(Some(&token)).await;
    assert_eq!(
        (status, mark.as_deref()),
        (200, Some("required")),
        "revoked → sandbox"
    );
}

#[tokio::test]
async fn a_first_login_gives_a_working_token_on_sqlite() {
    a_first_login(false).await;
}

#[tokio::test]
async fn a_first_login_gives_a_working_token_on_postgres() {
    a_first_login(true).await;
}

#[tokio::test]
async fn a_lapsed_session_is_renewed_by_logging_in_again_on_sqlite() {
    a_lapsed_session_is_renewed_by_logging_in_again(false).await;
}

#[tokio::test]
async fn a_lapsed_session_is_renewed_by_logging_in_again_on_postgres() {
    a_lapsed_session_is_renewed_by_logging_in_again(true).await;
}

#[tokio::test]
async fn devices_are_renamed_by_their_user_and_revoked_by_the_admin_on_sqlite() {
    devices_are_renamed_by_their_user_and_revoked_by_the_admin(false).await;
}

#[tokio::test]
async fn devices_are_renamed_by_their_user_and_revoked_by_the_admin_on_postgres() {
    devices_are_renamed_by_their_user_and_revoked_by_the_admin(true).await;
}

#[tokio::test]
async fn confirmation_codes_run_out_and_expire() {
    let Some(s) = setup(false, |_| {}).await else {
        return;
    };
    let confirm = format!("{}/auth/confirm", s.url);
    // Three wrong codes abandon the login.
    let b = Browser::default();
    let (link, _) = s.sandbox_link(None).await;
    assert_eq!(s.through_provider(&b, &link).await.status(), 303);
    let code = s.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in [2, 1] {
        let r = b.post_form(&confirm, &[("code", wrong)]).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains(&format!("{left} attempt")));
    }
    assert_eq!(
        b.post_form(&confirm, &[("code", wrong)]).await.status(),
        403
    );
    assert_eq!(
        b.post_form(&confirm, &[("code", &code)]).await.status(),
        400,
        "abandoned"
    );
    // A code older than 10 minutes is refused.
    let b = Browser::default();
    let (link, _) = s.sandbox_link(None).await;
    assert_eq!(s.through_provider(&b, &link).await.status(), 303);
    s.clock.advance(Duration::from_secs(601));
    assert_eq!(
        b.post_form(&confirm, &[("code", &s.last_code())])
            .await
            .status(),
        410
    );
    // A link older than 10 minutes is refused before the provider.
    let (link, _) = s.sandbox_link(None).await;
    s.clock.advance(Duration::from_secs(601));
    assert_eq!(Browser::default().get(&link).await.status(), 410);
    // A forged link.
    let forged = format!(
        "{}/auth/login?t=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        s.url
    );
    assert_eq!(Browser::default().get(&forged).await.status(), 400);
    // The callback with an unknown state.
    let r = Browser::default()
        .get(&format!("{}/auth/callback?code=x&state=unknown", s.url))
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        s.store.list_tokens(None).await.unwrap().is_empty(),
        "no token issued"
    );
}

/// A tiny enterprise authorization API: answers as `behaviour` says and records what it got.
pub(crate) async fn authorization_api(
    behaviour: &'static str,
    seen: Arc<std::sync::Mutex<Vec<(http::HeaderMap, Value)>>>,
) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/authorize",
        post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((headers, serde_json::from_slice(&body).unwrap()));
                match behaviour {
                    "allow" => (http::StatusCode::OK, r#"{"authorized": true}"#).into_response(),
                    "deny" => (http::StatusCode::OK, r#"{"authorized": false}"#).into_response(),
                    "error" => (
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"authorized": true}"#,
                    )
                        .into_response(),
                    _ => std::future::pending::<axum::response::Response>().await,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/authorize", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

use axum::response::IntoResponse;

#[tokio::test]
async fn enterprise_authorization_fails_closed() {
    for (behaviour, allowed) in [
        ("allow", true),
        ("deny", false),
        ("silent", false),
        ("error", false),
    ] {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let api = authorization_api(behaviour, seen.clone()).await;
        let Some(s) = setup(false, |c| {
            c.sso.authorization.mode = SsoAuthorizationMode::Enterprise;
            c.sso.authorization.api_url = Some(api.clone());
            c.sso.authorization.api_secret = Some(Secret::new("api-secret-1"));
            c.sso.authorization.api_timeout_seconds = 1;
        })
        .await
        else {
            return;
        };
        let b = Browser::default();
        let (link, _) = s.sandbox_link(None).await;
        let r = s.through_provider(&b, &link).await;
        let status = r.status().as_u16();
        let page = r.text().await.unwrap();
        if allowed {
            assert_eq!(status, 200, "{behaviour}: {page}");
            let token = token_on(&page).expect("token on the success page");
            let (code, mark, _) = s.chat(Some(&token)).await;
            assert_eq!((code, mark), (200, None));
        } else {
            assert_eq!(status, 403, "{behaviour}: {page}");
            assert!(page.contains("Access denied"), "{page}");
            assert!(s.store.list_tokens(None).await.unwrap().is_empty());
        }
        let calls = seen.lock().unwrap();
        assert_eq!(calls.len(), 1, "{behaviour}");
        let (headers, body) = &calls[0];
        assert!(
            headers["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("portcullis/")
        );
        assert_eq!(headers["authorization"], "Bearer api-secret-1");
        assert_eq!(body["user_email"], "alice@example.com");
        assert_eq!(body["provider"], "idp");
        assert_eq!(body["client_ip"], "127.0.0.1");
        assert!(body["user_id"].as_str().unwrap().starts_with("usr_"));
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(
            s.recorder
                .events()
                .iter()
                .all(|e| !matches!(e, OperatorEvent::LoginAwaitingConfirmation { .. }))
        );
    }
}

#[tokio::test]
async fn the_sandbox_answers_in_every_protocol_and_stream_mode() {
    let Some((store, _dir)) = crate::store::test_store(false).await else {
        return;
    };
    let github = provider(SsoProviderKind::Github, "c", "s");
    let gw = start_sso_gateway(store, [("idp", github)], |c| {
        c.sso.public_url = Some("https://gw.example.com".into());
    })
    .await;
    let link = "https://gw.example.com/auth/login?t=";
    let cases: [(&str, Value, &str); 9] = [
        (
            "/v1/chat/completions",
            chat("gpt-4o", false),
            "application/json",
        ),
        (
            "/v1/chat/completions",
            chat("gpt-4o", true),
            "text/event-stream",
        ),
        (
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi"}),
            "application/json",
        ),
        (
            "/v1/responses",
            json!({"model": "gpt-4o", "input": "hi", "stream": true}),
            "text/event-stream",
        ),
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 5, "messages": []}),
            "application/json",
        ),
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 5, "messages": [], "stream": true}),
            "text/event-stream",
        ),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json!({"contents": []}),
            "application/json",
        ),
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json!({"contents": []}),
            "text/event-stream",
        ),
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            json!({"contents": []}),
            "application/json",
        ),
    ];
    for (path, body, content_type) in cases {
        let r = post_json(&format!("{}{path}", gw.url), body).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-portcullis-auth"], "required", "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        let text = r.text().await.unwrap();
        assert!(text.contains(link), "{path}: {text}");
        if content_type == "text/event-stream" {
            for (_, data) in parse_sse(&text) {
                if data != "[DONE]" {
                    serde_json::from_str::<Value>(&data).unwrap();
                }
            }
        } else {
            serde_json::from_str::<Value>(&text).unwrap();
        }
    }
    // Routes that cannot carry a message: 401 in the protocol's shape, with the link.
    let r = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-portcullis-auth"], "required");
    let v: Value = r.json().await.unwrap();
    assert!(openai_error(&v).contains(link));
    // Nothing reached the upstream.
    assert_eq!(gw.mock.stats.requests(), 0);
}

/// The admin console's SSO hand-over: a browser logged in through SSO whose email is listed in
/// `admin.console.admins` gets a console session at `POST /auth/admin`; one not logged in is
/// sent to the SSO login; a logged-in user who is not listed is refused.
#[tokio::test]
async fn an_sso_admin_signs_in_to_the_console() {
    let Some(s) = setup(false, |c| {
        c.admin.console.enabled = true;
        c.admin.console.admins = vec!["Alice@Example.com".into()];
    })
    .await
    else {
        return;
    };
    let handover = format!("{}/auth/admin", s.url);
    let r = Browser::default().post_form(&handover, &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r, &s.url), format!("{}/auth/login", s.url));

    let (b, _) = s.logged_in().await;
    let login = b.get(&format!("{}/admin/login", s.url)).await;
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("action=\"/auth/admin\"")
    );
    // As a browser sends the console's form: its `Referrer-Policy: no-referrer` makes the
    // Origin `null`; Sec-Fetch-Site says it is the gateway's own page.
    let own_page = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    let r = b.post_form_with(&handover, &[], &own_page).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r, &s.url), format!("{}/admin", s.url));
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("portcullis_admin=") && set.contains("SameSite=Strict"));
    let page = b.get(&format!("{}/admin/devices", s.url)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("alice@example.com"));
    // From another site the hand-over is refused by the SSO pages' guard.
    for foreign in [
        [("origin", "https://evil.example"), ("x-none", "")],
        [("origin", "null"), ("x-none", "")],
        [("origin", "null"), ("sec-fetch-site", "cross-site")],
    ] {
        let r = b.post_form_with(&handover, &[], &foreign).await;
        assert_eq!(r.status(), 403, "{foreign:?}");
    }
}

/// An SSO user who is not listed in `admin.console.admins` gets no console session.
#[tokio::test]
async fn an_sso_user_who_is_not_an_admin_is_refused_by_the_console() {
    let Some(s) = setup(false, |c| {
        c.admin.console.enabled = true;
        c.admin.console.admins = vec!["carol@example.com".into()];
    })
    .await
    else {
        return;
    };
    let (b, _) = s.logged_in().await;
    let r = b.post_form(&format!("{}/auth/admin", s.url), &[]).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    let r = b.get(&format!("{}/admin/devices", s.url)).await;
    assert_eq!(r.status(), 303, "no console session");
}
