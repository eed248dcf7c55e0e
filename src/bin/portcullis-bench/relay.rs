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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Milliseconds the suite may still spend waiting for a calm machine (bounds the run time).
static CALM_BUDGET_MS: AtomicU64 = AtomicU64::new(90_000);
/// Milliseconds spent waiting so far.
static CALM_WAITED_MS: AtomicU64 = AtomicU64::new(0);

/// Before a measured run: probes the machine for 100 ms and, while a spinning thread loses more
/// than 10 % of it, waits 2 s (at most 3 times per run, and 90 s per suite in total).
pub(crate) async fn wait_calm() {
    for _ in 0..3 {
        let (lost, _) = host_stall(Duration::from_millis(100)).await;
        if lost < Duration::from_millis(10) {
            return;
        }
        let left = CALM_BUDGET_MS.load(Ordering::Acquire);
        if left < 2000 {
            return;
        }
        CALM_BUDGET_MS.store(left - 2000, Ordering::Release);
        CALM_WAITED_MS.fetch_add(2000, Ordering::AcqRel);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Total time [`wait_calm`] waited.
pub(crate) fn calm_waited() -> Duration {
    Duration::from_millis(CALM_WAITED_MS.load(Ordering::Acquire))
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
