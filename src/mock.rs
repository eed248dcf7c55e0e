//! A fast, scriptable mock LLM upstream speaking the OpenAI (Chat Completions, Responses),
//! Anthropic and Gemini HTTP APIs (JSON and SSE streaming).
//!
//! Used by the gateway's tests, benchmarks, the real-client tests and the `demo` command. Every
//! successful completion answers [`MOCK_TEXT`] (Gemini's JSON mode: an instance of the requested
//! schema, see `schema.rs`); the request header `x-mock` scripts failures, delays, stream shapes,
//! the answer text, reasoning and tool calls (see `directives.rs`); so does the text after a `~`
//! in the upstream credential, which gives each key of a pool its own behaviour.
//!
//! Tool calls follow each provider's flow (`tools.rs` decides, each protocol renders): a request
//! declaring tools gets calls when `x-mock: tool=…` asks or its tool choice forces one, in the
//! provider's exact JSON and streamed shapes (OpenAI `tool_calls` with argument fragments,
//! Responses `function_call`/`custom_tool_call` items, Anthropic `tool_use` blocks with
//! `input_json_delta`s, Gemini `functionCall` parts); a request ending in a tool result is
//! answered `Tool result received: <the result>`. `x-mock: reasoning=…` opens the answer with
//! the protocol's reasoning (Anthropic `thinking`, DeepSeek `reasoning_content`, a Responses
//! `reasoning` item, Gemini `thought` parts).
//!
//! The personal-subscription connectors' upstreams have fakes too (`connectors`): the Gemini
//! CLI's, Codex's and Qwen's token endpoints, Code Assist, the ChatGPT Codex backend and the
//! Qwen portal.
//!
//! [`serve`] speaks plain HTTP/1.1 and h2c; [`tls::serve_tls`] the same over TLS with a test
//! CA made at start (`portcullis-mock --tls DIR`).

mod anthropic;
#[cfg(test)]
mod anthropic_tests;
mod batches;
mod completions;
pub mod connectors;
mod directives;
mod errors;
mod gemini;
mod gemini_embed;
#[cfg(test)]
mod gemini_tests;
mod openai;
#[cfg(test)]
mod openai_tests;
#[cfg(test)]
mod reply_tests;
mod responses;
mod schema;
mod stored_responses;
mod stream;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod test_util;
pub mod tls;
#[cfg(test)]
mod tls_tests;
mod tools;
#[cfg(test)]
mod tools_tests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::Notify;

use directives::Directives;
use errors::{Proto, error_response};

/// The assistant text of every successful completion.
pub const MOCK_TEXT: &str = "Hello from portcullis-mock.";

/// Largest request body the mock accepts.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Counters and the last request seen by a mock server; shared via `Arc`.
#[derive(Debug, Default)]
pub struct MockStats {
    requests: AtomicU64,
    connections: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
    cancelled_notify: Notify,
    last: Mutex<Option<SeenRequest>>,
    by_credential: Mutex<std::collections::HashMap<String, u64>>,
    batches: batches::Batches,
    fakes: connectors::Fakes,
}

/// The upstream credential a request carried (`Authorization: Bearer`, `x-api-key`,
/// `x-goog-api-key`).
fn credential_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        return Some(v.strip_prefix("Bearer ").unwrap_or(v));
    }
    ["x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
}

impl MockStats {
    /// The connectors' fakes (token endpoints, Code Assist, Codex, Qwen).
    pub fn fakes(&self) -> &connectors::Fakes {
        &self.fakes
    }

    /// Total requests served (all endpoints, including unknown paths).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }

    /// TLS handshakes completed (resumed ones included).
    pub fn tls_handshakes(&self) -> u64 {
        self.tls_handshakes.load(Ordering::Acquire)
    }

