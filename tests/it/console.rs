//! The admin console (`/admin`) end to end, in-process with a SQLite store and a test clock:
//! sign-in (wrong password, non-admin, the lockout shared with the token endpoint), every page
//! with seeded data (names escaped, no secret), the forms changing the store, the anti-forgery
//! field and the cross-site guard, session expiry and sign-out, the security headers, and the
//! console switched off.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::state::AppState;
use portcullis::store::{SqlStore, Store, VirtualKeyRecord};
use reqwest::header::HeaderMap;

use crate::harness::*;

const PASSWORD: &str = "correct horse battery staple";
const EVIL: &str = "<script>alert(1)</script>";
const START_MS: u64 = 1_800_000_000_000;

struct Setup {
    _mock: Mock,
    gw: Gateway,
    state: AppState,
    store: Arc<dyn Store>,
    clock: ManualClock,
    alice: String,
    _dir: tempfile::TempDir,
}

async fn setup_with(enabled: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let hash = portcullis::identity::agent_token::hash_secret(PASSWORD).unwrap();
    let alice = store
        .upsert_user("local", "alice", Some("alice@example.com"), Some(EVIL), 0)
        .await
        .unwrap();
    store.set_password(&alice.id, &hash, 0).await.unwrap();
    let bob = store
        .upsert_user("local", "bob", None, None, 0)
        .await
        .unwrap();
    store.set_password(&bob.id, &hash, 0).await.unwrap();
    let mut device = token_record("abcdefghijkl", &alice.id, "x", 1000);
    device.name = EVIL.into();
    store.insert_token(&device).await.unwrap();
    store
        .insert_key(&VirtualKeyRecord {
            id: "vkeyabcdefgh".into(),
            name: "<b>ci</b>".into(),
            owner: Some(alice.id.clone()),
            secret_hash: "ab".repeat(32),
            rules: serde_json::from_value(serde_json::json!({"rpm": 60})).unwrap(),
            created_at: 1000,
            updated_at: 1000,
            expires_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    config.admin.console.enabled = enabled;
    config.admin.console.admins = vec!["alice".into()];
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let (state, gw) = start_gateway_on_store(config, &clock, store.clone()).await;
    state.pool().reload_store().await.unwrap();
    Setup {
        _mock: mock,
        gw,
        state,
        store,
        clock,
        alice: alice.id,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(true).await
}

/// A browser: no redirects followed, the console cookie kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            if let Some(v) = c.strip_prefix("portcullis_admin=") {
                let v = v.split(';').next().unwrap();
                self.cookie = (!v.is_empty()).then(|| v.to_owned());
            }
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("portcullis_admin={c}"));
        }
        req.send().await.unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    }

    /// Posts `form` as the console's own page would (`Sec-Fetch-Site: same-origin` and, as
    /// `Referrer-Policy: no-referrer` makes browsers send, `Origin: null`), plus `extra` headers.
    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .header("origin", "null");
        if !extra.iter().any(|(k, _)| *k == "sec-fetch-site") {
            req = req.header("sec-fetch-site", "same-origin");
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("portcullis_admin={c}"));
        }
        let r = req.send().await.unwrap();
        self.keep_cookie(&r);
        r
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_with(path, form, &[]).await
    }

    async fn sign_in(&mut self, user: &str, password: &str) -> reqwest::Response {
        self.post(
            "/admin/login",
            &[("username", user), ("password", password)],
        )
        .await
    }

    /// The anti-forgery field of the signed-in session, read from a page.
    async fn csrf(&self) -> String {
        let body = self.page("/admin/devices").await;
        between(&body, "name=\"csrf\" value=\"", "\"").to_owned()
    }
}

/// `text` as askama escapes it.
fn html(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
}

fn location(r: &reqwest::Response) -> &str {
    r.headers()["location"].to_str().unwrap()
}

fn assert_secure_headers(h: &HeaderMap) {
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(!csp.contains("script-src"), "the console runs no script");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
}

