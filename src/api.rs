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
mod prometheus;
/// Public for the fuzz targets (`fuzz/`), which drive the request probe; the rest stays in the crate.
pub mod proxy;
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
    let err = if too_large {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            "the request body is larger than the gateway accepts (server.max_body_bytes)",
        )
    } else if stalled {
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

/// Maps an axum body rejection (routes that use the `Bytes` extractor).
fn body_rejection(protocol: Protocol, rejection: BytesRejection) -> Failure {
    let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
    body_error(protocol, &rejection, too_large)
}

/// Reads a request body of at most `server.max_body_bytes`, or the client's error.
async fn read_body(state: &AppState, protocol: Protocol, body: Body) -> Result<Bytes, Failure> {
    let limit = state.config().server.max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| body_error(protocol, &e, false))
}

/// The route of an OpenAI or Anthropic operation whose model is named in the JSON body.
fn body_model_route(op: Operation) -> groups::Methods {
    groups::post(
        move |state: St, ctx: context::Ctx, req: Request| async move {
            // Taking the request whole moves its headers into the upstream request instead of
            // cloning them (the `HeaderMap` extractor clones).
            let (parts, body) = req.into_parts();
            let body = read_body(&state, op.protocol(), body).await;
            let query = parts.uri.query();
            respond(body_model_call(&state, &ctx, op, parts.headers, query, body).await)
        },
    )
}

/// The shared handler for every JSON model operation whose model is named in the body.
async fn body_model_call(
    state: &AppState,
    ctx: &context::Ctx,
    op: Operation,
    headers: HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, Failure>,
) -> Result<Response, Failure> {
    let protocol = op.protocol();
    let fail = |e: ApiError| Failure(protocol, e);
    let body = body?;
    ctx.capture_inbound(&headers, &body);
    let probe = proxy::probe(&body).map_err(fail)?;
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
        return translated::call(inbound, &route, ctx, state)
            .await
            .map_err(fail);
    }
    let prefer = match probe.previous_response_id.as_deref() {
        Some(id) => objects::follow_up(state, ctx, &route.provider, id).map_err(fail)?,
        None => None,
    };
    let stream = probe.stream.unwrap_or(false);
    let body = if route.rewritten {
        proxy::rewrite_model(&body, &route.model).map_err(fail)?
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