    /// TLS handshakes that resumed an earlier session.
    pub fn tls_resumed(&self) -> u64 {
        self.tls_resumed.load(Ordering::Acquire)
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.fetch_add(1, Ordering::AcqRel);
        if resumed {
            self.tls_resumed.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Streaming responses whose body was created.
    pub fn streams_started(&self) -> u64 {
        self.streams_started.load(Ordering::Acquire)
    }

    /// Streams whose body ran to its natural end.
    pub fn streams_completed(&self) -> u64 {
        self.streams_completed.load(Ordering::Acquire)
    }

    /// Streams whose body was dropped before its end (the client went away).
    pub fn streams_cancelled(&self) -> u64 {
        self.streams_cancelled.load(Ordering::Acquire)
    }

    /// Resolves once [`Self::streams_cancelled`] is at least `n`.
    pub async fn wait_cancelled(&self, n: u64) {
        loop {
            let notified = self.cancelled_notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.streams_cancelled() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Requests that carried `credential` (the value after `Bearer `, or of `x-api-key` /
    /// `x-goog-api-key`).
    pub fn requests_with(&self, credential: &str) -> u64 {
        self.by_credential
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(credential)
            .copied()
            .unwrap_or(0)
    }

    fn count_credential(&self, headers: &HeaderMap) {
        if let Some(c) = credential_of(headers) {
            *self
                .by_credential
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(c.to_owned())
                .or_default() += 1;
        }
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records a request and returns its 1-based sequence number.
    fn record(&self, seen: SeenRequest) -> u64 {
        let seq = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(seen);
        seq
    }

    pub(crate) fn stream_started(&self) {
        self.streams_started.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn stream_completed(&self) {
        self.streams_completed.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn stream_cancelled(&self) {
        self.streams_cancelled.fetch_add(1, Ordering::AcqRel);
        self.cancelled_notify.notify_waiters();
    }
}

/// A request as the mock received it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// HTTP version of the request, e.g. `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The router serving all mock endpoints.
pub fn router(stats: Arc<MockStats>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/responses", post(responses::create))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::list_models))
        .route(
            "/v1/models/{*rest}",
            get(openai::get_model).post(gemini::model_action),
        )
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1beta/models", get(gemini::list_models))
        .route(
            "/v1beta/models/{*rest}",
            get(gemini::get_model).post(gemini::model_action),
        )
        .merge(completions::routes())
        .merge(stored_responses::routes())
        .merge(batches::routes())
        .merge(connectors::routes())
        .fallback(not_found)
        .with_state(stats)
}

/// Serves [`router`] on `listener` (HTTP/1.1 and h2c, `TCP_NODELAY` on every
/// socket) until `shutdown` resolves, then shuts down gracefully.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stats: Arc<MockStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let counted = stats.clone();
    let listener = listener.tap_io(move |s| {
        counted.connection_accepted();
        if let Err(e) = s.set_nodelay(true) {
            tracing::debug!("mock: set_nodelay failed: {e}");
        }
    });
    axum::serve(listener, router(stats))
        .with_graceful_shutdown(shutdown)
        .await
}

/// An extracted request: recorded in [`MockStats`] as a side effect.
pub(crate) struct MockReq {
    pub(crate) stats: Arc<MockStats>,
    pub(crate) seq: u64,
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl FromRequest<Arc<MockStats>> for MockReq {
    type Rejection = Response;

    async fn from_request(req: Request, stats: &Arc<MockStats>) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(str::to_owned);
        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(e) => {
                let proto = Proto::for_path(&path);
                let msg = format!("failed to read request body: {e}");
                return Err(error_response(proto, StatusCode::BAD_REQUEST, &msg, None));
            }
        };
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), v)
            })
            .collect();
        stats.count_credential(&parts.headers);
        let seq = stats.record(SeenRequest {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            query: query.clone(),
            headers,
            body: body.clone(),
            version: format!("{:?}", parts.version),
        });
        Ok(Self {
            stats: Arc::clone(stats),
            seq,
            method: parts.method,
            path,
            query,
            headers: parts.headers,
            body,
        })
    }
}

impl MockReq {
    /// Applies the `x-mock` directives common to every endpoint: parse
    /// errors (400), `header_delay_ms` and `status`. On `Err` the handler
    /// returns the response as is.
    pub(crate) async fn prelude(&self, proto: Proto) -> Result<Directives, Response> {
        // A credential `anything~directives` scripts every request made with it (after the
        // header's directives, so it wins): tests give each key of a pool its own fault.
        let scripted = credential_of(&self.headers)
            .and_then(|c| c.split_once('~'))
            .map(|(_, d)| d);
        let combined;
        let raw = match (self.headers.get("x-mock").map(|v| v.as_bytes()), scripted) {
            (Some(h), Some(s)) => {
                combined = [h, b";", s.as_bytes()].concat();
                Some(&combined[..])
            }
            (None, Some(s)) => Some(s.as_bytes()),
            (h, None) => h,
        };
        let d = Directives::parse(raw).map_err(|m| {
            let msg = format!("invalid x-mock header: {m}");
            error_response(proto, StatusCode::BAD_REQUEST, &msg, None)
        })?;
        sleep_nonzero(d.header_delay).await;
        if let Some(status) = d.status {
            let retry = d
                .retry_after
                .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(1));
            let mut msg = format!("mock: simulated HTTP {} error", status.as_u16());
            if d.echo_credential {
                for h in ["authorization", "x-api-key", "x-goog-api-key"] {
                    if let Some(v) = self.headers.get(h).and_then(|v| v.to_str().ok()) {
                        msg.push_str(&format!("; received {h}: {v}"));
                    }
                }
            }
            if let (Proto::OpenAi, Some(code)) = (proto, &d.error_code) {
                return Err(errors::openai_coded_error(status, &msg, code, retry));
            }
            return Err(error_response(proto, status, &msg, retry));
        }
        Ok(d)
    }

    /// Deterministic prompt token count: body length / 4 + 1.
    pub(crate) fn prompt_tokens(&self) -> u64 {
        self.body.len() as u64 / 4 + 1
    }

    /// Parses the body as JSON of type `T`, or a 400 in the protocol's shape.
    #[allow(clippy::result_large_err)] // the error is the ready response, returned as is
    pub(crate) fn json<'a, T: serde::Deserialize<'a>>(
        &'a self,
        proto: Proto,
    ) -> Result<T, Response> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let msg = format!("invalid JSON body: {e}");
            error_response(proto, StatusCode::BAD_REQUEST, &msg, None)
        })
    }
}

