//! Several gateways as a team runs them (PRODUCT §8, issue 19): `portcullis serve` processes —
//! the built binary — on one PostgreSQL database and one Redis, in front of one mock upstream (in
//! process), each on a free port with a configuration file of its own in the test's temp dir:
//! Multi User Mode, a static client key, the management key, the sealing key every instance
//! must share (the database holds sealed secrets), the database URL, the Redis URL and a key
//! prefix of the test's own — and SSO (the fake identity provider, an enterprise authorization
//! API that lets everyone in) when a test asks. The database is made for the test and dropped at
//! the end with its connections; the Redis keys are deleted (`redis_fixture`). Without
//! PostgreSQL or Redis a test is skipped with a message, under `CI=true` it fails. Instances are
//! started one after the other (the first applies the migrations), killed when dropped, and
//! waited for by polling with a deadline.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use portcullis::store::SqlStore;
use reqwest::Method as M;
use serde_json::{Value, json};

use crate::fake_idp::FakeIdp;
use crate::harness::*;
use crate::idp::Browser;
use crate::redis_fixture::{TestRedis, test_redis};
use crate::store::TestDatabase;

mod crash;
mod crash_load;
mod credentials;
mod lockouts;
mod quota;
mod redis_down;
mod revocation;
mod soak;
mod sso;

/// The management key of every instance.
pub(crate) const MGMT: &str = "cluster-management-key-0123";
/// A static client key every instance accepts (never metered).
pub(crate) const STATIC_KEY: &str = "sk-team-ci-0123456789abcdef";
/// What browsers use: the load balancer in front of the instances. Nothing dials it: a test
/// sends each request to the instance it picks ([`via`]).
pub(crate) const PUBLIC_URL: &str = "http://gateway.lb.test";

/// The SSO side of a team's set-up: the identity provider and the authorization API.
struct SsoSide {
    idp: FakeIdp,
    api: String,
}

/// What the instances of one test share: the mock upstream, the store, Redis, the sealing key.
pub(crate) struct Cluster {
    pub(crate) mock: Mock,
    /// `None`: each instance's embedded SQLite store (in its data directory).
    database: Option<TestDatabase>,
    /// URL and key prefix.
    redis: Option<(String, String)>,
    _redis_keys: Option<TestRedis>,
    sso: Option<SsoSide>,
    dir: tempfile::TempDir,
    seal_key: String,
}

impl Cluster {
    /// On a fresh PostgreSQL database and the machine's Redis under a fresh prefix; `None`
    /// (skipped) when either is missing.
    pub(crate) async fn start() -> Option<Cluster> {
        let redis = test_redis().await?;
        let at = (redis.url.clone(), redis.prefix.clone());
        let mut cluster = Self::on_postgres(Some(at)).await?;
        cluster._redis_keys = Some(redis);
        Some(cluster)
    }

    /// On a fresh PostgreSQL database and the Redis at `url` (a test's own server).
    pub(crate) async fn on_redis(url: String) -> Option<Cluster> {
        Self::on_postgres(Some((url, "cluster:".to_owned()))).await
    }

    async fn on_postgres(redis: Option<(String, String)>) -> Option<Cluster> {
        let database = crate::store::fresh_postgres().await?;
        Some(Self::new(Some(database), redis).await)
    }

    /// Instances on their embedded SQLite store, without Redis.
    pub(crate) async fn on_sqlite() -> Cluster {
        Self::new(None, None).await
    }

