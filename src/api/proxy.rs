//! The passthrough pipeline shared by every model endpoint: read the model out of the request,
//! route it (with the caller's grant), call the route's provider (`upstream::Provider::call`,
//! which picks the credential and fails over), and relay the answer — JSON bodies whole (with a
//! known length), streams chunk by chunk as they arrive — scrubbed of the credential's and the
//! backend's secrets, its usage settled through the pool's `Lease` when the operation spent it
//! (`Operation::spends_tokens`: not for token counts or objects read back). Nothing here touches
//! a credential's health. An answer that creates an object the provider keeps (a stored
//! response, a message batch) has its id remembered with the credential and caller that created
//! it (`upstream::owners`), so follow-up calls can ask for that credential (`Forward::prefer`).
//!
//! Deliberate rewrites in passthrough: the `model` field is replaced when the client named
//! `backend:model` or an alias; upstream 401/403 become 502 (the client's own credential was
//! fine); an upstream 4xx is relayed with its headers and, when it is the protocol's error
//! document, its body (scrubbed) — otherwise the gateway writes one that is; a 5xx becomes the
//! gateway's 502/503/504 with the upstream's message and headers; a stream that fails midway ends
//! with the protocol's error event (a Responses stream with `response.failed`); a message batch's
//! `results_url` (the provider's address) becomes the gateway's path for it.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::context::Ctx;
use super::error::{ApiError, Relayed};
use super::hooks::{Attempts, Hooks};
use super::metering::{self, Settlement};
use super::translated::Translation;
use crate::clock::SharedClock;
use crate::policy::Spent;
use crate::pool::Unavailable;
use crate::protocol::{Operation, Protocol};
use crate::secret::scrub::{Scrubber, StreamScrub};
use crate::state::AppState;
use crate::upstream::budget::{Claim, ClaimedBytes};
use crate::upstream::owners::{ObjectOwners, Owner};
use crate::upstream::routing::Route;
use crate::upstream::{
    Answer, Backend, Call, CallError, Endpoint, Refusal, UpstreamError, UpstreamResponse,
};
use crate::wire::errors::{ErrorKind, relayable_error_body, upstream_error_message};
use crate::wire::objects::{created_object_id, local_results_urls};
use crate::wire::sse::DataLineScanner;
use crate::wire::usage::{Usage, parse_stream_usage, parse_usage};
use std::sync::Arc;

mod tap;
use tap::StreamTap;

/// Largest upstream body buffered for a non-streaming answer.
const MAX_UPSTREAM_BODY: usize = 256 * 1024 * 1024;
/// Largest model list read from a backend (the biggest real ones are a few hundred KiB).
pub(crate) const MAX_MODEL_LIST: usize = 8 * 1024 * 1024;

/// One upstream call through the route's provider (which fails over while nothing has reached
/// the client) and the relay of its answer.
pub(crate) struct Forward<'a> {
    pub(crate) protocol: Protocol,
    pub(crate) route: &'a Route,
    pub(crate) endpoint: Endpoint<'a>,
    /// The client's query string as received (the provider drops its credentials).
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
    /// The client asked for a stream.
    pub(crate) stream: bool,
    pub(crate) ctx: &'a Ctx,
    pub(crate) state: &'a AppState,
    /// The pool credential to ask for first: the one that created the object the request
    /// follows up on (`upstream::owners`).
    pub(crate) prefer: Option<Arc<str>>,
    /// The answer is translated back to the caller's dialect (`translated`).
    pub(crate) translation: Option<Translation>,
}

/// What the relay does with an accepted answer besides passing it on, by operation.
struct AnswerRules {
    /// The reported usage was spent by this request: it is deducted from the quota (not for
    /// token counts or objects read back).
    spends: bool,
    /// The answer creates an object: its owner is remembered under the id it carries.
    remember: Option<Remember>,
    /// Message batch answers: their `results_url` is rewritten to the gateway's path.
    batch_urls: bool,
    /// The answer is re-expressed in the caller's dialect.
    translation: Option<Translation>,
    /// The room a non-streamed answer takes in the process's budget for buffered answers.
    buffer: Claim,
    /// Counts a relayed stream in flight (`portcullis_streams_in_flight`).
    telemetry: crate::telemetry::Telemetry,
}

