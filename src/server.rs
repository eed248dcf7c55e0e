//! The HTTP server: `router(state)` assembles routes and layers, and `run(listener, state,
//! shutdown)` serves them — HTTP/1.1 and h2c, TCP_NODELAY on every accepted socket, graceful
//! shutdown that drains in-flight requests and streams for at most `server.shutdown_grace`.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api;
use crate::state::AppState;

/// All routes behind authentication, inside the access-log layer.
pub fn router(state: AppState) -> Router {
    api::routes(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth_layer::require_auth,
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
    let grace = state.config().server.shutdown_grace.0;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.tap_io(|tcp| {
        // Without it, a keep-alive connection can stall ~40 ms on Nagle + delayed ACK.
        let _ = tcp.set_nodelay(true);
    });
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

/// Serves on `loops` single-threaded event loops, one OS thread each, all accepting from
/// `listener`: a connection stays on the thread that accepted it, so a request, its upstream call
/// and its answer are handled by one thread that nothing else wakes (the multi-threaded runtime of
/// [`run`] moves tasks between threads, a cross-thread wake-up per hop). Returns when `shutdown`
/// has resolved and every loop has drained, or as soon as one loop fails.
pub async fn run_event_loops(
    listener: TcpListener,
    state: AppState,
    loops: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..loops.max(1) {
        let listener = listener.try_clone()?;
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("portcullis-loop-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            let listener = TcpListener::from_std(listener)?;
                            run(listener, state, async move {
                                let _ = stop.wait_for(|stop| *stop).await;
                            })
                            .await
                        })
                    });
                let _ = done.send(result);
            })?;
    }
    drop(done_tx);
    let mut running = loops.max(1);
    tokio::select! {
        () = shutdown => {}
        Some(result) = done_rx.recv() => {
            running -= 1;
            if let Err(e) = result {
                let _ = stop_tx.send(true);
                return Err(e);
            }
        }
    }
    let _ = stop_tx.send(true);
    let mut outcome = Ok(());
    while running > 0 {
        match done_rx.recv().await {
            Some(Err(e)) => outcome = Err(e),
            Some(Ok(())) => {}
            None => break,
        }
        running -= 1;
    }
    outcome
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
