//! Device-flow logins that add OAuth credentials, and the refresh worker, against small local
//! fakes of GitHub (device login + the Copilot token exchange) and AWS SSO-OIDC (Kiro): the
//! login page, approval, the credential used upstream, refresh before expiry, and a refresh
//! failure that ends as a visible `needs_login` with an operator notification.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use portcullis::clock::ManualClock;
use portcullis::config::{BackendKind, Config, DeviceLoginConfig};
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use serde_json::{Value, json};

use crate::harness::*;

const MGMT: &str = "management-key-0123456789";
/// 2026-11-23T10:00:00Z
const START_MS: u64 = 1_795_428_000_000;

/// The fake provider's state, shared with the test.
#[derive(Default)]
struct Fake {
    approved: AtomicBool,
    /// Seconds since the epoch, as the test clock says.
    now: AtomicU64,
    issued: AtomicU64,
    refuse_refresh: AtomicBool,
    polls: AtomicU64,
    /// Woken by each poll of the token endpoint.
    polled: tokio::sync::Notify,
    seen_forms: Mutex<Vec<String>>,
    /// A `verification_uri` other than GitHub's (a hostile provider's).
    link: Mutex<Option<String>>,
    /// A Copilot token other than the usual one (a hostile provider's).
    token: Mutex<Option<String>>,
}

type S = State<Arc<Fake>>;

async fn device_code(State(f): S, body: String) -> axum::Json<Value> {
    f.seen_forms.lock().unwrap().push(body);
    let link = f
        .link
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| "https://github.example/login/device".to_owned());
    axum::Json(json!({
        "device_code": "dc-secret-1", "user_code": "WDJB-MJHT",
        "verification_uri": link,
        "expires_in": 900, "interval": 1
    }))
}

/// GitHub's token endpoint: pending answers are HTTP 200 with an `error` field.
async fn github_token(State(f): S, body: String) -> axum::Json<Value> {
    f.polls.fetch_add(1, Ordering::SeqCst);
    f.polled.notify_one();
    assert!(body.contains("device_code=dc-secret-1"), "{body}");
    if !f.approved.load(Ordering::SeqCst) {
        return axum::Json(json!({"error": "authorization_pending"}));
    }
    axum::Json(
        json!({"access_token": "gho_github_token_0123", "token_type": "bearer", "scope": "read:user"}),
    )
}

async fn copilot_token(
    State(f): S,
    headers: http::HeaderMap,
) -> (http::StatusCode, axum::Json<Value>) {
    assert_eq!(headers["authorization"], "token gho_github_token_0123");
    if f.refuse_refresh.load(Ordering::SeqCst) && f.issued.load(Ordering::SeqCst) > 0 {
        return (
            http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        );
    }
    let n = f.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let now = f.now.load(Ordering::SeqCst);
    let usual = format!("tid=copilot-{n};exp={}", now + 1800);
    let token = f.token.lock().unwrap().clone().unwrap_or(usual);
    (
        http::StatusCode::OK,
        axum::Json(json!({"token": token, "expires_at": now + 1800, "refresh_in": 1500})),
    )
}

async fn kiro_register(axum::Json(v): axum::Json<Value>) -> axum::Json<Value> {
    assert_eq!(v["clientType"], "public");
    axum::Json(
        json!({"clientId": "kiro-client-1", "clientSecret": "kiro-client-secret-1", "clientSecretExpiresAt": 0}),
    )
}

async fn kiro_device(axum::Json(v): axum::Json<Value>) -> axum::Json<Value> {
    assert_eq!(v["clientId"], "kiro-client-1");
    assert_eq!(v["startUrl"], "https://view.awsapps.com/start");
    axum::Json(json!({
        "deviceCode": "kiro-dc-1", "userCode": "KIRO-CODE",
        "verificationUri": "https://device.sso.example/", "verificationUriComplete": "https://device.sso.example/?user_code=KIRO-CODE",
        "expiresIn": 600, "interval": 1
    }))
}

