//! The OAuth2 token server end to end, in-process with a test clock: both grants, RFC 6749
//! errors, the lockout, JWTs as client credentials on the API, JWKS (verified with an independent
//! JWT library), expiry by the clock, tampering, `alg: none`, HS256 confusion, disabled subjects,
//! key rotation, `/verify-token` and `/oauth/introspect`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::ManualClock;
use portcullis::state::AppState;
use portcullis::store::{OauthClient, SqlStore, Store};
use serde_json::{Value, json};

use crate::harness::*;

struct Setup {
    _mock: Mock,
    gw: Gateway,
    state: AppState,
    store: Arc<dyn Store>,
    clock: ManualClock,
    alice: String,
    _dir: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery staple";
const CLIENT_SECRET: &str = "client-secret-0123456789abcdef";

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

#[allow(clippy::disallowed_methods)] // external issuers sign with the real time
fn real_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The real time in seconds since the epoch, as external issuers put in their tokens.
fn real_now_secs() -> i64 {
    real_now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Trusts the JWTs `issuer` signs for `audience` (keys at `{issuer}/jwks`, the user in `email`).
fn trust(c: &mut portcullis::config::Config, issuer: &str, audience: &str) {
    c.auth.jwt.issuers.push(portcullis::config::TrustedIssuer {
        issuer: issuer.to_owned(),
        jwks_url: format!("{issuer}/jwks"),
        audience: audience.into(),
        user_claim: "email".into(),
        groups_claim: "groups".into(),
    });
}

async fn setup_with(tweak: impl FnOnce(&mut portcullis::config::Config)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let alice = store
        .upsert_user("local", "alice", Some("alice@example.com"), None, 0)
        .await
        .unwrap();
    let hash = portcullis::identity::agent_token::hash_secret(PASSWORD).unwrap();
    store.set_password(&alice.id, &hash, 0).await.unwrap();
    store
        .insert_client(&OauthClient {
            id: "pcl_ci".into(),
            name: "ci".into(),
            secret_hash: portcullis::identity::agent_token::hash_secret(CLIENT_SECRET).unwrap(),
            created_at: 0,
            disabled: false,
        })
        .await
        .unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    tweak(&mut config);
    let external = !config.auth.jwt.issuers.is_empty();
    let clock = if external {
        ManualClock::new(real_now())
    } else {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    };
    let (state, gw) = start_gateway_on_store(config, &clock, store.clone()).await;
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

async fn form(url: &str, body: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = client().post(url).form(body);
    if let Some((u, p)) = basic {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.unwrap()
}

impl Setup {
    async fn password(&self, user: &str, pw: &str) -> reqwest::Response {
        form(
            &format!("{}/oauth/token", self.gw.url),
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ],
            None,
        )
        .await
    }

    async fn token(&self) -> String {
        let r = self.password("alice", PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 3600);
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn chat(&self, bearer: &str) -> u16 {
        chat_status(&self.gw.url, bearer).await
    }

    async fn verify(&self, token: &str) -> (u16, Value) {
        let r = post_json(
            &format!("{}/verify-token", self.gw.url),
            json!({"access_token": token, "token_type": "bearer"}),
        )
        .await;
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

#[tokio::test]
async fn both_grants_issue_jwts_that_authenticate_api_calls() {
    let s = setup().await;
    let jwt = s.token().await;
    assert_eq!(s.chat(&jwt).await, 200);
    let (code, claims) = s.verify(&jwt).await;
    assert_eq!(code, 200, "{claims}");
    assert_eq!(
        (claims["sub"].as_str(), claims["username"].as_str()),
        (Some(s.alice.as_str()), Some("alice"))
    );
    // Client credentials, by Basic and by form.
    let url = format!("{}/token", s.gw.url);
    let r = form(
        &url,
        &[("grant_type", "client_credentials")],
        Some(("pcl_ci", CLIENT_SECRET)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cc: Value = r.json().await.unwrap();
    assert_eq!(s.chat(cc["access_token"].as_str().unwrap()).await, 200);
    let r = form(
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "pcl_ci"),
            ("client_secret", CLIENT_SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn rfc_6749_errors_and_the_lockout() {
    let s = setup().await;
    for (user, pw) in [("alice", "wrong password"), ("mallory", PASSWORD)] {
        let r = s.password(user, pw).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["error"], "invalid_grant",
            "unknown users look like wrong passwords"
        );
    }
    let url = format!("{}/oauth/token", s.gw.url);
    let r = form(
        &url,
        &[("grant_type", "client_credentials")],
        Some(("pcl_ci", "nope")),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = form(&url, &[("grant_type", "authorization_code")], None).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = form(&url, &[], None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = post_json(&url, json!({"grant_type": "password"})).await;
    assert_eq!(r.status(), 400, "JSON is not a token request");
    // Three failures so far from this address; two more block it, even for the right password.
    s.password("alice", "wrong again").await;
    s.password("alice", "and again").await;
    let r = s.password("alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn forged_expired_and_disabled_tokens_are_refused() {
    let s = setup().await;
    let jwt = s.token().await;
    // Verified by an independent JWT implementation against the published JWKS.
    let jwks: Value = get_json(format!("{}/.well-known/jwks.json", s.gw.url)).await;
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["portcullis"]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(&jwt, &key, &v).unwrap();

    // Tampered payload, alg none, HS256 with a guessable key: refused.
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("usr_admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        forged_payload
    );
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(b"portcullis"),
    )
    .unwrap();
    for bad in [&tampered, &none, &hs] {
        assert_eq!(s.chat(bad).await, 401, "{bad}");
        assert_eq!(s.verify(bad).await.0, 401);
    }

    // Expiry by the gateway's clock.
    s.clock.advance(Duration::from_secs(3600 + 31));
    assert_eq!(s.chat(&jwt).await, 401);
    assert_eq!(s.verify(&jwt).await.1, json!({"detail": "Invalid token"}));

    // A disabled user's fresh token stops working (within the 10 s subject cache).
    let fresh = s.token().await;
    assert_eq!(s.chat(&fresh).await, 200);
    s.store.set_user_disabled(&s.alice, true).await.unwrap();
    s.clock.advance(Duration::from_secs(11));
    assert_eq!(s.chat(&fresh).await, 401);
    assert_eq!(
        s.password("alice", PASSWORD).await.status(),
        400,
        "disabled: no new token"
    );
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_introspection_needs_a_client() {
    let s = setup().await;
    let old = s.token().await;
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let new_kid = s.state.oauth().unwrap().rotate().await.unwrap();
    assert_ne!(old_kid, new_kid);
    let new = s.token().await;
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        new_kid
    );
    assert_eq!(
        s.chat(&old).await,
        200,
        "tokens of the retired key still verify"
    );
    assert_eq!(s.chat(&new).await, 200);
    let jwks: Value = get_json(format!("{}/.well-known/jwks.json", s.gw.url)).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    // A rotation made elsewhere (the CLI, another instance) is picked up within five minutes.
    let now_ms = portcullis::clock::Clock::now_millis(&s.clock) as i64;
    let elsewhere =
        portcullis::identity::token_server::keys::rotate(s.store.as_ref(), now_ms, None)
            .await
            .unwrap();
    let kid_of = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_eq!(kid_of(&s.token().await), new_kid);
    s.clock.advance(Duration::from_secs(301));
    assert_eq!(kid_of(&s.token().await), elsewhere);
    assert_eq!(s.chat(&new).await, 200, "still verifies after the switch");

    let url = format!("{}/oauth/introspect", s.gw.url);
    let r = form(&url, &[("token", &new)], None).await;
    assert_eq!(r.status(), 401);
    let r = form(&url, &[("token", &new)], Some(("pcl_ci", CLIENT_SECRET))).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["active"].as_bool(), v["username"].as_str()),
        (Some(true), Some("alice"))
    );
    let r = form(
        &url,
        &[("token", "eyJnope.x.y")],
        Some(("pcl_ci", CLIENT_SECRET)),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));

    let meta = get_json(format!(
        "{}/.well-known/oauth-authorization-server",
        s.gw.url
    ))
    .await;
    assert!(
        meta["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth/token")
    );
    assert_eq!(
        meta["grant_types_supported"],
        json!(["password", "client_credentials"])
    );
}

#[tokio::test]
async fn hs256_compatibility_signs_with_the_configured_secret_only() {
    const SECRET: &str = "a-shared-secret-of-at-least-32-chars!";
    let s = setup_with(|c| c.auth.jwt.hs256_secret = Some(portcullis::secret::Secret::new(SECRET)))
        .await;
    let jwt = s.token().await;
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    // A consumer holding the secret verifies it with any JWT library.
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["portcullis"]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &v,
    )
    .unwrap();
    assert_eq!(s.chat(&jwt).await, 200);
    // Signed with another secret: refused.
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&jwt)
        .unwrap()
        .claims;
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-at-least-32-chars!!"),
    )
    .unwrap();
    assert_eq!(s.chat(&other).await, 401);
    // Found by reading, for the `jwt` fuzz target's lifetime property: `exp - iat` wrapped, so
    // a holder of the secret could mint a token living a century (a panic with overflow checks).
    let mut forever = claims.clone();
    forever["iat"] = json!(i64::MIN + 1);
    forever["exp"] = json!(claims["exp"].as_i64().unwrap() + 100 * 365 * 86_400);
    let forever = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &forever,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(s.chat(&forever).await, 401);
}

#[tokio::test]
async fn trusted_external_issuers_map_claims_and_everything_else_is_refused() {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let issuer = idp.url.clone();
    let s = setup_with(|c| {
        // Eight refusals in a row from one address would otherwise end in a lockout.
        c.auth.brute_force_protection.enabled = false;
        trust(c, &issuer, "api://portcullis");
    })
    .await;
    let now = real_now_secs();
    let good = json!({
        "iss": idp.url, "sub": "u-1", "aud": "api://portcullis", "iat": now, "exp": now + 300,
        "email": "bob@example.org", "groups": ["dev", "ops"],
    });
    assert_eq!(s.chat(&idp.sign(&good, "k1")).await, 200);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let cases = [
        ("wrong audience", with("aud", json!("api://other")), "k1"),
        ("expired", with("exp", json!(now - 3600)), "k1"),
        ("not yet valid", with("nbf", json!(now + 3600)), "k1"),
        (
            "untrusted issuer",
            with("iss", json!("https://evil.example")),
            "k1",
        ),
        ("no user claim", with("email", Value::Null), "k1"),
        ("unknown kid", good.clone(), "k-unknown"),
    ];
    for (what, claims, kid) in cases {
        assert_eq!(s.chat(&idp.sign(&claims, kid)).await, 401, "{what}");
    }
    // The issuer decides how long its tokens live; `exp + leeway` no longer overflows.
    let far = with("exp", json!(i64::MAX));
    assert_eq!(s.chat(&idp.sign(&far, "k1")).await, 200);
    // alg none and HS256 keyed with the public key: refused.
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        enc(&json!({"alg": "none", "typ": "JWT"})),
        enc(&good)
    );
    assert_eq!(s.chat(&none).await, 401);
    let jwks: Value = get_json(format!("{}/jwks", idp.url)).await;
    let public = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    assert_eq!(s.chat(&confused).await, 401);
    // The gateway's own tokens still work next to the external ones.
    assert_eq!(s.chat(&s.token().await).await, 200);
}

/// An ID token from a real OIDC provider (`oidc-provider-mock`), used as an external JWT.
async fn token_from_oidc_provider_mock(idp: &crate::idp::Idp, client_id: &str) -> String {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid%20email%20profile&state=s1&nonce=n1",
        idp.url
    );
    let r = http
        .post(&authorize)
        .form(&[("sub", "alice")])
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = http
        .post(format!("{}/oauth2/token", idp.url))
        .basic_auth(client_id, Some("secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["id_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_real_oidc_providers_tokens_are_accepted_when_trusted_and_refused_otherwise() {
    let Some(venv) = crate::idp::venv() else {
        return;
    };
    let idp = crate::idp::Idp::start(&venv);
    idp.set_user(
        "alice",
        json!({"email": "alice@corp.example", "groups": ["eng"]}),
    )
    .await;
    let issuer = idp.url.clone();
    let s = setup_with(|c| trust(c, &issuer, "corp-gateway")).await;
    let trusted = token_from_oidc_provider_mock(&idp, "corp-gateway").await;
    assert_eq!(s.chat(&trusted).await, 200);
    // Same issuer, token meant for another audience: refused.
    let other_audience = token_from_oidc_provider_mock(&idp, "someone-else").await;
    assert_eq!(s.chat(&other_audience).await, 401);
    // A second provider that is not trusted: refused.
    let untrusted_idp = crate::idp::Idp::start(&venv);
    let untrusted = token_from_oidc_provider_mock(&untrusted_idp, "corp-gateway").await;
    assert_eq!(s.chat(&untrusted).await, 401);
}

#[tokio::test]
async fn a_username_is_locked_out_even_when_the_guesses_come_from_many_addresses() {
    let s = setup_with(|c| c.server.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let url = format!("{}/oauth/token", s.gw.url);
    let attempt = |i: u32, pw: &'static str| {
        let url = url.clone();
        async move {
            client()
                .post(&url)
                .header("x-forwarded-for", format!("198.51.100.{i}"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", pw),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        assert_eq!(attempt(i, "wrong password").await, 400);
    }
    // A sixth address, the right password: alice is locked out; another user is not.
    assert_eq!(attempt(99, PASSWORD).await, 429);
    let r = client()
        .post(&url)
        .header("x-forwarded-for", "198.51.100.77")
        .form(&[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_no_more_than_the_lockout_allows() {
    let s = setup().await;
    let guesses: Vec<_> = (0..20)
        .map(|_| s.password("alice", "a wrong guess"))
        .collect();
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|c| **c == 400).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert!(
        statuses.iter().all(|c| *c == 400 || *c == 429),
        "{statuses:?}"
    );
    // A right password does not wipe an address's record of wrong ones.
    let s = setup().await;
    for _ in 0..4 {
        assert_eq!(s.password("alice", "wrong").await.status(), 400);
    }
    assert_eq!(s.password("alice", PASSWORD).await.status(), 200);
    assert_eq!(s.password("mallory", "guess").await.status(), 400);
    assert_eq!(
        s.password("mallory", "guess 2").await.status(),
        429,
        "the fifth failure blocked"
    );
}

#[tokio::test]
async fn a_leaked_retired_key_cannot_mint_new_or_long_lived_tokens() {
    let s = setup().await;
    let valid = s.token().await;
    let mut claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&valid)
        .unwrap()
        .claims;
    let old_kid = jsonwebtoken::decode_header(&valid).unwrap().kid.unwrap();
    let keys = portcullis::store::SigningKeyStore::list_signing_keys(&*s.store)
        .await
        .unwrap();
    let der = URL_SAFE_NO_PAD.decode(&keys[0].private_key).unwrap();
    let sign = |c: &Value| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(old_kid.clone());
        jsonwebtoken::encode(&h, c, &jsonwebtoken::EncodingKey::from_ed_der(&der)).unwrap()
    };
    // Even with the current key: no token longer-lived than the server issues.
    let iat = claims["iat"].as_i64().unwrap();
    claims["exp"] = json!(iat + 10 * 3600);
    assert_eq!(s.chat(&sign(&claims)).await, 401);
    // After rotation the old key signs nothing new.
    s.state.oauth().unwrap().rotate().await.unwrap();
    s.clock.advance(Duration::from_secs(120));
    let now = iat + 120;
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    claims["jti"] = json!("forged");
    assert_eq!(s.chat(&sign(&claims)).await, 401, "signed after retirement");
    assert_eq!(
        s.chat(&valid).await,
        200,
        "issued before retirement: still valid"
    );
}

/// Security review, first pass #4 (the external-JWT half): a JWT whose check fetches the
/// issuer's keys awaited that fetch before its failure was counted, so a parallel burst from one
/// address all passed the lockout. Counted in advance, only the allowed number are evaluated.
#[tokio::test]
async fn a_parallel_burst_of_wrong_external_jwts_is_limited_like_a_sequential_one() {
    let idp = crate::fake_idp::FakeIdp::start().await;
    let issuer = idp.url.clone();
    let s = setup_with(|c| trust(c, &issuer, "api://portcullis")).await;
    let now = real_now_secs();
    // Signed by the issuer, for another audience: a wrong credential (counted), each different.
    let tokens: Vec<String> = (0..40)
        .map(|i| {
            idp.sign(
                &json!({"iss": idp.url, "sub": format!("u-{i}"), "aud": "api://other",
                    "iat": now, "exp": now + 300, "email": "mallory@example.org"}),
                "k1",
            )
        })
        .collect();
    let answers = futures_util::future::join_all(tokens.iter().map(|t| s.chat(t))).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for code in answers {
        *statuses.entry(code).or_default() += 1;
    }
    assert_eq!(statuses, [(401, 5), (429, 35)].into());
}