/// Remembers who created the object an answer describes.
struct Remember {
    objects: Arc<ObjectOwners>,
    owner: Owner,
    clock: SharedClock,
}

impl Remember {
    fn object(&self, id: &str) {
        self.objects
            .remember(id, self.owner.clone(), self.clock.now_millis());
    }
}

/// The answer when every credential of the provider is cooling down or used up. When every one
/// is out of quota (the provider's account quota or the gateway's token quota), its `code` is
/// OpenAI's `insufficient_quota`, which clients report as such instead of retrying.
fn all_unavailable(backend: &str, u: &Unavailable) -> ApiError {
    let mut why = Vec::new();
    if u.cooling > 0 {
        why.push(format!("{} cooling down after upstream errors", u.cooling));
    }
    if u.quota_exceeded > 0 {
        why.push(format!(
            "{} whose account the provider reported out of quota",
            u.quota_exceeded
        ));
    }
    if u.exhausted > 0 {
        why.push(format!("{} with their token quota used up", u.exhausted));
    }
    if u.expired > 0 {
        why.push(format!(
            "{} with an expired OAuth token (log in again)",
            u.expired
        ));
    }
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::RateLimited,
        format!(
            "every upstream credential of backend `{backend}` is unavailable ({}); the soonest is available again in {} s",
            why.join(", "),
            u.retry_after_secs
        ),
    )
    .with_code(
        if u.cooling == 0 && u.expired == 0 && u.quota_exceeded + u.exhausted > 0 {
            "insufficient_quota"
        } else {
            "all_credentials_unavailable"
        },
    )
    .with_retry_after(u.retry_after_secs)
}

impl Forward<'_> {
    /// Sends the request and relays the answer (an `async move` block, for the reason
    /// [`relay`] gives).
    #[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
    pub(crate) fn run(self) -> impl Future<Output = Result<Response, ApiError>> {
        async move {
            let provider = &self.route.provider;
            let backend = &provider.backend;
            let operation = match self.endpoint {
                Endpoint::Op(op, _) => op.name(),
                Endpoint::ListModels => "list_models",
                Endpoint::GetModel(_) => "get_model",
            };
            self.ctx.log.update(|r| {
                r.backend = Some(backend.name.clone());
                r.model = Some(self.route.model.clone()).filter(|m| !m.is_empty());
                r.operation = Some(operation);
            });
            let operation = match self.endpoint {
                Endpoint::Op(op, _) => Some(op),
                Endpoint::ListModels | Endpoint::GetModel(_) => None,
            };
            // Limits and budgets: reserved before the call, settled with the answer's usage (an
            // unmetered grant does not even call into the policy).
            let mut admission = match operation {
                Some(op) if self.state.policy().meters(&self.ctx.grant) => {
                    let body = self.body.as_deref();
                    metering::admit(self.state, self.ctx, self.route, op, body).await?
                }
                _ => None,
            };
            // The call's arguments and the attempts' record end with the call (in a block, and
            // the call built in place), so that the relay's state does not sit beside them.
            let (answered, hooks) = {
                let mut attempts = Attempts {
                    hooks: self.ctx.hooks(),
                    ctx: self.ctx,
                    route: self.route,
                };
                let call = Call {
                    endpoint: self.endpoint,
                    query: self.query,
                    headers: self.headers,
                    body: self.body,
                    prefer: self.prefer.as_deref(),
                };
                let answered = provider.call(call, self.state.clock(), &mut attempts).await;
                (answered, attempts.hooks)
            };
            let Answer { response, lease } = match answered {
                Ok(answer) => answer,
                Err(e) => {
                    if let Some(a) = admission {
                        a.settle(Spent::NOTHING);
                    }
                    return Err(call_error(self.protocol, backend, e));
                }
            };
            if let Some(a) = &mut admission {
                a.answered();
            }
            // A broken stream ends with the caller's operation's error event.
            let shape = match &self.translation {
                Some(t) => (self.protocol, Some(t.caller.operation(true))),
                None => (self.protocol, operation),
            };
            let translated = self.translation.is_some();
            let remember = operation
                .filter(|op| op.creates_object() && !translated)
                .zip(lease.as_ref())
                .map(|(_, l)| Remember {
                    objects: provider.objects().clone(),
                    owner: Owner {
                        credential: l.credential_id().clone(),
                        caller: self.ctx.who(),
                    },
                    clock: self.state.clock().clone(),
                });
            let rules = AnswerRules {
                spends: operation.is_some_and(Operation::spends_tokens),
                remember,
                batch_urls: matches!(
                    operation,
                    Some(
                        Operation::MessageBatchCreate
                            | Operation::MessageBatchList
                            | Operation::MessageBatchRetrieve
                            | Operation::MessageBatchCancel
                    )
                ),
                translation: self.translation,
                buffer: self.state.answer_budget().claim(),
                telemetry: self.state.telemetry().clone(),
            };
            let settlement = Settlement::new(lease, admission);
            relay(
                shape,
                self.stream,
                backend,
                response,
                hooks,
                settlement,
                rules,
            )
            .await
        }
    }
}

