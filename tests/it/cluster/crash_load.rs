//! The load the crash-durability test runs against one gateway until it kills it: concurrent
//! workers, each repeating one kind of write and keeping what the gateway acknowledged (a 2xx
//! answer read to its end) — virtual keys created through the management API, JWTs from the
//! token server's password grant, SSO logins (agent tokens), credentials added and then updated
//! through the management API, and metered chat completions with one virtual key (their usage,
//! and when it was acknowledged). The load is stopped before the kill, so a failure seen while
//! it runs is an anomaly, and one seen after is the kill's.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tokio::task::JoinHandle;

use super::*;

/// The password of the local user `dev`, whose JWTs the load asks for.
pub(crate) const PASSWORD: &str = "crash-test-password-1";
/// Workers sending metered requests (each may have one in flight when the gateway dies).
pub(crate) const METERED_WORKERS: usize = 2;

/// What the gateway acknowledged.
#[derive(Default)]
pub(crate) struct Acked {
    pub(crate) keys: Vec<String>,
    pub(crate) jwts: Vec<String>,
    pub(crate) logins: Vec<String>,
    /// A credential's id and its priority, once per add and per update.
    pub(crate) credentials: Vec<(String, i64)>,
    /// When a metered request was answered, and its input and output tokens, oldest first.
    pub(crate) usage: Vec<(Instant, u64, u64)>,
    /// Failures while the load ran (not caused by the kill).
    pub(crate) anomalies: Vec<String>,
}

impl Acked {
    fn merge(&mut self, o: Acked) {
        self.keys.extend(o.keys);
        self.jwts.extend(o.jwts);
        self.logins.extend(o.logins);
        self.credentials.extend(o.credentials);
        self.usage.extend(o.usage);
        self.anomalies.extend(o.anomalies);
    }
}

/// A load running against one gateway.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Acked>>,
}

/// Repeats `op` until the load stops, keeping what it acknowledged with `keep`.
fn worker<T, F, Fut>(
    stop: &Arc<AtomicBool>,
    mut op: F,
    keep: fn(&mut Acked, T),
) -> JoinHandle<Acked>
where
    T: Send + 'static,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>> + Send,
{
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut acked = Acked::default();
        for n in 0.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match op(n).await {
                Ok(v) => keep(&mut acked, v),
                Err(_) if stop.load(Ordering::SeqCst) => break,
                Err(e) => acked.anomalies.push(e),
            }
        }
        acked
    })
}

/// Sends `req`; the answer as JSON when it is a success read to its end.
async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
    let r = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{what}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{what}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|_| format!("{what}: not JSON: {text}"))
}

/// `field` of `v` as a string.
fn text(v: &Value, field: &str) -> Result<String, String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {field}: {v}"))
}

impl Load {
    /// Starts every worker against the gateway at `url`; `metered` is the virtual key of the
    /// metered requests.
    pub(crate) fn start(url: &str, metered: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let (u, http) = (url.to_owned(), client());
        workers.push(worker(
            &stop,
            move |n| {
                let req = http
                    .post(format!("{u}/v0/management/keys"))
                    .bearer_auth(MGMT);
                let req = req.json(&json!({"name": format!("crash-{n}")}));
                async move { text(&send(req, "key").await?, "key") }
            },
            |a, k| a.keys.push(k),
        ));
        let (u, http) = (url.to_owned(), client());
        workers.push(worker(
            &stop,
            move |_| {
                let form = [
                    ("grant_type", "password"),
                    ("username", "dev"),
                    ("password", PASSWORD),
                ];
                let req = http.post(format!("{u}/oauth/token")).form(&form);
                async move { text(&send(req, "password grant").await?, "access_token") }
            },
            |a, t| a.jwts.push(t),
        ));
        let u = url.to_owned();
        workers.push(worker(
            &stop,
            move |_| {
                let u = u.clone();
                async move { sso_login(&u, &u).await }
            },
            |a, t| a.logins.push(t),
        ));
        workers.push(credentials(&stop, url));
        for _ in 0..METERED_WORKERS {
            let (u, key, http) = (url.to_owned(), metered.to_owned(), client());
            workers.push(worker(
                &stop,
                move |_| {
                    let req = http
                        .post(format!("{u}/v1/chat/completions"))
                        .bearer_auth(&key);
                    let req = req.json(&chat("metered:mock-gpt", false));
                    async move {
                        let v = send(req, "metered chat").await?;
                        let n = |f: &str| {
                            v["usage"][f]
                                .as_u64()
                                .ok_or_else(|| format!("no usage: {v}"))
                        };
                        Ok((Instant::now(), n("prompt_tokens")?, n("completion_tokens")?))
                    }
                },
                |a, u| a.usage.push(u),
            ));
        }
        Load { stop, workers }
    }

    /// Stops starting new operations (those in flight go on until the kill).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for every worker; what was acknowledged.
    pub(crate) async fn finish(self) -> Acked {
        self.stop();
        let mut all = Acked::default();
        for w in self.workers {
            all.merge(w.await.unwrap());
        }
        all.usage.sort_by_key(|u| u.0);
        all
    }
}

/// Adds a credential, then raises its priority three times, and again with another.
fn credentials(stop: &Arc<AtomicBool>, url: &str) -> JoinHandle<Acked> {
    let latest: Arc<Mutex<String>> = Arc::default();
    let (u, http) = (url.to_owned(), client());
    worker(
        stop,
        move |n| {
            let priority = 1000 + n as i64;
            let latest = latest.clone();
            let current = latest.lock().unwrap().clone();
            let req = if n % 4 == 0 {
                let token = format!("sk-crash-credential-{n}-0123456789");
                let body = json!({"provider": "openai", "token": token, "priority": priority});
                http.post(format!("{u}/v0/management/auths")).json(&body)
            } else {
                let path = format!("{u}/v0/management/auths/openai?id={current}");
                http.put(path).json(&json!({"priority": priority}))
            };
            async move {
                let id = text(&send(req.bearer_auth(MGMT), "credential").await?, "id")?;
                *latest.lock().unwrap() = id.clone();
                Ok((id, priority))
            }
        },
        |a, c| a.credentials.push(c),
    )
}
