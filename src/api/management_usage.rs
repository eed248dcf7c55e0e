//! `GET /v0/management/usage`: settled usage and spend, filtered by key, user, backend, model
//! and day range, summed by any of day, key, user, backend and model — the management API's
//! side of `portcullis keys usage` (the same question, `policy::report`, and the same JSON). It
//! first writes this instance's unflushed usage, so the answer includes every request settled
//! here.

use super::groups::get;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::management::problem;
use super::management_input::Query;
use crate::policy::report::{QueryParts, UsageQuery, report_json};
use crate::state::AppState;

/// The usage route (the management group adds the key check).
pub(super) fn routes() -> super::groups::Routes {
    vec![("/v0/management/usage", get(usage))]
}

#[derive(serde::Deserialize)]
struct Params {
    key: Option<String>,
    user: Option<String>,
    backend: Option<String>,
    model: Option<String>,
    since: Option<String>,
    until: Option<String>,
    group_by: Option<String>,
}

async fn usage(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let Some(store) = state.usage_store() else {
        return problem(
            StatusCode::NOT_FOUND,
            "no store is configured: usage is not recorded",
        );
    };
    let query = match UsageQuery::parse(QueryParts {
        key: p.key.as_deref(),
        user: p.user.as_deref(),
        backend: p.backend.as_deref(),
        model: p.model.as_deref(),
        since: p.since.as_deref(),
        until: p.until.as_deref(),
        group_by: p.group_by.as_deref(),
    }) {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e),
    };
    if let Err(e) = state.policy().flush().await {
        tracing::warn!(error = %e, "could not write the unflushed usage before a report");
    }
    match store.usage_report(&query.filter, query.group).await {
        Ok(rows) => axum::Json(report_json(&query, &rows)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "management API: usage report failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}
