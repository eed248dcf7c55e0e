//! One structured log line per request, written when the server has sent the answer (so a
//! stream's line carries its full duration and the usage reported at its end) or when the client
//! goes away: [`access_log`] hands the server a [`Finish`] beside the response, and the server
//! tells it how the sending ended. Handlers add what they learn (backend, model, upstream
//! status, usage, principal) to the request's [`RequestLog`]. Paths are logged without their
//! query: `?key=` never reaches a log.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;

use crate::identity::Principal;
use crate::protocol::Protocol;
use crate::state::AppState;
use crate::telemetry::{RequestSample, Telemetry};
use crate::wire::usage::Usage;

/// What a handler learned about a request, for its log line.
#[derive(Debug, Default)]
pub struct RequestRecord {
    /// Backend name.
    pub backend: Option<Arc<str>>,
    /// Model as sent upstream.
    pub model: Option<Arc<str>>,
    /// Upstream HTTP status.
    pub upstream_status: Option<u16>,
    /// Id of the pool credential that served (or last failed) the request.
    pub credential: Option<Arc<str>>,
    /// Credentials given up on before the answer (failovers).
    pub failovers: u32,
    /// Token usage reported by the upstream.
    pub usage: Usage,
    /// Who called (logged as [`Principal::label`]: key name, token public id, user; never a
    /// secret). Kept as it is and labelled only when a line is written.
    pub principal: Option<Principal>,
    /// Set when a stream ended abnormally.
    pub stream_error: Option<&'static str>,
    /// The backend's dialect when the request was translated (`chat`, `anthropic`, `gemini`).
    pub translated_to: Option<&'static str>,
    /// Why authentication refused the request (`missing`, `invalid`, `blocked`).
    pub auth_failure: Option<&'static str>,
    /// The operation sent upstream (`chat_completions`, `messages`, `list_models`, …).
    pub operation: Option<&'static str>,
}

/// Identity of a request for capture records: its id and `ip (user-agent)`.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// Unique within the process run.
    pub id: Arc<str>,
    /// `ip (user-agent)`.
    pub source: Arc<str>,
}

impl Default for RequestMeta {
    fn default() -> Self {
        Self {
            id: Arc::from("-"),
            source: Arc::from("-"),
        }
    }
}

/// The client address of the request (the peer, or from `X-Forwarded-For` behind a trusted
/// proxy), computed once by the access-log layer.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

impl ClientIp {
    /// The client address of `req` (unspecified if the access-log layer did not run).
    pub fn of<B>(req: &http::Request<B>) -> std::net::IpAddr {
        Attached::of(req.extensions()).map_or(UNSPECIFIED, Attached::client_ip)
    }
}

const UNSPECIFIED: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// What the access log gives every request: its record, its client address and the peer it
/// came from. Handed to the next step as a value; a request that goes on to the router carries
/// it as an extension ([`Attached::attach`]), where its handlers find it.
#[derive(Debug, Clone)]
pub(crate) struct Attached {
    log: RequestLog,
    client_ip: ClientIp,
    peer: SocketAddr,
}

impl Attached {
    /// What the access log attached to a request that carries it.
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&Attached> {
        extensions.get::<Attached>()
    }

    /// Puts it in the request's extensions (one allocation for the map, one for the value).
    pub(crate) fn attach(self, req: &mut Request) {
        req.extensions_mut().insert(self);
    }

    /// The request's record.
    pub(crate) fn log(&self) -> &RequestLog {
        &self.log
    }

    /// The client address (the peer, or `X-Forwarded-For`'s behind a trusted proxy).
    pub(crate) fn client_ip(&self) -> std::net::IpAddr {
        self.client_ip.0
    }

    /// The address the connection came from.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// Shared handle to a request's record.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<RequestRecord>>);

impl RequestLog {
    /// The record the access log attached to a request (`None` if it did not run).
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&RequestLog> {
        Attached::of(extensions).map(Attached::log)
    }

    /// Changes the record.
    pub fn update(&self, f: impl FnOnce(&mut RequestRecord)) {
        if let Ok(mut r) = self.0.lock() {
            f(&mut r);
        }
    }

