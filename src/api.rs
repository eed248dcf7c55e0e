//! The inbound edge: the HTTP routes agents call, in the OpenAI, Anthropic and Gemini shapes.
//! Handlers turn wire requests into routing decisions and hand them to the passthrough pipeline
//! ([`proxy`]); every error leaves through [`error::ApiError`] in the caller's protocol. The
//! OpenAI and Anthropic model operations share one handler (`body_model_call`), parameterised by
//! the [`Operation`]; Gemini's path-addressed methods are in [`gemini`]; operations on stored
//! objects (responses, message batches), which name no model, are in [`objects`]. Which routes
//! exist and what guards each is [`groups`].

pub mod access_log;
mod admin_ops;
pub mod auth_layer;
mod console;
mod context;
mod device_pages;
mod docs;
pub mod error;
mod gemini;
pub mod groups;
mod health;
mod hooks;
mod management;
mod management_auths;
mod management_input;
mod management_keys;
mod management_usage;
mod metering;
mod models;
mod oauth_routes;
mod objects;
mod pages;
/// Public for the fuzz targets (`fuzz/`), which drive the request probe; the rest stays in the crate.
pub mod probe;
mod prometheus;
mod proxy;
pub mod sandbox;
mod sso_pages;
mod translated;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::protocol::{Operation, Protocol};
use crate::state::AppState;
use crate::upstream::Endpoint;
use crate::wire::errors::ErrorKind;
use error::{ApiError, Failure};

/// Maps a body-reading failure (too large, broken upload) to the client's protocol.
fn body_error(
    protocol: Protocol,
    error: &(dyn std::error::Error + 'static),
    mut too_large: bool,
) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut stalled = false;
    while let Some(c) = cause {
        too_large |= c.is::<http_body_util::LengthLimitError>();
        stalled |= c.is::<crate::connection::RequestBodyTimeout>();
        cause = c.source();
    }
    if too_large {
        return body_too_large(protocol);
    }
    let err = if stalled {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorKind::InvalidRequest,
            "the request body stopped arriving (server.request_body_timeout)",
        )
    } else {
        ApiError::invalid("the request body could not be read")
    };
    Failure(protocol, err)
}

/// The answer to a body over `server.max_body_bytes`.
fn body_too_large(protocol: Protocol) -> Failure {
    let err = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RequestTooLarge,
        "the request body is larger than the gateway accepts (server.max_body_bytes)",
    );
    Failure(protocol, err)
}

/// Maps an axum body rejection (routes that use the `Bytes` extractor).
fn body_rejection(protocol: Protocol, rejection: BytesRejection) -> Failure {
    let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
    body_error(protocol, &rejection, too_large)
}

/// Reads a request body of at most `server.max_body_bytes`, or the client's error.
async fn read_body(state: &AppState, protocol: Protocol, body: Body) -> Result<Bytes, Failure> {
    collect(body, state.config().server.max_body_bytes)
        .await
        .map_err(|e| match e {
            Unread::TooLarge => body_too_large(protocol),
            Unread::Failed(e) => body_error(protocol, &e, false),
        })
}

/// Why [`collect`] has no body.
#[derive(Debug)]
enum Unread {
    TooLarge,
    Failed(axum::Error),
}

/// A body's data, at most `limit` bytes (trailers ignored). A body that arrives in one piece
/// (the usual case: the server hands over what it has buffered) is kept as it is, without the
/// copy and the buffer list of a general collector.
async fn collect(mut body: Body, limit: usize) -> Result<Bytes, Unread> {
    use http_body_util::BodyExt;
    let declared = http_body::Body::size_hint(&body).lower();
    if declared > limit as u64 {
        return Err(Unread::TooLarge);
    }
    // Room for the declared length at once when the pieces are joined (below the limit here).
    let declared = usize::try_from(declared).unwrap_or(0);
    let mut first = Bytes::new();
    let mut more: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Failed)?.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let have = more.as_ref().map_or(first.len(), bytes::BytesMut::len);
        if data.len() > limit.saturating_sub(have) {
            return Err(Unread::TooLarge);
        }
        match &mut more {
            Some(all) => all.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut all =
                    bytes::BytesMut::with_capacity(declared.max(first.len() + data.len()));
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                more = Some(all);
            }
        }
    }
    Ok(more.map_or(first, bytes::BytesMut::freeze))
}

/// The route of an OpenAI or Anthropic operation whose model is named in the JSON body. Its
/// POST is also served without the router ([`groups::Direct`]).
fn body_model_route(op: Operation) -> groups::Methods {
    groups::post(move |State(state): St, req: Request| {
        body_model(state, op, req.into_parts(), None)
    })
    .direct(op)
}