/// The client's error for a call that produced no accepted answer.
fn call_error(protocol: Protocol, backend: &Backend, e: CallError) -> ApiError {
    match e {
        CallError::Prepare(e) => {
            tracing::error!(backend = %backend.name, error = %e, "cannot build the upstream request");
            ApiError::from(&e)
        }
        CallError::Unavailable { backend, why } => all_unavailable(&backend, &why),
        CallError::Transport(e) => ApiError::from(&e),
        CallError::Status(refusal) => upstream_failure(protocol, backend, refusal),
    }
}

/// Relays a successful upstream answer: streams through [`StreamTap`], bodies whole. `shape`:
/// the caller's protocol and operation, which decide how a broken stream ends.
///
/// Written as a function returning an `async move` block, not as an `async fn`: an `async fn`
/// moves each argument into a local of its own, and its state machine keeps both copies (here
/// ~700 bytes), which every request's future would carry (bench/PROFILE.md §19).
#[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
fn relay(
    shape: (Protocol, Option<Operation>),
    stream: bool,
    backend: &Backend,
    mut upstream: UpstreamResponse,
    hooks: Hooks,
    mut settlement: Settlement,
    mut rules: AnswerRules,
) -> impl Future<Output = Result<Response, ApiError>> {
    async move {
        let status = upstream.status();
        let scrubbers = [
            settlement.scrubber().cloned(),
            Some(backend.scrubber().clone()),
        ];
        let headers = match relay_headers(upstream.headers().iter(), scrubbers.iter().flatten()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(backend = %backend.name, "upstream response headers exceed the relay limit");
                return Err(e);
            }
        };
        let is_sse = upstream
            .headers()
            .get(&http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let collect = rules.translation.as_ref().is_some_and(|t| t.collect);
        if (stream || is_sse) && !collect {
            hooks.stream_start(status, upstream.headers());
            let tap = StreamTap {
                inner: upstream.into_body(),
                scrub: StreamScrub::new(scrubbers.into_iter().flatten()),
                held_out: None,
                scanner: (is_sse && (rules.spends || rules.remember.is_some()))
                    .then(DataLineScanner::default),
                translator: rules.translation.as_ref().map(Translation::stream),
                usage: Usage::default(),
                spends: rules.spends,
                remember: rules.remember,
                hooks,
                shape,
                backend: backend.name.clone(),
                finished: false,
                settlement,
                _in_flight: rules.telemetry.stream(),
            };
            let mut resp = Response::new(Body::from_stream(tap));
            *resp.status_mut() = status;
            *resp.headers_mut() = headers;
            // A translated stream is the caller's SSE whatever the upstream's framing (Kiro's).
            if rules.translation.is_some() && !is_sse {
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
            }
            if is_sse || rules.translation.is_some() {
                resp.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache"),
                );
                resp.headers_mut()
                    .insert("x-accel-buffering", HeaderValue::from_static("no"));
            }
            return Ok(resp);
        }
        let upstream_headers = hooks.capturing().then(|| upstream.take_headers().to_map());
        let read = upstream
            .read_claimed(MAX_UPSTREAM_BODY, &mut rules.buffer)
            .await;
        let body = match read.map_err(|e| read_failure(backend, &e)) {
            Ok(b) => b,
            Err(e) => {
                settlement.broke();
                return Err(e);
            }
        };
        hooks.answer(status, upstream_headers.as_ref(), &body);
        let read_usage = |body: &[u8]| match &rules.translation {
            Some(t) if t.collect => t
                .binary_stream_usage(body)
                .or_else(|| parse_stream_usage(body)),
            _ => parse_usage(body),
        };
        let usage = match rules.spends.then(|| read_usage(&body)).flatten() {
            Some(u) => {
                hooks.log.update(|r| r.usage = u);
                u
            }
            None => Usage::default(),
        };
        settlement.settle(&usage, rules.spends);
        if let Some(r) = &rules.remember
            && let Some(id) = created_object_id(&body)
        {
            r.object(&id);
        }
        let mut body = scrubbers
            .iter()
            .flatten()
            .fold(body, |b, s| s.scrub_body(b));
        if rules.batch_urls
            && let Some(rewritten) = local_results_urls(&body)
        {
            body = rewritten;
        }
        if let Some(t) = &rules.translation {
            body = t.answer(&body)?;
        }
        let mut resp = Response::new(Body::new(ClaimedBytes::new(body, rules.buffer)));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        if collect {
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Ok(resp)
    }
}

