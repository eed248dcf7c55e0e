//! reqwest clients kept per event loop, for the backends reqwest serves (URLs with credentials,
//! Qwen's per-account hosts, backends behind a proxy).
//!
//! A reqwest client runs each upstream connection in a task of its own, spawned on the runtime of
//! the request that opened it, and its pool hands that connection to any later request. With
//! `serve`'s event loops (single-threaded runtimes, one thread each) a request on one loop then
//! crosses to a connection task on another: a wake-up of the other thread each way, per request.
//! Measured on two cores when HTTP/2 still went through reqwest (`bench/PROFILE.md` §14, an
//! HTTP/2 connection being shared by every request): 260–270 µs of CPU per request with two loops
//! sharing one client, 211–217 with one loop.
//!
//! So each event loop gets a client of its own, built on its first request there with the same
//! settings, whose connections live on that loop and serve only its requests. Every other thread
//! (the multi-threaded runtime of background jobs, or of `event_loops: 0`) uses one shared
//! client, as before.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::thread::ThreadId;

use tokio::runtime::{Handle, RuntimeFlavor};

/// Builds a client with a backend's settings.
pub(super) type Build = Arc<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// Most per-loop clients kept; requests on further single-threaded runtimes use the shared one.
/// `serve` runs at most [`crate::config::ServerConfig::MAX_EVENT_LOOPS`] loops.
const MAX_LOOPS: usize = crate::config::ServerConfig::MAX_EVENT_LOOPS;

/// One backend's reqwest clients: a shared one, and one per event loop that has sent a request.
pub(super) struct LoopClients {
    build: Build,
    shared: reqwest::Client,
    per_loop: RwLock<HashMap<ThreadId, reqwest::Client>>,
}

impl std::fmt::Debug for LoopClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopClients")
            .field("loops", &self.loops())
            .finish_non_exhaustive()
    }
}

impl LoopClients {
    /// The shared client is built at once, so that a setting reqwest refuses fails the
    /// configuration rather than a request.
    pub(super) fn new(build: Build) -> reqwest::Result<Self> {
        Ok(Self {
            shared: build()?,
            build,
            per_loop: RwLock::new(HashMap::new()),
        })
    }

    /// The client for a request on the current thread: its event loop's own when the thread
    /// runs a single-threaded runtime, else the shared one.
    pub(super) fn current(&self) -> reqwest::Client {
        let Some(thread) = loop_thread() else {
            return self.shared.clone();
        };
        if let Ok(clients) = self.per_loop.read()
            && let Some(client) = clients.get(&thread)
        {
            return client.clone();
        }
        self.add(thread)
    }

    /// Builds the client of the loop on `thread` (the shared one when the table is full, or if
    /// building fails — it succeeded with the same settings once already).
    #[cold]
    fn add(&self, thread: ThreadId) -> reqwest::Client {
        let Ok(mut clients) = self.per_loop.write() else {
            return self.shared.clone();
        };
        if let Some(client) = clients.get(&thread) {
            return client.clone();
        }
        if clients.len() >= MAX_LOOPS {
            return self.shared.clone();
        }
        match (self.build)() {
            Ok(client) => {
                clients.insert(thread, client.clone());
                client
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot build an event loop's upstream client; using the shared one");
                self.shared.clone()
            }
        }
    }

    /// Event loops with a client of their own.
    fn loops(&self) -> usize {
        self.per_loop.read().map_or(0, |c| c.len())
    }
}

/// The current thread when it runs a single-threaded runtime (an event loop), else `None`.
pub(super) fn loop_thread() -> Option<ThreadId> {
    Handle::try_current()
        .is_ok_and(|h| matches!(h.runtime_flavor(), RuntimeFlavor::CurrentThread))
        .then(|| std::thread::current().id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting() -> (LoopClients, Arc<AtomicUsize>) {
        let built = Arc::new(AtomicUsize::new(0));
        let count = built.clone();
        let build: Build = Arc::new(move || {
            count.fetch_add(1, Ordering::Relaxed);
            reqwest::Client::builder().build()
        });
        (LoopClients::new(build).unwrap(), built)
    }

    fn current_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn each_single_threaded_runtime_gets_one_client_of_its_own() {
        let (clients, built) = counting();
        assert_eq!(built.load(Ordering::Relaxed), 1, "the shared one");
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    current_thread_runtime().block_on(async {
                        for _ in 0..4 {
                            clients.current();
                        }
                    });
                });
            }
        });
        assert_eq!(clients.loops(), 3);
        assert_eq!(built.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn other_threads_share_one_client() {
        let (clients, built) = counting();
        clients.current(); // no runtime at all
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let clients = Arc::new(clients);
        rt.block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let c = clients.clone();
                    tokio::spawn(async move {
                        c.current();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(clients.loops(), 0);
        assert_eq!(built.load(Ordering::Relaxed), 1);
    }
}
