//! Test harness: a mock upstream and a gateway on free ports, plus helpers to read SSE and to
//! spawn the binary.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::{ApiKeyConfig, BackendConfig, BackendKind, Config, HumanDuration};
use portcullis::mock::{self, MockStats};
use portcullis::notify::{NoNotifier, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::{AgentTokenRecord, SqlStore, Store};
use tokio::sync::oneshot;

pub const OPENAI_KEY: &str = "sk-upstream-openai-0123456789";
pub const ANTHROPIC_KEY: &str = "sk-ant-upstream-0123456789";
pub const GEMINI_KEY: &str = "AIza-upstream-gemini-0123456789";

/// A running mock upstream; stops when dropped.
pub struct Mock {
    pub addr: SocketAddr,
    pub stats: Arc<MockStats>,
    _stop: oneshot::Sender<()>,
}

pub async fn start_mock() -> Mock {
    spawn_mock(|listener, stats, stop| async move {
        let _ = mock::serve(listener, stats, stop).await;
    })
    .await
}

/// Binds a free port and runs `serve(listener, stats, stop)` on a task; `stop` resolves when
/// the returned [`Mock`] is dropped.
async fn spawn_mock<F, Fut>(serve: F) -> Mock
where
    F: FnOnce(
        tokio::net::TcpListener,
        Arc<MockStats>,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(MockStats::default());
    let (tx, rx) = oneshot::channel::<()>();
    let stop = Box::pin(async move {
        let _ = rx.await;
    });
    tokio::spawn(serve(listener, stats.clone(), stop));
    Mock {
        addr,
        stats,
        _stop: tx,
    }
}

/// A mock serving HTTPS with a fresh test CA (what `portcullis-mock --tls DIR` does); `ca` is
/// the CA certificate's PEM file, for a backend's `tls_ca_file`.
pub struct TlsMock {
    pub mock: Mock,
    pub ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub async fn start_tls_mock(alpn: mock::tls::Alpn) -> TlsMock {
    let certs = mock::tls::TestCerts::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = certs.write_ca(dir.path()).unwrap();
    let config = certs.server_config(alpn).unwrap();
    let mock = spawn_mock(|listener, stats, stop| async move {
        let _ = mock::tls::serve_tls(listener, stats, config, stop).await;
    })
    .await;
    TlsMock {
        mock,
        ca,
        _dir: dir,
    }
}

pub fn backend(kind: BackendKind, url: String, key: Option<&str>) -> BackendConfig {
    BackendConfig {
        base_url: Some(url),
        api_key: key.map(Secret::new),
        // The mock's fault script travels in a client header the gateway forwards only when told.
        forward_headers: vec!["x-mock".to_owned()],
        ..BackendConfig::of_kind(kind)
    }
}

/// One backend of each type, all pointing at `mock`, with distinct upstream keys; client
/// authentication off.
pub fn config_for(mock: &Mock) -> Config {
    let mut c = Config::default();
    c.server.port = 0;
    // These tests are about proxying; authentication has its own tests (auth.rs).
    c.auth.disable_auth = true;
    // They script upstream faults request by request; cooldowns have their own tests (pool.rs).
    c.auth.disable_cooling = true;
    // A developer's ./auths directory must not join the tests' pools.
    c.auth.credentials_dir = Some(std::path::PathBuf::from(
        "/nonexistent/portcullis-test-auths",
    ));
    c.backends.insert(
        "openai".into(),
        backend(
            BackendKind::Openai,
            format!("http://{}/v1", mock.addr),
            Some(OPENAI_KEY),
        ),
    );
    c.backends.insert(
        "anthropic".into(),
        backend(
            BackendKind::Anthropic,
            format!("http://{}", mock.addr),
            Some(ANTHROPIC_KEY),
        ),
    );
    c.backends.insert(
        "gemini".into(),
        backend(
            BackendKind::Gemini,
            format!("http://{}", mock.addr),
            Some(GEMINI_KEY),
        ),
    );
    c
}

/// Turns client authentication on with one named client key (`tester`).
pub fn require_key(config: &mut Config, key: &str) {
    config.auth.disable_auth = false;
    config.auth.api_keys = vec![ApiKeyConfig::Named {
        name: Some("tester".into()),
        key: Some(Secret::new(key)),
        key_env: None,
    }];
}

pub fn set_read_idle(config: &mut Config, backend: &str, ms: u64) {
    if let Some(b) = config.backends.get_mut(backend) {
        b.timeouts.read_idle = HumanDuration(Duration::from_millis(ms));
    }
}

/// A running gateway; stops when dropped.
pub struct Gateway {
    pub addr: SocketAddr,
    pub url: String,
    _stop: oneshot::Sender<()>,
}

pub async fn start_gateway(config: Config) -> Gateway {
    start_gateway_with_state(AppState::new(config).unwrap()).await
}

/// A gateway whose clock the test moves.
pub async fn start_gateway_with_clock(config: Config, clock: ManualClock) -> Gateway {
    start_gateway_with_state(AppState::with_clock(config, Arc::new(clock)).unwrap()).await
}

/// A gateway with a SQLite store, a test clock and recorded operator events.
pub struct StoredGateway {
    pub gw: Gateway,
    pub state: AppState,
    pub clock: ManualClock,
    pub notes: Arc<RecordingNotifier>,
}

/// Starts a gateway on `config` with a SQLite store in `db_dir` and a clock at `start_ms`
/// (milliseconds since the epoch); the store's credentials are loaded before it serves.
pub async fn start_gateway_with_store(
    config: Config,
    db_dir: &std::path::Path,
    start_ms: u64,
) -> StoredGateway {
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(db_dir).await.unwrap());
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(start_ms));
    let notes = Arc::new(RecordingNotifier::default());
    let state =
        AppState::with_parts(config, Arc::new(clock.clone()), notes.clone(), Some(store)).unwrap();
    state.pool().reload_store().await.unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    StoredGateway {
        gw,
        state,
        clock,
        notes,
    }
}

