//! The HTTP server: `router(state)` assembles routes and layers, and `run(listener, state,
//! shutdown)` serves them — HTTP/1.1 and h2c, TCP_NODELAY on every accepted socket, connection
//! limits (`connections`: a cap, header/idle/body timeouts), graceful shutdown that drains
//! in-flight requests and streams for at most `server.shutdown_grace`.
//! `serve` uses [`run_event_loops`]: the same service on one single-threaded runtime per CPU.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api;
use crate::connection::ConnectionStats;
use crate::state::AppState;

mod connections;
mod event_loops;
mod h1;
pub mod h1_wire;
mod quiet;
mod watch;

pub use connections::ConnectionLimits;
pub use event_loops::run_event_loops;

/// What every request passes through, composed once per server: the access log outermost, then
/// the readable-client-address check, the request-body limit, and the route groups (each behind
/// its guard).
///
/// A plain service rather than axum layers: `Router::layer` wraps every route in its own boxed
/// copy of the stack, which each request clones level by level (an allocation per level), and
/// each `from_fn` step boxes its inner service and its future again (see bench/PROFILE.md).
#[derive(Clone)]
pub struct App {
    state: AppState,
    routes: Router,
    /// The model API's JSON operations, served without the router (`api::groups::Direct`).
    direct: Arc<api::groups::Direct>,
    body_limit: usize,
}

/// [`App`] for `state`.
pub fn router(state: AppState) -> App {
    let (routes, direct) = api::groups::router(state.clone());
    App {
        body_limit: state.config().server.max_body_bytes,
        routes,
        direct: Arc::new(direct),
        state,
    }
}

impl connections::App for App {
    type Report = api::access_log::Finish;

    fn answer(
        &self,
        req: Request,
        peer: std::net::SocketAddr,
    ) -> impl Future<Output = connections::Answer<Self::Report>> + Send + 'static {
        let App {
            state,
            mut routes,
            direct,
            body_limit,
        } = self.clone();
        async move {
            let (state, routes) = (&state, &mut routes);
            let answer = api::access_log::access_log(
                state,
                req,
                peer,
                move |mut req, attached| async move {
                    if let Some(refusal) =
                        api::auth_layer::unreadable_client_address(state, &req, attached.peer())
                    {
                        return refusal;
                    }
                    if req.method() == http::Method::POST
                        && let Some(op) = direct.post(req.uri().path())
                    {
                        // The handler reads the body itself, within the same limit. The request's
                        // context goes along beside it: no extension, so no map, on this path.
                        let log = attached.log().clone();
                        return api::auth_layer::guard(state, req, Some(&attached), move |req| {
                            api::body_model(state.clone(), op, req.into_parts(), Some(log))
                        })
                        .await;
                    }
                    attached.attach(&mut req);
                    DefaultBodyLimit::max(body_limit).apply(&mut req);
                    // The router is always ready (`poll_ready` does nothing).
                    match tower_service::Service::call(routes, req).await {
                        Ok(answer) => answer,
                        Err(never) => match never {},
                    }
                },
            );
            Ok(answer.await)
        }
    }
}

/// The access log's line, written when the server says how the answer's sending ended.
impl connections::Report for api::access_log::Finish {
    fn report(self, outcome: api::access_log::Outcome) {
        self.sent(outcome);
    }
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
fn app(state: AppState) -> App {
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
