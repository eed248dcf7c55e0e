//! Identity-provider edge cases against the scriptable fake ([`crate::fake_idp`]): the picker
//! with two providers, GitHub (code exchange, user and email API), PKCE checked by the provider,
//! and every kind of lying ID token refused before any user, confirmation or token exists; wrong
//! confirmation codes lock the address.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::{Clock, ManualClock};
use portcullis::config::SsoProviderKind;
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::store::Store;

use crate::fake_idp::{FakeIdp, Lie};
use crate::harness::*;
use crate::idp::{Browser, first_url, location};
use crate::sso_gateway::{START, SsoGateway, last_code, start_sso_gateway};

struct Setup {
    url: String,
    idp: FakeIdp,
    store: Arc<dyn Store>,
    recorder: Arc<RecordingNotifier>,
    clock: ManualClock,
    _gw: (Mock, tokio::sync::oneshot::Sender<()>),
    _home: crate::store::StoreHome,
}

/// A provider the gateway knows as `gw-client`, with `secret`.
fn provider(kind: SsoProviderKind, secret: &str) -> portcullis::config::SsoProviderConfig {
    crate::sso_gateway::provider(kind, "gw-client", secret)
}

/// A gateway with two providers on the fake: `fake` (OIDC) and `gh` (GitHub).
async fn setup() -> Setup {
    let idp = FakeIdp::start().await;
    let (store, home) = crate::store::test_store(false).await.unwrap();
    let mut fake = provider(SsoProviderKind::Oidc, "client-secret");
    fake.issuer = Some(idp.url.clone());
    fake.display_name = Some("Fake OIDC".into());
    let mut gh = provider(SsoProviderKind::Github, "gh-secret");
    gh.authorize_url = Some(format!("{}/login/oauth/authorize", idp.url));
    gh.token_url = Some(format!("{}/login/oauth/access_token", idp.url));
    gh.api_url = Some(format!("{}/api", idp.url));
    gh.display_name = Some("GitHub".into());
    let SsoGateway {
        mock,
        url,
        recorder,
        stop,
        clock,
    } = start_sso_gateway(store.clone(), [("fake", fake), ("gh", gh)], |_| {}).await;
    Setup {
        url,
        idp,
        store,
        recorder,
        clock,
        _gw: (mock, stop),
        _home: home,
    }
}

impl Setup {
    async fn link(&self) -> String {
        let v: serde_json::Value = post_for_json(
            &format!("{}/v1/chat/completions", self.url),
            chat("gpt-4o", false),
        )
        .await;
        first_url(v["choices"][0]["message"]["content"].as_str().unwrap())
    }

    /// A fresh login link's choice of `provider` on the picker, in browser `b`.
    async fn choose(&self, b: &Browser, provider: &str) -> reqwest::Response {
        let link = self.link().await;
        let t = link.split("t=").nth(1).unwrap();
        let choice = format!("{}/auth/login/{provider}", self.url);
        b.post_form(&choice, &[("t", t)]).await
    }

    /// Picker → provider → callback; returns the callback's response.
    async fn login_with(&self, b: &Browser, provider: &str) -> reqwest::Response {
        let r = self.choose(b, provider).await;
        assert_eq!(r.status(), 303);
        let authorize = location(&r, &self.url);
        assert!(authorize.starts_with(&self.idp.url), "{authorize}");
        let r = b.get(&authorize).await;
        b.get(&location(&r, &self.url)).await
    }

    fn confirmations(&self) -> usize {
        self.recorder
            .events()
            .iter()
            .filter(|e| matches!(e, OperatorEvent::LoginAwaitingConfirmation { .. }))
            .count()
    }
}