    /// Who called, once the guard has accepted the credential.
    pub(crate) fn principal(&self) -> Option<Principal> {
        self.0.lock().ok()?.principal.clone()
    }
}

struct Entry {
    status: u16,
    started: Instant,
    ttfb: Duration,
    log: RequestLog,
    /// The access line's own fields; `None` when the access log is off (metrics only). Boxed:
    /// the entry is moved with the answer through the server's steps, and is small without it.
    line: Option<Box<Line>>,
    telemetry: Telemetry,
    /// The route group of the path (the label when no handler named an operation).
    group: &'static str,
    /// The caller's protocol on the model API, empty elsewhere.
    protocol: &'static str,
}

/// What only the access line needs.
struct Line {
    request_id: String,
    method: http::Method,
    path: String,
    client_ip: std::net::IpAddr,
    user_agent: Option<String>,
    /// The client chose the path and the model: a secret typed there is masked.
    secrets: Arc<crate::masking::LiveSecrets>,
}

impl Entry {
    fn emit(self, outcome: &'static str) {
        let elapsed = self.started.elapsed();
        let Ok(rec) = self.log.0.lock() else { return };
        if self.telemetry.is_enabled() {
            self.telemetry.request(&RequestSample {
                route: rec.operation.unwrap_or(self.group),
                protocol: self.protocol,
                backend: rec.backend.as_deref(),
                model: rec.model.as_deref(),
                status: self.status,
                latency: elapsed,
                ttfb: self.ttfb,
                input_tokens: rec.usage.input_tokens.unwrap_or(0),
                output_tokens: rec.usage.output_tokens.unwrap_or(0),
                cached_tokens: rec.usage.cached_input_tokens.unwrap_or(0),
                stream_error: rec.stream_error,
            });
        }
        let Some(line) = &self.line else { return };
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let ttfb_ms = self.ttfb.as_secs_f64() * 1000.0;
        let masker = line.secrets.masker();
        let path = masker.mask_str(&line.path);
        let model = rec.model.as_deref().map(|m| masker.mask_str(m));
        tracing::info!(
            target: "portcullis::access",
            request_id = %line.request_id,
            method = %line.method,
            path = %path,
            status = self.status,
            latency_ms = (latency_ms * 1000.0).round() / 1000.0,
            ttfb_ms = (ttfb_ms * 1000.0).round() / 1000.0,
            client_ip = %line.client_ip,
            user_agent = line.user_agent.as_deref(),
            principal = rec.principal.as_ref().map(|p| p.label()).as_deref(),
            backend = rec.backend.as_deref(),
            model = model.as_deref(),
            upstream_status = rec.upstream_status,
            credential = rec.credential.as_deref(),
            failovers = (rec.failovers > 0).then_some(rec.failovers),
            input_tokens = rec.usage.input_tokens,
            output_tokens = rec.usage.output_tokens,
            total_tokens = rec.usage.total(),
            stream_error = rec.stream_error,
            translated_to = rec.translated_to,
            auth_failure = rec.auth_failure,
            outcome,
            "request"
        );
    }
}

/// Makes the request's [`Attached`] (a [`RequestLog`], the [`ClientIp`], the peer), runs `next`
/// on the request with it, and logs the request when the answer's body is done (the outermost
/// step of every request, composed by `server::App`, which gives the connection's `peer`).
#[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
pub(crate) fn access_log<F>(
    state: &AppState,
    mut req: Request,
    peer: SocketAddr,
    next: impl FnOnce(Request, Attached) -> F,
) -> impl Future<Output = (Response, Finish)>
where
    F: Future<Output = Response>,
{
    async move {
        let started = Instant::now();
        let log = RequestLog::default();
        let logging = tracing::enabled!(target: "portcullis::access", tracing::Level::INFO);
        let client_ip = crate::net::client_ip(peer.ip(), req.headers(), state.trusted_proxies());
        let attached = Attached {
            log: log.clone(),
            client_ip: ClientIp(client_ip),
            peer,
        };
        let telemetry = state.telemetry();
        let capturing = state.capture().is_enabled();
        if !logging && !capturing && !telemetry.is_enabled() {
            // Nothing will read the line: skip the id and the copies.
            return (next(req, attached).await, Finish(None));
        }
        let path = req.uri().path();
        let group = route_group(path);
        let protocol = if group == MODEL_API {
            protocol_label(Protocol::of_request(path, req.headers(), req.uri().query()))
        } else {
            ""
        };
        // The id, the user agent and the path are copied only for a log line or a capture record.
        let line = (logging || capturing).then(|| Line {
            request_id: state.next_request_id(),
            method: req.method().clone(),
            path: path.to_owned(),
            client_ip,
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect()),
            secrets: state.secrets().clone(),
        });
        if let Some(l) = line.as_ref().filter(|_| capturing) {
            let source = format!("{} ({})", client_ip, l.user_agent.as_deref().unwrap_or("-"));
            req.extensions_mut().insert(RequestMeta {
                id: Arc::from(l.request_id.as_str()),
                source: Arc::from(source),
            });
        }
        let resp = next(req, attached).await;
        let ttfb = started.elapsed();
        let entry = Entry {
            status: resp.status().as_u16(),
            started,
            ttfb,
            log,
            line: line.filter(|_| logging).map(Box::new),
            telemetry: telemetry.clone(),
            group,
            protocol,
        };
        (resp, Finish(Some(entry)))
    }
}

