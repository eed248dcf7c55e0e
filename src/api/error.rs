//! `ApiError` and the single place that turns any failure into an HTTP response in the caller's
//! protocol. Messages are written for the client; internal detail (transport errors, upstream
//! bodies that are not an error document) is logged by the caller, never put here. An upstream's
//! own error answer in the caller's protocol is carried as [`Relayed`] (its headers by the relay
//! rules, its body scrubbed) and sent instead of the gateway's body.
//!
//! Every 401 and the lockout's 429 carry `x-should-retry: false` (clients that honour it, Claude
//! Code and the official SDKs, stop retrying a wrong key instead of feeding the lockout).

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::policy::Refusal;
use crate::protocol::Protocol;
use crate::translate::TranslateError;
use crate::upstream::routing::RouteError;
use crate::upstream::{PathModelError, UpstreamError};
use crate::wire::errors::{ErrorKind, error_body};

/// A failure to report to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Protocol-independent category.
    pub kind: ErrorKind,
    /// Client-facing message.
    pub message: String,
    /// OpenAI `code` (e.g. `auth_blocked`).
    pub code: Option<&'static str>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// Tell the client not to retry (`x-should-retry: false`; implied by a 401).
    pub no_retry: bool,
    /// The upstream's error answer, relayed (same protocol only).
    pub relayed: Option<Box<Relayed>>,
}

/// What is relayed of an upstream's error answer.
#[derive(Debug, Clone)]
pub struct Relayed {
    /// The upstream's headers, filtered as for a successful answer (`proxy::relay_headers`),
    /// without `content-type` (the gateway sets it).
    pub headers: HeaderMap,
    /// The upstream's body, scrubbed, when it is the caller's protocol's error document;
    /// `None`: the gateway writes its own body.
    pub body: Option<Bytes>,
}

/// `x-should-retry`, read by Anthropic's and OpenAI's SDKs (and Claude Code) before their own
/// status-based retry rules.
const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            code: None,
            retry_after: None,
            no_retry: false,
            relayed: None,
        }
    }

    /// 400 invalid request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequest, message)
    }

    /// 404 not found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    /// 500 with a generic message (the detail goes to the log).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Internal,
            "internal error in the gateway",
        )
    }

    /// Sets the OpenAI `code`.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets `Retry-After`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Tells the client not to retry (`x-should-retry: false`).
    pub fn no_retry(mut self) -> Self {
        self.no_retry = true;
        self
    }

    /// Relays the upstream's error answer (`relayed`) instead of the gateway's body.
    pub fn relaying(mut self, relayed: Relayed) -> Self {
        self.relayed = Some(Box::new(relayed));
        self
    }

    /// The response in `protocol`'s shape.
    pub fn into_response_for(self, protocol: Protocol) -> Response {
        let (headers, body) = match self.relayed {
            Some(r) => (Some(r.headers), r.body),
            None => (None, None),
        };
        let mut resp = match body {
            Some(body) => (
                self.status,
                [(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            None => {
                let body = error_body(
                    protocol,
                    self.kind,
                    self.status.as_u16(),
                    &self.message,
                    self.code,
                    self.retry_after,
                );
                (self.status, axum::Json(body)).into_response()
            }
        };
        if let Some(headers) = headers {
            let out = resp.headers_mut();
            for (name, value) in &headers {
                if name != http::header::CONTENT_TYPE {
                    out.append(name.clone(), value.clone());
                }
            }
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.no_retry || self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
        }
        if self.status == StatusCode::UNAUTHORIZED && protocol == Protocol::OpenAi {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotInMultiUser(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorKind::PermissionDenied,
                e.to_string(),
            )
            .with_code("backend_not_available"),
            RouteError::NotGranted { .. } => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorKind::PermissionDenied,
                e.to_string(),
            )
            .with_code("model_not_allowed"),
            RouteError::NoBackend { .. } | RouteError::UnknownBackend { .. } => {
                ApiError::not_found(e.to_string()).with_code("model_not_found")
            }
            RouteError::UnknownNamedBackend { .. } | RouteError::NoDefaultBackend { .. } => {
                ApiError::not_found(e.to_string()).with_code("backend_not_found")
            }
            _ => ApiError::invalid(e.to_string()),
        }
    }
}

impl From<Refusal> for ApiError {
    /// Limits: 429 with `Retry-After` (the window's end); budgets: 402 (`budget_exceeded`) with
    /// when it resets; a request that can never fit: the same statuses, told not to retry; a model
    /// a cost budget cannot price: 403; counters or store unavailable: 503.
    fn from(r: Refusal) -> Self {
        let message = r.to_string();
        match r {
            Refusal::RateLimited {
                retry_after_secs, ..
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimited,
                message,
            )
            .with_code("rate_limit_exceeded")
            .with_retry_after(retry_after_secs),
            Refusal::BudgetExhausted {
                retry_after_secs, ..
            } => {
                let e = ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    ErrorKind::BudgetExceeded,
                    message,
                )
                .with_code("budget_exceeded");
                match retry_after_secs {
                    Some(secs) => e.with_retry_after(secs),
                    None => e.no_retry(),
                }
            }
            Refusal::NeverFits { budget: true, .. } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                ErrorKind::BudgetExceeded,
                message,
            )
            .with_code("budget_exceeded")
            .no_retry(),
            Refusal::NeverFits { budget: false, .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimited,
                message,
            )
            .with_code("request_exceeds_limit")
            .no_retry(),
            Refusal::Unpriced(_) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorKind::PermissionDenied, message)
                    .with_code("model_not_priced")
            }
            Refusal::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unavailable,
                message,
            ),
        }
    }
}