/// Starts a gateway on `config` with `store` and the test `clock` (operator events dropped);
/// returns its state too.
pub async fn start_gateway_on_store(
    config: Config,
    clock: &ManualClock,
    store: Arc<dyn Store>,
) -> (AppState, Gateway) {
    let clock = Arc::new(clock.clone());
    let state = AppState::with_parts(config, clock, Arc::new(NoNotifier), Some(store)).unwrap();
    let gw = start_gateway_with_state(state.clone()).await;
    (state, gw)
}

pub async fn start_gateway_with_state(state: AppState) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    Gateway {
        addr,
        url: format!("http://{addr}"),
        _stop: serve_on(listener, state),
    }
}

/// Serves `state` on an already bound `listener` (for tests that must know the address before
/// the state exists, e.g. SSO's public URL); stops when the returned sender is dropped.
pub fn serve_on(listener: tokio::net::TcpListener, state: AppState) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = portcullis::server::run(listener, state, async move {
            let _ = rx.await;
        })
        .await;
    });
    tx
}

/// Mock + gateway with the default test configuration.
pub async fn start() -> (Mock, Gateway) {
    let mock = start_mock().await;
    let gw = start_gateway(config_for(&mock)).await;
    (mock, gw)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A chat completion (streamed or not) to the gateway at `addr`, scripting the mock with
/// `x_mock`.
pub async fn chat_scripted(addr: SocketAddr, x_mock: &str, stream: bool) -> reqwest::Response {
    client()
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("x-mock", x_mock)
        .json(&chat("mock-gpt", stream))
        .send()
        .await
        .unwrap()
}

pub async fn post_json(url: &str, body: serde_json::Value) -> reqwest::Response {
    client().post(url).json(&body).send().await.unwrap()
}

/// POSTs `body` as JSON and reads the answer as JSON.
pub async fn post_for_json(url: &str, body: serde_json::Value) -> serde_json::Value {
    post_json(url, body).await.json().await.unwrap()
}

/// GETs `url` and reads the answer as JSON.
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    get_json_with(url, &[]).await
}

/// GETs `url` with `headers` and reads the answer as JSON.
pub async fn get_json_with(
    url: impl reqwest::IntoUrl,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    resp.json().await.unwrap()
}

/// A call with `key` as the bearer (the management API's), and a JSON body if given: the status
/// and the answer as JSON (`null` when it is not JSON).
pub async fn call_with_key(
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    send_with_key(client().request(method, format!("{base}{path}")), key, body).await
}

/// Tokens used so far by `backend`'s first credential, from the management API (key `mgmt`).
pub async fn quota_used(url: &str, mgmt: &str, backend: &str) -> u64 {
    let path = format!("/v0/management/auths/{backend}");
    let (s, v) = call_with_key(url, mgmt, reqwest::Method::GET, &path, None).await;
    assert_eq!(s, 200, "{v}");
    v["auths"][0]["quota"]["used"].as_u64().unwrap()
}

/// Sends `req` with `key` as the bearer and a JSON body if given: the status and the answer as
/// JSON (`null` when it is not JSON).
pub async fn send_with_key(
    req: reqwest::RequestBuilder,
    key: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = req.bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The `id` of each entry of a JSON list.
pub fn ids(list: &serde_json::Value) -> Vec<String> {
    let entries = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An agent token record for a device "laptop", never used, without a session end, not revoked.
pub fn token_record(
    id: &str,
    user_id: &str,
    secret_hash: &str,
    created_at: i64,
) -> AgentTokenRecord {
    AgentTokenRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        name: "laptop".into(),
        secret_hash: secret_hash.to_owned(),
        created_at,
        last_used_at: None,
        last_ip: None,
        last_user_agent: None,
        session_expires_at: None,
        revoked_at: None,
    }
}

/// The text in `text` between the first `start` and the next `end` (fails naming `start`).
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let (_, rest) = text
        .split_once(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"));
    rest.split(end).next().unwrap_or(rest)
}

/// The word after the first `label` in `text` (as the CLI prints `label: value`).
pub fn word_after<'a>(text: &'a str, label: &str) -> &'a str {
    let (_, rest) = text
        .split_once(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    rest.split_whitespace().next().unwrap_or("")
}

