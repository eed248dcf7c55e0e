//! Error responses in each protocol's own shape (OpenAI, Anthropic, Google).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// The wire protocol an endpoint speaks, which decides the error shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    OpenAi,
    Anthropic,
    Google,
}

impl Proto {
    /// The protocol of an unknown path, guessed from its prefix.
    pub(crate) fn for_path(path: &str) -> Self {
        if path.starts_with("/v1beta") {
            Self::Google
        } else if path.starts_with("/v1/messages") {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }
}

/// An error response with `status`, `message` and an optional `Retry-After`.
pub(crate) fn error_response(
    proto: Proto,
    status: StatusCode,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = match proto {
        Proto::OpenAi => {
            let (kind, code) = openai_kind(status);
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Proto::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_kind(status), "message": message},
        }),
        Proto::Google => json!({
            "error": {"code": status.as_u16(), "message": message, "status": google_status(status)},
        }),
    };
    respond(status, body, retry_after)
}

/// An OpenAI error answer carrying a provider's `code`, as real providers send it:
/// `insufficient_quota` is also its `type`; `context_length_exceeded` names `messages` as the
/// `param`.
pub(crate) fn openai_coded_error(
    status: StatusCode,
    message: &str,
    code: &str,
    retry_after: Option<u64>,
) -> Response {
    let kind = match code {
        "insufficient_quota" => "insufficient_quota",
        _ => openai_kind(status).0,
    };
    let param = (code == "context_length_exceeded").then_some("messages");
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    respond(status, body, retry_after)
}

/// `body` as JSON with `status` and an optional `Retry-After`.
fn respond(status: StatusCode, body: serde_json::Value, retry_after: Option<u64>) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn openai_kind(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        401 => ("invalid_request_error", "invalid_api_key"),
        403 => ("permission_error", "permission_denied"),
        404 => ("invalid_request_error", "not_found"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        500..=599 => ("server_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request"),
    }
}

fn anthropic_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn google_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}
