//! The credential pool's management routes (`/v0/management/auths…`, PRODUCT §5), behind the
//! management key like every `/v0/management` route. Answers never contain a secret: each
//! credential shows a masked hint. The OpenAPI document of the whole management API is served
//! by `docs`.

use super::groups::{get, post};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::management::problem;
use super::management_input::{Body, Path, Query};
use crate::clock::iso8601;
use crate::pool::{CredentialKind, CredentialStatus, NewCredential, PoolError, Update};
use crate::secret::Secret;
use crate::state::AppState;

/// The pool routes (the caller adds the key check).
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/v0/management/auths", get(list).post(add)),
        (
            "/v0/management/auths/{provider}",
            get(list_provider).put(update).delete(delete),
        ),
        ("/v0/management/auths/{provider}/refresh", post(refresh)),
        ("/v0/management/auths/refresh/status", get(refresh_status)),
        (
            "/v0/management/auths/{provider}/quota",
            get(quota).put(set_quota),
        ),
    ]
}

fn failed(e: PoolError) -> Response {
    let status = match &e {
        PoolError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        PoolError::Seal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        PoolError::NoStore | PoolError::ReadOnly(_) | PoolError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        PoolError::UnknownProvider(_) | PoolError::NotFound(_) => StatusCode::NOT_FOUND,
        PoolError::Invalid(_) => StatusCode::BAD_REQUEST,
        PoolError::OauthInMultiUser => StatusCode::FORBIDDEN,
        PoolError::Login(_) => StatusCode::BAD_GATEWAY,
    };
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!(error = %e, "management API: credential pool operation failed");
            problem(
                status,
                "the credential store is unavailable; see the gateway's log",
            )
        }
        _ => problem(status, &e.to_string()),
    }
}

fn time(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |t| json!(iso8601(t)))
}

/// One credential as JSON (the seed's shape, plus state): never the secret.
fn view(c: &CredentialStatus) -> Value {
    let q = &c.quota;
    json!({
        "id": c.id,
        "provider": c.provider,
        "type": c.kind,
        "source": c.source,
        "file": c.file,
        "token_hint": c.hint,
        "label": c.label,
        "priority": c.priority,
        "status": c.status,
        "cooldown_until": time(c.cooldown_until),
        "quota": {
            "limit": q.limit,
            "used": q.used,
            "remaining": q.remaining,
            "reset_schedule": q.reset_schedule,
            "period": q.period,
            "resets_at": time(q.resets_at),
        },
        "requests": c.requests,
        "failures": c.failures,
        "last_status": match c.last_status { 0 => Value::Null, 1 => json!("transport_error"), s => json!(s) },
        "last_used": time(c.last_used),
        "expires_at": time(c.expires_at),
    })
}

fn bad_json(what: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, what)
}