#[tokio::test]
async fn two_providers_get_a_picker_and_github_logs_in() {
    let s = setup().await;
    let link = s.link().await;
    let picker = Browser::default().get(&link).await;
    assert_eq!(picker.status(), 200);
    let html = picker.text().await.unwrap();
    assert!(
        html.contains("action=\"/auth/login/fake\"") && html.contains("action=\"/auth/login/gh\""),
        "{html}"
    );
    assert!(html.contains("Continue with GitHub") && html.contains("Continue with Fake OIDC"));
    // Viewing the picker did not use the link up.
    let b = Browser::default();
    let r = s.login_with(&b, "gh").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let code = match s.recorder.events().last() {
        Some(OperatorEvent::LoginAwaitingConfirmation { code, user, .. }) => {
            assert!(user.contains("octocat@github.example"), "{user}");
            code.expose().to_owned()
        }
        other => panic!("no confirmation: {other:?}"),
    };
    let r = b
        .post_form(&format!("{}/auth/confirm", s.url), &[("code", &code)])
        .await;
    assert_eq!(r.status(), 200);
    let users = s.store.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (
            users[0].provider.as_str(),
            users[0].subject.as_str(),
            users[0].email.as_deref()
        ),
        ("gh", "583231", Some("octocat@github.example")),
        "the primary verified email"
    );
    assert_eq!(s.store.list_tokens(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn lying_id_tokens_are_refused() {
    let s = setup().await;
    for lie in [
        Lie::WrongAudience,
        Lie::WrongIssuer,
        Lie::Expired,
        Lie::WrongNonce,
        Lie::Hs256,
        Lie::AlgNone,
        Lie::UnknownKid,
    ] {
        s.idp.lie(lie);
        let r = s.login_with(&Browser::default(), "fake").await;
        assert_eq!(r.status(), 502, "{lie:?} must be refused");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("could not verify the login")
        );
    }
    assert_eq!(s.confirmations(), 0);
    assert!(
        s.store.list_users().await.unwrap().is_empty(),
        "no user recorded"
    );
    // The honest token passes (and the provider checked the PKCE verifier to issue it).
    s.idp.lie(Lie::None);
    let b = Browser::default();
    let r = s.choose(&b, "fake").await;
    let r = b.get(&location(&r, &s.url)).await;
    let callback = location(&r, &s.url);
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 303);
    assert_eq!(s.confirmations(), 1);
    let users = s.store.list_users().await.unwrap();
    assert_eq!(users[0].email.as_deref(), Some("bob@example.org"));
    // Replaying the callback: the state was single-use, and the provider is not asked again.
    let asked = s.idp.token_requests();
    assert_eq!(Browser::default().get(&callback).await.status(), 400);
    assert_eq!(s.idp.token_requests(), asked);
    // Discovery and JWKS are cached, not fetched per login.
    assert!(s.idp.jwks_requests() <= 2, "{}", s.idp.jwks_requests());
}

#[tokio::test]
async fn a_provider_error_on_the_callback_is_a_clear_page() {
    let s = setup().await;
    let b = Browser::default();
    let r = s.choose(&b, "fake").await;
    let authorize = location(&r, &s.url);
    let state = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let r = b
        .get(&format!(
            "{}/auth/callback?error=access_denied&state={state}",
            s.url
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("did not log you in"));
    // An unknown provider name.
    let r = b
        .post_form(&format!("{}/auth/login/nope", s.url), &[])
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_callback_url_only_works_in_the_browser_that_started_the_login() {
    let s = setup().await;
    let victim = Browser::default();
    let attacker = Browser::default();
    let r = s.choose(&attacker, "fake").await;
    assert!(attacker.has_cookie("portcullis_login"));
    let r = attacker.get(&location(&r, &s.url)).await;
    let callback = location(&r, &s.url);
    // The attacker sends the callback URL to someone else: refused, and used up.
    let r = victim.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("another browser"));
    assert_eq!(attacker.get(&callback).await.status(), 400);
    assert_eq!(s.confirmations(), 0);
    assert!(s.store.list_users().await.unwrap().is_empty());
}

/// The page's Content-Security-Policy: no inline handler or foreign script runs, forms post to
/// the gateway (the picker's also to the provider they redirect to).
fn assert_csp(r: &reqwest::Response, form_action: &str) {
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {}", r.url()))
        .to_str()
        .unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-")
            && csp.contains(&format!("; form-action {form_action};"))
            && csp.contains("frame-ancestors 'none'")
            && csp.contains("base-uri 'none'")
            && !csp.contains("unsafe-inline'; script"),
        "{} {csp}",
        r.url()
    );
}

