//! The token server's HTTP side (RFC 6749 / 7662 / 8414 shapes): `POST /oauth/token` (alias
//! `/token`, form-encoded), `GET /.well-known/jwks.json`, `GET /.well-known/oauth-authorization-server`,
//! the seed's `POST /verify-token`, `POST /oauth/introspect` (for authenticated clients), and
//! `GET /oauth/openapi.json` (the OpenAPI document of these routes, `docs`).
//! Token responses are `Cache-Control: no-store`; errors are RFC 6749 §5.2 bodies. The group's
//! guard, [`require_token_server`], answers every path while no store is open; each grant
//! authenticates its own caller.

use std::sync::Arc;

use super::groups::{get, post};
use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::access_log::ClientIp;
use crate::identity::token_server::{GrantError, TokenServer};
use crate::state::AppState;

const FORM_LIMIT: usize = 16 * 1024;

/// The token server's routes.
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/oauth/token", post(token)),
        ("/token", post(token)),
        ("/.well-known/jwks.json", get(jwks)),
        ("/.well-known/oauth-authorization-server", get(metadata)),
        ("/verify-token", post(verify_token)),
        ("/oauth/introspect", post(introspect)),
        (
            "/oauth/openapi.json",
            get(super::docs::token_server_document),
        ),
    ]
}

fn json_no_store(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_no_store(
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn not_available() -> Response {
    oauth_error(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "the token server needs the store (storage.data_dir or storage.database_url)",
    )
}

/// The token server group's guard, for every path and method of the group: the token server
/// exists (a store is open), else an OAuth2 `invalid_request` 404. The handlers get the
/// [`TokenServer`] as a request extension; each grant authenticates its caller itself.
pub(super) async fn require_token_server(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(server) = state.oauth().cloned() else {
        return not_available();
    };
    req.extensions_mut().insert(server);
    next.run(req).await
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded parts).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

async fn token(Extension(server): Extension<Arc<TokenServer>>, req: Request) -> Response {
    let ip = ClientIp::of(&req);
    let basic = basic_credentials(req.headers());
    // Basic was attempted (even if undecodable): a failure answers with a Basic challenge.
    let used_basic = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("basic "));
    let form_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the request form-encoded (Content-Type: application/x-www-form-urlencoded)",
        );
    }
    let Some(f) = super::read_form(req, FORM_LIMIT).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let get = |k: &str| f.get(k).map(String::as_str);
    let result = match get("grant_type") {
        Some("password") => {
            server
                .password_grant(
                    get("username").unwrap_or(""),
                    get("password").unwrap_or(""),
                    ip,
                )
                .await
        }
        Some("client_credentials") => {
            let creds = basic.or_else(|| {
                Some((
                    get("client_id")?.to_owned(),
                    get("client_secret")?.to_owned(),
                ))
            });
            match creds {
                Some((id, secret)) => server.client_credentials(&id, &secret, ip).await,
                None => Err(GrantError::InvalidClient),
            }
        }
        Some(_) => Err(GrantError::UnsupportedGrantType),
        None => Err(GrantError::InvalidRequest("grant_type is required")),
    };
    match result {
        Ok(issued) => json_no_store(
            StatusCode::OK,
            json!({
                "access_token": issued.access_token.expose(),
                "token_type": "bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            }),
        ),
        Err(e) => grant_failure(e, used_basic),
    }
}

/// The RFC 6749 §5.2 answer to a refused grant or client authentication; `basic_challenge`
/// adds `WWW-Authenticate: Basic` to `invalid_client`.
fn grant_failure(e: GrantError, basic_challenge: bool) -> Response {
    match e {
        GrantError::InvalidRequest(m) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", m),
        GrantError::InvalidGrant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid username or password",
        ),
        GrantError::InvalidClient => {
            let mut r = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
            if basic_challenge {
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"portcullis\""),
                );
            }
            r
        }
        GrantError::UnsupportedGrantType => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported: password, client_credentials",
        ),
        GrantError::Blocked { retry_after_secs } => {
            let mut r = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many failed attempts; try again later",
            );
            r.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs),
            );
            r
        }
        GrantError::Unavailable(e) => {
            tracing::error!(error = %e, "token endpoint failed");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token server is temporarily unavailable",
            )
        }
    }
}

async fn jwks(Extension(server): Extension<Arc<TokenServer>>) -> Response {
    match server.jwks().await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the signing keys");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn metadata(
    State(state): State<AppState>,
    Extension(server): Extension<Arc<TokenServer>>,
) -> Response {
    let base = state.config().public_url();
    axum::Json(json!({
        "issuer": server.issuer(),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "grant_types_supported": ["password", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": [],
        "scopes_supported": ["api"],
    }))
    .into_response()
}

/// The seed's contract: JSON `{"access_token","token_type"}` → 200 with the claims, or 401
/// `{"detail": "Invalid token"}`.
async fn verify_token(Extension(server): Extension<Arc<TokenServer>>, req: Request) -> Response {
    let invalid = || {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"detail": "Invalid token"})),
        )
            .into_response()
    };
    let Ok(body) = axum::body::to_bytes(req.into_body(), FORM_LIMIT).await else {
        return invalid();
    };
    let Some(token) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
    else {
        return invalid();
    };
    match server.verify(&token).await {
        Ok(c) => axum::Json(json!({
            "valid": true, "sub": c.sub, "username": c.name, "kind": c.pcl_kind,
            "scope": c.scope, "issued_at": c.iat, "expires": c.exp, "iss": c.iss, "aud": c.aud,
            "jti": c.jti,
        }))
        .into_response(),
        Err(crate::identity::token_server::TokenError::Unavailable(e)) => {
            tracing::error!(error = %e, "verify-token failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(_) => invalid(),
    }
}

/// RFC 7662: the caller authenticates as a client (Basic or form); `token` → `{"active": …}`.
async fn introspect(Extension(server): Extension<Arc<TokenServer>>, req: Request) -> Response {
    let ip = ClientIp::of(&req);
    let basic = basic_credentials(req.headers());
    let Some(f) = super::read_form(req, FORM_LIMIT).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let creds =
        basic.or_else(|| Some((f.get("client_id")?.clone(), f.get("client_secret")?.clone())));
    let authenticated = match creds {
        Some((id, secret)) => server.authenticate_client(&id, &secret, ip).await,
        None => Err(GrantError::InvalidClient),
    };
    if let Err(e) = authenticated {
        return grant_failure(e, true);
    }
    let Some(token) = f.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    match server.verify(token).await {
        Ok(c) => json_no_store(
            StatusCode::OK,
            json!({
                "active": true, "sub": c.sub, "username": c.name, "scope": c.scope,
                "token_type": "bearer", "exp": c.exp, "iat": c.iat, "iss": c.iss, "aud": c.aud,
                "jti": c.jti, "client_id": if c.pcl_kind == "client" { Some(&c.sub) } else { None },
            }),
        ),
        Err(_) => json_no_store(StatusCode::OK, json!({"active": false})),
    }
}
