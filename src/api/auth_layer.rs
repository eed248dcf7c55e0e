//! The client-credential guard of the model API group ([`super::groups`]): turns the request
//! into a [`Principal`](crate::identity::Principal) (stored in the request's log record — in its
//! extensions when the access log did not attach one) or answers the refusal in the caller's
//! protocol — 401 for a missing or wrong credential (with `WWW-Authenticate: Bearer` on OpenAI
//! paths), 429 with `Retry-After` for a blocked address, or with SSO on the sandbox answer. And,
//! in front of every group, the 400 for a request a trusted proxy relayed without a readable
//! client address ([`crate::net::forwarded_client`]).

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::StatusCode;

use super::access_log::{Attached, ClientIp};
use super::error::ApiError;
use crate::identity::{AuthFailure, Presented, extract_credential};
use crate::protocol::Protocol;
use crate::state::AppState;
use crate::wire::errors::ErrorKind;

/// Checked on every path: a request a trusted proxy relayed without a readable client address
/// is refused (400) — its failures would otherwise count against an address it does not own.
/// `None` lets the request through.
pub fn unreadable_client_address(
    state: &AppState,
    req: &Request,
    peer: SocketAddr,
) -> Option<Response> {
    crate::net::forwarded_client(peer.ip(), req.headers(), state.trusted_proxies()).err()?;
    tracing::debug!(peer = %peer.ip(), "refused: unreadable X-Forwarded-For from a trusted proxy");
    Some(
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            "The X-Forwarded-For header added by the proxy does not name a readable client address.",
        )
        .with_code("unreadable_forwarded_for")
        .into_response_for(caller_protocol(req)),
    )
}

/// Middleware of the model API group: a client credential, or the refusal.
pub async fn require_credential(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let attached = Attached::of(req.extensions()).cloned();
    guard(&state, req, attached.as_ref(), |req| next.run(req)).await
}

/// The model API group's guard: `next` runs on the request once its credential is accepted
/// (the [`Principal`](crate::identity::Principal) in its log record, where [`super::context::Ctx`]
/// reads it, or in its extensions when it has no record: one allocation fewer per request);
/// otherwise the refusal. `attached` is the access log's context (the client IP, the record);
/// `None` for a request the access log did not see.
/// [`require_credential`] for the router, called as it is by `server::App` for the paths it
/// serves without the router ([`super::groups::Direct`]).
#[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
pub(crate) fn guard<F: Future<Output = Response>>(
    state: &AppState,
    mut req: Request,
    attached: Option<&Attached>,
    next: impl FnOnce(Request) -> F,
) -> impl Future<Output = Response> {
    async move {
        let ip = attached.map_or_else(|| ClientIp::of(&req), Attached::client_ip);
        let presented = extract_credential(req.headers(), req.uri().query());
        let log = attached.map(Attached::log);
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let verdict = match state
            .auth()
            .authenticate(ip, user_agent, presented.as_ref())
            .await
        {
            Ok(principal) => Ok(principal),
            Err(failure) => Err((failure, presented.as_ref().map_or("none", Presented::kind))),
        };
        // The credential borrows the request's head: done with before the request moves on.
        drop(presented);
        match verdict {
            Ok(principal) => {
                match &log {
                    Some(log) => log.update(|r| r.principal = Some(principal)),
                    None => {
                        req.extensions_mut().insert(principal);
                    }
                }
                next(req).await
            }
            Err((failure, kind)) => {
                let name = failure_name(&failure);
                if let Some(log) = &log {
                    log.update(|r| r.auth_failure = Some(name));
                }
                state.telemetry().auth_failure(kind, name);
                if let Some(sso) = state.sso()
                    && super::sandbox::applies(&failure)
                {
                    return super::sandbox::answer(state, sso, &failure, req).await;
                }
                refusal(failure).into_response_for(caller_protocol(&req))
            }
        }
    }
}

/// The protocol an answer made before any handler speaks: the caller's ([`Protocol::of_request`]).
pub(crate) fn caller_protocol(req: &Request) -> Protocol {
    Protocol::of_request(req.uri().path(), req.headers(), req.uri().query())
}

fn failure_name(f: &AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => "missing",
        AuthFailure::Invalid => "invalid",
        AuthFailure::Blocked { .. } => "blocked",
        AuthFailure::SessionExpired { .. } => "session_expired",
        AuthFailure::Unavailable => "unavailable",
    }
}

/// The client-facing answer to an authentication failure.
pub fn refusal(f: AuthFailure) -> ApiError {
    match f {
        AuthFailure::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            "Missing API key: send it as `Authorization: Bearer <key>` (OpenAI clients), `x-api-key` (Anthropic clients) or `x-goog-api-key` / `?key=` (Gemini clients).",
        )
        .with_code("missing_api_key"),
        AuthFailure::Invalid => {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::Authentication, "Invalid API key.")
                .with_code("invalid_api_key")
        }
        AuthFailure::Blocked { retry_after_secs } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimited,
            "Too many failed authentication attempts. Please try again later.",
        )
        .with_code("auth_blocked")
        .with_retry_after(retry_after_secs)
        .no_retry(),
        AuthFailure::SessionExpired { token_id } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            format!(
                "The login session of agent token {} has expired: log in again to keep using it (the token itself stays the same).",
                crate::identity::agent_token::display_id(&token_id)
            ),
        )
        .with_code("session_expired"),
        AuthFailure::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unavailable,
            "Authentication is temporarily unavailable; try again shortly.",
        ),
    }
}
