//! The HTTP server: `router(state)` assembles routes and layers, and `run(listener, state,
//! shutdown)` serves them — HTTP/1.1 and h2c, TCP_NODELAY on every accepted socket, graceful
//! shutdown that drains in-flight requests and streams for at most `server.shutdown_grace`.
//! `serve` uses [`run_event_loops`]: the same service on one single-threaded runtime per CPU.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener, ListenerExt};
use tokio::net::TcpListener;

use crate::api;
use crate::state::AppState;

mod event_loops;

pub use event_loops::run_event_loops;

/// All route groups (each behind its guard), behind the readable-client-address check, inside
/// the access-log layer.
pub fn router(state: AppState) -> Router {
    api::groups::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth_layer::readable_client_address,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            api::access_log::access_log,
        ))
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
    let grace = state.config().server.shutdown_grace.0;
    serve_on(listener, app(state), grace, shutdown).await
}

/// [`router`], once per server, with the startup warnings about the routes.
fn app(state: AppState) -> Router {
    for warning in api::groups::bypass_warnings(&state) {
        tracing::warn!("{warning}");
    }
    router(state)
}

/// Serves `app` on any listener whose connections carry the client's socket address, draining
/// for at most `grace` once `shutdown` resolves.
async fn serve_on<L>(
    listener: L,
    app: Router,
    grace: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
    for<'a> SocketAddr: Connected<IncomingStream<'a, L>>,
{
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut serve = std::pin::pin!(serve.into_future());
    tokio::select! {
        result = &mut serve => return result,
        () = shutdown => {}
    }
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining in-flight requests"
    );
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, serve).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("shutdown grace period elapsed; closing the remaining connections");
            Ok(())
        }
    }
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