#[tokio::test]
async fn sso_forms_from_another_origin_are_refused_and_every_page_has_a_csp() {
    // Issue 14: /auth/confirm and /auth/logout took cross-origin POSTs (SameSite=Lax lets
    // another port of the same host post them); no page had a CSP.
    let s = setup().await;
    let b = Browser::default();
    let link = s.link().await;
    let picker = b.get(&link).await;
    assert_csp(&picker, "'self' https: http:");
    let html = picker.text().await.unwrap();
    assert!(!html.contains(" onclick=") && !html.contains(" onsubmit="));
    let bad_link = b.get(&format!("{}/auth/login?t=forged", s.url)).await;
    assert_csp(&bad_link, "'self'");

    // A cross-origin start is refused before the link is used.
    let t = link.split("t=").nth(1).unwrap().to_owned();
    let r = b
        .post_form_with(
            &format!("{}/auth/login/gh", s.url),
            &[("t", &t)],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = s.login_with(&b, "gh").await;
    assert_eq!(r.status(), 303);
    let page = b.get(&format!("{}/auth/confirm", s.url)).await;
    assert_eq!(page.status(), 200);
    assert_csp(&page, "'self'");
    let code = last_code(&s.recorder);
    let confirm = format!("{}/auth/confirm", s.url);
    let other_port = s.url.rsplit_once(':').unwrap().0.to_owned() + ":1";
    for from in [
        [("origin", "http://evil.example")],
        [("origin", other_port.as_str())],
        [("origin", "null")],
        [("referer", "http://evil.example/page")],
    ] {
        let r = b.post_form_with(&confirm, &[("code", &code)], &from).await;
        assert_eq!(r.status(), 403, "{from:?}");
        assert_csp(&r, "'self'");
    }
    assert!(s.store.list_tokens(None).await.unwrap().is_empty());
    // The same origin (as the public URL, or as the Host) works; the attempts were not used.
    let done = b
        .post_form_with(&confirm, &[("code", &code)], &[("origin", &s.url)])
        .await;
    assert_eq!(done.status(), 200);
    assert_csp(&done, "'self'");
    let success = done.text().await.unwrap();
    assert!(success.contains("data-copy=\"agent-token\"") && !success.contains("onclick"));
    let devices = b.get(&format!("{}/auth/devices", s.url)).await;
    assert_csp(&devices, "'self'");
    assert!(devices.text().await.unwrap().contains("data-confirm="));

    let logout = format!("{}/auth/logout", s.url);
    let r = b
        .post_form_with(&logout, &[], &[("origin", other_port.as_str())])
        .await;
    assert_eq!(r.status(), 403);
    let still = b.get(&format!("{}/auth/devices", s.url)).await;
    assert!(
        still.text().await.unwrap().contains("Your devices"),
        "still logged in"
    );
    let host = s.url.trim_start_matches("http://").to_owned();
    let r = b
        .post_form_with(&logout, &[], &[("origin", &s.url), ("host", &host)])
        .await;
    assert_eq!(r.status(), 200);
    assert_csp(&r, "'self'");
    let after = b.get(&format!("{}/auth/devices", s.url)).await;
    assert_csp(&after, "'self'");
    assert!(
        after
            .text()
            .await
            .unwrap()
            .contains("Log in to see your devices")
    );
    // The device-login pages share the page headers.
    let device = b.get(&format!("{}/v0/oauth/nope", s.url)).await;
    assert_csp(&device, "'self'");
}

/// The key set and the discovery document expire by the gateway's clock, and so does the bound
/// on refetches an unknown `kid` may cause: moving a `ManualClock` is enough, nothing waits.
#[tokio::test]
async fn the_key_set_and_discovery_caches_expire_by_the_gateway_clock() {
    let idp = FakeIdp::start().await;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START));
    let now_s = clock.now_millis() / 1000;
    let jwks = portcullis::identity::jwks::RemoteJwks::new(
        format!("{}/jwks", idp.url),
        client(),
        Arc::new(clock.clone()),
    );
    let claims = serde_json::json!({"sub": "alice", "exp": now_s + 3 * 3600});
    let decode = |kid: &str| {
        let token = idp.sign(&claims, kid);
        let jwks = &jwks;
        async move {
            jwks.decode::<serde_json::Value>(&token, |alg| {
                let mut v = jsonwebtoken::Validation::new(alg);
                v.validate_exp = false;
                v.required_spec_claims.clear();
                v
            })
            .await
        }
    };
    assert!(decode("k1").await.is_ok());
    assert!(decode("k1").await.is_ok());
    assert_eq!(idp.jwks_requests(), 1, "cached");
    assert!(decode("k2").await.is_err());
    assert_eq!(
        idp.jwks_requests(),
        1,
        "an unknown kid refetches at most every 10 s"
    );
    clock.advance(Duration::from_secs(10));
    assert!(decode("k2").await.is_err());
    assert_eq!(idp.jwks_requests(), 2, "10 s later it may refetch");
    clock.advance(Duration::from_secs(3599));
    assert!(decode("k1").await.is_ok());
    assert_eq!(idp.jwks_requests(), 2, "still fresh");
    clock.advance(Duration::from_secs(1));
    assert!(decode("k1").await.is_ok());
    assert_eq!(
        idp.jwks_requests(),
        3,
        "an hour after the last fetch it is fetched again"
    );

    let mut config = provider(SsoProviderKind::Oidc, "client-secret");
    config.issuer = Some(idp.url.clone());
    let oidc = portcullis::sso::provider::Provider::new(
        "fake",
        &config,
        client(),
        Arc::new(clock.clone()),
    );
    let authorize = || oidc.authorization_url("http://gw/auth/callback", "s", "n", "c");
    assert!(authorize().await.is_ok());
    assert!(authorize().await.is_ok());
    assert_eq!(idp.discovery_requests(), 1, "cached");
    clock.advance(Duration::from_secs(3599));
    assert!(authorize().await.is_ok());
    assert_eq!(idp.discovery_requests(), 1, "still fresh");
    clock.advance(Duration::from_secs(1));
    assert!(authorize().await.is_ok());
    assert_eq!(
        idp.discovery_requests(),
        2,
        "an hour later it is fetched again"
    );
}