/// AWS SSO-OIDC's token endpoint: pending is HTTP 400; refresh tokens rotate.
async fn kiro_token(
    State(f): S,
    axum::Json(v): axum::Json<Value>,
) -> (http::StatusCode, axum::Json<Value>) {
    assert_eq!(v["clientSecret"], "kiro-client-secret-1");
    match v["grantType"].as_str().unwrap() {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            if !f.approved.load(Ordering::SeqCst) {
                return (
                    http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "authorization_pending"})),
                );
            }
            (
                http::StatusCode::OK,
                axum::Json(
                    json!({"accessToken": "kiro-access-1", "refreshToken": "kiro-refresh-1", "expiresIn": 3600}),
                ),
            )
        }
        "refresh_token" => {
            let n = f.issued.fetch_add(1, Ordering::SeqCst) + 2;
            assert_eq!(
                v["refreshToken"],
                format!("kiro-refresh-{}", n - 1),
                "the rotated refresh token is used"
            );
            (
                http::StatusCode::OK,
                axum::Json(
                    json!({"accessToken": format!("kiro-access-{n}"), "refreshToken": format!("kiro-refresh-{n}"), "expiresIn": 3600}),
                ),
            )
        }
        other => panic!("grant {other}"),
    }
}

async fn start_fake(fake: Arc<Fake>) -> String {
    let app = axum::Router::new()
        .route("/login/device/code", post(device_code))
        .route("/login/oauth/access_token", post(github_token))
        .route("/copilot_internal/v2/token", get(copilot_token))
        .route("/client/register", post(kiro_register))
        .route("/device_authorization", post(kiro_device))
        .route("/token", post(kiro_token))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

struct Env {
    mock: Mock,
    gw: Gateway,
    clock: ManualClock,
    state: AppState,
    fake: Arc<Fake>,
    notes: Arc<RecordingNotifier>,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(extra: impl FnOnce(&mut Config)) -> Env {
    let fake = Arc::new(Fake::default());
    fake.now.store(START_MS / 1000, Ordering::SeqCst);
    let fake_url = start_fake(fake.clone()).await;
    let mock = start_mock().await;
    let mut config: Config = config_for(&mock);
    config.management.key = Some(Secret::new(MGMT));
    config.auth.encryption.key = Some(Secret::new("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="));
    for name in ["copilot", "kiro"] {
        config.backends.insert(
            name.to_owned(),
            backend(
                BackendKind::Openai,
                format!("http://{}/v1", mock.addr),
                None,
            ),
        );
    }
    config.auth.device_login.insert(
        "copilot".to_owned(),
        DeviceLoginConfig {
            device_authorization_url: Some(format!("{fake_url}/login/device/code")),
            token_url: Some(format!("{fake_url}/login/oauth/access_token")),
            copilot_token_url: Some(format!("{fake_url}/copilot_internal/v2/token")),
            ..Default::default()
        },
    );
    config.auth.device_login.insert(
        "kiro".to_owned(),
        DeviceLoginConfig {
            oidc_url: Some(fake_url.clone()),
            ..Default::default()
        },
    );
    extra(&mut config);
    let dir = tempfile::tempdir().unwrap();
    let StoredGateway {
        gw,
        state,
        clock,
        notes,
    } = start_gateway_with_store(config, dir.path(), START_MS).await;
    Env {
        mock,
        gw,
        clock,
        state,
        fake,
        notes,
        _dir: dir,
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A device-login page (`path` with its query) as the operator's browser, holding the key, sees it.
async fn page_with_key(gw: &Gateway, path: &str) -> reqwest::Response {
    let url = format!("{}{path}", gw.url);
    let req = browser().get(url).header("x-management-key", MGMT);
    req.send().await.unwrap()
}

async fn wait_flow_once(gw: &Gateway, path: &str) -> Value {
    let page = page_with_key(gw, &format!("{path}?format=json")).await;
    page.json().await.unwrap()
}

/// Waits for the gateway's task to end login `path` (its last segment is the flow id), then
/// reads the flow's JSON as a page would.
async fn wait_flow(e: &Env, path: &str) -> Value {
    let id = path.rsplit('/').next().unwrap();
    let ended = e.state.pool().flow_ended(id);
    let flow = tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the login ends")
        .expect("a known login");
    let v = wait_flow_once(&e.gw, path).await;
    assert_ne!(v["status"], "pending", "{flow:?} {v}");
    v
}

async fn ask(gw: &Gateway, model: &str) -> u16 {
    post_json(
        &format!("{}/v1/chat/completions", gw.url),
        chat(model, false),
    )
    .await
    .status()
    .as_u16()
}

async fn mgmt(gw: &Gateway, method: reqwest::Method, path: &str) -> Value {
    call_with_key(&gw.url, MGMT, method, path, None).await.1
}

/// The refresh worker's status from the management API.
async fn refresh_status(gw: &Gateway) -> Value {
    let status = "/v0/management/auths/refresh/status";
    mgmt(gw, reqwest::Method::GET, status).await
}

/// A login of `login` started through the pool (as the CLI does) and approved at once; returns
/// the ended flow as its page shows it.
async fn logged_in(e: &Env, login: &str) -> Value {
    let (flow_id, _) = e.state.pool().start_login(login).await.unwrap();
    e.fake.approved.store(true, Ordering::SeqCst);
    let done = wait_flow(e, &format!("/v0/oauth/{login}/flow/{flow_id}")).await;
    assert_eq!(done["status"], "done", "{done}");
    done
}

#[tokio::test]
async fn a_copilot_login_from_the_page_adds_a_sealed_credential_used_upstream() {
    let e = env().await;
    let page = browser()
        .get(format!("{}/v0/oauth/copilot", e.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Start the login"));
    let cross = browser()
        .post(format!("{}/v0/oauth/copilot", e.gw.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "another site cannot start a login");
    let started = start_with_key(&e.gw, "copilot", Some(MGMT)).await;
    assert_eq!(started.status(), 303);
    let flow = started.headers()["location"].to_str().unwrap().to_owned();
    // The browser that started the login follows it with the cookie it was given.
    let cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let shown = browser()
        .get(format!("{}{flow}", e.gw.url))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("WDJB-MJHT") && shown.contains("https://github.example/login/device"),
        "{shown}"
    );
    assert!(e.fake.seen_forms.lock().unwrap()[0].contains("client_id=Iv1.b507a08c87ecfe98"));

    // The user approves after the gateway has seen `authorization_pending` once.
    tokio::time::timeout(Duration::from_secs(10), e.fake.polled.notified())
        .await
        .expect("the gateway polls");
    assert_eq!(wait_flow_once(&e.gw, &flow).await["status"], "pending");
    e.fake.approved.store(true, Ordering::SeqCst);
    let done = wait_flow(&e, &flow).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(
        e.fake.polls.load(Ordering::SeqCst) >= 2,
        "pending was polled, then the token"
    );

    // The Copilot token goes upstream; the store holds it sealed (and the GitHub token too).
    assert_eq!(ask(&e.gw, "copilot:mock-gpt").await, 200);
    let first = format!("tid=copilot-1;exp={}", START_MS / 1000 + 1800);
    assert_eq!(e.mock.stats.requests_with(&first), 1);
    let stored = e.state.pool().store().unwrap().list_credentials().await;
    let row = &stored.unwrap()[0];
    assert_eq!(row.kind, "oauth");
    assert!(
        row.secret.starts_with("sealed.v1.")
            && row.oauth.as_deref().unwrap().starts_with("sealed.v1.")
    );
    assert!(!format!("{row:?}").contains("gho_github_token_0123"));
    let listed = mgmt(&e.gw, reqwest::Method::GET, "/v0/management/auths/copilot").await;
    assert_eq!(listed["auths"][0]["type"], "oauth");
    assert!(!listed.to_string().contains("copilot-1"), "{listed}");
}

#[tokio::test]
async fn a_copilot_token_is_renewed_before_it_expires_and_a_failed_renewal_ends_as_needs_login() {
    let e = env().await;
    let id = logged_in(&e, "copilot").await["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not due yet: nothing happens. 25 minutes later (within the 10 min lead): renewed.
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!((s.credentials_checked, s.refreshed), (1, 0));
    e.clock.advance(Duration::from_secs(25 * 60));
    e.fake.now.fetch_add(25 * 60, Ordering::SeqCst);
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0));
    assert_eq!(ask(&e.gw, "copilot:mock-gpt").await, 200);
    let second = format!("tid=copilot-2;exp={}", START_MS / 1000 + 25 * 60 + 1800);
    assert_eq!(
        e.mock.stats.requests_with(&second),
        1,
        "the renewed token is used"
    );
    let status = refresh_status(&e.gw).await;
    assert_eq!(status["refreshed"], 1, "{status}");
    assert_eq!(status["credentials"][0]["id"], id.as_str());

    // GitHub revokes the token: the refresh fails, backs off, and once the Copilot token has
    // run out the credential needs a new login — logged, notified, shown.
    e.fake.refuse_refresh.store(true, Ordering::SeqCst);
    e.clock.advance(Duration::from_secs(25 * 60));
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!(s.failed, 1);
    let status = refresh_status(&e.gw).await;
    let record = &status["credentials"][0];
    let error = record["last_error"].as_str().unwrap();
    assert!(error.contains("HTTP 401"), "{record}");
    assert_eq!(record["needs_login"], false, "not expired yet");
    e.clock.advance(Duration::from_secs(10 * 60));
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!(s.failed, 1);
    let a = mgmt(&e.gw, reqwest::Method::GET, "/v0/management/auths/copilot").await;
    assert_eq!(a["auths"][0]["status"], "needs_login", "{a}");
    assert!(e.notes.events().iter().any(|ev| matches!(ev, OperatorEvent::CredentialNeedsLogin { credential, .. } if *credential == id)));
    assert_eq!(
        ask(&e.gw, "copilot:mock-gpt").await,
        429,
        "an expired token is never sent"
    );
}

/// Posts the start form of `login`, with the management key as the form field if given.
async fn start_with_key(gw: &Gateway, login: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = browser()
        .post(format!("{}/v0/oauth/{login}", gw.url))
        .header("origin", gw.url.clone());
    if let Some(k) = key {
        req = req.form(&[("management_key", k)]);
    }
    req.send().await.unwrap()
}

/// Security review, second pass FINDING 2b: through a reverse proxy on the gateway's host (nginx's
/// stock `proxy_pass`: a loopback peer, a loopback `Host`, no `X-Forwarded-For`), a remote caller
/// started a device login and added a credential of *their* provider account to the pool. Now
/// starting needs the management key (wrong ones count in the shared lockout), proxy headers
/// such as `X-Real-IP` mark a caller as remote, and a login's page — with the user code that
/// attaches an account — answers only the browser that started it.
#[tokio::test]
async fn through_a_same_host_proxy_nobody_adds_a_credential_without_the_management_key() {
    let e = env().await;
    // What nginx relays: the attacker's Origin matched to Host, X-Real-IP set (or not).
    let relayed = browser()
        .post(format!("{}/v0/oauth/copilot", e.gw.url))
        .header("origin", e.gw.url.clone())
        .header("x-real-ip", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), 403, "X-Real-IP marks a relayed caller");
    let bare = start_with_key(&e.gw, "copilot", None).await;
    assert_eq!(bare.status(), 401, "no key: no login");
    assert!(
        e.fake.seen_forms.lock().unwrap().is_empty(),
        "nothing started"
    );

    // A login the operator started: another browser can neither see its code nor follow it.
    let started = start_with_key(&e.gw, "copilot", Some(MGMT)).await;
    assert_eq!(started.status(), 303);
    let flow = started.headers()["location"].to_str().unwrap().to_owned();
    for cookie in [None, Some("pcl_device_flow=0123abcd")] {
        let mut req = browser().get(format!("{}{flow}?format=json", e.gw.url));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{cookie:?}");
        assert!(!r.text().await.unwrap().contains("WDJB-MJHT"));
    }

    // Wrong keys count in the lockout shared with the management API.
    for _ in 0..5 {
        let r = start_with_key(&e.gw, "copilot", Some("wrong-key-0123456789")).await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(
        start_with_key(&e.gw, "copilot", Some(MGMT)).await.status(),
        429
    );
    let r = client()
        .get(format!("{}/v0/management/auths", e.gw.url))
        .bearer_auth(MGMT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the management API shares the lockout");
}

/// Security review, first pass #13: a provider's `verification_uri` was rendered as a link
/// whatever its scheme, so a hostile RFC 8628 server could plant `javascript:` on the
/// gateway's own origin. Now such a value is shown as text.
#[tokio::test]
async fn a_hostile_provider_cannot_plant_a_script_link_on_the_gateway_page() {
    let e = env().await;
    *e.fake.link.lock().unwrap() = Some("javascript:alert(document.cookie)".to_owned());
    let started = start_with_key(&e.gw, "copilot", Some(MGMT)).await;
    assert_eq!(started.status(), 303);
    let flow = started.headers()["location"].to_str().unwrap().to_owned();
    let page = page_with_key(&e.gw, &flow).await.text().await.unwrap();
    assert!(page.contains("WDJB-MJHT"), "{page}");
    assert!(
        page.contains("<code>javascript:alert(document.cookie)</code>"),
        "{page}"
    );
    assert!(!page.contains("href=\"javascript:"), "{page}");
}

#[tokio::test]
async fn a_token_that_cannot_go_in_a_header_is_not_stored() {
    let e = env().await;
    *e.fake.token.lock().unwrap() = Some("tid=x\r\nx-injected: 1".to_owned());
    let (flow_id, _) = e.state.pool().start_login("copilot").await.unwrap();
    e.fake.approved.store(true, Ordering::SeqCst);
    let done = wait_flow(&e, &format!("/v0/oauth/copilot/flow/{flow_id}")).await;
    let text = done.to_string();
    assert!(
        done["status"] != "done" && text.contains("token is unusable"),
        "{text}"
    );
    let listed = mgmt(&e.gw, reqwest::Method::GET, "/v0/management/auths").await;
    assert!(!listed.to_string().contains("copilot login"), "{listed}");
}

#[tokio::test]
async fn kiro_login_registers_a_client_and_refreshes_with_rotating_refresh_tokens() {
    let e = env().await;
    let (flow_id, flow) = e.state.pool().start_login("kiro").await.unwrap();
    assert_eq!(flow.user_code, "KIRO-CODE");
    assert_eq!(
        flow.verification_uri_complete.as_deref(),
        Some("https://device.sso.example/?user_code=KIRO-CODE")
    );
    e.fake.approved.store(true, Ordering::SeqCst);
    let done = wait_flow(&e, &format!("/v0/oauth/kiro/flow/{flow_id}")).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(ask(&e.gw, "kiro:mock-gpt").await, 200);
    assert_eq!(e.mock.stats.requests_with("kiro-access-1"), 1);
    for n in 2..=3 {
        let v = mgmt(
            &e.gw,
            reqwest::Method::POST,
            "/v0/management/auths/kiro/refresh",
        )
        .await;
        assert_eq!(v["refreshed"], 1, "{v}");
        assert_eq!(ask(&e.gw, "kiro:mock-gpt").await, 200);
        assert_eq!(e.mock.stats.requests_with(&format!("kiro-access-{n}")), 1);
    }

    // Key rotation re-seals the refresh state too: with only the new key, the next refresh
    // still opens it.
    use portcullis::pool::Pool;
    let old = e.state.config().auth.encryption.key.clone().unwrap();
    let mut rotating = e.state.config().clone();
    rotating.auth.encryption.key =
        Some(Secret::new("ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A="));
    rotating.auth.encryption.previous_keys = vec![old];
    let backends = portcullis::upstream::Backends::from_config(&rotating.backends).unwrap();
    let store = e.state.pool().store().cloned();
    let clock: portcullis::clock::SharedClock = Arc::new(e.clock.clone());
    let settings = rotating.pool_settings();
    let p = Pool::new(settings, &backends, store.clone(), clock.clone()).unwrap();
    assert_eq!(p.reseal_store().await.unwrap(), 1);
    let mut new_only = rotating.clone();
    new_only.auth.encryption.previous_keys.clear();
    let p = Pool::new(new_only.pool_settings(), &backends, store, clock).unwrap();
    p.reload_store().await.unwrap();
    let s = p.refresh_due(Some("kiro")).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
}

#[tokio::test]
async fn logins_are_refused_where_they_must_be() {
    let e = env().await;
    let page = format!("{}/v0/oauth/copilot", e.gw.url);
    let port = e.gw.addr.port();
    let cases = [
        (
            page.clone(),
            ("x-forwarded-for", "203.0.113.5".to_owned()),
            403,
            "not a local caller",
        ),
        (
            page.clone(),
            ("x-real-ip", "203.0.113.5".to_owned()),
            403,
            "X-Real-IP: relayed by a proxy on this host",
        ),
        (
            page.clone(),
            ("via", "1.1 nginx".to_owned()),
            403,
            "Via: relayed by a proxy on this host",
        ),
        (
            page.clone(),
            ("host", "attacker.example:8080".to_owned()),
            403,
            "DNS rebinding: a foreign Host is refused",
        ),
        (
            page.clone(),
            ("host", format!("localhost:{port}")),
            200,
            "localhost is this machine",
        ),
        (
            format!("http://localhost:{port}/v0/oauth/copilot"),
            ("x-unrelated", "1".to_owned()),
            200,
            "reached by the name localhost",
        ),
    ];
    for (url, (name, value), status, why) in cases {
        let r = browser().get(url).header(name, value).send().await.unwrap();
        assert_eq!(r.status(), status, "{why}");
    }
    let r = browser()
        .get(format!("{}/v0/oauth/nope", e.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("copilot, kiro"));
    let r = page_with_key(&e.gw, "/v0/oauth/copilot/flow/unknown").await;
    assert_eq!(r.status(), 404);

    // Without a management key configured, the pages are off (the CLI still logs in).
    let e = env_with(|c| c.management.key = None).await;
    let r = browser()
        .get(format!("{}/v0/oauth/copilot", e.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("auths login"));
}

/// The oidc-provider device server (npm, installed by scripts/test), or `None` outside CI when
/// it is not installed.
struct OauthServer {
    child: std::process::Child,
    issuer: String,
}

impl Drop for OauthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oauth_server() -> Option<OauthServer> {
    use std::io::BufRead as _;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-server");
    if !dir.join("node_modules/oidc-provider").is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tests/oauth-server is not installed (scripts/test runs npm ci there)"
        );
        eprintln!("skipped: tests/oauth-server/node_modules missing (run scripts/test)");
        return None;
    }
    let mut child = std::process::Command::new("node")
        .arg(dir.join("device-server.mjs"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node runs");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep draining, so a later write never hits a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let v: Value = serde_json::from_str(&line).expect("the server prints its issuer");
    Some(OauthServer {
        child,
        issuer: v["issuer"].as_str().unwrap().to_owned(),
    })
}

/// What a person does in a browser: open the verification link, confirm the code (the server's
/// own forms, with their anti-forgery field), pass its login and consent, reach "success".
async fn approve_in_browser(start: &str) {
    let b = crate::idp::Browser::default();
    let mut url = start.to_owned();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..15 {
        let r = match &form {
            None => b.get(&url).await,
            Some(f) => {
                let pairs: Vec<(&str, &str)> =
                    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                b.post_form(&url, &pairs).await
            }
        };
        if r.status().is_redirection() {
            let base = url.split('/').take(3).collect::<Vec<_>>().join("/");
            url = crate::idp::location(&r, &base);
            form = None;
            continue;
        }
        let body = r.text().await.unwrap();
        if body.contains("Sign-in Success") {
            return;
        }
        let action = body
            .split("<form")
            .nth(1)
            .and_then(|f| f.split("action=\"").nth(1))
            .and_then(|a| a.split('"').next())
            .unwrap_or_else(|| panic!("no form on {url}: {body}"))
            .to_owned();
        let mut fields: Vec<(String, String)> = body
            .split("<input type=\"hidden\" name=\"")
            .skip(1)
            .filter_map(|s| {
                let (name, rest) = s.split_once('"')?;
                let value = rest.split("value=\"").nth(1)?.split('"').next()?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect();
        if body.contains("op.deviceConfirmForm") && !fields.iter().any(|(k, _)| k == "confirm") {
            fields.push(("confirm".to_owned(), "yes".to_owned()));
        }
        url = action;
        form = Some(fields);
    }
    panic!("the device login did not reach success");
}

#[tokio::test]
async fn generic_device_flow_and_refresh_against_a_real_authorization_server() {
    let Some(server) = oauth_server() else { return };
    let iss = server.issuer.clone();
    let e = env_with(|c| {
        let mock_url = c.backends["copilot"].base_url.clone();
        c.backends.insert(
            "corp".to_owned(),
            backend(BackendKind::Openai, mock_url.unwrap(), None),
        );
        c.auth.device_login.insert(
            "corp".to_owned(),
            DeviceLoginConfig {
                kind: Some(portcullis::config::DeviceLoginKind::Generic),
                client_id: Some("portcullis-test".to_owned()),
                scope: Some("openid offline_access api".to_owned()),
                device_authorization_url: Some(format!("{iss}/device/auth")),
                token_url: Some(format!("{iss}/token")),
                ..Default::default()
            },
        );
    })
    .await;
    let (flow_id, flow) = e.state.pool().start_login("corp").await.unwrap();
    assert!(flow.verification_uri.starts_with(&iss));
    approve_in_browser(flow.verification_uri_complete.as_deref().unwrap()).await;
    let done = wait_flow(&e, &format!("/v0/oauth/corp/flow/{flow_id}")).await;
    assert_eq!(done["status"], "done", "{done}");

    let bearer = || {
        e.mock
            .stats
            .last_request()
            .unwrap()
            .header("authorization")
            .unwrap()
            .to_owned()
    };
    assert_eq!(ask(&e.gw, "corp:mock-gpt").await, 200);
    let first = bearer();
    assert!(first.len() > "Bearer ".len() + 20, "{first}");

    // The access token lives 120 s: within the 10 min lead, so the worker renews it with the
    // refresh token the server issued.
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!((s.refreshed, s.failed), (1, 0), "{s:?}");
    assert_eq!(ask(&e.gw, "corp:mock-gpt").await, 200);
    let second = bearer();
    assert_ne!(first, second, "the renewed token is used");
    let again = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!(again.refreshed, 1, "the rotated refresh token works too");

    // The authorization server goes away: the failure is recorded, then the token runs out.
    drop(server);
    e.clock.advance(Duration::from_secs(150));
    let s = e.state.pool().refresh_due(None).await.unwrap();
    assert_eq!(s.failed, 1);
    let status = refresh_status(&e.gw).await;
    let rec = &status["credentials"][0];
    assert_eq!(rec["needs_login"], true, "{status}");
    assert!(
        rec["last_error"].as_str().unwrap().contains("cannot reach"),
        "{status}"
    );
    assert_eq!(ask(&e.gw, "corp:mock-gpt").await, 429);
}
