//! Model lists: `GET /v1/models` (and `/models`), in the caller's protocol
//! ([`Protocol::of_headers`]: Gemini's for a Google API key or `x-goog-api-client`, Anthropic's
//! for `anthropic-version`, else OpenAI's), and `GET /v1beta/models` (Gemini). The list merges
//! every backend the caller may use — generation requests reach a backend of another protocol
//! through translation —, each listing only the models the caller's grant allows: the default
//! backend's models under their own ids, the others' as
//! `backend:model`, then the aliases; a model of a backend of the caller's protocol keeps the
//! backend's description, another protocol's is described by the gateway (id only). A backend
//! that cannot list is logged and left out; if none can, the client gets 502.
//! `GET /v1/models/{id}` (same protocol rule) and `GET /v1beta/models/{model}` are routed like
//! requests and answered by the backend that serves the model, with that backend's credential
//! — or, when that backend speaks another protocol, by the gateway's own description.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use axum::extract::{Path, RawQuery};

use super::context::Ctx;
use super::error::ApiError;
use super::{St, proxy};
use crate::protocol::Protocol;
use crate::state::AppState;
use crate::upstream::{Call, CallError, Endpoint, Refusal, Watch, check_path_model};
use crate::wire::errors::ErrorKind;
use crate::wire::models::{ModelEntry, parse_model_list, render_model, render_model_list};

/// `GET /v1/models` in the caller's protocol.
pub(super) async fn list_v1(
    state: St,
    ctx: Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let protocol = Protocol::of_headers(&headers, query.as_deref());
    list(&state, &ctx, protocol, &headers).await
}

/// `GET /v1/models/{id}` in the caller's protocol.
pub(super) async fn get_v1(
    state: St,
    ctx: Ctx,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let protocol = Protocol::of_headers(&headers, query.as_deref());
    get_one(&state, &ctx, protocol, &target, headers).await
}

/// One model's description from the backend that serves it (routing as for requests).
pub(super) async fn get_one(
    state: &AppState,
    ctx: &Ctx,
    protocol: Protocol,
    target: &str,
    headers: HeaderMap,
) -> Response {
    let result = async {
        check_path_model(target).map_err(ApiError::from)?;
        let route = state
            .router()
            .resolve(target, protocol, &ctx.grant)
            .map_err(ApiError::from)?;
        check_path_model(&route.model).map_err(ApiError::from)?;
        if route.provider.backend.kind != protocol.native_backend() {
            let entry = ModelEntry {
                id: target.to_owned(),
                raw: None,
            };
            let created = state.clock().now_millis() / 1000;
            return Ok(axum::Json(render_model(protocol, &entry, created)).into_response());
        }
        proxy::Forward {
            protocol,
            route: &route,
            endpoint: Endpoint::GetModel(&route.model),
            query: None,
            headers,
            body: None,
            stream: false,
            ctx,
            state,
            prefer: None,
            translation: None,
        }
        .run()
        .await
    };
    match result.await {
        Ok(r) => r,
        Err(e) => e.into_response_for(protocol),
    }
}

pub(super) async fn list(
    state: &AppState,
    ctx: &Ctx,
    protocol: Protocol,
    headers: &HeaderMap,
) -> Response {
    let native = protocol.native_backend();
    let grant = &ctx.grant;
    let default = state
        .router()
        .default_for(protocol)
        .filter(|p| grant.allows_backend(p.name()))
        .cloned();
    // Every backend serves generation requests of every protocol (through translation); the
    // backends of the caller's protocol come first.
    let mut providers: Vec<_> = state
        .router()
        .providers()
        .iter()
        .filter(|p| grant.allows_backend(p.name()))
        .cloned()
        .collect();
    providers.sort_by_key(|p| p.backend.kind != native);
    let fetches = providers.iter().map(|p| async move {
        // A connector has no model list to ask: its models are known.
        if let Some(known) = p.backend.kind.known_models() {
            let list = known
                .iter()
                .map(|m| ((*m).to_owned(), serde_json::Value::Null));
            return (p, Ok(list.collect()));
        }
        // The same call path as a request: any available credential lists the models, with
        // failover; none is used up by it.
        let call = Call {
            endpoint: Endpoint::ListModels,
            query: None,
            headers: headers.clone(),
            body: None,
            prefer: None,
        };
        let result = match p.call(call, state.clock(), &mut Unwatched(ctx)).await {
            Ok(answer) => {
                match proxy::read_limited(&p.backend, answer.response, proxy::MAX_MODEL_LIST).await
                {
                    Ok(body) => parse_model_list(p.backend.kind.protocol(), &body)
                        .ok_or_else(|| "unreadable model list".to_owned()),
                    Err(e) => Err(e.message),
                }
            }
            Err(CallError::Unavailable { why, .. }) => Err(format!(
                "every credential is unavailable for {} s",
                why.retry_after_secs
            )),
            Err(CallError::Status(r)) => Err(format!("HTTP {}", r.status.as_u16())),
            Err(e) => Err(e.to_string()),
        };
        (p, result)
    });
    let results = futures_util::future::join_all(fetches).await;

    let mut entries = Vec::new();
    let mut failures = 0;
    for (p, result) in results {
        let b = &p.backend;
        match result {
            Ok(list) => {
                let is_default = default.as_ref().is_some_and(|d| d.name() == p.name());
                // Another protocol's description means nothing to the caller: the gateway
                // writes its own.
                let same = b.kind == native;
                // Only the models the caller may use (a rule set's model globs).
                for (id, raw) in list.into_iter().filter(|(id, _)| grant.allows(&b.name, id)) {
                    let id = if is_default {
                        id
                    } else {
                        format!("{}:{id}", b.name)
                    };
                    let raw = same.then_some(raw);
                    entries.push(ModelEntry { id, raw });
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(backend = %b.name, error = %e, "listing models failed");
            }
        }
    }
    if !providers.is_empty() && failures == providers.len() {
        return ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::Upstream,
            "no backend could list its models",
        )
        .into_response_for(protocol);
    }
    let mut aliases: Vec<_> = state
        .router()
        .aliases()
        .filter(|(_, p, m)| grant.allows(p.name(), m))
        .map(|(a, _, _)| a.to_owned())
        .collect();
    aliases.sort();
    entries.extend(aliases.into_iter().map(|id| ModelEntry { id, raw: None }));
    ctx.log
        .update(|r| r.backend = default.map(|d| d.name().clone()));
    let created = state.clock().now_millis() / 1000;
    axum::Json(render_model_list(protocol, &entries, created)).into_response()
}

/// A model-list call watches only for refusals' callers (its attempts are not logged one by
/// one: the list merges several backends).
struct Unwatched<'a>(&'a Ctx);

impl Watch for Unwatched<'_> {
    fn sending(
        &mut self,
        _: Option<&std::sync::Arc<str>>,
        _: &reqwest::Url,
        _: &crate::upstream::HeaderLines,
        _: Option<&bytes::Bytes>,
    ) {
    }
    fn answered(&mut self, _: StatusCode) {}
    fn refused(&mut self, _: &Refusal) {}
    fn failing_over(&mut self) {}
    fn caller(&self) -> u64 {
        self.0.who()
    }
}