#[tokio::test]
async fn sign_in_takes_an_admins_password_in_the_shared_lockout() {
    let s = setup().await;
    let mut b = Browser::new(&s.gw.url);
    let r = b.get("/admin/devices").await;
    assert_eq!(r.status(), 303, "no session: to the sign-in page");
    assert_eq!(location(&r), "/admin/login");
    let r = b.get("/admin/login").await;
    assert_eq!(r.status(), 200);
    assert_secure_headers(r.headers());
    assert!(r.text().await.unwrap().contains("name=\"password\""));

    let r = b.sign_in("alice", "wrong password").await;
    assert_eq!(r.status(), 401);
    assert_secure_headers(r.headers());
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Wrong username or password")
    );
    assert!(b.cookie.is_none());
    let r = b.sign_in("bob", PASSWORD).await;
    assert_eq!(
        r.status(),
        403,
        "bob's password is right but he is not an admin"
    );
    assert!(b.cookie.is_none());

    let r = b.sign_in("alice", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Secure"), "the public URL is http");
    assert!(b.cookie.is_some());
    assert_eq!(location(&b.get("/admin").await), "/admin/devices");

    // The wrong password above counts for the address: four more block it, in the console and
    // at the token endpoint alike.
    let mut other = Browser::new(&s.gw.url);
    for _ in 0..4 {
        other.sign_in("alice", "still wrong").await;
    }
    let r = other.sign_in("alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let r = client()
        .post(format!("{}/oauth/token", s.gw.url))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the token endpoint shares the lockout");
}

#[tokio::test]
async fn every_page_renders_the_seeded_data_escaped_and_without_secrets() {
    let s = setup().await;
    let kid = s.state.oauth().unwrap().rotate().await.unwrap();
    let mut b = Browser::new(&s.gw.url);
    assert_eq!(b.sign_in("alice", PASSWORD).await.status(), 303);

    let devices = b.page("/admin/devices").await;
    assert!(devices.contains(&html(EVIL)), "{devices}");
    assert!(!devices.contains(EVIL), "a device name is never markup");
    assert!(devices.contains("sk-pcl-abcdefghijkl") || devices.contains("abcdefghijkl"));
    assert!(devices.contains("alice@example.com"), "the owner");
    // The signed-in user's display name is escaped in the bar too.
    assert!(devices.contains(&html(&format!("{EVIL} <alice@example.com>"))));

    let users = b.page("/admin/users").await;
    assert!(users.contains("bob") && users.contains("alice@example.com"));
    assert!(!users.contains(EVIL));
    assert_eq!(users.matches("status admin").count(), 1, "alice only");

    let creds = b.page("/admin/credentials").await;
    for secret in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
        assert!(!creds.contains(secret), "no secret on the page");
    }
    for provider in ["openai", "anthropic", "gemini"] {
        assert!(creds.contains(&format!("<option>{provider}</option>")));
    }
    assert!(creds.contains("/ no limit"));

    let keys = b.page("/admin/keys").await;
    assert!(keys.contains(&html("<b>ci</b>")) && !keys.contains("<b>ci</b>"));
    assert!(keys.contains("rpm=60"));

    let signing = b.page("/admin/signing-keys").await;
    assert!(signing.contains(&kid) && signing.contains("signing"));

    let r = b.get("/admin/no/such/page").await;
    assert_eq!(r.status(), 404);
    assert_secure_headers(r.headers());
    assert!(r.text().await.unwrap().contains("No such page"));

    let r = b.get("/admin/style.css").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_secure_headers(r.headers());
}

