//! A scriptable identity provider for the rejection tests: an OIDC issuer (discovery, authorize,
//! token, JWKS) that signs ID tokens with an Ed25519 key it controls — so a test can make it lie
//! (wrong audience, wrong issuer, expired, wrong nonce, HS256, `alg: none`, unknown key) — and a
//! GitHub look-alike (authorize, access_token, /user, /user/emails). The token endpoint checks
//! the PKCE verifier against the challenge it was given.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// How the next ID token lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    None,
    WrongAudience,
    WrongIssuer,
    Expired,
    WrongNonce,
    Hs256,
    AlgNone,
    UnknownKid,
}

#[derive(Default)]
struct Inner {
    lie: Option<Lie>,
    /// code → (nonce, code_challenge)
    codes: HashMap<String, (String, String)>,
    token_requests: u32,
    jwks_requests: u32,
    discovery_requests: u32,
}

#[derive(Clone)]
pub struct FakeIdp {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    key_der: Arc<Vec<u8>>,
    public_x: Arc<String>,
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = FakeIdp {
            url: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::default(),
            key_der: Arc::new(pkcs8.as_ref().to_vec()),
            public_x: Arc::new(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/api/user", get(github_user))
            .route("/api/user/emails", get(github_emails))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    /// Signs `claims` with the IdP's key (`kid` as given), as any token it could issue.
    pub fn sign(&self, claims: &Value, kid: &str) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_ed_der(&self.key_der)).unwrap()
    }

    pub fn lie(&self, lie: Lie) {
        self.inner.lock().unwrap().lie = Some(lie);
    }

    pub fn token_requests(&self) -> u32 {
        self.inner.lock().unwrap().token_requests
    }

    pub fn jwks_requests(&self) -> u32 {
        self.inner.lock().unwrap().jwks_requests
    }

    pub fn discovery_requests(&self) -> u32 {
        self.inner.lock().unwrap().discovery_requests
    }
}

async fn discovery(State(idp): State<FakeIdp>) -> Response {
    idp.inner.lock().unwrap().discovery_requests += 1;
    axum::Json(json!({
        "issuer": idp.url,
        "authorization_endpoint": format!("{}/authorize", idp.url),
        "token_endpoint": format!("{}/token", idp.url),
        "jwks_uri": format!("{}/jwks", idp.url),
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }))
    .into_response()
}

async fn jwks(State(idp): State<FakeIdp>) -> Response {
    idp.inner.lock().unwrap().jwks_requests += 1;
    axum::Json(json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": *idp.public_x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]}))
        .into_response()
}

/// Logs the user in at once and sends the browser back with a code.
async fn authorize(
    State(idp): State<FakeIdp>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let code = format!("code-{}", idp.inner.lock().unwrap().codes.len());
    idp.inner.lock().unwrap().codes.insert(
        code.clone(),
        (
            q.get("nonce").cloned().unwrap_or_default(),
            q.get("code_challenge").cloned().unwrap_or_default(),
        ),
    );
    let back = format!(
        "{}?code={code}&state={}",
        q["redirect_uri"],
        form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
    );
    Redirect::to(&back).into_response()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Checks the code and its PKCE verifier; returns the login's nonce.
fn redeem(idp: &FakeIdp, f: &HashMap<String, String>) -> Result<String, Box<Response>> {
    let mut inner = idp.inner.lock().unwrap();
    inner.token_requests += 1;
    let Some((nonce, challenge)) = inner.codes.remove(f.get("code").map_or("", String::as_str))
    else {
        return Err(Box::new(
            (
                http::StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant"})),
            )
                .into_response(),
        ));
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if URL_SAFE_NO_PAD.encode(digest.as_ref()) != challenge {
        return Err(Box::new((
            http::StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
            ),
        )
            .into_response()));
    }
    Ok(nonce)
}

#[allow(clippy::disallowed_methods)] // the ID token's times are the IdP's wall clock
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn token(State(idp): State<FakeIdp>, body: axum::body::Bytes) -> Response {
    let f = form(&body);
    let nonce = match redeem(&idp, &f) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let lie = idp.inner.lock().unwrap().lie.unwrap_or(Lie::None);
    let now = unix_now();
    let mut claims = json!({
        "iss": idp.url, "sub": "fake-user-1", "aud": f.get("client_id").cloned().unwrap_or_default(),
        "exp": now + 600, "iat": now, "nonce": nonce,
        "email": "bob@example.org", "email_verified": true, "name": "Bob",
    });
    match lie {
        Lie::WrongAudience => claims["aud"] = json!("someone-else"),
        Lie::WrongIssuer => claims["iss"] = json!("https://evil.example"),
        Lie::Expired => {
            claims["exp"] = json!(now - 3600);
            claims["iat"] = json!(now - 7200);
        }
        Lie::WrongNonce => claims["nonce"] = json!("not-the-nonce"),
        _ => {}
    }
    let id_token = match lie {
        Lie::Hs256 => jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"client-secret"),
        )
        .unwrap(),
        Lie::AlgNone => {
            let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                enc(&json!({"alg": "none", "typ": "JWT"})),
                enc(&claims)
            )
        }
        _ => {
            let mut h = Header::new(Algorithm::EdDSA);
            h.kid = Some(
                if lie == Lie::UnknownKid {
                    "k-unknown"
                } else {
                    "k1"
                }
                .to_owned(),
            );
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_der(&idp.key_der)).unwrap()
        }
    };
    axum::Json(json!({"access_token": "at-1", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn github_token(State(idp): State<FakeIdp>, body: axum::body::Bytes) -> Response {
    let f = form(&body);
    if let Err(r) = redeem(&idp, &f) {
        return *r;
    }
    if f.get("client_secret").map(String::as_str) != Some("gh-secret") {
        return axum::Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    axum::Json(json!({"access_token": "gho_fake", "token_type": "bearer", "scope": "read:user,user:email"})).into_response()
}

fn bearer_ok(h: &http::HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer gho_fake")
}

async fn github_user(h: http::HeaderMap) -> Response {
    if !bearer_ok(&h) {
        return http::StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": null}))
        .into_response()
}

async fn github_emails(h: http::HeaderMap) -> Response {
    if !bearer_ok(&h) {
        return http::StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(json!([
        {"email": "old@example.com", "primary": false, "verified": true},
        {"email": "octocat@github.example", "primary": true, "verified": true},
    ]))
    .into_response()
}
