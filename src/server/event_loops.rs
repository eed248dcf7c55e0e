//! `serve`'s threading: N single-threaded event loops, one OS thread each, and one acceptor that
//! hands every new connection to the loop serving the fewest.
//!
//! A connection stays on its loop for its whole life, so a request, its upstream call and its
//! answer are handled by one thread that nothing else wakes (tokio's multi-threaded runtime moves
//! tasks between threads: a cross-thread wake-up per hop, expensive on a VM). The acceptor runs
//! on the main runtime and balances by live connections (each loop counts its own; a connection
//! decrements the count when it closes), so a burst of new connections is spread evenly instead
//! of landing on whichever loop woke first. It costs one hand-off per connection, not per request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::state::AppState;

/// A connection on its way from the acceptor to a loop.
type Handoff = (std::net::TcpStream, SocketAddr);

/// Serves on `loops` event loops until `shutdown` resolves and every loop has drained, or until
/// one loop fails (the others are then stopped too). A loop that has drained keeps its runtime
/// running until all have: the upstream connections it opened may carry other loops' streams.
pub async fn run_event_loops(
    mut listener: TcpListener,
    state: AppState,
    loops: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut lanes = Vec::new();
    let (limits, stats, grace) = super::serving(&state);
    let app = super::app(state);
    for i in 0..loops.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
        let live = Arc::new(AtomicUsize::new(0));
        let incoming = Incoming {
            rx,
            live: live.clone(),
            local,
        };
        let app = app.clone();
        let stats = stats.clone();
        let mut stop = stop_rx.clone();
        let mut release = release_rx.clone();
        let done = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("portcullis-loop-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = done.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let stop = async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    };
                    let result = super::connections::serve_connections(
                        incoming, app, limits, stats, grace, stop,
                    )
                    .await;
                    let _ = done.send(result);
                    // Upstream connections are shared: a request on another loop may be
                    // streaming over one this loop opened (its socket in this loop's reactor,
                    // or, for reqwest, its task on this runtime). Keep running until every loop
                    // has drained; dropping the runtime earlier would cut that stream.
                    let _ = release.wait_for(|release| *release).await;
                });
            })?;
        lanes.push(Lane { tx, live });
    }
    drop(done_tx);
    let mut running = lanes.len();
    let mut shutdown = std::pin::pin!(shutdown);
    let failed = loop {
        tokio::select! {
            () = &mut shutdown => break None,
            Some(result) = done_rx.recv() => {
                running -= 1;
                break Some(result.err().unwrap_or_else(|| io::Error::other("an event loop stopped")));
            }
            (tcp, addr) = Listener::accept(&mut listener) => {
                // Without it, a keep-alive connection can stall ~40 ms on Nagle + delayed ACK.
                let _ = tcp.set_nodelay(true);
                let tcp = match tcp.into_std() {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot hand over an accepted connection");
                        continue;
                    }
                };
                if let Some(lane) = least_loaded(&lanes) {
                    lane.live.fetch_add(1, Ordering::Relaxed);
                    if lane.tx.send((tcp, addr)).is_err() {
                        lane.live.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    drop(listener);
    let _ = stop_tx.send(true);
    let mut outcome = failed.map_or(Ok(()), Err);
    while running > 0 {
        match done_rx.recv().await {
            Some(Err(e)) if outcome.is_ok() => outcome = Err(e),
            Some(_) => {}
            None => break,
        }
        running -= 1;
    }
    let _ = release_tx.send(true);
    outcome
}

/// The acceptor's side of one loop: where to send connections, and how many it serves.
struct Lane {
    tx: mpsc::UnboundedSender<Handoff>,
    live: Arc<AtomicUsize>,
}

/// The loop serving the fewest connections (the first of equals).
fn least_loaded(lanes: &[Lane]) -> Option<&Lane> {
    lanes
        .iter()
        .min_by_key(|lane| lane.live.load(Ordering::Relaxed))
}

/// A loop's side of the hand-off: connections the acceptor gave it.
struct Incoming {
    rx: mpsc::UnboundedReceiver<Handoff>,
    live: Arc<AtomicUsize>,
    local: SocketAddr,
}

impl Listener for Incoming {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let Some((tcp, addr)) = self.rx.recv().await else {
                // The acceptor has stopped (shutting down): nothing more will come.
                return std::future::pending().await;
            };
            match TcpStream::from_std(tcp) {
                Ok(tcp) => {
                    return (
                        Counted {
                            tcp,
                            live: Live(self.live.clone()),
                        },
                        addr,
                    );
                }
                Err(e) => {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot take over an accepted connection");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A connection counted in its loop's live connections until it is dropped.
struct Counted {
    tcp: TcpStream,
    live: Live,
}

/// One of a loop's live connections, until dropped.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

// axum's `Listener` wants a socket; the server takes the `TcpStream` out (`Accepted`).
impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl super::connections::Accepted for Counted {
    type Guard = Live;
    fn into_parts(self) -> (TcpStream, Live) {
        (self.tcp, self.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_loop_serving_the_fewest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (lanes, mut receivers): (Vec<Lane>, Vec<_>) = (0..3)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
                let live = Arc::new(AtomicUsize::new(0));
                (Lane { tx, live }, rx)
            })
            .unzip();
        let mut held = Vec::new();
        for _ in 0..9 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (tcp, peer) = listener.accept().await.unwrap();
            let lane = least_loaded(&lanes).unwrap();
            lane.live.fetch_add(1, Ordering::Relaxed);
            lane.tx.send((tcp.into_std().unwrap(), peer)).unwrap();
            held.push(client);
        }
        let counts = || {
            lanes
                .iter()
                .map(|l| l.live.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(), [3, 3, 3]);
        // The loops take their connections; closing one loop's frees its slots.
        let mut taken: Vec<Vec<Counted>> = Vec::new();
        for (i, rx) in receivers.iter_mut().enumerate() {
            let mut incoming = Incoming {
                rx: std::mem::replace(rx, mpsc::unbounded_channel().1),
                live: lanes[i].live.clone(),
                local: addr,
            };
            let mut mine = Vec::new();
            for _ in 0..3 {
                mine.push(incoming.accept().await.0);
            }
            taken.push(mine);
        }
        taken[1].clear();
        assert_eq!(counts(), [3, 0, 3]);
        assert!(Arc::ptr_eq(
            &least_loaded(&lanes).unwrap().live,
            &lanes[1].live
        ));
    }
}
