//! The management API (`/v0/management/…`): administrators list, rename and revoke agent tokens
//! and list users; the credential pool's routes are in `management_auths`. It has its own key (`management.key`, sent as `Authorization: Bearer …` or
//! `X-Management-Key`), answers only loopback callers unless `management.allow_remote` (a request
//! carrying any relaying proxy's header — `X-Forwarded-For`, `Forwarded`, `X-Real-IP`, `Via`, … —
//! is not local), and wrong
//! keys count toward the same per-address lockout as client keys. Without a key configured the
//! API does not exist (404). Answers never include a token's secret or hash.

use std::net::IpAddr;

use super::groups::get;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::access_log::ClientIp;
use super::admin_ops::{self, TokenOpError};
use super::management_input::{Body, Path, Query};
use crate::identity::agent_token::{bare_id, token_view};
use crate::identity::brute_force::FailureOutcome;
use crate::notify::OperatorEvent;
use crate::state::AppState;
use crate::store::{StoreError, TokenAdminStore};

/// The agent-token and user routes (the management group adds the pool's and [`require_key`]).
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/v0/management/tokens", get(list_tokens)),
        (
            "/v0/management/tokens/{id}",
            get(get_token).patch(rename_token).delete(revoke_token),
        ),
        ("/v0/management/users", get(list_users)),
    ]
}

pub(super) fn problem(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"message": message}}))).into_response()
}

fn store_failed(e: StoreError) -> Response {
    tracing::error!(error = %e, "management API: store failed");
    problem(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
}

/// Headers a relaying proxy adds to say for whom it forwards. Any of them marks a request as
/// relayed: a reverse proxy on this host (nginx's `proxy_set_header X-Real-IP …`, a CDN's
/// connector) must not make a remote caller look local. A proxy that adds none of them (nginx's
/// bare `proxy_pass`) cannot be told apart from a local caller, which is why adding credentials
/// needs the management key as well.
const RELAY_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "via",
    "x-client-ip",
    "cf-connecting-ip",
    "true-client-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-forwarded",
    "forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// True for a caller on this machine: a loopback peer that does not forward for someone else (a
/// reverse proxy on this host that is not listed in server.trusted_proxies is not local).
pub(super) fn local_caller(req: &Request) -> bool {
    let relayed = RELAY_HEADERS.iter().any(|h| req.headers().contains_key(*h));
    ClientIp::of(req).is_loopback() && !relayed
}

/// The management key as presented: `Authorization: Bearer …` or `X-Management-Key`.
pub(super) fn presented_key(h: &http::HeaderMap) -> Option<&str> {
    h.get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim())
        .or_else(|| h.get("x-management-key").and_then(|v| v.to_str().ok()))
}

/// What a presented management key is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyCheck {
    /// The right key.
    Accepted,
    /// No `management.key` is configured.
    NotConfigured,
    /// The address is locked out (seconds left).
    Blocked(u64),
    /// A wrong key (counted in the shared per-address lockout).
    Wrong,
    /// No key presented (not counted).
    Missing,
}

/// Checks `presented` against `management.key` for a caller at `ip`, in the lockout shared with
/// client keys: refused while the address is blocked, a wrong key counted, the right one
/// clearing the address.
pub(super) async fn check_key(state: &AppState, ip: IpAddr, presented: Option<&str>) -> KeyCheck {
    let key = state.config().management.key.as_ref();
    check_secret(state, ip, presented, key, "management_key").await
}

/// Checks `presented` against `key` (`kind` names it in the auth-failure metric) for a caller at
/// `ip`, in the lockout shared with client keys — [`check_key`]'s rules for any operator key.
pub(super) async fn check_secret(
    state: &AppState,
    ip: IpAddr,
    presented: Option<&str>,
    key: Option<&crate::secret::Secret>,
    kind: &'static str,
) -> KeyCheck {
    let Some(key) = key else {
        return KeyCheck::NotConfigured;
    };
    let checked = check_present(state, ip, presented, key).await;
    let reason = match checked {
        KeyCheck::Blocked(_) => "blocked",
        KeyCheck::Wrong => "invalid",
        KeyCheck::Missing => "missing",
        KeyCheck::Accepted | KeyCheck::NotConfigured => return checked,
    };
    state.telemetry().auth_failure(kind, reason);
    checked
}

async fn check_present(
    state: &AppState,
    ip: IpAddr,
    presented: Option<&str>,
    key: &crate::secret::Secret,
) -> KeyCheck {
    let now = state.clock().now_millis();
    let limiter = state.auth().limiter();
    if let Some(secs) = limiter.and_then(|l| l.blocked(&ip, now)) {
        return KeyCheck::Blocked(secs);
    }
    match presented {
        Some(p) if key.matches(p) => {
            if let Some(l) = limiter {
                l.record_success(&ip, now).await;
            }
            KeyCheck::Accepted
        }
        Some(_) => {
            if let Some(l) = limiter
                && let FailureOutcome::Blocked { retry_after_secs } =
                    l.record_failure(&ip, None, now).await
            {
                tracing::warn!(client_ip = %ip, retry_after_secs, "too many wrong management keys: address blocked");
                state.notify(OperatorEvent::AuthBlocked {
                    ip,
                    retry_after_secs,
                });
            }
            KeyCheck::Wrong
        }
        None => KeyCheck::Missing,
    }
}