/// Most bytes of upstream response headers relayed to a client (names and values); an upstream
/// sending more gets the client a 502 rather than a cut-off answer.
const MAX_RELAYED_HEADER_BYTES: usize = 64 * 1024;

/// Response headers passed back to the client: everything but hop-by-hop and framing headers,
/// cookies, the upstream's server identity, and any header holding a secret the gateway sent
/// upstream (in any form `scrubbers` know).
pub(crate) fn relay_headers<'h, 's>(
    upstream: impl Iterator<Item = (&'h HeaderName, &'h HeaderValue)>,
    scrubbers: impl Iterator<Item = &'s Arc<Scrubber>> + Clone,
) -> Result<HeaderMap, ApiError> {
    const DROP: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "set-cookie",
        "alt-svc",
        "server",
        "date",
        "upgrade",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "strict-transport-security",
    ];
    let mut out = HeaderMap::with_capacity(upstream.size_hint().0);
    let mut size = 0usize;
    for (name, value) in upstream {
        if DROP.contains(&name.as_str()) {
            continue;
        }
        if scrubbers.clone().any(|s| s.found_in(value.as_bytes())) {
            tracing::warn!(header = %name, "upstream response header echoes the gateway's credential: dropped");
            continue;
        }
        size += name.as_str().len() + value.len();
        if size > MAX_RELAYED_HEADER_BYTES {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::Upstream,
                "the backend's response headers are larger than the gateway relays",
            ));
        }
        out.append(name.clone(), value.clone());
    }
    Ok(out)
}

/// The whole body of `upstream`, at most `limit` bytes, or the client's error.
pub(crate) async fn read_limited(
    backend: &Backend,
    upstream: UpstreamResponse,
    limit: usize,
) -> Result<Bytes, ApiError> {
    upstream
        .read_limited(limit)
        .await
        .map_err(|e| read_failure(backend, &e))
}

/// The client's error for an upstream body that could not be read whole (logged here).
fn read_failure(backend: &Backend, e: &UpstreamError) -> ApiError {
    tracing::warn!(backend = %backend.name, error = %e, "reading the upstream body failed");
    ApiError::from(e)
}