impl From<TranslateError> for ApiError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::Unsupported(m) => ApiError::invalid(format!(
                "this request cannot be translated for the backend that serves its model: {m}"
            ))
            .with_code("translation_unsupported"),
            TranslateError::Invalid(m) => ApiError::invalid(m),
            TranslateError::Upstream(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, ErrorKind::Upstream, e.to_string())
            }
        }
    }
}

impl From<PathModelError> for ApiError {
    fn from(e: PathModelError) -> Self {
        ApiError::invalid(format!(
            "invalid model id: {e}; a model named in the URL path must be one path segment"
        ))
        .with_code("invalid_model_id")
    }
}

impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout { backend } => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::Timeout,
                format!("backend `{backend}` did not respond in time"),
            ),
            UpstreamError::Connect { backend, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::Upstream,
                format!("backend `{backend}` could not be reached"),
            ),
            UpstreamError::Transport { backend, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::Upstream,
                format!("the request to backend `{backend}` failed"),
            ),
            UpstreamError::TooLarge { backend, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::Upstream,
                format!("backend `{backend}` sent a response larger than the gateway accepts"),
            ),
            UpstreamError::NoRoom { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unavailable,
                "the gateway is buffering as many large answers as it may; retry shortly",
            )
            .with_retry_after(1),
            UpstreamError::Setup { .. } => ApiError::internal(),
        }
    }
}

/// An `ApiError` bound to the protocol of the route that produced it, so handlers can return
/// `Result<Response, Failure>`.
#[derive(Debug)]
pub struct Failure(pub Protocol, pub ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.1.into_response_for(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Grant;
    use crate::upstream::routing::ModelRouter;

    /// A route the caller's grant does not allow is a 403 in the caller's protocol.
    #[tokio::test]
    async fn a_refused_grant_is_a_403_in_the_callers_protocol() {
        let mut config = crate::config::Config::default();
        let mut backend: crate::config::BackendConfig =
            serde_json::from_value(serde_json::json!({"type": "openai"})).unwrap();
        backend.base_url = Some("http://127.0.0.1:9".into());
        config.backends.insert("openai".into(), backend);
        let backends = crate::upstream::Backends::from_config(&config.backends).unwrap();
        let router = ModelRouter::new(backends, &config.routing, |_| None);
        let grant = Grant::with_rules(
            serde_json::from_value(serde_json::json!({"backends": ["groq"]})).unwrap(),
        );
        let e = router
            .resolve("openai:gpt-4o", Protocol::OpenAi, &grant)
            .unwrap_err();
        let resp = ApiError::from(e).into_response_for(Protocol::OpenAi);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["error"]["type"], "permission_error");
        assert_eq!(doc["error"]["code"], "model_not_allowed");
    }
}
