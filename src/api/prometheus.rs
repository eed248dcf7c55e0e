//! `GET /metrics`: the Prometheus exposition ([`crate::telemetry`]). Recorded values and those
//! read now from the rest of the gateway — connections, the answer budget, the credential pool,
//! the lockouts, each backend's failed attempts. Guarded by [`require_scraper`]: loopback
//! callers (not relayed by a proxy) are answered; others only with `metrics.allow_remote` and
//! the metrics key (or, without one, the management key) as a Bearer token, wrong keys counted
//! in the per-address lockout. With `metrics.enabled: false` the route answers 404.

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::access_log::ClientIp;
use super::management::{KeyCheck, check_secret, local_caller, presented_key, problem};
use crate::state::AppState;
use crate::telemetry::Scrape;

/// The route of the metrics group.
pub(super) fn routes() -> super::groups::Routes {
    vec![("/metrics", super::groups::get(metrics))]
}

/// Middleware: metrics on, and a local caller or a remote one with the key.
pub(super) async fn require_scraper(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let m = &state.config().metrics;
    if !state.telemetry().is_enabled() {
        return problem(
            StatusCode::NOT_FOUND,
            "metrics are off (metrics.enabled: false)",
        );
    }
    if local_caller(&req) {
        return next.run(req).await;
    }
    if !m.allow_remote {
        return problem(
            StatusCode::FORBIDDEN,
            "/metrics answers only local callers (metrics.allow_remote is off)",
        );
    }
    let key = m.key.as_ref().or(state.config().management.key.as_ref());
    let ip = ClientIp::of(&req);
    match check_secret(&state, ip, presented_key(req.headers()), key, "metrics_key").await {
        KeyCheck::Accepted => next.run(req).await,
        KeyCheck::Blocked(secs) => {
            let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        KeyCheck::NotConfigured => problem(
            StatusCode::FORBIDDEN,
            "/metrics needs metrics.key or management.key for remote callers",
        ),
        KeyCheck::Wrong => problem(StatusCode::UNAUTHORIZED, "invalid metrics key"),
        KeyCheck::Missing => problem(
            StatusCode::UNAUTHORIZED,
            "send the metrics key as `Authorization: Bearer <key>`",
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let Some(text) = state.telemetry().render(|s| scrape(&state, s)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The values that live elsewhere, read now.
fn scrape(state: &AppState, s: &mut Scrape<'_>) {
    s.gauge("portcullis_uptime_seconds", &[], state.uptime_secs() as f64);
    let c = state.connections().counts();
    s.gauge("portcullis_connections_open", &[], c.open as f64);
    for (outcome, n) in [
        ("accepted", c.accepted),
        ("refused", c.refused),
        ("header_timeout", c.header_timeouts),
        ("idle_closed", c.idle_closed),
    ] {
        s.counter("portcullis_connections_total", &[("outcome", outcome)], n);
    }
    let b = state.answer_budget().counts();
    for (kind, n) in [("in_use", b.in_use_bytes), ("limit", b.limit_bytes)] {
        s.gauge(
            "portcullis_buffered_answer_bytes",
            &[("kind", kind)],
            n as f64,
        );
    }
    let address = state.auth().limiter().map(|l| (l.blocks(), l.tracked()));
    let account = state
        .oauth()
        .and_then(|o| o.account_lockout())
        .map(|l| (l.blocks(), l.tracked()));
    for (scope, lockout) in [("address", address), ("account", account)] {
        if let Some((blocks, tracked)) = lockout {
            s.counter("portcullis_lockouts_total", &[("scope", scope)], blocks);
            s.gauge(
                "portcullis_lockouts_tracked",
                &[("scope", scope)],
                tracked as f64,
            );
        }
    }
    for b in state.router().backends().iter() {
        for (class, n) in b.stats.errors().filter(|(_, n)| *n > 0) {
            s.counter(
                "portcullis_upstream_errors_total",
                &[("backend", &b.name), ("class", class)],
                n,
            );
        }
    }
    let pool = state.pool();
    for p in pool.providers() {
        s.counter(
            "portcullis_credential_cooldowns_total",
            &[("backend", &p.name)],
            p.cooldowns_started(),
        );
    }
    // Every state of every backend, so a state left shows 0 rather than its last count.
    let mut states: BTreeMap<(String, &'static str), u64> = pool
        .providers()
        .iter()
        .flat_map(|p| {
            CREDENTIAL_STATES
                .iter()
                .map(|st| ((p.name.to_string(), *st), 0))
        })
        .collect();
    for c in pool.status(None).unwrap_or_default() {
        if let Some(left) = c.quota.remaining {
            s.gauge(
                "portcullis_credential_quota_remaining_tokens",
                &[("backend", &c.provider), ("credential", &c.id)],
                left as f64,
            );
        }
        *states.entry((c.provider, c.status)).or_default() += 1;
    }
    for ((backend, state), n) in states {
        s.gauge(
            "portcullis_credentials",
            &[("backend", &backend), ("state", state)],
            n as f64,
        );
    }
}

/// The credential states the management API reports (`CredentialStatus::status`).
const CREDENTIAL_STATES: [&str; 8] = [
    "active",
    "rate_limited",
    "rejected",
    "quota_exceeded",
    "cooling_down",
    "exhausted",
    "expired",
    "needs_login",
];