pub fn chat(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello"}],
    })
}

/// The status of a non-streaming chat completion sent to the gateway at `base` with
/// `Bearer bearer`.
pub async fn chat_status(base: &str, bearer: &str) -> u16 {
    chat_status_on(&client(), base, bearer).await
}

/// [`chat_status`] through `http` (a client kept for many calls).
pub async fn chat_status_on(http: &reqwest::Client, base: &str, bearer: &str) -> u16 {
    http.post(format!("{base}/v1/chat/completions"))
        .bearer_auth(bearer)
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Reads a whole SSE body and returns the `data:` payloads (events with their `event:` name).
pub async fn sse_events(resp: reqwest::Response) -> Vec<(Option<String>, String)> {
    let text = resp.text().await.unwrap();
    parse_sse(&text)
}

pub fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let mut event = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event:") {
                event = Some(e.trim().to_owned());
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
            }
        }
        if !data.is_empty() {
            out.push((event, data.join("\n")));
        }
    }
    out
}

/// Concatenates OpenAI chat deltas.
pub fn openai_text(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .filter_map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Asserts the OpenAI error shape and returns the message.
pub fn openai_error(v: &serde_json::Value) -> String {
    assert!(v["error"]["type"].is_string(), "not an OpenAI error: {v}");
    assert!(
        v["error"].get("param").is_some(),
        "not an OpenAI error: {v}"
    );
    v["error"]["message"].as_str().unwrap().to_owned()
}

/// Asserts the Anthropic error shape and returns the message.
pub fn anthropic_error(v: &serde_json::Value) -> String {
    assert_eq!(v["type"], "error", "not an Anthropic error: {v}");
    assert!(
        v["error"]["type"].is_string(),
        "not an Anthropic error: {v}"
    );
    v["error"]["message"].as_str().unwrap().to_owned()
}

/// Asserts the Google error shape and returns the message.
pub fn google_error(v: &serde_json::Value) -> String {
    assert!(v["error"]["code"].is_u64(), "not a Google error: {v}");
    assert!(v["error"]["status"].is_string(), "not a Google error: {v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

/// The binary under test, with a clean environment (nothing leaks in from the developer's shell).
pub fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `portcullis args… --data-dir dir` to the end: (exit code, stdout, stderr).
pub fn run_on_data_dir(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = portcullis()
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `portcullis serve` on a free port with JSON logs (what [`spawn_served`] reads).
pub fn serve_json() -> Command {
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json"]);
    cmd
}

/// A child process killed on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `portcullis serve` (or `demo`) process whose stderr (JSON log lines) is read on a thread.
pub struct Served {
    pub child: ChildGuard,
    pub url: String,
    pub listening: serde_json::Value,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line received so far.
    pub seen: String,
}

/// Spawns `cmd` (which must use `--log-format json`) with stderr captured, and waits for its
/// "portcullis listening" line.
pub fn spawn_served(mut cmd: Command) -> Served {
    let mut child = ChildGuard(cmd.stderr(Stdio::piped()).spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        url: String::new(),
        listening: serde_json::Value::Null,
        lines,
        seen: String::new(),
    };
    let listening = served.next_json(|v| v["message"] == "portcullis listening");
    served.url = format!("http://{}", listening["addr"].as_str().unwrap());
    served.listening = listening;
    served
}

impl Served {
    /// The next stderr line within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        self.seen.push_str(&line);
        self.seen.push('\n');
        Some(line)
    }

    /// The next JSON log line for which `pick` holds (fails after 20 s without one).
    pub fn next_json(&mut self, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let line = self
                .next_line(Duration::from_secs(20))
                .unwrap_or_else(|| panic!("no expected log line; got:\n{}", self.seen));
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && pick(&v)
            {
                return v;
            }
        }
    }

    /// The next access-log line.
    pub fn next_access(&mut self) -> serde_json::Value {
        self.next_json(|v| v["target"] == "portcullis::access")
    }

    /// Stops the process with SIGTERM (a graceful shutdown); returns whether it exited cleanly
    /// and everything it logged.
    pub fn stop(mut self) -> (bool, String) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.0.id().to_string())
            .status();
        let ok = self.child.0.wait().map(|s| s.success()).unwrap_or(false);
        while self.next_line(Duration::from_secs(5)).is_some() {}
        (ok, std::mem::take(&mut self.seen))
    }
}