    async fn new(database: Option<TestDatabase>, redis: Option<(String, String)>) -> Cluster {
        let key = portcullis::secret::random_bytes::<32>().unwrap();
        Cluster {
            mock: start_mock().await,
            database,
            redis,
            _redis_keys: None,
            sso: None,
            dir: tempfile::tempdir().unwrap(),
            seal_key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// Turns SSO on for the instances started from now on: an OIDC provider (the fake) and an
    /// enterprise authorization API that lets everyone in — a team's login, no console code.
    pub(crate) async fn with_sso(mut self) -> Self {
        let idp = FakeIdp::start().await;
        let api = crate::sso::authorization_api("allow", Arc::default()).await;
        self.sso = Some(SsoSide { idp, api });
        self
    }

    /// The configuration of instance `name`, as a team writes it (JSON is YAML).
    pub(crate) fn config(&self, name: &str) -> Value {
        let mut storage = json!({"data_dir": self.dir.path().join(name), "redis_timeout": "2s"});
        if let Some(db) = &self.database {
            storage["database_url"] = json!(db.url());
        }
        if let Some((url, prefix)) = &self.redis {
            storage["redis_url"] = json!(url);
            storage["redis_prefix"] = json!(prefix);
        }
        let mut config = json!({
            "server": {"host": "127.0.0.1"},
            "access_mode": {"mode": "multi_user"},
            "notifications": {"enabled": false},
            "auth": {
                "api_keys": [{"name": "team-ci", "key": STATIC_KEY}],
                "encryption": {"key": self.seal_key},
                "credentials_dir": self.dir.path().join("no-auths"),
            },
            "backends": {"openai": {
                "type": "openai",
                "base_url": format!("http://{}/v1", self.mock.addr),
                "api_key": OPENAI_KEY,
                "forward_headers": ["x-mock"],
            }},
            "routing": {"default_backend": "openai"},
            "storage": storage,
            "management": {"key": MGMT},
        });
        if let Some(s) = &self.sso {
            config["sso"] = json!({
                "enabled": true,
                "public_url": PUBLIC_URL,
                "providers": {"corp": {
                    "type": "oidc",
                    "issuer": s.idp.url,
                    "client_id": "gw-client",
                    "client_secret": "client-secret",
                }},
                "authorization": {"mode": "enterprise", "api_url": s.api},
            });
        }
        config
    }

    /// Starts instance `name` on [`config`](Self::config) as `tweak` changes it; returns once it
    /// listens. The same name again is the same configuration file and data directory.
    pub(crate) async fn spawn(&self, name: &str, tweak: impl FnOnce(&mut Value)) -> Instance {
        let mut config = self.config(name);
        tweak(&mut config);
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config.to_string()).unwrap();
        let mut cmd = serve_json();
        cmd.arg("--config").arg(&path);
        let served = tokio::task::spawn_blocking(move || spawn_served(cmd))
            .await
            .unwrap();
        Instance {
            url: served.url.clone(),
            http: client(),
            served,
        }
    }

    /// The store instance `name` uses, opened by the test.
    pub(crate) async fn store(&self, name: &str) -> SqlStore {
        match &self.database {
            Some(db) => SqlStore::open(&db.url()).await.unwrap(),
            None => SqlStore::open_sqlite(&self.dir.path().join(name))
                .await
                .unwrap(),
        }
    }

    /// Runs `portcullis args… --config <name's file>` (a store command) with `stdin`; its
    /// standard output, after checking it succeeded.
    pub(crate) async fn admin(&self, name: &str, args: &[&str], stdin: &str) -> String {
        let config = self.config(name);
        let path = self.dir.path().join(format!("{name}-admin.yaml"));
        std::fs::write(&path, config.to_string()).unwrap();
        let mut cmd = portcullis();
        cmd.args(args).arg("--config").arg(&path);
        let stdin = stdin.to_owned();
        let out = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "portcullis {args:?}: {text}{err}");
        text
    }
}

/// Two instances, A and B, on [`Cluster::start`]; `None` (skipped) without PostgreSQL or Redis.
pub(crate) async fn pair() -> Option<(Cluster, Instance, Instance)> {
    let c = Cluster::start().await?;
    let a = c.spawn("a", |_| {}).await;
    let b = c.spawn("b", |_| {}).await;
    Some((c, a, b))
}

/// One running `portcullis serve`; killed when dropped.
pub(crate) struct Instance {
    pub(crate) url: String,
    /// The test's client for it: connections kept alive (a client is slow to build).
    pub(crate) http: reqwest::Client,
    served: Served,
}

impl Instance {
    /// The process id of the running `portcullis serve`.
    pub(crate) fn pid(&self) -> u32 {
        self.served.child.0.id()
    }

    /// A management API call: the status and the answer as JSON.
    pub(crate) async fn mgmt(&self, method: M, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self.http.request(method, format!("{}{path}", self.url));
        send_with_key(req, MGMT, body).await
    }

    /// The status of a chat completion with `bearer`.
    pub(crate) async fn chat(&self, bearer: &str) -> u16 {
        chat_status_on(&self.http, &self.url, bearer).await
    }

