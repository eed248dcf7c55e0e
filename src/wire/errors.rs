//! Error bodies in each protocol's shape: OpenAI `{"error":{message,type,param,code}}`, Anthropic
//! `{"type":"error","error":{type,message}}`, Google `{"error":{code,message,status}}`; both as
//! whole JSON bodies and as a final SSE event for failures after a stream has started. Also the
//! reverse: reading the message out of an upstream's error body.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::protocol::Protocol;

/// What went wrong, independent of protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or unacceptable request (400).
    InvalidRequest,
    /// Missing or wrong credential (401).
    Authentication,
    /// Authenticated but not allowed (403).
    PermissionDenied,
    /// Unknown route, model or backend (404).
    NotFound,
    /// Body larger than the limit (413).
    RequestTooLarge,
    /// Too many requests (429).
    RateLimited,
    /// The upstream failed or could not be reached (502).
    Upstream,
    /// The upstream is overloaded or unavailable (503).
    Unavailable,
    /// The upstream did not answer in time (504).
    Timeout,
    /// A bug or an unexpected state on our side (500).
    Internal,
}

impl ErrorKind {
    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
                "invalid_request_error"
            }
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::Upstream
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Internal => "api_error",
        }
    }

    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Upstream | ErrorKind::Internal => "api_error",
        }
    }

    fn google_status(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "INVALID_ARGUMENT",
            ErrorKind::Authentication => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::RateLimited => "RESOURCE_EXHAUSTED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Timeout => "DEADLINE_EXCEEDED",
            ErrorKind::Upstream | ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// The JSON error body for `protocol`.
pub fn error_body(
    protocol: Protocol,
    kind: ErrorKind,
    status: u16,
    message: &str,
    code: Option<&str>,
    retry_after: Option<u64>,
) -> serde_json::Value {
    match protocol {
        Protocol::OpenAi => {
            let mut inner = json!({
                "message": message,
                "type": kind.openai_type(),
                "param": null,
                "code": code,
            });
            if let (Some(secs), Some(obj)) = (retry_after, inner.as_object_mut()) {
                obj.insert("retry_after".to_owned(), json!(secs));
            }
            json!({ "error": inner })
        }
        Protocol::Anthropic => json!({
            "type": "error",
            "error": { "type": kind.anthropic_type(), "message": message },
        }),
        Protocol::Gemini => json!({
            "error": { "code": status, "message": message, "status": kind.google_status() },
        }),
    }
}

/// A final SSE event carrying an error, for failures after the response headers were sent.
/// OpenAI and Gemini clients raise on a `data:` payload with an `error` member; Anthropic clients
/// on an `event: error`.
pub fn stream_error_event(
    protocol: Protocol,
    kind: ErrorKind,
    status: u16,
    message: &str,
) -> Bytes {
    let body = error_body(protocol, kind, status, message, None, None);
    let text = match protocol {
        Protocol::Anthropic => format!("event: error\ndata: {body}\n\n"),
        Protocol::OpenAi | Protocol::Gemini => format!("data: {body}\n\n"),
    };
    Bytes::from(text)
}

/// Reads the human message out of an upstream error body of any of the three shapes (or a
/// `{"detail": …}` / `{"message": …}` body as some OpenAI-compatible servers send).
pub fn upstream_error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Outer {
        error: Option<Inner>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Inner {
        Object { message: Option<String> },
        Text(String),
    }
    let outer: Outer = serde_json::from_slice(body).ok()?;
    let msg = match outer.error {
        Some(Inner::Object { message }) => message,
        Some(Inner::Text(t)) => Some(t),
        None => None,
    };
    msg.or(outer.message)
        .or(outer.detail.map(|d| match d {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
        .filter(|m| !m.is_empty())
        .map(|m| truncate(m, 2000))
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_each_protocols_shape() {
        let o = error_body(
            Protocol::OpenAi,
            ErrorKind::RateLimited,
            429,
            "slow",
            Some("auth_blocked"),
            Some(30),
        );
        assert_eq!(o["error"]["type"], "rate_limit_exceeded");
        assert_eq!(o["error"]["code"], "auth_blocked");
        assert_eq!(o["error"]["retry_after"], 30);
        let a = error_body(
            Protocol::Anthropic,
            ErrorKind::NotFound,
            404,
            "no",
            None,
            None,
        );
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "not_found_error");
        let g = error_body(
            Protocol::Gemini,
            ErrorKind::InvalidRequest,
            400,
            "bad",
            None,
            None,
        );
        assert_eq!(g["error"]["code"], 400);
        assert_eq!(g["error"]["status"], "INVALID_ARGUMENT");
    }

    #[test]
    fn reads_messages_from_every_shape() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (br#"{"error":{"message":"m1","type":"x"}}"#, Some("m1")),
            (
                br#"{"type":"error","error":{"type":"x","message":"m2"}}"#,
                Some("m2"),
            ),
            (
                br#"{"error":{"code":400,"message":"m3","status":"X"}}"#,
                Some("m3"),
            ),
            (br#"{"detail":"m4"}"#, Some("m4")),
            (b"<html>bad gateway</html>", None),
        ];
        for (body, want) in cases {
            assert_eq!(upstream_error_message(body).as_deref(), want);
        }
    }

    #[test]
    fn stream_events_are_framed_per_protocol() {
        let a = stream_error_event(Protocol::Anthropic, ErrorKind::Upstream, 502, "x");
        assert!(a.starts_with(b"event: error\ndata: {"));
        let o = stream_error_event(Protocol::OpenAi, ErrorKind::Upstream, 502, "x");
        assert!(o.starts_with(b"data: {\"error\""));
        assert!(o.ends_with(b"\n\n"));
    }
}
