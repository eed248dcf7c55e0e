//! The HTTP server: `router(state)` assembles routes and layers, and `run(listener, state,
//! shutdown)` serves them — HTTP/1.1 and h2c, TCP_NODELAY on every accepted socket, connection
//! limits (`connections`: a cap, header/idle/body timeouts), graceful shutdown that drains
//! in-flight requests and streams for at most `server.shutdown_grace`.
//! `serve` uses [`run_event_loops`]: the same service on one single-threaded runtime per CPU.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::serve::ListenerExt;
use tower_layer::Layer as _;
use tokio::net::TcpListener;

use crate::api;
use crate::connection::ConnectionStats;
use crate::state::AppState;

mod connections;
mod event_loops;
mod watch;

pub use connections::ConnectionLimits;
pub use event_loops::run_event_loops;

/// All route groups (each behind its guard), behind the request-body limit and the
/// readable-client-address check, inside the access-log layer.
///
/// These layers wrap the route table once. `Router::layer` would wrap every route in its own
/// boxed copy of the stack instead, which each request clones level by level, one allocation
/// per level (see bench/PROFILE.md).
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().server.max_body_bytes;
    let routes = DefaultBodyLimit::max(body_limit).layer(api::groups::router(state.clone()));
    let checked = from_fn_with_state(state.clone(), api::auth_layer::readable_client_address)
        .layer(routes);
    let logged = from_fn_with_state(state, api::access_log::access_log).layer(checked);
    Router::new().fallback_service(logged)
}

/// Serves until `shutdown` resolves, then drains for at most the configured grace period.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Without it, a keep-alive connection can stall ~40 ms on Nagle + delayed ACK.
        let _ = tcp.set_nodelay(true);
    });
    let (limits, stats, grace) = serving(&state);
    connections::serve_connections(listener, app(state), limits, stats, grace, shutdown).await
}

/// The connection limits, the shared connection counters and the shutdown grace period.
fn serving(state: &AppState) -> (ConnectionLimits, Arc<ConnectionStats>, Duration) {
    let server = &state.config().server;
    (
        ConnectionLimits::of(server),
        state.connections().clone(),
        server.shutdown_grace.0,
    )
}

/// [`router`], once per server, with the startup warnings about the routes.
fn app(state: AppState) -> Router {
    for warning in api::groups::bypass_warnings(&state) {
        tracing::warn!("{warning}");
    }
    router(state)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
