//! Anthropic routes: `/v1/messages` and `/v1/messages/count_tokens`.

use axum::extract::RawQuery;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;

use super::context::Ctx;
use super::{St, body_model_call, respond};
use crate::protocol::Operation;

pub(super) async fn messages(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &ctx, Operation::Messages, &headers, query, body).await)
}

pub(super) async fn count_tokens(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &ctx, Operation::CountTokens, &headers, query, body).await)
}
