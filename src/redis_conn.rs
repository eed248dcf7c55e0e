//! The connection to the Redis server that several gateway instances share state through —
//! today the limit counters (`policy::RedisCounters`); brute-force lockouts and invalidation
//! messages can use the same connection. [`RedisConn`] is built from [`RedisSettings`]
//! (`storage.redis_url`, `storage.redis_prefix`, `storage.redis_timeout`, assembled by
//! `config`) without connecting: the connection is opened on first use and reopened after a
//! failure (redis-rs's `ConnectionManager`, one multiplexed connection shared by every
//! request). Commands run on the runtime the handle was built on — `serve`'s main runtime,
//! which outlives the event loops: a command sent from any loop runs there, so the connection
//! never dies with a loop. Every command is bounded by the timeout, so a Redis that is down or
//! hung fails a request fast instead of holding it.
//!
//! Every key the gateway writes starts with the prefix ([`RedisConn::key`]), so several
//! deployments (or test runs) can share one server. Errors and the URL shown to operators
//! ([`RedisConn::shown_url`]) never carry the URL's password.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::secret::Secret;

/// What [`RedisConn::new`] takes (assembled by `config` from `storage.*`).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS) or `redis+unix:///path`.
    pub url: Secret,
    /// Put before every key the gateway writes (`portcullis:` by default).
    pub prefix: String,
    /// The longest a command (connecting included) may take before it fails.
    pub timeout: Duration,
}

/// Why Redis could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// The URL cannot be used (checked at startup by `config`).
    #[error("the Redis URL is not usable: {0}")]
    Url(String),
    /// Nothing accepted the connection: the command was not sent.
    #[error("Redis refused the connection ({0})")]
    Refused(String),
    /// No answer within the timeout (the command may or may not have run).
    #[error("Redis did not answer within {0} ms")]
    Timeout(u128),
    /// Any other failure (a broken connection, a server error).
    #[error("Redis failed: {0}")]
    Failed(String),
}

impl RedisError {
    /// True when the command certainly did not reach Redis (safe to send again).
    pub fn unsent(&self) -> bool {
        matches!(self, RedisError::Refused(_))
    }
}

/// What `/internal/health` shows about Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// The URL without its password.
    pub url: String,
    /// The key prefix.
    pub prefix: String,
    /// Whether a `PING` was answered just now.
    pub reachable: bool,
    /// Why not, when it was not.
    pub error: Option<String>,
}

/// Checks a Redis URL the way the connection will read it; the message never repeats the URL.
pub fn check_url(url: &str) -> Result<(), String> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| e.to_string().replace(url, "<url>"))
}

pub use crate::net::shown_url;

/// The password in `url` (its userinfo, or a unix socket URL's `pass=` parameter), if any.
pub fn url_password(url: &str) -> Option<Secret> {
    let u = reqwest::Url::parse(url).ok()?;
    let from_query = || {
        u.query_pairs()
            .find(|(k, _)| k == "pass")
            .map(|(_, v)| v.into_owned())
    };
    let raw = u
        .password()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .or_else(from_query)?;
    (!raw.is_empty()).then(|| Secret::new(raw))
}

/// A cheap-to-clone handle on one Redis server.
#[derive(Clone)]
pub struct RedisConn(Arc<Inner>);

struct Inner {
    client: redis::Client,
    manager: tokio::sync::OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    shown: String,
    password: Option<Secret>,
    /// Where commands run (the runtime current when the handle was built), if any.
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("url", &self.0.shown)
            .field("prefix", &self.0.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisConn {
    /// A handle on the server `settings` name; nothing is connected yet. Built inside a Tokio
    /// runtime, its commands run on that runtime whatever runtime sends them.
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisError> {
        let url = settings.url.expose();
        let client = redis::Client::open(url)
            .map_err(|e| RedisError::Url(e.to_string().replace(url, "<url>")))?;
        Ok(Self(Arc::new(Inner {
            client,
            manager: tokio::sync::OnceCell::new(),
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            shown: shown_url(url),
            password: url_password(url),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })))
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.0.prefix)
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> &str {
        &self.0.shown
    }

    /// The client, for connections of another kind (a pub/sub subscriber).
    pub fn client(&self) -> &redis::Client {
        &self.0.client
    }

    /// The command timeout.
    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    async fn manager(&self) -> Result<ConnectionManager, RedisError> {
        let t = self.0.timeout;
        // One connection attempt per reconnection: a command that finds Redis down fails at
        // once, and the next one starts a new attempt — so a returning Redis is used again at
        // once.
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(t))
                .set_response_timeout(Some(t))
                .set_number_of_retries(0)
        };
        let manager = self.0.manager.get_or_try_init(|| async {
            ConnectionManager::new_lazy_with_config(self.0.client.clone(), config())
                .map_err(|e| self.error(&e))
        });
        manager.await.cloned()
    }