/// Sleeps for `d` unless it is zero (a zero sleep still waits for the timer).
pub(crate) async fn sleep_nonzero(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The `created` timestamp of every mock object: fixed (2025-01-01T00:00:00Z)
/// so responses are deterministic and the system time is never read.
pub(crate) const CREATED: u64 = 1_735_689_600;

/// Splits `text` into `n` pieces on char boundaries; concatenated they give back the text
/// exactly (pieces are empty when `n` exceeds its length).
pub(crate) fn pieces(text: &str, n: usize) -> impl Iterator<Item = &str> {
    let chars = text.chars().count();
    let offset = move |k: usize| text.char_indices().nth(k).map_or(text.len(), |(i, _)| i);
    let n = n.max(1);
    (0..n).map(move |i| {
        let start = offset(i * chars / n);
        let end = offset((i + 1) * chars / n);
        text.get(start..end).unwrap_or("")
    })
}

async fn not_found(req: MockReq) -> Response {
    if req.path.starts_with("/v1internal:") && req.method == http::Method::POST {
        return connectors::code_assist(req).await;
    }
    let proto = Proto::for_path(&req.path);
    let msg = format!("mock: no route for {}", req.path);
    error_response(proto, StatusCode::NOT_FOUND, &msg, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_text() {
        for n in [1, 2, 3, 8, 27, 28, 100] {
            let v: Vec<&str> = pieces(MOCK_TEXT, n).collect();
            assert_eq!(v.len(), n);
            assert_eq!(v.concat(), MOCK_TEXT);
            let v: Vec<&str> = pieces("a\n✓b", n).collect();
            assert_eq!(v.concat(), "a\n✓b");
        }
    }

    #[test]
    fn seen_request_header_is_case_insensitive() {
        let seen = SeenRequest {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            headers: vec![("x-api-key".into(), "k".into())],
            body: Bytes::new(),
            version: "HTTP/1.1".into(),
        };
        assert_eq!(seen.header("X-Api-Key"), Some("k"));
        assert_eq!(seen.header("missing"), None);
    }
}
