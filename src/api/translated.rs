//! The translated path: a generation request whose model is served by a backend of another
//! dialect (or a Responses request to an OpenAI backend that has only chat completions). The
//! caller's body is read into the intermediate shape and written in the backend's dialect; the
//! upstream operation, stream mode and headers are the backend's. The answer comes back through
//! the same relay as passthrough (`proxy`), which re-expresses a JSON body whole and a stream
//! event by event ([`crate::translate::StreamTranslator`]); usage is settled from the
//! upstream's own report, before translation, exactly as for passthrough.

use bytes::Bytes;
use http::HeaderMap;

use super::context::Ctx;
use super::error::ApiError;
use super::proxy;
use crate::protocol::{Operation, Protocol};
use crate::state::AppState;
use crate::translate::{self, AnswerContext, Dialect, Response, StreamTranslator};
use crate::upstream::Endpoint;
use crate::upstream::routing::Route;

/// Client headers that describe the caller's dialect and mean something else, or nothing, to a
/// backend of another: they are dropped before the usual allow-list (`Backend::prepare`, which
/// also adds the backend's own, such as `anthropic-version`). Headers an operator lists in the
/// backend's `forward_headers` still go.
const DIALECT_HEADERS: &[&str] = &[
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
    "x-goog-api-client",
    "accept",
    "content-type",
    "content-length",
];

/// True for the SDK telemetry headers of the caller's dialect.
fn dialect_header(name: &str) -> bool {
    DIALECT_HEADERS.contains(&name) || name.starts_with("x-stainless-")
}

/// How an answer is translated back.
#[derive(Debug)]
pub(crate) struct Translation {
    /// The caller's dialect.
    pub(crate) caller: Dialect,
    /// The backend's dialect.
    pub(crate) backend: Dialect,
    /// What the caller's answer encoder needs to know of the request.
    pub(crate) answer: AnswerContext,
    /// The caller asked for one JSON answer from a backend that only streams: the stream is
    /// read whole and collected into it.
    pub(crate) collect: bool,
}

impl Translation {
    /// A stream translator for this answer.
    pub(crate) fn stream(&self) -> StreamTranslator {
        StreamTranslator::new(self.backend, self.caller, &self.answer)
    }

    /// The usage a collected stream reports, read from its events where the stream is not SSE
    /// (Kiro's frames); `None` for SSE streams, whose `data:` lines are read as they are.
    pub(crate) fn binary_stream_usage(&self, upstream: &[u8]) -> Option<crate::wire::usage::Usage> {
        (self.collect && self.backend == Dialect::Kiro)
            .then(|| translate::kiro::decode_response(upstream).ok())
            .flatten()
            .map(|r| r.usage.into())
    }

    /// A whole upstream answer (already scrubbed) in the caller's dialect.
    pub(crate) fn answer(&self, upstream: &[u8]) -> Result<Bytes, ApiError> {
        let decoded = if self.collect {
            translate::collect_stream(self.backend, upstream)
        } else {
            translate::decode_response(self.backend, upstream)
        };
        let mut resp: Response = decoded.inspect_err(
            |e| tracing::warn!(error = %e, "an upstream answer could not be translated"),
        )?;
        if resp.created == 0 {
            resp.created = self.answer.created;
        }
        Ok(Bytes::from(translate::encode_response(
            self.caller,
            &resp,
            &self.answer,
        )))
    }
}

/// The request to send to the backend instead of the caller's.
#[derive(Debug)]
struct Outbound {
    /// The body, in the backend's dialect.
    body: Bytes,
    /// The backend's operation.
    operation: Operation,
    /// The answer is streamed.
    stream: bool,
    /// The backend's query (Gemini's `alt=sse` for a stream).
    query: Option<&'static str>,
    /// The client headers that still apply.
    headers: HeaderMap,
    /// How the answer comes back.
    translation: Translation,
}

/// What the translated request says, beyond its body.
pub(crate) struct Inbound<'a> {
    /// Caller's and backend's dialects (from `Route::dialects`).
    pub(crate) dialects: (Dialect, Dialect),
    /// The caller's body.
    pub(crate) body: &'a [u8],
    /// The model as the caller named it (echoed where the caller's dialect echoes it; the
    /// route's model when the caller named none).
    pub(crate) requested: &'a str,
    /// The stream mode when the caller's method decides it (Gemini), else the body's.
    pub(crate) method_streams: Option<bool>,
    /// The caller's headers.
    pub(crate) headers: HeaderMap,
}

/// Translates the caller's request for `route`'s backend, sends it through the route's
/// provider and relays the answer in the caller's dialect.
pub(crate) async fn call(
    inbound: Inbound<'_>,
    route: &Route,
    ctx: &Ctx,
    state: &AppState,
) -> Result<axum::response::Response, ApiError> {
    let protocol = inbound.dialects.0.protocol();
    let now_secs = state.clock().now_millis() / 1000;
    outbound(inbound, &route.model, now_secs)?
        .forward(protocol, route, ctx, state)
        .await
}

/// The backend's request for the caller's, asking for `upstream_model`.
fn outbound(
    inbound: Inbound<'_>,
    upstream_model: &str,
    now_secs: u64,
) -> Result<Outbound, ApiError> {
    let (caller, backend) = inbound.dialects;
    let mut req = translate::decode_request(caller, inbound.body)?;
    if let Some(stream) = inbound.method_streams {
        req.stream = stream;
    }
    req.model = if inbound.requested.is_empty() {
        upstream_model
    } else {
        inbound.requested
    }
    .to_owned();
    let answer = AnswerContext::for_request(&req, now_secs);
    req.model = upstream_model.to_owned();
    let collect = backend.streams_only() && !req.stream;
    req.stream |= collect;
    let body = translate::encode_request(backend, &req)?;
    let mut headers = inbound.headers;
    let dropped: Vec<_> = headers
        .keys()
        .filter(|n| dialect_header(n.as_str()))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
    tracing::debug!(
        from = caller.name(),
        to = backend.name(),
        "request translated"
    );
    Ok(Outbound {
        body: Bytes::from(body),
        operation: backend.operation(req.stream),
        stream: req.stream && !collect,
        query: (matches!(backend, Dialect::Gemini | Dialect::CodeAssist) && req.stream)
            .then_some("alt=sse"),
        headers,
        translation: Translation {
            caller,
            backend,
            answer,
            collect,
        },
    })
}

impl Outbound {
    /// Sends the translated request through the route's provider and relays the answer.
    async fn forward(
        self,
        protocol: Protocol,
        route: &Route,
        ctx: &Ctx,
        state: &AppState,
    ) -> Result<axum::response::Response, ApiError> {
        let to = self.translation.backend.slug();
        ctx.log.update(|r| r.translated_to = Some(to));
        proxy::Forward {
            protocol,
            route,
            endpoint: Endpoint::Op(self.operation, &route.model),
            query: self.query,
            headers: self.headers,
            body: Some(self.body),
            stream: self.stream,
            ctx,
            state,
            prefer: None,
            translation: Some(self.translation),
        }
        .run()
        .await
    }
}