    /// Runs `command` on the shared connection, bounded by the timeout. A command refused a
    /// connection (so never sent) is sent once more: the refusal may be the outcome of an
    /// earlier attempt, and its failure starts a new one — which finds a Redis that is back.
    pub async fn run<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.clone();
        let work = async move { this.run_here(command).await };
        match &self.0.runtime {
            Some(rt) => rt.spawn(work).await.unwrap_or_else(|e| {
                Err(RedisError::Failed(format!("the command's task ended: {e}")))
            }),
            None => work.await,
        }
    }

    async fn run_here<T, F, Fut>(&self, command: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.manager().await?;
        let attempts = async {
            match command(conn.clone()).await {
                Err(e) if e.is_connection_refusal() => command(conn).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.0.timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(&e)),
            Err(_) => Err(RedisError::Timeout(self.0.timeout.as_millis())),
        }
    }

    /// Runs `script` with `keys` and `args` (owned: the call may run on another runtime).
    pub async fn script<T>(
        &self,
        script: &Arc<redis::Script>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, RedisError>
    where
        T: redis::FromRedisValue + Send + 'static,
    {
        let (script, keys, args) = (script.clone(), Arc::new(keys), Arc::new(args));
        self.run(move |mut c| {
            let (script, keys, args) = (script.clone(), keys.clone(), args.clone());
            async move {
                let mut call = script.prepare_invoke();
                for k in keys.iter() {
                    call.key(k);
                }
                for a in args.iter() {
                    call.arg(a);
                }
                call.invoke_async(&mut c).await
            }
        })
        .await
    }

    /// Sends `PING`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.run(|mut c| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map(drop)
        })
        .await
    }

    /// Whether Redis answers now, for `/internal/health`.
    pub async fn health(&self) -> RedisHealth {
        let result = self.ping().await;
        RedisHealth {
            url: self.0.shown.clone(),
            prefix: self.0.prefix.clone(),
            reachable: result.is_ok(),
            error: result.err().map(|e| e.to_string()),
        }
    }

    /// A redis-rs error as ours, without the password.
    fn error(&self, e: &redis::RedisError) -> RedisError {
        let mut text = e.to_string();
        if let Some(p) = &self.0.password {
            text = text.replace(p.expose(), "***");
        }
        if e.is_connection_refusal() {
            RedisError::Refused(text)
        } else if e.is_timeout() {
            RedisError::Timeout(self.0.timeout.as_millis())
        } else {
            RedisError::Failed(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let url = "redis://default:s3cr%40t@cache.internal:6380/2";
        assert_eq!(shown_url(url), "redis://default@cache.internal:6380/2");
        assert_eq!(url_password(url).unwrap().expose(), "s3cr@t");
        let unix = "redis+unix:///run/redis.sock?db=1&pass=hunter2";
        assert_eq!(shown_url(unix), "redis+unix:///run/redis.sock");
        assert_eq!(url_password(unix).unwrap().expose(), "hunter2");
        assert!(url_password("redis://127.0.0.1:6379").is_none());
    }

    #[test]
    fn urls_are_checked_without_being_repeated() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("redis+unix:///run/redis.sock").is_ok());
        for bad in ["http://cache:6379", "redis://:pw@", "cache:6379"] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("pw"), "{bad}: {e}");
        }
    }

    #[test]
    fn nothing_connects_until_first_use() {
        let conn = RedisConn::new(&RedisSettings {
            url: Secret::new("redis://127.0.0.1:1/0"),
            prefix: "p:".to_owned(),
            timeout: Duration::from_millis(100),
        })
        .unwrap();
        assert_eq!(conn.key("x"), "p:x");
        assert!(conn.0.manager.get().is_none());
    }
}