async fn list(State(state): State<AppState>) -> Response {
    match state.pool().status(None) {
        Ok(list) => {
            let errors: Vec<Value> = state
                .pool()
                .load_errors()
                .into_iter()
                .map(|(source, error)| json!({"source": source, "error": error}))
                .collect();
            axum::Json(json!({
                "auths": list.iter().map(view).collect::<Vec<_>>(),
                "errors": errors,
            }))
            .into_response()
        }
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct IdQuery {
    id: Option<String>,
}

async fn list_provider(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
) -> Response {
    match state.pool().status(Some(&provider)) {
        Ok(list) => match &q.id {
            Some(id) => match list.iter().find(|c| &c.id == id) {
                Some(c) => axum::Json(view(c)).into_response(),
                None => failed(PoolError::NotFound(id.clone())),
            },
            None => axum::Json(json!({"auths": list.iter().map(view).collect::<Vec<_>>()}))
                .into_response(),
        },
        Err(e) => failed(e),
    }
}

fn one(state: &AppState, provider: &str, id: &str) -> Response {
    match state.pool().status(Some(provider)) {
        Ok(list) => match list.iter().find(|c| c.id == id) {
            Some(c) => axum::Json(view(c)).into_response(),
            None => failed(PoolError::NotFound(id.to_owned())),
        },
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    limit: Option<u64>,
    #[serde(default)]
    reset_usage: bool,
    // The seed's listing shape carries these; accepted and ignored on input.
    #[serde(default)]
    #[allow(dead_code)]
    used: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    remaining: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    provider: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    token: Secret,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    quota: Option<QuotaBody>,
    #[serde(default)]
    label: Option<String>,
}

async fn add(State(state): State<AppState>, Body(body): Body) -> Response {
    let b: AddBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_json(&format!(
                "send {{\"provider\", \"type\": \"api_key\"|\"oauth\", \"token\", \"priority\", \"quota\": {{\"limit\"}}, \"label\"}}: {e}"
            ));
        }
    };
    let kind = match b.kind.as_deref().map(CredentialKind::parse) {
        None => CredentialKind::ApiKey,
        Some(Some(k)) => k,
        Some(None) => return bad_json("`type` must be `api_key` or `oauth`"),
    };
    let provider = b.provider.clone();
    let new = NewCredential {
        provider: b.provider,
        kind,
        token: b.token,
        priority: b.priority,
        quota_limit: b.quota.and_then(|q| q.limit),
        label: b.label,
    };
    match state.pool().add(new).await {
        Ok(id) => {
            tracing::info!(credential = %id, provider = %provider, "credential added through the management API");
            let resolved = state.pool().resolve_provider(&provider).unwrap_or(provider);
            let mut r = one(&state, &resolved, &id);
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    token: Option<Secret>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    label: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
    Body(body): Body,
) -> Response {
    let b: UpdateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_json(&format!("send {{\"token\", \"priority\", \"label\"}}: {e}")),
    };
    let update = Update {
        token: b.token,
        priority: b.priority,
        label: b.label,
    };
    match state
        .pool()
        .update(&provider, q.id.as_deref(), update)
        .await
    {
        Ok(id) => {
            tracing::info!(credential = %id, "credential changed through the management API");
            one(&state, &provider, &id)
        }
        Err(e) => failed(e),
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
) -> Response {
    match state.pool().delete(&provider, q.id.as_deref()).await {
        Ok(id) => {
            tracing::info!(credential = %id, "credential deleted through the management API");
            axum::Json(json!({"deleted": id})).into_response()
        }
        Err(e) => failed(e),
    }
}

/// Re-reads the provider's credentials from their sources and ends their cooldowns (an
/// operator who fixed a key says so here).
async fn refresh(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
) -> Response {
    match state.pool().refresh_now(&provider, q.id.as_deref()).await {
        Ok((renewed, n)) => {
            tracing::info!(provider = %provider, credentials = n, refreshed = renewed.refreshed, "credentials reloaded and cooldowns ended through the management API");
            match state.pool().status(Some(&provider)) {
                Ok(list) => axum::Json(json!({
                    "auths": list.iter().map(view).collect::<Vec<_>>(),
                    "refreshed": renewed.refreshed,
                    "refresh_failed": renewed.failed,
                }))
                .into_response(),
                Err(e) => failed(e),
            }
        }
        Err(e) => failed(e),
    }
}

/// The refresh worker's status: last and next check, counts, and each OAuth credential's record.
async fn refresh_status(State(state): State<AppState>) -> Response {
    let s = state.pool().refresh_status();
    let mut per: Vec<(&String, &crate::pool::CredentialRefresh)> = s.credentials.iter().collect();
    per.sort_by(|a, b| a.0.cmp(b.0));
    axum::Json(json!({
        "enabled": s.enabled,
        "last_check": time(s.last_check),
        "next_check": time(s.next_check),
        "credentials_checked": s.credentials_checked,
        "refreshed": s.refreshed,
        "failed": s.failed,
        "credentials": per.iter().map(|(id, c)| json!({
            "id": id,
            "last_refresh": time(c.last_refresh),
            "last_error": c.last_error,
            "failures": c.failures,
            "next_attempt": time(Some(c.next_attempt).filter(|t| *t > 0)),
            "needs_login": c.needs_login,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn quota(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
) -> Response {
    let list = match state.pool().status(Some(&provider)) {
        Ok(l) => l,
        Err(e) => return failed(e),
    };
    let list: Vec<&CredentialStatus> = list
        .iter()
        .filter(|c| q.id.as_deref().is_none_or(|i| c.id == i))
        .collect();
    if let (Some(id), true) = (&q.id, list.is_empty()) {
        return failed(PoolError::NotFound(id.clone()));
    }
    let limited = !list.is_empty() && list.iter().all(|c| c.quota.limit.is_some());
    // Limits go up to i64::MAX each: the sums saturate rather than overflow.
    let total = |values: &mut dyn Iterator<Item = u64>| values.fold(0, u64::saturating_add);
    let sum = |f: &dyn Fn(&CredentialStatus) -> Option<u64>| -> Option<u64> {
        limited.then(|| total(&mut list.iter().filter_map(|c| f(c))))
    };
    let per: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "status": c.status, "limit": c.quota.limit, "used": c.quota.used,
                "remaining": c.quota.remaining, "period": c.quota.period,
                "resets_at": time(c.quota.resets_at),
            })
        })
        .collect();
    axum::Json(json!({
        "provider": list.first().map_or(provider.clone(), |c| c.provider.clone()),
        "reset_schedule": list.first().map(|c| c.quota.reset_schedule),
        "limit": sum(&|c| c.quota.limit),
        "used": total(&mut list.iter().map(|c| c.quota.used)),
        "remaining": sum(&|c| c.quota.remaining),
        "credentials": per,
    }))
    .into_response()
}

async fn set_quota(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<IdQuery>,
    Body(body): Body,
) -> Response {
    let b: QuotaBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_json(&format!(
                "send {{\"limit\": tokens per period, or null for none, \"reset_usage\": bool}}: {e}"
            ));
        }
    };
    match state
        .pool()
        .set_quota(&provider, q.id.as_deref(), b.limit, b.reset_usage)
        .await
    {
        Ok(()) => {
            tracing::info!(provider = %provider, id = q.id.as_deref(), limit = b.limit, reset_usage = b.reset_usage, "quota set through the management API");
            quota(State(state), Path(provider), Query(q)).await
        }
        Err(e) => failed(e),
    }
}
