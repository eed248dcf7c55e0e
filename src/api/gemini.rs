//! Gemini routes: `GET /v1beta/models`, `GET /v1beta/models/{model}` and
//! `POST /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}`. The model
//! is in the path, so routing never rewrites the body; the `key=` query parameter (the Gemini
//! client's credential) is never forwarded (the provider call drops it).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;

use super::context::Ctx;
use super::error::{ApiError, Failure};
use super::{St, body_rejection, models, proxy, respond};
use crate::protocol::{Operation, Protocol};
use crate::upstream::{Endpoint, check_path_model};

pub(super) async fn list_models(state: St, ctx: Ctx, headers: HeaderMap) -> Response {
    models::list(&state, &ctx, Protocol::Gemini, &headers).await
}

pub(super) async fn get_model(
    state: St,
    ctx: Ctx,
    Path(target): Path<String>,
    headers: HeaderMap,
) -> Response {
    models::get_one(&state, &ctx, Protocol::Gemini, &target, headers).await
}

pub(super) async fn model_action(
    state: St,
    ctx: Ctx,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let fail = |e: ApiError| Failure(Protocol::Gemini, e);
        let (model, action) = target.rsplit_once(':').ok_or_else(|| {
            fail(ApiError::not_found(format!(
                "`{target}` names no method: use models/{{model}}:generateContent, :streamGenerateContent or :countTokens"
            )))
        })?;
        let op = match action {
            "generateContent" => Operation::GenerateContent,
            "streamGenerateContent" => Operation::StreamGenerateContent,
            "countTokens" => Operation::GeminiCountTokens,
            other => {
                return Err(fail(ApiError::not_found(format!(
                    "unknown method `{other}` (supported: generateContent, streamGenerateContent, countTokens)"
                ))));
            }
        };
        let body = body.map_err(|r| body_rejection(Protocol::Gemini, r))?;
        ctx.capture_inbound(&headers, &body);
        proxy::probe(&body).map_err(fail)?;
        check_path_model(model).map_err(|e| fail(e.into()))?;
        let route = state
            .router()
            .resolve(model, Protocol::Gemini, &ctx.grant)
            .map_err(|e| fail(e.into()))?;
        check_path_model(&route.model).map_err(|e| fail(e.into()))?;
        proxy::Forward {
            protocol: Protocol::Gemini,
            route: &route,
            endpoint: Endpoint::Op(op, &route.model),
            query: query.as_deref(),
            headers,
            body: Some(body),
            stream: op == Operation::StreamGenerateContent,
            ctx: &ctx,
            state: &state,
        }
        .run()
        .await
        .map_err(fail)
    };
    respond(result.await)
}
