//! Error bodies in each protocol's shape: OpenAI `{"error":{message,type,param,code}}`, Anthropic
//! `{"type":"error","error":{type,message}}`, Google `{"error":{code,message,status}}`; both as
//! whole JSON bodies and as a final SSE event for failures after a stream has started (an
//! OpenAI Responses stream ends with its own `response.failed` event). Also the reverse: reading
//! an upstream's error body — its message, whether it is the protocol's error document (then it
//! is relayed, scrubbed, rather than rebuilt), and the facts the pool acts on (an exhausted
//! account quota, Google's `RetryInfo` delay).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::protocol::{Operation, Protocol};

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
    /// A budget of the caller's is spent (402).
    BudgetExceeded,
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
            ErrorKind::BudgetExceeded => "budget_exceeded",
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
            // Anthropic's type for a 402.
            ErrorKind::BudgetExceeded => "billing_error",
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
            ErrorKind::RateLimited | ErrorKind::BudgetExceeded => "RESOURCE_EXHAUSTED",
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

/// A final SSE event carrying an error, for failures after the response headers were sent, in
/// the shape of the stream `operation` (of `protocol`) produces. OpenAI and Gemini clients raise
/// on a `data:` payload with an `error` member; Anthropic clients on an `event: error`. An OpenAI
/// Responses stream ends with `event: response.failed` — the event its typed readers (Codex)
/// wait for, `response.status` `failed` and `response.error` `{code, message}` — which also
/// carries the `error` member the SDKs raise on.
pub fn stream_error_event(
    protocol: Protocol,
    operation: Option<Operation>,
    kind: ErrorKind,
    status: u16,
    message: &str,
) -> Bytes {
    let text = match (protocol, operation) {
        (Protocol::OpenAi, Some(Operation::Responses)) => {
            let code = "server_error";
            let error = json!({ "code": code, "message": message });
            let event = json!({
                "type": "response.failed",
                "response": {
                    "object": "response",
                    "status": "failed",
                    "error": error,
                    "output": [],
                },
                "error": { "message": message, "type": kind.openai_type(), "param": null, "code": code },
            });
            format!("event: response.failed\ndata: {event}\n\n")
        }
        (Protocol::Anthropic, _) => format!(
            "event: error\ndata: {}\n\n",
            error_body(protocol, kind, status, message, None, None)
        ),
        (Protocol::OpenAi | Protocol::Gemini, _) => format!(
            "data: {}\n\n",
            error_body(protocol, kind, status, message, None, None)
        ),
    };
    Bytes::from(text)
}

/// An upstream's error body to relay to a client of `protocol`: the body re-serialised with
/// `scrub` applied to every string in it (names included, after JSON unescaping, so an escaped
/// secret is found too), when it is `protocol`'s error document; `None` when it is not (HTML
/// from a proxy, another protocol's shape, no message): then the gateway writes its own.
pub fn relayable_error_body(
    protocol: Protocol,
    body: &[u8],
    scrub: &dyn Fn(String) -> String,
) -> Option<Bytes> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let error = doc.get("error")?;
    let has = |field: &str, check: fn(&Value) -> bool| error.get(field).is_some_and(check);
    let shaped = has("message", Value::is_string)
        && match protocol {
            Protocol::OpenAi => true,
            Protocol::Anthropic => {
                doc.get("type").and_then(Value::as_str) == Some("error")
                    && has("type", Value::is_string)
            }
            Protocol::Gemini => has("code", Value::is_u64),
        };
    if !shaped {
        return None;
    }
    scrub_strings(&mut doc, scrub);
    serde_json::to_vec(&doc).ok().map(Bytes::from)
}

/// Applies `scrub` to every string and member name of `v`.
fn scrub_strings(v: &mut Value, scrub: &dyn Fn(String) -> String) {
    match v {
        Value::String(s) => *s = scrub(std::mem::take(s)),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub_strings(i, scrub)),
        Value::Object(map) => {
            for (name, mut item) in std::mem::take(map) {
                scrub_strings(&mut item, scrub);
                map.insert(scrub(name), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// What an upstream error body says that matters beyond this request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorFacts {
    /// OpenAI's `insufficient_quota`: the account behind the credential is out of quota or
    /// credit — not a rate limit that passes in seconds.
    pub quota_exhausted: bool,
    /// Google's `RetryInfo.retryDelay`, in whole seconds (rounded up).
    pub retry_delay_secs: Option<u64>,
}

/// Reads the [`ErrorFacts`] of an upstream error body (any protocol's shape).
pub fn error_facts(body: &[u8]) -> ErrorFacts {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return ErrorFacts::default();
    };
    // Kiro (CodeWhisperer): `{"message", "reason"}` at the top; its plan's quota is spent.
    if let Some(reason) = doc.get("reason").and_then(Value::as_str) {
        return ErrorFacts {
            quota_exhausted: matches!(
                reason,
                "MONTHLY_REQUEST_COUNT" | "OVERAGE_REQUEST_LIMIT_EXCEEDED" | "DAILY_REQUEST_COUNT"
            ),
            retry_delay_secs: None,
        };
    }
    let Some(error) = doc.get("error") else {
        return ErrorFacts::default();
    };
    let says = |field: &str| error.get(field).and_then(Value::as_str) == Some("insufficient_quota");
    let retry_delay_secs = error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            d.get("retryDelay")
                .and_then(Value::as_str)
                .and_then(seconds)
        });
    // ChatGPT's Codex backend: the plan's window and when it resets.
    let resets_in = error.get("resets_in_seconds").and_then(Value::as_u64);
    ErrorFacts {
        quota_exhausted: says("code") || says("type"),
        retry_delay_secs: retry_delay_secs.or(resets_in),
    }
}