/// Middleware: the management key, from an allowed address, not locked out.
pub(super) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let m = &state.config().management;
    if m.key.is_none() {
        return problem(
            StatusCode::NOT_FOUND,
            "the management API is not enabled (set management.key)",
        );
    }
    if !m.allow_remote && !local_caller(&req) {
        return problem(
            StatusCode::FORBIDDEN,
            "the management API answers only local callers (management.allow_remote is off)",
        );
    }
    let ip = ClientIp::of(&req);
    match check_key(&state, ip, presented_key(req.headers())).await {
        KeyCheck::Accepted => next.run(req).await,
        KeyCheck::NotConfigured => problem(
            StatusCode::NOT_FOUND,
            "the management API is not enabled (set management.key)",
        ),
        KeyCheck::Blocked(secs) => {
            let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts");
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            r
        }
        KeyCheck::Wrong => problem(StatusCode::UNAUTHORIZED, "invalid management key"),
        KeyCheck::Missing => problem(
            StatusCode::UNAUTHORIZED,
            "send the management key as `Authorization: Bearer <key>` or `X-Management-Key`",
        ),
    }
}

fn no_store() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no store is configured: agent tokens are not in use",
    )
}

async fn user_labels(
    store: &dyn TokenAdminStore,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(|u| {
            let label = u.owner_label().to_owned();
            (u.id, label)
        })
        .collect())
}

#[derive(serde::Deserialize)]
struct ListQuery {
    user: Option<String>,
}

async fn list_tokens(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let Some(store) = state.token_store() else {
        return no_store();
    };
    let now = state.clock().now_millis() as i64;
    let labels = match user_labels(store.as_ref()).await {
        Ok(l) => l,
        Err(e) => return store_failed(e),
    };
    let owner = match &q.user {
        Some(u) => match labels.iter().find(|(id, label)| *id == u || *label == u) {
            Some((id, _)) => Some(id.clone()),
            None => return problem(StatusCode::NOT_FOUND, "no such user"),
        },
        None => None,
    };
    match store.list_tokens(owner.as_deref()).await {
        Ok(tokens) => {
            let list: Vec<_> = tokens
                .iter()
                .map(|t| token_view(t, labels.get(&t.user_id).map_or("", String::as_str), now))
                .collect();
            axum::Json(json!({"tokens": list})).into_response()
        }
        Err(e) => store_failed(e),
    }
}

async fn one_token(state: &AppState, id: &str) -> Response {
    let Some(store) = state.token_store() else {
        return no_store();
    };
    let now = state.clock().now_millis() as i64;
    match store.get_token(id).await {
        Ok(Some(t)) => {
            let label = match store.get_user(&t.user_id).await {
                Ok(Some(u)) => u.email.unwrap_or(u.subject),
                Ok(None) => String::new(),
                Err(e) => return store_failed(e),
            };
            axum::Json(token_view(&t, &label, now)).into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, "no agent token with that id"),
        Err(e) => store_failed(e),
    }
}

async fn get_token(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    one_token(&state, bare_id(&id)).await
}

#[derive(serde::Deserialize)]
struct RenameBody {
    name: String,
}

fn token_op_failed(e: TokenOpError) -> Response {
    match e {
        TokenOpError::NoStore => no_store(),
        TokenOpError::BadName => problem(StatusCode::BAD_REQUEST, &e.to_string()),
        TokenOpError::NotFound => problem(StatusCode::NOT_FOUND, &e.to_string()),
        TokenOpError::Store(e) => store_failed(e),
    }
}

async fn rename_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Response {
    let Ok(RenameBody { name }) = serde_json::from_slice::<RenameBody>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "send a JSON body {\"name\": \"…\"}",
        );
    };
    let id = bare_id(&id);
    match admin_ops::rename_token(&state, id, &name).await {
        Ok(()) => one_token(&state, id).await,
        Err(e) => token_op_failed(e),
    }
}

async fn revoke_token(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let id = bare_id(&id);
    match admin_ops::revoke_token(&state, id, "management API").await {
        Ok(_) => one_token(&state, id).await,
        Err(e) => token_op_failed(e),
    }
}

async fn list_users(State(state): State<AppState>) -> Response {
    let Some(store) = state.token_store() else {
        return no_store();
    };
    match store.list_users().await {
        Ok(users) => {
            let list: Vec<_> = users
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id, "provider": u.provider, "subject": u.subject, "email": u.email,
                        "name": u.display_name, "disabled": u.disabled,
                        "created_at": crate::clock::iso8601(u.created_at.max(0) as u64),
                    })
                })
                .collect();
            axum::Json(json!({"users": list})).into_response()
        }
        Err(e) => store_failed(e),
    }
}