    /// Creates a virtual key with `rules` through the management API: its id and the key.
    pub(crate) async fn create_key(&self, name: &str, rules: Value) -> (String, String) {
        let body = json!({"name": name, "rules": rules});
        let (status, v) = self.mgmt(M::POST, "/v0/management/keys", Some(body)).await;
        assert_eq!(status, 201, "{v}");
        let field = |f: &str| v[f].as_str().unwrap().to_owned();
        (field("id"), field("key"))
    }

    /// `/internal/health`'s view of Redis.
    pub(crate) async fn redis_health(&self) -> Value {
        let r = self.http.get(format!("{}/internal/health", self.url));
        r.send().await.unwrap().json::<Value>().await.unwrap()["redis"].clone()
    }

    /// Kills the process with SIGKILL: no shutdown, nothing flushed.
    pub(crate) fn kill(&mut self) {
        let _ = self.served.child.0.kill();
        let _ = self.served.child.0.wait();
    }

    /// Whether the process still runs.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.served.child.0.try_wait(), Ok(None))
    }

    /// Everything it wrote on stderr so far.
    pub(crate) fn log(&mut self) -> &str {
        while self.served.next_line(Duration::ZERO).is_some() {}
        &self.served.seen
    }
}

/// Polls `check` every 10 ms until it gives `Some`; fails naming `what` after `deadline`.
pub(crate) async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
    }
}

/// `url` (a link on the public URL) as sent to the instance at `base`.
pub(crate) fn via(base: &str, url: &str) -> String {
    url.replacen(PUBLIC_URL, base, 1)
}

/// The text between the first `start` and the next `end`, if there is one.
fn cut<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    text.split_once(start)?.1.split(end).next()
}

/// Where a redirect points.
fn redirect(r: &reqwest::Response) -> Result<String, String> {
    let to = r.headers().get("location").and_then(|v| v.to_str().ok());
    to.map(str::to_owned)
        .ok_or_else(|| format!("expected a redirect, got {}", r.status()))
}

/// A whole SSO login in a new browser, spread as a load balancer may spread it: the agent's
/// sandbox answer and the login page from the instance at `start`, the identity provider, then
/// the callback — where the authorization API is asked and the agent token shown — on the one
/// at `finish`. The token, or what went wrong (a gateway that went away is an error too).
pub(crate) async fn sso_login(start: &str, finish: &str) -> Result<String, String> {
    let e = |e: reqwest::Error| e.to_string();
    let sandbox = client()
        .post(format!("{start}/v1/chat/completions"))
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .map_err(e)?;
    let sandbox: Value = sandbox.json().await.map_err(e)?;
    let text = sandbox["choices"][0]["message"]["content"].as_str();
    let link = text
        .and_then(|t| t.split_whitespace().find(|w| w.starts_with(PUBLIC_URL)))
        .ok_or_else(|| format!("no login link: {sandbox}"))?;
    let b = Browser::default();
    let page = b.try_get(&via(start, link)).await.map_err(e)?;
    let page = page.text().await.map_err(e)?;
    let form = cut(&page, "action=\"", "\"").zip(cut(&page, "name=\"t\" value=\"", "\""));
    let (action, t) = form.ok_or_else(|| format!("no login form: {page}"))?;
    let leave = b
        .try_post_form(&format!("{start}{action}"), &[("t", t)])
        .await;
    let authorize = redirect(&leave.map_err(e)?)?;
    let callback = redirect(&b.try_get(&authorize).await.map_err(e)?)?;
    let done = b.try_get(&via(finish, &callback)).await.map_err(e)?;
    let status = done.status();
    let page = done.text().await.map_err(e)?;
    match cut(&page, "id=\"agent-token\">", "<") {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err(format!("{status}: {page}")),
    }
}

/// Issues an agent token for `user` with the `tokens` command on instance `name`'s store: the
/// token and its public id.
pub(crate) async fn issue_token(c: &Cluster, name: &str, user: &str) -> (String, String) {
    let out = c
        .admin(name, &["tokens", "issue", "--user", user], "")
        .await;
    let word = |long: bool| {
        out.split_whitespace()
            .find(|w| w.starts_with("sk-pcl-") && (w.len() > 40) == long)
            .unwrap_or_else(|| panic!("no token in {out}"))
            .to_owned()
    };
    (word(true), word(false))
}