/// Wrong confirmation codes count toward the address's lockout (the one client keys use), across
/// logins: with the default five, the fifth wrong code blocks the address, and while it is
/// blocked even the right code is refused, with `Retry-After`; once the block is over, the
/// login's last attempt still works.
#[tokio::test]
async fn wrong_confirmation_codes_lock_the_address() {
    let s = setup().await;
    let confirm = format!("{}/auth/confirm", s.url);
    let wrong = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_owned();
    // A first login: its three attempts spent on wrong codes (the third abandons it).
    let first = Browser::default();
    assert_eq!(s.login_with(&first, "fake").await.status(), 303);
    let bad = wrong(&last_code(&s.recorder));
    for status in [400, 400, 403] {
        let r = first.post_form(&confirm, &[("code", &bad)]).await;
        assert_eq!(r.status(), status);
    }
    // A second login: two more wrong codes make five, which blocks the address.
    let second = Browser::default();
    assert_eq!(s.login_with(&second, "fake").await.status(), 303);
    let code = last_code(&s.recorder);
    for _ in 0..2 {
        let r = second.post_form(&confirm, &[("code", &wrong(&code))]).await;
        assert_eq!(r.status(), 400);
    }
    let r = second.post_form(&confirm, &[("code", &code)]).await;
    assert_eq!(r.status(), 429, "blocked: even the right code is refused");
    let secs: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&secs), "the first block is 30 s: {secs}");
    assert!(s.recorder.events().iter().any(|e| matches!(
        e,
        OperatorEvent::AuthBlocked { ip, .. } if ip.is_loopback()
    )));
    assert!(s.store.list_tokens(None).await.unwrap().is_empty());
    // The block ends by the gateway's clock; the refused attempt was not spent.
    s.clock.advance(Duration::from_secs(secs));
    let r = second.post_form(&confirm, &[("code", &code)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.store.list_tokens(None).await.unwrap().len(), 1);
}
