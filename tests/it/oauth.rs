//! The OAuth2 token server end to end, in-process with a test clock: both grants, RFC 6749
//! errors, the lockout, JWTs as client credentials on the API, JWKS (verified with an independent
//! JWT library), expiry by the clock, tampering, `alg: none`, HS256 confusion, disabled subjects,
//! key rotation, `/verify-token` and `/oauth/introspect`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::ManualClock;
use portcullis::notify::NoNotifier;
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
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let alice = store
        .upsert_user("local", "alice", Some("alice@example.com"), None, 0)
        .await
        .unwrap();
    let hash = portcullis::auth::agent_token::hash_secret(PASSWORD).unwrap();
    store.set_password(&alice.id, &hash, 0).await.unwrap();
    store
        .insert_client(&OauthClient {
            id: "pcl_ci".into(),
            name: "ci".into(),
            secret_hash: portcullis::auth::agent_token::hash_secret(CLIENT_SECRET).unwrap(),
            created_at: 0,
            disabled: false,
        })
        .await
        .unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let state = AppState::with_parts(
        config,
        Arc::new(clock.clone()),
        Arc::new(NoNotifier),
        Some(store.clone()),
    )
    .unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
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
        client()
            .post(format!("{}/v1/chat/completions", self.gw.url))
            .bearer_auth(bearer)
            .json(&chat("mock-gpt", false))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
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
    let jwks: Value = client()
        .get(format!("{}/.well-known/jwks.json", s.gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let jwks: Value = client()
        .get(format!("{}/.well-known/jwks.json", s.gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

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

    let meta: Value = client()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            s.gw.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
