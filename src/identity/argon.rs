//! The one bound on Argon2id work in the process: every hash and verification the server runs
//! (agent tokens, the password and client-credentials grants, tokens minted at an SSO login)
//! goes through [`run`], which hands it to a small, fixed set of dedicated OS threads
//! ([`WORKERS_MAX`] at most, fewer on a machine with fewer cores) fed by a bounded queue.
//!
//! Why threads of its own rather than `spawn_blocking` behind a semaphore: each Argon2id run
//! needs its memory (19 MiB with the default parameters), and allocated per run on whichever
//! blocking thread ran it, glibc kept the freed memory in per-thread arenas: a burst of wrong
//! tokens left it resident for good (RSS 142 MB → 1.1 GB in the security review). Here each
//! worker verifies in one buffer of its own, allocated at its first run and reused by every
//! later one, so verification memory is at most workers × 19 MiB, whatever arrives.
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
    run(move || MEMORY.with_borrow_mut(|m| verify_in(m, &hash, secret.expose().as_bytes())))
        .await
        .unwrap_or(false)
}

/// Largest Argon2 memory a worker keeps between runs (blocks of 1 KiB): 64 MiB. A stored hash
/// asking for more still verifies, in memory allocated for that run only.
const KEEP_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// The worker's Argon2 memory, allocated once and reused by every run on this thread: no
    /// allocation per run, so nothing for the allocator to keep after a burst.
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Argon2 verification of `secret` against the PHC string `hash`, in `memory` (grown as the
/// hash's parameters need, up to [`KEEP_BLOCKS`]).
fn verify_in(memory: &mut Vec<argon2::Block>, hash: &str, secret: &[u8]) -> bool {
    use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str());
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let need = params.block_count();
    let mut once = Vec::new();
    let blocks = if need <= KEEP_BLOCKS {
        if memory.len() < need {
            memory.resize(need, argon2::Block::default());
        }
        &mut memory[..need]
    } else {
        once.resize(need, argon2::Block::default());
        &mut once[..]
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret, salt.as_ref(), &mut out, blocks)
        .is_ok();
    computed && bool::from(subtle::ConstantTimeEq::ct_eq(&out[..], expected))
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
                    let h = crate::identity::agent_token::hash_secret("x").is_ok();
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
        let hash = crate::identity::agent_token::hash_secret("right").unwrap();
        assert!(verify(hash.clone(), crate::secret::Secret::new("right")).await);
        assert!(!verify(hash, crate::secret::Secret::new("wrong")).await);
        assert!(!verify("not a hash".into(), crate::secret::Secret::new("x")).await);
    }

    #[test]
    fn verification_in_reused_memory_agrees_with_the_library() {
        use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
        let mut memory = Vec::new();
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 2, 1, Some(16)).unwrap(),
        );
        let hashes = [
            crate::identity::agent_token::hash_secret("s3cret").unwrap(),
            small.hash_password(b"s3cret").unwrap().to_string(),
        ];
        for hash in &hashes {
            for (secret, right) in [(&b"s3cret"[..], true), (b"s3cre", false), (b"", false)] {
                assert_eq!(verify_in(&mut memory, hash, secret), right, "{hash}");
                assert_eq!(
                    Argon2::default()
                        .verify_password(secret, hash.as_str())
                        .is_ok(),
                    right
                );
            }
        }
        assert_eq!(
            memory.len(),
            Params::default().block_count(),
            "kept, not regrown"
        );
        // A changed hash byte or parameter never verifies.
        let tampered = hashes[0].replace("m=19456", "m=19457");
        assert!(!verify_in(&mut memory, &tampered, b"s3cret"));
        assert!(!verify_in(&mut memory, "$argon2id$v=19$m=8,t=1,p=1$", b"x"));
    }
}
