//! The one bound on Argon2id work in the process: every hash and verification the server runs
//! (agent tokens, the password and client-credentials grants, tokens minted at an SSO login)
//! goes through [`run`], which hands it to a small, fixed set of dedicated OS threads
//! ([`WORKERS_MAX`] at most, fewer on a machine with fewer cores) fed by a bounded queue.
//!
//! Why threads of its own rather than `spawn_blocking` behind a semaphore: each Argon2id run
//! allocates its memory (19 MiB with the default parameters) on the thread that runs it, and
//! glibc keeps freed memory in per-thread arenas. Spread over the blocking pool's dozens of
//! threads, a burst of wrong tokens left that memory resident for good (RSS 142 MB → 1.1 GB in
//! the security review); on two threads, at most two runs' worth of memory is ever in use or
//! held, however many requests arrive.
//!
//! Why a process-wide value rather than a field of `AppState`: the bound protects the machine
//! (its cores and its memory), of which there is one per process whatever number of states are
//! built (tests build many, the CLI none). Callers wait (asynchronously) for a queue slot, and a
//! job whose caller has gone away before a worker reached it is skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{mpsc, oneshot};

/// Most threads running Argon2id at once.
pub const WORKERS_MAX: usize = 2;
/// Jobs waiting for a worker before callers wait to enqueue.
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ArgonError {
    /// No worker thread could be started (the OS refused a thread).
    #[error("no Argon2 worker thread is running")]
    NoWorker,
}

struct Pool {
    queue: Option<mpsc::Sender<Job>>,
    workers: usize,
    runs: Arc<AtomicU64>,
}

static POOL: LazyLock<Pool> = LazyLock::new(Pool::start);

impl Pool {
    fn start() -> Pool {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let runs = Arc::new(AtomicU64::new(0));
        let wanted = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, WORKERS_MAX);
        let mut workers = 0;
        for i in 0..wanted {
            let rx = rx.clone();
            let runs = runs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx, &runs));
            match spawned {
                Ok(_) => workers += 1,
                Err(e) => tracing::error!(error = %e, "could not start an Argon2 worker thread"),
            }
        }
        Pool {
            queue: (workers > 0).then_some(tx),
            workers,
            runs,
        }
    }
}

/// A worker: takes one job at a time until the queue is closed.
fn work(rx: &Mutex<mpsc::Receiver<Job>>, runs: &AtomicU64) {
    loop {
        // Only the wait for a job holds the lock; the job runs without it.
        let job = match rx.lock() {
            Ok(mut r) => r.blocking_recv(),
            Err(_) => None,
        };
        let Some(job) = job else { return };
        runs.fetch_add(1, Ordering::Relaxed);
        job();
    }
}

/// Runs `f` (an Argon2id hash or verification) on one of the pool's threads and returns its
/// result. Waits for a free queue slot; if the returned future is dropped before a worker takes
/// the job, the job is skipped.
pub async fn run<T, F>(f: F) -> Result<T, ArgonError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let queue = POOL.queue.as_ref().ok_or(ArgonError::NoWorker)?;
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        if !tx.is_closed() {
            let _ = tx.send(f());
        }
    });
    queue.send(job).await.map_err(|_| ArgonError::NoWorker)?;
    rx.await.map_err(|_| ArgonError::NoWorker)
}

/// Verifies `secret` against the Argon2id PHC string `hash` on the pool (false for a malformed
/// hash or when no worker runs).
pub async fn verify(hash: String, secret: crate::secret::Secret) -> bool {
    use argon2::{Argon2, PasswordVerifier};
    run(move || {
        Argon2::default()
            .verify_password(secret.expose().as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// Jobs the pool has started since the process began (skipped ones excluded).
pub fn runs() -> u64 {
    POOL.runs.load(Ordering::Relaxed)
}

/// Threads the pool runs jobs on.
pub fn workers() -> usize {
    POOL.workers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_the_workers_run_at_once_and_every_job_answers() {
        let busy = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let jobs: Vec<_> = (0..40u64)
            .map(|i| {
                let (busy, most) = (busy.clone(), most.clone());
                tokio::spawn(run(move || {
                    let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Real work, so that jobs overlap if the bound does not hold.
                    let h = crate::auth::agent_token::hash_secret("x").is_ok();
                    busy.fetch_sub(1, Ordering::SeqCst);
                    (i, h)
                }))
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.unwrap(), Ok((i as u64, true)));
        }
        assert!(workers() >= 1 && workers() <= WORKERS_MAX);
        assert!(
            most.load(Ordering::SeqCst) <= workers() as u64,
            "{} jobs ran at once",
            most.load(Ordering::SeqCst)
        );
        let hash = crate::auth::agent_token::hash_secret("right").unwrap();
        assert!(verify(hash.clone(), crate::secret::Secret::new("right")).await);
        assert!(!verify(hash, crate::secret::Secret::new("wrong")).await);
        assert!(!verify("not a hash".into(), crate::secret::Secret::new("x")).await);
    }
}
