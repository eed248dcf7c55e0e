//! OpenAI routes: `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings` (the model list is in
//! `models`).

use axum::extract::RawQuery;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;

use super::context::Ctx;
use super::{St, body_model_call, respond};
use crate::protocol::Operation;

pub(super) async fn chat_completions(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        body_model_call(
            &state,
            &ctx,
            Operation::ChatCompletions,
            &headers,
            query,
            body,
        )
        .await,
    )
}

pub(super) async fn responses(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &ctx, Operation::Responses, &headers, query, body).await)
}

pub(super) async fn embeddings(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &ctx, Operation::Embeddings, &headers, query, body).await)
}
