//! `GET /health` (liveness) and `GET /internal/health` (mode, version, backends and their recent
//! results, the store — reachable, migrations applied —, the Redis server of the shared limit
//! counters, the credential pool's summary per backend). Both are answered without
//! authentication and without calling any upstream, so `/internal/health` shows its details
//! only to local callers (loopback and not relayed by a proxy, the management API's rule);
//! anyone else gets the liveness answer. Backend, database and Redis URLs are shown without
//! userinfo and query, where credentials may sit.
//!
//! `/internal/health`'s `status` is `ok`, or `degraded` with `reasons` when the store does not
//! answer (within [`STORE_CHECK_TIMEOUT`]) or records other migrations than this binary ships,
//! Redis is configured but does not answer, or a backend has credentials and none usable now.
//! The HTTP status stays 200 either way: the gateway is up and answers what it can; a monitor
//! reads `status`.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
    let (store, redis) = tokio::join!(store(&state), redis(&state));
    let pool = state.pool().summary();
    let mut reasons = store.reasons.clone();
    if redis["configured"] == true && redis["reachable"] != true {
        reasons.push("Redis is configured but does not answer".to_owned());
    }
    reasons.extend(
        pool.iter()
            .filter(|p| p.stuck())
            .map(|p| format!("backend `{}` has no usable credential", p.provider)),
    );
    Json(json!({
        "status": if reasons.is_empty() { "ok" } else { "degraded" },
        "reasons": reasons,
        "version": env!("CARGO_PKG_VERSION"),
        "access_mode": state.config().access_mode.mode.as_str(),
        "auth": if state.auth().is_disabled() { "disabled" } else { "enabled" },
        "uptime_seconds": state.uptime_secs(),
        // Argon2id runs so far (first use of a token, then at most once per cache period); the
        // benchmark's attack scenario proves unknown tokens add none.
        "agent_token_verifications": state.auth().tokens().map(|v| v.verifications()),
        "sso": state.sso().is_some(),
        "store": store.view,
        "redis": redis,
        "pool": pool.iter().map(pool_view).collect::<Vec<_>>(),
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

/// How long the store's check may take before `/internal/health` calls it unreachable: a
/// database that stopped answering must not hang the health check (the pool's own acquire
/// timeout is 5 s).
pub(crate) const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The store's part of the answer, and what in it degrades the gateway.
struct StoreView {
    view: Value,
    reasons: Vec<String>,
}

/// The store, when one is open: its kind and URL (no password), whether a query is answered
/// now, how long the check took, and the migrations it records against those this binary ships.
async fn store(state: &crate::state::AppState) -> StoreView {
    let Some(store) = state.store_status() else {
        return StoreView {
            view: json!({ "configured": false }),
            reasons: Vec::new(),
        };
    };
    let started = Instant::now();
    let checked = bounded(store.check(), STORE_CHECK_TIMEOUT).await;
    let check_ms = started.elapsed().as_secs_f64() * 1000.0;
    let shipped: Vec<(i64, &str)> = crate::store::shipped_migrations().collect();
    let shipped_view = json!({
        "count": shipped.len(),
        "latest": shipped.last().map(|(v, n)| json!({ "version": v, "name": n })),
    });
    let mut view = json!({
        "configured": true,
        "kind": store.kind(),
        "url": store.shown_url(),
        "check_ms": (check_ms * 1000.0).round() / 1000.0,
    });
    let mut reasons = Vec::new();
    match checked {
        Ok(applied) => {
            let current = applied.len() == shipped.len()
                && applied
                    .iter()
                    .zip(&shipped)
                    .all(|(a, (v, n))| a.version == *v && a.name == *n);
            if !current {
                reasons.push(format!(
                    "the database records {} migrations, this binary ships {}",
                    applied.len(),
                    shipped.len()
                ));
            }
            view["reachable"] = json!(true);
            view["migrations"] = json!({
                "applied": {
                    "count": applied.len(),
                    "latest": applied.last().map(|m| json!({ "version": m.version, "name": m.name })),
                },
                "shipped": shipped_view,
                "current": current,
            });
        }
        Err(error) => {
            reasons.push(format!("the store does not answer: {error}"));
            view["reachable"] = json!(false);
            view["error"] = json!(error);
            view["migrations"] = json!({ "shipped": shipped_view });
        }
    }
    StoreView { view, reasons }
}

/// `check`'s result, or why there is none: its error, or that it took longer than `limit`.
async fn bounded<T, E: std::fmt::Display>(
    check: impl Future<Output = Result<T, E>>,
    limit: Duration,
) -> Result<T, String> {
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

/// One backend's credentials counted by state; times as ISO 8601.
fn pool_view(p: &crate::pool::PoolSummary) -> Value {
    json!({
        "backend": p.provider,
        "total": p.total,
        "usable": p.usable,
        "cooling_down": p.cooling_down,
        "next_cooldown_end": p.next_cooldown_end.map(crate::clock::iso8601),
        "needs_login": p.needs_login,
        "quota_exhausted": p.quota_exhausted,
        "expired": p.expired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_check_that_never_answers_is_cut_at_the_limit() {
        let never = std::future::pending::<Result<(), String>>();
        let got = bounded(never, Duration::from_millis(250)).await;
        assert_eq!(got, Err("no answer within 250 ms".to_owned()));
        let failed = bounded(async { Err::<(), _>("closed") }, Duration::from_secs(1)).await;
        assert_eq!(failed, Err("closed".to_owned()));
        assert_eq!(
            bounded(async { Ok::<_, String>(7) }, Duration::from_secs(1)).await,
            Ok(7)
        );
    }
}
