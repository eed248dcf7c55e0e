//! Two reference points that are not the gateway:
//!
//! - `portcullis-bench relay --to ADDR`: a plain TCP relay (each accepted connection copied
//!   byte for byte to a fresh upstream connection, `TCP_NODELAY` both ways, tokio's default
//!   multi-thread runtime like the gateway's). What it adds over the direct path is the floor
//!   of *any* extra loopback hop on this machine — two more sockets and thread wake-ups per
//!   request, no HTTP — so the gateway's own share of its added latency can be told apart.
//! - [`host_stall`]: how much CPU time a spinning thread loses to the hypervisor, a measure of
//!   how noisy the machine was.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// The line `procs::start_relay` waits for.
pub(crate) const READY: &str = "portcullis-bench relay listening on http://";

/// Serves the relay until killed.
pub(crate) async fn serve(to: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("relay: cannot bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("relay: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{READY}{addr}");
        let _ = out.flush();
    }
    loop {
        let (mut client, _) = listener
            .accept()
            .await
            .map_err(|e| format!("relay: accept: {e}"))?;
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            let Ok(mut upstream) = TcpStream::connect(to).await else {
                return;
            };
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

/// Spins on a dedicated thread for `span` and sums the gaps longer than 100 µs between two
/// consecutive clock reads: time the thread was runnable but not running (the hypervisor or
/// other tenants had the core). Returns (total lost, longest gap).
pub(crate) async fn host_stall(span: Duration) -> (Duration, Duration) {
    let probe = move || {
        let start = Instant::now();
        let mut prev = start;
        let (mut lost, mut worst) = (Duration::ZERO, Duration::ZERO);
        while prev - start < span {
            let now = Instant::now();
            let gap = now - prev;
            if gap > Duration::from_micros(100) {
                lost += gap;
                worst = worst.max(gap);
            }
            prev = now;
        }
        (lost, worst)
    };
    tokio::task::spawn_blocking(probe)
        .await
        .unwrap_or((Duration::ZERO, Duration::ZERO))
}