/// How the server's sending of an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// All of it went out (a body the answer may not have — HEAD, 204, 304 — left out).
    Completed,
    /// The answer's body failed midway (an upstream stream broke).
    BodyError,
    /// The client went away (or its connection was closed) before all of it went out.
    ClientDisconnected,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::BodyError => "body_error",
            Outcome::ClientDisconnected => "client_disconnected",
        }
    }
}

/// A request's line and telemetry, still to be written: the server says how the answer's
/// sending ended ([`Finish::sent`]). One dropped unsaid — its connection closed under it — is
/// written as a client that went away.
pub(crate) struct Finish(Option<Entry>);

impl Finish {
    /// Writes the line (nothing when logging, capture and metrics are all off).
    pub(crate) fn sent(mut self, outcome: Outcome) {
        if let Some(entry) = self.0.take() {
            entry.emit(outcome.label());
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        if let Some(entry) = self.0.take() {
            entry.emit(Outcome::ClientDisconnected.label());
        }
    }
}

/// The route label of requests no handler named an operation for: the model API's (refused
/// before routing, or answered by the gateway itself), or the group the path belongs to.
const MODEL_API: &str = "model_api";

/// The route group of `path`, a bounded metric label.
fn route_group(path: &str) -> &'static str {
    // A byte loop: the segment is a few bytes, shorter than a `str` search takes to set up.
    let rest = path.trim_start_matches('/');
    let first = rest
        .bytes()
        .position(|b| b == b'/')
        .map_or(rest, |end| &rest[..end]);
    match first {
        "v1" | "v1beta" | "chat" | "completions" | "embeddings" | "models" | "moderations"
        | "responses" | "messages" => MODEL_API,
        "v0" => "management",
        "auth" => "pages",
        "oauth" | ".well-known" | "token" | "verify-token" => "token_server",
        "health" | "healthz" | "internal" => "health",
        "metrics" => "metrics",
        "admin" => "admin",
        "openapi.json" | "docs" => "docs",
        _ => "other",
    }
}

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::OpenAi => "openai",
        Protocol::Anthropic => "anthropic",
        Protocol::Gemini => "gemini",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_grouped_by_its_first_segment() {
        for (path, group) in [
            ("/v1/chat/completions", MODEL_API),
            ("/v1beta/models/gemini-2.5-pro:generateContent", MODEL_API),
            ("/messages", MODEL_API),
            ("//v0/management/keys", "management"),
            ("/v0", "management"),
            ("/health", "health"),
            ("/metrics/", "metrics"),
            ("/.well-known/openid-configuration", "token_server"),
            ("/v1x/chat", "other"),
            ("/", "other"),
            ("", "other"),
        ] {
            assert_eq!(route_group(path), group, "{path}");
        }
    }
}
