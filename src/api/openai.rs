//! OpenAI routes: `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings` (the model list is in
//! `models`).

use axum::Extension;
use axum::extract::RawQuery;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;

use super::access_log::RequestLog;
use super::{St, body_model_call, respond};
use crate::protocol::Operation;

pub(super) async fn chat_completions(
    state: St,
    Extension(log): Extension<RequestLog>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(
        body_model_call(
            &state,
            &log,
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
    Extension(log): Extension<RequestLog>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &log, Operation::Responses, &headers, query, body).await)
}

pub(super) async fn embeddings(
    state: St,
    Extension(log): Extension<RequestLog>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    respond(body_model_call(&state, &log, Operation::Embeddings, &headers, query, body).await)
}
