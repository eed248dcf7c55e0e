//! `GET /health` (liveness) and `GET /internal/health` (mode, version, backends and their recent
//! results, whether the Redis server of the shared limit counters answers). Both are answered
//! without authentication and without calling any upstream, so `/internal/health` shows its
//! details only to local callers (loopback and not relayed by a proxy, the management API's
//! rule); anyone else gets the liveness answer. Backend and Redis URLs are shown without
//! userinfo and query, where credentials may sit.

use std::sync::atomic::Ordering;

use axum::Json;
use serde_json::{Value, json};

use super::St;

pub(super) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn internal_health(state: St, req: axum::extract::Request) -> Json<Value> {
    if !super::management::local_caller(&req) {
        return Json(json!({
            "status": "ok",
            "details": "shown to local callers only",
        }));
    }
    let backends: Vec<Value> = state
        .router()
        .backends()
        .iter()
        .map(|b| {
            let last = b.stats.last_status.load(Ordering::Relaxed);
            json!({
                "name": &*b.name,
                "type": b.kind.as_str(),
                "base_url": b.display_url(),
                "has_key": state.pool().provider(&b.name).is_some_and(|p| !p.credentials().is_empty()),
                "credentials": state.pool().provider(&b.name).map_or(0, |p| p.credentials().len()),
                "requests": b.stats.requests.load(Ordering::Relaxed),
                "failures": b.stats.failures.load(Ordering::Relaxed),
                "last_status": match last { 0 => Value::Null, 1 => json!("transport_error"), s => json!(s) },
            })
        })
        .collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "access_mode": state.config().access_mode.mode.as_str(),
        "auth": if state.auth().is_disabled() { "disabled" } else { "enabled" },
        "uptime_seconds": state.uptime_secs(),
        // Argon2id runs so far (first use of a token, then at most once per cache period); the
        // benchmark's attack scenario proves unknown tokens add none.
        "agent_token_verifications": state.auth().tokens().map(|v| v.verifications()),
        "sso": state.sso().is_some(),
        "redis": redis(&state).await,
        "connections": state.connections().counts(),
        "buffered_answers": state.answer_budget().counts(),
        "backends": backends,
    }))
}

/// Redis, when configured: where (no password), whether it answers a `PING` now, and what
/// metered requests get while it does not.
async fn redis(state: &crate::state::AppState) -> Value {
    let Some(conn) = state.redis() else {
        return json!({ "configured": false });
    };
    let h = conn.health().await;
    json!({
        "configured": true,
        "url": h.url,
        "prefix": h.prefix,
        "reachable": h.reachable,
        "error": h.error,
        "on_redis_error": state.policy().fail_mode().as_str(),
    })
}
