//! Operations on objects a provider keeps — OpenAI stored responses (`GET|DELETE
//! /v1/responses/{id}`, `POST …/{id}/cancel`, `GET …/{id}/input_items`) and Anthropic message
//! batches (`GET /v1/messages/batches`, `GET|DELETE …/{id}`, `GET …/{id}/results`, `POST
//! …/{id}/cancel`) — and the routing rule of every request that names no model.
//!
//! Such a request goes, in this order, to: the backend whose credential created the object, if
//! this gateway remembers it (`upstream::owners`; that credential is asked for first, and
//! another caller of the gateway gets a 404, as another account would); the backend named by
//! the `x-portcullis-backend` header; the backend plain model names go to for the caller's
//! protocol. The header is the gateway's own and never goes upstream.

use axum::extract::{Path, Request};
use axum::handler::Handler;
use axum::response::Response;
use http::{HeaderMap, Method};
use std::sync::Arc;

use super::context::Ctx;
use super::error::{ApiError, Failure};
use super::groups::{Methods, delete, get, post};
use super::{St, proxy, read_body, respond};
use crate::protocol::{Operation, Protocol};
use crate::state::AppState;
use crate::upstream::routing::Route;
use crate::upstream::{Endpoint, Provider, check_path_model};

/// The request header naming the backend of a request without a model.
pub(crate) const BACKEND_HEADER: &str = "x-portcullis-backend";

/// The route of a request that names no model: the backend named by [`BACKEND_HEADER`], else
/// the protocol's default backend (refused if the caller's grant does not allow it).
pub(super) fn backend_route(
    state: &AppState,
    ctx: &Ctx,
    protocol: Protocol,
    headers: &HeaderMap,
) -> Result<Route, ApiError> {
    let named = headers
        .get(BACKEND_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let provider = state
        .router()
        .resolve_backend(named, protocol, &ctx.grant)?;
    Ok(Route {
        provider,
        model: Arc::from(""),
        rewritten: false,
    })
}

/// The credential to ask for first for a call following up on object `id` of `provider`: the
/// one that created it, if remembered. Another caller's object is not found.
pub(super) fn follow_up(
    state: &AppState,
    ctx: &Ctx,
    provider: &Provider,
    id: &str,
) -> Result<Option<Arc<str>>, ApiError> {
    let now = state.clock().now_millis();
    match provider.objects().owner(id, now) {
        Some(owner) if owner.caller != ctx.who() => Err(not_yours(id)),
        Some(owner) => Ok(Some(owner.credential)),
        None => Ok(None),
    }
}

fn not_yours(id: &str) -> ApiError {
    ApiError::not_found(format!("no object `{id}` was created by this caller"))
        .with_code("object_not_found")
}

/// The route of one operation on a stored object (`{id}` in its path), or on a collection
/// (no `{id}`: the batch list).
pub(super) fn route(op: Operation) -> Methods {
    if op.on_object() {
        by_method(
            op,
            move |state: St, ctx: Ctx, Path(id): Path<String>, req: Request| async move {
                respond(call(&state, &ctx, op, Some(&id), req).await)
            },
        )
    } else {
        by_method(op, move |state: St, ctx: Ctx, req: Request| async move {
            respond(call(&state, &ctx, op, None, req).await)
        })
    }
}

/// `handler` under the operation's method: GET, DELETE, else POST.
fn by_method<H: Handler<T, AppState>, T: 'static>(op: Operation, handler: H) -> Methods {
    match op.method() {
        Method::GET => get(handler),
        Method::DELETE => delete(handler),
        _ => post(handler),
    }
}

async fn call(
    state: &AppState,
    ctx: &Ctx,
    op: Operation,
    id: Option<&str>,
    req: Request,
) -> Result<Response, Failure> {
    let protocol = op.protocol();
    let fail = |e: ApiError| Failure(protocol, e);
    let (parts, body) = req.into_parts();
    let body = read_body(state, protocol, body).await?;
    ctx.capture_inbound(&parts.headers, &body);
    if let Some(id) = id {
        check_path_model(id).map_err(|e| {
            fail(
                ApiError::invalid(format!(
                    "invalid object id: {e}; an id in the URL path must be one path segment"
                ))
                .with_code("invalid_object_id"),
            )
        })?;
    }
    let now = state.clock().now_millis();
    let owner = id.and_then(|id| state.router().object_owner(id, protocol, now));
    let (route, prefer) = match (owner, id) {
        (Some((provider, owner)), Some(id)) => {
            if owner.caller != ctx.who() {
                return Err(fail(not_yours(id)));
            }
            // The grant still decides: the backend is named as if by the header.
            state
                .router()
                .resolve_backend(Some(provider.name()), protocol, &ctx.grant)
                .map_err(|e| fail(e.into()))?;
            let route = Route {
                provider,
                model: Arc::from(""),
                rewritten: false,
            };
            (route, Some(owner.credential))
        }
        _ => (
            backend_route(state, ctx, protocol, &parts.headers).map_err(fail)?,
            None,
        ),
    };
    proxy::Forward {
        protocol,
        route: &route,
        endpoint: Endpoint::Op(op, id.unwrap_or("")),
        query: parts.uri.query(),
        headers: parts.headers,
        body: (op.method() == Method::POST).then_some(body),
        // Batch results are JSON lines of any size: relayed as they arrive.
        stream: op == Operation::MessageBatchResults,
        ctx,
        state,
        prefer,
        translation: None,
    }
    .run()
    .await
    .map_err(fail)
}