/// A protobuf JSON duration (`"37s"`, `"1.5s"`) in whole seconds, rounded up.
fn seconds(text: &str) -> Option<u64> {
    let n: f64 = text.strip_suffix('s')?.parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| n.ceil().min(u64::MAX as f64) as u64)
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
        let a = stream_error_event(Protocol::Anthropic, None, ErrorKind::Upstream, 502, "x");
        assert!(a.starts_with(b"event: error\ndata: {"));
        let o = stream_error_event(
            Protocol::OpenAi,
            Some(Operation::ChatCompletions),
            ErrorKind::Upstream,
            502,
            "x",
        );
        assert!(o.starts_with(b"data: {\"error\""));
        assert!(o.ends_with(b"\n\n"));
        let r = stream_error_event(
            Protocol::OpenAi,
            Some(Operation::Responses),
            ErrorKind::Upstream,
            502,
            "broke",
        );
        let text = std::str::from_utf8(&r).unwrap();
        let data = text
            .strip_prefix("event: response.failed\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], "response.failed");
        assert_eq!(v["response"]["status"], "failed");
        assert_eq!(
            v["response"]["error"],
            json!({"code": "server_error", "message": "broke"})
        );
        assert_eq!(v["error"]["message"], "broke", "what the SDKs raise on");
    }

    #[test]
    fn only_the_protocols_own_error_document_is_relayed_and_every_string_is_scrubbed() {
        let hide = |s: String| s.replace("sk-secret", "***");
        let openai = br#"{"error":{"message":"bad sk-secret","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let out = relayable_error_body(Protocol::OpenAi, openai, &hide).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "bad ***");
        assert_eq!(v["error"]["param"], "messages");
        assert_eq!(v["error"]["code"], "context_length_exceeded");
        // An escaped secret is unescaped before the scrub; member names are scrubbed too.
        let escaped = br#"{"error":{"message":"m","\u0073k-secret":"\u0073k-secret"}}"#;
        let out = relayable_error_body(Protocol::OpenAi, escaped, &hide).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("secret"), "{out:?}");
        let anthropic = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
        assert!(relayable_error_body(Protocol::Anthropic, anthropic, &hide).is_some());
        let gemini = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[]}}"#;
        assert!(relayable_error_body(Protocol::Gemini, gemini, &hide).is_some());
        for (protocol, body) in [
            (Protocol::Anthropic, &openai[..]),
            (Protocol::Gemini, &anthropic[..]),
            (Protocol::OpenAi, br#"{"error":"text"}"#),
            (Protocol::OpenAi, b"<html>bad gateway</html>"),
            (Protocol::OpenAi, br#"[{"error":{"message":"m"}}]"#),
        ] {
            assert!(
                relayable_error_body(protocol, body, &hide).is_none(),
                "{protocol:?}: {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn facts_read_from_error_bodies() {
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(error_facts(quota).quota_exhausted);
        let limit =
            br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(error_facts(limit), ErrorFacts::default());
        let google =
            br#"{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.2s"}]}}"#;
        assert_eq!(error_facts(google).retry_delay_secs, Some(37));
        assert_eq!(error_facts(b"not json"), ErrorFacts::default());
        // The subscription connectors' plans: Codex says when its window resets, Kiro only
        // that the month's quota is spent.
        let codex = br#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_in_seconds":86400}}"#;
        assert_eq!(error_facts(codex).retry_delay_secs, Some(86400));
        assert!(!error_facts(codex).quota_exhausted);
        let kiro = br#"{"message":"You have reached the limit.","reason":"MONTHLY_REQUEST_COUNT"}"#;
        assert!(error_facts(kiro).quota_exhausted);
        let other = br#"{"message":"Invalid model.","reason":"INVALID_MODEL_ID"}"#;
        assert_eq!(error_facts(other), ErrorFacts::default());
    }
}
