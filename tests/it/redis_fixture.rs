//! Redis for the tests: the machine's server (127.0.0.1:6379, or `PORTCULLIS_TEST_REDIS`), each
//! test under a fresh key prefix whose keys are deleted when it ends — skipped with a message
//! when nothing listens there, and under `CI=true` a failure instead — and a throwaway
//! `redis-server` of a test's own (password, free port) that the test can kill and start again
//! on the same port.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portcullis::config::Config;
use portcullis::policy::RedisCounters;
use portcullis::policy::counters::Counters;
use portcullis::redis_conn::{RedisConn, RedisSettings};
use portcullis::secret::Secret;

/// `PORTCULLIS_TEST_REDIS` overrides the server (default `redis://127.0.0.1:6379`).
fn redis_server() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Fails under `CI=true`, else says why the test is skipped; returns `None` either way.
fn skip<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Redis is required under CI: {why}"
    );
    eprintln!("skipping: {why}");
    None
}

/// A fresh key prefix: `pcl-test-<12 hex>:`.
fn fresh_prefix() -> String {
    let b = portcullis::secret::random_bytes::<6>().unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("pcl-test-{hex}:")
}

/// One test's corner of a Redis server: its URL and key prefix. Its keys are deleted on drop.
pub(crate) struct TestRedis {
    pub(crate) url: String,
    pub(crate) prefix: String,
}

/// The machine's Redis under a fresh prefix, or `None` (skipped) when nothing listens there.
pub(crate) async fn test_redis() -> Option<TestRedis> {
    let url = redis_server();
    let client = redis::Client::open(url.as_str()).unwrap();
    let answered = match client.get_multiplexed_async_connection().await {
        Ok(mut c) => redis::cmd("PING").query_async::<String>(&mut c).await,
        Err(e) => Err(e),
    };
    if let Err(e) = answered {
        return skip(&format!("no Redis answers at {url} ({e})"));
    }
    Some(TestRedis {
        url,
        prefix: fresh_prefix(),
    })
}

impl TestRedis {
    /// Connection settings (a generous timeout: the machine is busy during the test run).
    pub(crate) fn settings(&self) -> RedisSettings {
        RedisSettings {
            url: Secret::new(self.url.as_str()),
            prefix: self.prefix.clone(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Counters in this corner.
    pub(crate) fn counters(&self) -> Arc<dyn Counters> {
        Arc::new(RedisCounters::new(RedisConn::new(&self.settings()).unwrap()).unwrap())
    }

    /// Waits until `n` connections listen on this corner's instance-message channel (the
    /// `bus.subscribe` jobs of `n` gateways): a message published before a gateway has
    /// subscribed never reaches it.
    pub(crate) async fn subscribed(&self, n: i64) {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let channel = format!("{}events", self.prefix);
        let start = std::time::Instant::now();
        loop {
            let (_, listening): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut c)
                .await
                .unwrap();
            if listening >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{listening} of {n} subscribed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Points `config` at this corner.
    pub(crate) fn configure(&self, config: &mut Config) {
        config.storage.redis_url = Some(Secret::new(self.url.as_str()));
        config.storage.redis_prefix = self.prefix.clone();
        config.storage.redis_timeout = portcullis::config::HumanDuration(Duration::from_secs(5));
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(mut c) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut c)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(keys).query(&mut c);
        }
    }
}

/// A `redis-server` of the test's own on a free loopback port, with a password and nothing
/// kept on disk; killed on drop.
pub(crate) struct Throwaway {
    pub(crate) port: u16,
    pub(crate) password: &'static str,
    child: Option<Child>,
}

impl Throwaway {
    /// Starts one, or `None` (skipped, a failure under CI) when `redis-server` is not installed.
    pub(crate) fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            return skip("redis-server is not installed (scripts/test installs it)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            password: "thr0waway-redis-pass",
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// The URL, password included.
    pub(crate) fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password, self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients); its data is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on its port and returns once it accepts connections.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .args(["--requirepass", self.password])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Its log is read to the end on a thread; the ready line is sent back.
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(20)).is_ok(),
            "redis-server did not start on port {}",
            self.port
        );
        self.child = Some(child);
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.kill();
    }
}
