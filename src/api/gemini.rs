//! Gemini routes: `GET /v1beta/models`, `GET /v1beta/models/{model}` and
//! `POST /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents}`
//! (also under `/v1/models/…` and `/models/…`, which newer SDKs and clients given the bare host
//! use; upstream it is always `/v1beta`). The model is in the path, so routing rewrites no body,
//! except the `model` fields of an embedding request when the client named `backend:model` or
//! an alias. The `key=` query parameter (the Gemini client's credential) is never forwarded (the
//! provider call drops it).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;

use super::context::Ctx;
use super::error::{ApiError, Failure};
use super::{St, body_rejection, models, proxy, respond, translated};
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
                "`{target}` names no method: use models/{{model}}:{SUPPORTED}"
            )))
        })?;
        let op = match action {
            "generateContent" => Operation::GenerateContent,
            "streamGenerateContent" => Operation::StreamGenerateContent,
            "countTokens" => Operation::GeminiCountTokens,
            "embedContent" => Operation::EmbedContent,
            "batchEmbedContents" => Operation::BatchEmbedContents,
            other => {
                return Err(fail(ApiError::not_found(format!(
                    "unknown method `{other}` (supported: {SUPPORTED})"
                ))));
            }
        };
        let body = body.map_err(|r| body_rejection(Protocol::Gemini, r))?;
        ctx.capture_inbound(&headers, &body);
        super::probe::probe(&body).map_err(fail)?;
        check_path_model(model).map_err(|e| fail(e.into()))?;
        let route = state
            .router()
            .resolve(model, Protocol::Gemini, &ctx.grant)
            .map_err(|e| fail(e.into()))?;
        check_path_model(&route.model).map_err(|e| fail(e.into()))?;
        if let Some(dialects) = route
            .dialects(model, Protocol::Gemini, op)
            .map_err(|e| fail(e.into()))?
        {
            if op == Operation::StreamGenerateContent && !asks_for_sse(query.as_deref()) {
                return Err(fail(ApiError::invalid(
                    "a stream from a backend of another protocol is translated into server-sent events only: add `alt=sse` to the query (the Gemini SDKs and Gemini CLI do)",
                )));
            }
            let inbound = translated::Inbound {
                dialects,
                body: &body,
                requested: model,
                method_streams: Some(op == Operation::StreamGenerateContent),
                headers,
            };
            // Boxed, as in `body_model_call`: the untranslated path stays small.
            return Box::pin(translated::call(inbound, &route, &ctx, &state))
                .await
                .map_err(fail);
        }
        let embeds = matches!(op, Operation::EmbedContent | Operation::BatchEmbedContents);
        let body = if route.rewritten && embeds {
            name_embedding_model(&body, &route.model).map_err(fail)?
        } else {
            body
        };
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
            prefer: None,
            translation: None,
        }
        .run()
        .await
        .map_err(fail)
    };
    respond(result.await)
}

/// True when the query asks for a stream as server-sent events (`alt=sse`) rather than one JSON
/// array.
fn asks_for_sse(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| (k == "alt" || k == "$alt") && v == "sse")
    })
}

/// The methods a Gemini model path takes, for error messages.
const SUPPORTED: &str =
    "generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents";

/// An embedding request with its `model` fields (`models/{model}`, top-level and in each of
/// `requests`, which must match the path) naming the upstream model the route chose.
fn name_embedding_model(body: &[u8], model: &str) -> Result<Bytes, ApiError> {
    use serde_json::Value;
    let mut doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))?;
    let name = Value::String(format!("models/{model}"));
    let set = |v: &mut Value| {
        if let Some(m) = v.get_mut("model").filter(|m| m.is_string()) {
            *m = name.clone();
        }
    };
    set(&mut doc);
    if let Some(requests) = doc.get_mut("requests").and_then(Value::as_array_mut) {
        requests.iter_mut().for_each(set);
    }
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .map_err(|_| ApiError::internal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_requests_name_the_routed_model() {
        let body = br#"{"requests":[{"model":"models/gemini:embed-1","content":{"parts":[{"text":"a"}]}},{"content":{}}],"x":1}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&name_embedding_model(body, "embed-1").unwrap()).unwrap();
        assert_eq!(out["requests"][0]["model"], "models/embed-1");
        assert!(out["requests"][1].get("model").is_none());
        assert_eq!(out["x"], 1);
        let one: serde_json::Value = serde_json::from_slice(
            &name_embedding_model(br#"{"model":"models/fast","content":{}}"#, "e").unwrap(),
        )
        .unwrap();
        assert_eq!(one["model"], "models/e");
    }
}
