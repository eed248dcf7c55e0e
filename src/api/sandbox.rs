//! The sandbox answer (PRODUCT §3.1): with SSO on, a model request without a valid agent token
//! gets HTTP 200 and an ordinary assistant message — in the caller's protocol and stream mode —
//! whose text is the login link, so every agent shows it to its user. Header
//! `x-portcullis-auth: required` tells tools apart from a real answer. A token whose session
//! lapsed gets the "Re-authentication required" text with a link bound to that token. Requests
//! that cannot carry a message (model lists, embeddings, token counts) get a 401 whose message
//! holds the link.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::Deserialize;

use super::error::ApiError;
use crate::identity::AuthFailure;
use crate::protocol::Protocol;
use crate::sso::Sso;
use crate::state::AppState;
use crate::wire::errors::ErrorKind;
use crate::wire::synthetic::{Delivery, Shape, render};

/// Most of an unauthenticated request's body the sandbox reads.
const SANDBOX_BODY_LIMIT: usize = 1024 * 1024;

/// The header that marks a sandbox answer.
pub const AUTH_HEADER: &str = "x-portcullis-auth";

/// True for the failures SSO answers with a login link (not lockouts or outages).
pub fn applies(failure: &AuthFailure) -> bool {
    matches!(
        failure,
        AuthFailure::Missing | AuthFailure::Invalid | AuthFailure::SessionExpired { .. }
    )
}

#[derive(Deserialize, Default)]
struct Probe {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
}

/// Which answer the request's route gets, if it can carry a message.
fn shape_of(path: &str, query: Option<&str>) -> Option<(Shape, Option<Delivery>)> {
    let alt_sse = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "alt" && v == "sse")
    });
    if path.ends_with("/chat/completions") {
        Some((Shape::ChatCompletion, None))
    } else if path == "/v1/responses" || path == "/responses" {
        Some((Shape::Responses, None))
    } else if path == "/v1/messages" {
        Some((Shape::Messages, None))
    } else if path.ends_with(":generateContent") {
        Some((Shape::GenerateContent, Some(Delivery::Json)))
    } else if path.ends_with(":streamGenerateContent") {
        let d = if alt_sse {
            Delivery::Sse
        } else {
            Delivery::JsonArray
        };
        Some((Shape::GenerateContent, Some(d)))
    } else {
        None
    }
}

fn message(url: &str, reauth: bool) -> String {
    if reauth {
        format!(
            "Re-authentication required.\n\nThe login session of this agent's token has expired. Open this URL in your browser to log in again:\n\n{url}\n\nThe token stays the same, so nothing changes in this agent's settings. The link works once and expires in 10 minutes; any new request gets a fresh one."
        )
    } else {
        format!(
            "Authentication required — open this URL in your browser: {url}\n\nLog in there to get an agent token for this device, then set it as this agent's API key (the page shows how). The link works once and expires in 10 minutes; any new request gets a fresh one."
        )
    }
}

/// The answer for an unauthenticated model request when SSO is on.
pub async fn answer(state: &AppState, sso: &Sso, failure: &AuthFailure, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let protocol = Protocol::of_request(&path, req.headers(), req.uri().query());
    let bound = match failure {
        AuthFailure::SessionExpired { token_id } => Some(token_id.as_str()),
        _ => None,
    };
    let url = match sso.login_url(bound).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot make a login link");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unavailable,
                "Authentication is temporarily unavailable; try again shortly.",
            )
            .into_response_for(protocol);
        }
    };
    let text = message(&url, bound.is_some());
    let Some((shape, delivery)) = shape_of(&path, req.uri().query()) else {
        let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, ErrorKind::Authentication, text)
            .with_code(if bound.is_some() {
                "session_expired"
            } else {
                "login_required"
            })
            .into_response_for(protocol);
        mark(&mut resp);
        return resp;
    };
    // Only `model` and `stream` are read, for a caller that is not authenticated: no reason to
    // buffer more than a small body (a larger one is answered as if it did not say `stream`).
    let limit = state.config().server.max_body_bytes.min(SANDBOX_BODY_LIMIT);
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .unwrap_or_default();
    let probe: Probe = serde_json::from_slice(&body).unwrap_or_default();
    let delivery = delivery.unwrap_or(if probe.stream.unwrap_or(false) {
        Delivery::Sse
    } else {
        Delivery::Json
    });
    let model = match shape {
        Shape::GenerateContent => path
            .rsplit('/')
            .next()
            .and_then(|m| m.split(':').next())
            .unwrap_or("portcullis")
            .to_owned(),
        _ => probe.model.unwrap_or_else(|| "portcullis".to_owned()),
    };
    let created = state.clock().now_millis() / 1000;
    let rendered = render(shape, delivery, &model, &text, created);
    let mut resp = (
        StatusCode::OK,
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(rendered.content_type),
        )],
        rendered.body,
    )
        .into_response();
    mark(&mut resp);
    resp
}

fn mark(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(AUTH_HEADER, HeaderValue::from_static("required"));
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_shapes() {
        assert_eq!(
            shape_of("/v1/chat/completions", None).unwrap().0,
            Shape::ChatCompletion
        );
        assert_eq!(
            shape_of("/chat/completions", None).unwrap().0,
            Shape::ChatCompletion
        );
        assert_eq!(shape_of("/v1/responses", None).unwrap().0, Shape::Responses);
        assert_eq!(shape_of("/v1/messages", None).unwrap().0, Shape::Messages);
        assert_eq!(
            shape_of("/v1beta/models/g:streamGenerateContent", Some("alt=sse")),
            Some((Shape::GenerateContent, Some(Delivery::Sse)))
        );
        assert_eq!(
            shape_of("/v1beta/models/g:streamGenerateContent", None),
            Some((Shape::GenerateContent, Some(Delivery::JsonArray)))
        );
        for p in [
            "/v1/models",
            "/v1/embeddings",
            "/v1/messages/count_tokens",
            "/v1beta/models/g:countTokens",
        ] {
            assert!(shape_of(p, None).is_none(), "{p}");
        }
    }

    #[test]
    fn the_texts_say_what_to_do() {
        let m = message("http://gw/auth/login?t=x", false);
        assert!(m.starts_with("Authentication required"));
        assert!(m.contains("http://gw/auth/login?t=x"));
        assert!(message("u", true).starts_with("Re-authentication required"));
    }
}