#[tokio::test]
async fn forms_change_the_store() {
    let s = setup().await;
    let mut b = Browser::new(&s.gw.url);
    b.sign_in("alice", PASSWORD).await;
    let csrf = b.csrf().await;

    let r = b
        .post(
            "/admin/devices/rename",
            &[
                ("csrf", &csrf),
                ("id", "sk-pcl-abcdefghijkl"),
                ("name", "work laptop"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/devices?done=renamed");
    let t = s.store.get_token("abcdefghijkl").await.unwrap().unwrap();
    assert_eq!(t.name, "work laptop");
    assert!(b.page(location(&r)).await.contains("Device renamed."));
    let r = b
        .post(
            "/admin/devices/rename",
            &[("csrf", &csrf), ("id", "abcdefghijkl"), ("name", "  ")],
        )
        .await;
    assert_eq!(r.status(), 400, "an empty name is refused as by the API");

    let r = b
        .post(
            "/admin/devices/revoke",
            &[("csrf", &csrf), ("id", "abcdefghijkl")],
        )
        .await;
    assert_eq!(location(&r), "/admin/devices?done=revoked");
    let t = s.store.get_token("abcdefghijkl").await.unwrap().unwrap();
    assert_eq!(t.revoked_at, Some(START_MS as i64));
    let page = b.page("/admin/devices").await;
    assert!(page.contains("status revoked") && !page.contains("/admin/devices/revoke"));

    let r = b
        .post(
            "/admin/credentials/add",
            &[
                ("csrf", &csrf),
                ("provider", "openai"),
                ("type", "api_key"),
                ("token", "sk-console-added-0123456789abcdef"),
                ("label", "<i>team</i>"),
                ("priority", "5"),
                ("quota", "1000"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/credentials?done=added");
    let added = s
        .state
        .pool()
        .status(Some("openai"))
        .unwrap()
        .into_iter()
        .find(|c| c.label.as_deref() == Some("<i>team</i>"))
        .expect("the new credential is in the pool");
    assert_eq!((added.priority, added.quota.limit), (5, Some(1000)));
    assert_eq!(added.source, "api");
    let page = b.page("/admin/credentials").await;
    assert!(!page.contains("sk-console-added-0123456789abcdef"));
    assert!(page.contains(&added.hint) && page.contains(&html("<i>team</i>")));
    assert!(page.contains("0 / 1000"));
    let r = b
        .post(
            "/admin/credentials/add",
            &[
                ("csrf", &csrf),
                ("provider", "openai"),
                ("token", "sk-x"),
                ("quota", "many"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);

    let r = b
        .post(
            "/admin/credentials/refresh",
            &[("csrf", &csrf), ("provider", "openai"), ("id", &added.id)],
        )
        .await;
    assert_eq!(location(&r), "/admin/credentials?done=refreshed");
    let r = b
        .post(
            "/admin/credentials/remove",
            &[("csrf", &csrf), ("provider", "openai"), ("id", &added.id)],
        )
        .await;
    assert_eq!(location(&r), "/admin/credentials?done=removed");
    let ids: Vec<String> = s
        .state
        .pool()
        .status(Some("openai"))
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert!(!ids.contains(&added.id), "{ids:?}");
    let r = b
        .post(
            "/admin/credentials/remove",
            &[("csrf", &csrf), ("provider", "openai"), ("id", &ids[0])],
        )
        .await;
    assert_eq!(
        r.status(),
        409,
        "a configured credential is changed in the configuration"
    );

    let r = b
        .post(
            "/admin/keys/revoke",
            &[("csrf", &csrf), ("id", "vkeyabcdefgh")],
        )
        .await;
    assert_eq!(location(&r), "/admin/keys?done=key-revoked");
    let k = s.store.get_key("vkeyabcdefgh").await.unwrap().unwrap();
    assert!(k.revoked_at.is_some());
    let r = b
        .post(
            "/admin/keys/revoke",
            &[("csrf", &csrf), ("id", "nosuchkey")],
        )
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn forms_need_the_sessions_field_and_the_consoles_own_origin() {
    let s = setup().await;
    let mut b = Browser::new(&s.gw.url);
    b.sign_in("alice", PASSWORD).await;
    let csrf = b.csrf().await;
    let cases: [(Option<&str>, &str, &str); 4] = [
        (None, "same-origin", "no anti-forgery field"),
        (
            Some("0123456789abcdef0123456789abcdef"),
            "same-origin",
            "a wrong field",
        ),
        (Some(&csrf), "cross-site", "another site"),
        (Some(&csrf), "same-site", "a sibling site"),
    ];
    for (field, site, why) in cases {
        let mut form = vec![("id", "abcdefghijkl")];
        form.extend(field.map(|f| ("csrf", f)));
        let r = b
            .post_with("/admin/devices/revoke", &form, &[("sec-fetch-site", site)])
            .await;
        assert_eq!(r.status(), 403, "{why}");
        assert_secure_headers(r.headers());
    }
    // A browser without Sec-Fetch-Site: its Origin decides.
    let r = b
        .http
        .post(format!("{}/admin/devices/revoke", s.gw.url))
        .form(&[("csrf", csrf.as_str()), ("id", "abcdefghijkl")])
        .header("origin", "https://evil.example")
        .header(
            "cookie",
            format!("portcullis_admin={}", b.cookie.as_deref().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a cross-origin post");
    let t = s.store.get_token("abcdefghijkl").await.unwrap().unwrap();
    assert!(t.revoked_at.is_none(), "nothing refused changed the store");

    // The session's own field from the console's origin works.
    let r = b
        .post(
            "/admin/devices/revoke",
            &[("csrf", &csrf), ("id", "abcdefghijkl")],
        )
        .await;
    assert_eq!(r.status(), 303);
    // Another session's field is not this one's.
    let mut other = Browser::new(&s.gw.url);
    other.sign_in("alice", PASSWORD).await;
    assert_ne!(other.csrf().await, csrf);
    // Without a session a form leads to the sign-in page.
    let mut anon = Browser::new(&s.gw.url);
    let r = anon
        .post(
            "/admin/keys/revoke",
            &[("csrf", &csrf), ("id", "vkeyabcdefgh")],
        )
        .await;
    assert_eq!(location(&r), "/admin/login");
    assert!(
        s.store
            .get_key("vkeyabcdefgh")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

#[tokio::test]
async fn sessions_expire_end_at_sign_out_and_follow_the_user() {
    let s = setup().await;
    let mut b = Browser::new(&s.gw.url);
    b.sign_in("alice", PASSWORD).await;
    b.page("/admin/devices").await;
    s.clock.advance(Duration::from_secs(8 * 3600 - 1));
    b.page("/admin/devices").await;
    s.clock.advance(Duration::from_secs(2));
    let r = b.get("/admin/devices").await;
    assert_eq!(location(&r), "/admin/login", "past session_lifetime");

    b.sign_in("alice", PASSWORD).await;
    let stale = b.cookie.clone();
    let csrf = b.csrf().await;
    let r = b.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(location(&r), "/admin/login");
    assert!(b.cookie.is_none(), "the cookie is cleared");
    b.cookie = stale;
    assert_eq!(
        location(&b.get("/admin/devices").await),
        "/admin/login",
        "and the session ended"
    );

    b.sign_in("alice", PASSWORD).await;
    b.page("/admin/users").await;
    s.store.set_user_disabled(&s.alice, true).await.unwrap();
    assert_eq!(
        location(&b.get("/admin/users").await),
        "/admin/login",
        "a disabled admin's session stops working"
    );
}

#[tokio::test]
async fn the_console_is_off_unless_enabled() {
    let s = setup_with(false).await;
    let mut b = Browser::new(&s.gw.url);
    let r = b.get("/admin/login").await;
    assert_eq!(r.status(), 404);
    assert_secure_headers(r.headers());
    assert_eq!(b.sign_in("alice", PASSWORD).await.status(), 404);
    // The SSO hand-over belongs to the SSO pages, which are off too.
    let r = b.post("/auth/admin", &[]).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_activity_page_charts_the_last_hour_and_lists_events_escaped() {
    use portcullis::notify::OperatorEvent;
    use portcullis::telemetry::RequestSample;
    let s = setup().await;
    let sample = |model, status| RequestSample {
        route: "chat_completions",
        protocol: "openai",
        backend: Some("openai"),
        model: Some(model),
        status,
        latency: Duration::from_millis(40),
        ttfb: Duration::from_millis(10),
        input_tokens: 12,
        output_tokens: 30,
        cached_tokens: 0,
        stream_error: None,
    };
    for _ in 0..3 {
        s.state.telemetry().request(&sample(EVIL, 200));
    }
    s.state.telemetry().request(&sample("gpt-4o", 502));
    s.state.notify(OperatorEvent::QuotaExhausted {
        credential: "cred-1".into(),
        provider: EVIL.into(),
        resets_at: None,
    });
    let mut b = Browser::new(&s.gw.url);
    assert_eq!(b.sign_in("alice", PASSWORD).await.status(), 303);
    let r = b.get("/admin/activity").await;
    assert_eq!(r.status(), 200);
    assert_secure_headers(r.headers());
    let page = r.text().await.unwrap();
    assert!(
        !page.contains(EVIL),
        "a model or event text is never markup"
    );
    assert!(page.contains(&html(&format!("openai:{EVIL}"))), "{page}");
    assert_eq!(
        page.matches("<polyline").count(),
        3 * 2,
        "two series in three charts"
    );
    assert!(
        page.contains("<td>3</td><td>0</td><td>40.0 ms</td><td>36</td><td>90</td>"),
        "{page}"
    );
    assert!(
        page.contains("<td>1</td><td>1</td>"),
        "the 502 counts as an error"
    );
    assert!(page.contains("quota_exhausted") && page.contains(&html(EVIL)));
    assert!(!page.contains("<script"), "no script");
}