/// Turns an upstream error answer into the client's error, per the module's rules.
fn upstream_failure(protocol: Protocol, backend: &Backend, refusal: Refusal) -> ApiError {
    let status = refusal.status;
    let retry_after = refusal.retry_after_secs;
    let message = upstream_error_message(&refusal.body).map(|m| refusal.scrub(m));
    tracing::warn!(
        backend = %backend.name,
        upstream_status = status.as_u16(),
        upstream_message = message.as_deref(),
        "upstream answered with an error"
    );
    let name = &backend.name;
    let code = status.as_u16();
    let mut err = match code {
        401 | 403 => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::Upstream,
            format!(
                "backend `{name}` rejected the gateway's credential (HTTP {code}); the gateway's upstream key needs attention"
            ),
        ),
        429 => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimited,
            message.unwrap_or_else(|| format!("backend `{name}` is rate limiting requests")),
        ),
        404 => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            message.unwrap_or_else(|| {
                format!("backend `{name}` does not know this resource (HTTP 404)")
            }),
        ),
        413 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            message.unwrap_or_else(|| format!("backend `{name}` refused the request as too large")),
        ),
        400..=499 => ApiError::new(
            status,
            ErrorKind::InvalidRequest,
            message
                .unwrap_or_else(|| format!("backend `{name}` rejected the request (HTTP {code})")),
        ),
        503 | 529 => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unavailable,
            with_detail(
                format!("backend `{name}` is overloaded or unavailable (HTTP {code})"),
                message,
            ),
        ),
        504 => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Timeout,
            with_detail(format!("backend `{name}` timed out (HTTP 504)"), message),
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::Upstream,
            with_detail(format!("backend `{name}` failed (HTTP {code})"), message),
        ),
    };
    if let Some(secs) = retry_after {
        err = err.with_retry_after(secs);
    } else if code == 429
        && !refusal.quota_exhausted
        && !refusal.headers.contains_key(http::header::RETRY_AFTER)
    {
        // No hint at all (one the gateway cannot read is relayed below): try again in a second.
        err = err.with_retry_after(1);
    }
    // A refusal of the gateway's own credential stays the gateway's answer; so does anything
    // from a backend of another protocol.
    if matches!(code, 401 | 403) || backend.kind != protocol.native_backend() {
        return err;
    }
    // What the provider said reaches the client: the headers clients read (request ids,
    // `x-should-retry`, rate-limit state) and, for a 4xx, its error document — `code`, `param`,
    // `type`, Google's `details` — with the gateway's secrets scrubbed.
    let headers = relay_headers(refusal.headers.iter(), refusal.scrubbers()).unwrap_or_else(|_| {
        tracing::warn!(backend = %backend.name, "upstream error headers exceed the relay limit: not relayed");
        HeaderMap::new()
    });
    let body = (code < 500)
        .then(|| relayable_error_body(protocol, &refusal.body, &|t| refusal.scrub(t)))
        .flatten();
    err.relaying(Relayed { headers, body })
}

fn with_detail(head: String, detail: Option<String>) -> String {
    match detail {
        Some(d) => format!("{head}: {d}"),
        None => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn relayed_headers_leave_out_hop_by_hop_framing_identity_and_secrets() {
        let dropped = [
            "connection",
            "Keep-Alive",
            "transfer-encoding",
            "content-length",
            "content-encoding",
            "set-cookie",
            "alt-svc",
            "server",
            "date",
            "upgrade",
            "proxy-authenticate",
            "proxy-connection",
            "te",
            "trailer",
            "strict-transport-security",
        ];
        let kept = [
            "content-type",
            "x-request-id",
            "retry-after",
            "x-ratelimit-remaining-requests",
            "openai-processing-ms",
            "tea",
            "dates",
            "x-server",
            "keep-alive-ish",
        ];
        let mut upstream = HeaderMap::new();
        for name in dropped.iter().chain(&kept) {
            upstream.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        upstream.append(
            "x-echo",
            HeaderValue::from_static("Bearer sk-upstream-secret-1"),
        );
        let secret = Secret::new("sk-upstream-secret-1");
        let scrubber = Arc::new(Scrubber::new([&secret]));
        let out = relay_headers(upstream.iter(), std::iter::once(&scrubber)).unwrap();
        let names: Vec<_> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, kept);
    }
}