/// The handler of [`body_model_route`], behind the client-credential guard: through the router,
/// or called by `server::App` for a path of [`groups::Direct`].
///
/// It takes the request in its two parts: taking the request whole moves its headers into the
/// upstream request instead of cloning them (the `HeaderMap` extractor clones), and taking it
/// already split keeps the state machine from holding the request beside its parts.
#[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
pub(crate) fn body_model(
    state: AppState,
    op: Operation,
    (parts, body): (http::request::Parts, Body),
    log: Option<access_log::RequestLog>,
) -> impl Future<Output = Response> {
    async move {
        // The record given, or the one in the extensions (the router's requests).
        let log = log.or_else(|| access_log::RequestLog::of(&parts.extensions).cloned());
        let ctx = context::Ctx::with_log(&parts, &state, log.unwrap_or_default());
        let body = read_body(&state, op.protocol(), body).await;
        let query = parts.uri.query();
        respond(body_model_call(&state, &ctx, op, parts.headers, query, body).await)
    }
}

/// The shared handler for every JSON model operation whose model is named in the body.
#[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
fn body_model_call(
    state: &AppState,
    ctx: &context::Ctx,
    op: Operation,
    headers: HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, Failure>,
) -> impl Future<Output = Result<Response, Failure>> {
    async move {
        let protocol = op.protocol();
        let fail = |e: ApiError| Failure(protocol, e);
        let body = body?;
        ctx.capture_inbound(&headers, &body);
        let probe = probe::probe(&body).map_err(fail)?;
        let requested = probe.model.as_deref().unwrap_or("");
        let route = if requested.is_empty() && op.model_optional() {
            objects::backend_route(state, ctx, protocol, &headers).map_err(fail)?
        } else {
            state
                .router()
                .resolve(requested, protocol, &ctx.grant)
                .map_err(|e| fail(e.into()))?
        };
        let dialects = route
            .dialects(requested, protocol, op)
            .map_err(|e| fail(e.into()))?;
        if let Some(dialects) = dialects {
            let inbound = translated::Inbound {
                dialects,
                body: &body,
                requested,
                method_streams: None,
                headers,
            };
            // Boxed: its state machine is the largest of the handler's, and every request (most
            // are not translated) would otherwise carry and copy that much more (bench/PROFILE.md §11).
            return Box::pin(translated::call(inbound, &route, ctx, state))
                .await
                .map_err(fail);
        }
        let prefer = match probe.previous_response_id.as_deref() {
            Some(id) => objects::follow_up(state, ctx, &route.provider, id).map_err(fail)?,
            None => None,
        };
        let stream = probe.stream.unwrap_or(false);
        let body = if route.rewritten {
            probe::rewrite_model(&body, &route.model).map_err(fail)?
        } else {
            body
        };
        proxy::Forward {
            protocol,
            route: &route,
            endpoint: Endpoint::Op(op, &route.model),
            query,
            headers,
            body: Some(body),
            stream,
            ctx,
            state,
            prefer,
            translation: None,
        }
        .run()
        .await
        .map_err(fail)
    }
}

/// Reads a form-encoded body of at most `limit` bytes (`None` if it is larger or broken).
async fn read_form(
    req: Request,
    limit: usize,
) -> Option<std::collections::HashMap<String, String>> {
    let body = axum::body::to_bytes(req.into_body(), limit).await.ok()?;
    Some(form_urlencoded::parse(&body).into_owned().collect())
}

/// Lets handlers answer with either a response or a protocol-shaped failure.
fn respond(result: Result<Response, Failure>) -> Response {
    match result {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

/// State extractor alias, for shorter handler signatures.
type St = State<AppState>;

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(parts: &[&'static [u8]]) -> Body {
        let frames: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Body::from_stream(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_is_collected_whole_from_any_number_of_frames_up_to_the_limit() {
        let one = Body::from(Bytes::from_static(b"hello"));
        assert_eq!(collect(one, 5).await.unwrap(), &b"hello"[..]);
        let many = pieces(&[b"", b"he", b"", b"ll", b"o"]);
        assert_eq!(collect(many, 5).await.unwrap(), &b"hello"[..]);
        assert_eq!(collect(Body::empty(), 0).await.unwrap(), &b""[..]);
        // One byte over, in one frame (its length known) or in the last of several.
        let one = Body::from(Bytes::from_static(b"hello!"));
        assert!(matches!(collect(one, 5).await, Err(Unread::TooLarge)));
        let many = pieces(&[b"he", b"llo", b"!"]);
        assert!(matches!(collect(many, 5).await, Err(Unread::TooLarge)));
        // A body that breaks is a failure, not a short body.
        let broken: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"he")),
            Err(std::io::ErrorKind::ConnectionReset.into()),
        ];
        let broken = Body::from_stream(futures_util::stream::iter(broken));
        assert!(matches!(collect(broken, 5).await, Err(Unread::Failed(_))));
    }
}
