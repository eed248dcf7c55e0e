//! The processes under test: `portcullis-mock`, `portcullis` and (optionally) LiteLLM, spawned
//! as children on free loopback ports, with their resident memory read from `/proc`.
//!
//! Every child is registered in a process-wide table; dropping its [`Proc`] kills it, and
//! [`kill_all`] (called from the Ctrl-C/SIGTERM handler and the panic hook) kills whatever is
//! left, so no run leaves a gateway behind.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cpu::Meter;

/// A registered child; `group`: it leads its own process group (killed as a whole).
struct Entry {
    child: Child,
    group: bool,
}

static CHILDREN: Mutex<Option<HashMap<u32, Entry>>> = Mutex::new(None);

fn with_children<R>(f: impl FnOnce(&mut HashMap<u32, Entry>) -> R) -> R {
    let mut guard = CHILDREN.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(HashMap::new))
}

fn kill(mut e: Entry) {
    if e.group {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", e.child.id())])
            .stderr(Stdio::null())
            .status();
    }
    let _ = e.child.kill();
    let _ = e.child.wait();
}

/// Kills every child still running (signal handler, panic hook, end of run).
pub(crate) fn kill_all() {
    let children: Vec<Entry> = with_children(|c| c.drain().map(|(_, e)| e).collect());
    children.into_iter().for_each(kill);
}

/// A running child process; killed on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    /// For messages.
    pub(crate) name: &'static str,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    /// It leads its own process group (forked workers included).
    group: bool,
}

impl Proc {
    /// Resident set size (`VmRSS`) in KiB, if the process is still there.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Whether the child has exited (it should not have).
    pub(crate) fn exited(&self) -> bool {
        with_children(|c| {
            c.get_mut(&self.pid)
                .is_none_or(|e| !matches!(e.child.try_wait(), Ok(None)))
        })
    }

    /// Summed `VmRSS` of every process in this child's process group (for a server that forks
    /// workers), in KiB.
    pub(crate) fn group_rss_kib(&self) -> Option<u64> {
        crate::cpu::group_members(self.pid)
            .into_iter()
            .filter_map(rss_kib)
            .reduce(|a, b| a + b)
    }

    /// Where this server's CPU time is read: its process group when it leads one.
    pub(crate) fn meter(&self) -> Meter {
        if self.group {
            Meter::Group(self.pid)
        } else {
            Meter::Process(self.pid)
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(e) = with_children(|c| c.remove(&self.pid)) {
            kill(e);
        }
    }
}

/// `VmRSS` of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The directory holding `portcullis` and `portcullis-mock`.
pub(crate) fn default_bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// A free loopback port (bound, read, released: the child binds it right after).
pub(crate) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn register(name: &'static str, child: Child, addr: SocketAddr, group: bool) -> Proc {
    let pid = child.id();
    with_children(|c| c.insert(pid, Entry { child, group }));
    Proc {
        name,
        pid,
        addr,
        group,
    }
}

/// Reads `pipe` line by line on a thread, hands each line to `find` until it returns an address,
/// then keeps draining (and discarding) the pipe so the child never blocks on a full pipe.
fn watch_lines(
    pipe: impl Read + Send + 'static,
    find: impl Fn(&str) -> Option<SocketAddr> + Send + 'static,
) -> mpsc::Receiver<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        let mut found = false;
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            if !found && let Some(addr) = find(line.trim_end()) {
                found = true;
                let _ = tx.send(addr);
            }
            line.clear();
        }
    });
    rx
}

fn spawn_and_wait(
    name: &'static str,
    mut cmd: Command,
    from_stderr: bool,
    find: impl Fn(&str) -> Option<SocketAddr> + Send + 'static,
) -> Result<Proc, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if from_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let rx = match (from_stderr, child.stdout.take(), child.stderr.take()) {
        (false, Some(out), _) => watch_lines(out, find),
        (true, out, Some(err)) => {
            if let Some(out) = out {
                drop(watch_lines(out, |_| None));
            }
            watch_lines(err, find)
        }
        _ => return Err(format!("{name}: no pipe to read")),
    };
    let mut proc = register(name, child, SocketAddr::from(([127, 0, 0, 1], 0)), false);
    // On timeout `proc` is dropped here, which kills the child.
    proc.addr = rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| format!("{name} did not report its address within 20 s"))?;
    Ok(proc)
}

/// Starts `portcullis-mock --port 0` and reads its address from stdout.
pub(crate) fn start_mock(bin_dir: &Path) -> Result<Proc, String> {
    let mut cmd = Command::new(bin_dir.join("portcullis-mock"));
    cmd.env_clear().args(["--host", "127.0.0.1", "--port", "0"]);
    spawn_and_wait("mock", cmd, false, mock_addr)
}

/// The address in the mock's `portcullis-mock listening on http(s)://ADDR` line.
fn mock_addr(line: &str) -> Option<SocketAddr> {
    let url = line.strip_prefix("portcullis-mock listening on ")?;
    let hostport = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    hostport.trim_end_matches('/').parse().ok()
}

/// Whether this `portcullis-mock` can serve HTTPS (its `--help` lists `--tls`).
pub(crate) fn mock_supports_tls(bin_dir: &Path) -> bool {
    Command::new(bin_dir.join("portcullis-mock"))
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--tls"))
}

/// Starts `portcullis-mock --tls DIR --tls-alpn ALPN` (it writes `DIR/ca.pem`, the CA its
/// certificate chains to).
pub(crate) fn start_tls_mock(bin_dir: &Path, dir: &Path, alpn: &str) -> Result<Proc, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new(bin_dir.join("portcullis-mock"));
    cmd.env_clear()
        .args(["--host", "127.0.0.1", "--port", "0", "--tls"])
        .arg(dir)
        .args(["--tls-alpn", alpn]);
    spawn_and_wait("TLS mock", cmd, false, mock_addr)
}

/// Starts this binary's `relay --to TO` and reads its address from stdout.
pub(crate) fn start_relay(to: SocketAddr) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.env_clear().args(["relay", "--to", &to.to_string()]);
    spawn_and_wait("relay", cmd, false, |line| {
        line.strip_prefix(crate::relay::READY)?.parse().ok()
    })
}

/// How the gateway logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GatewayLog {
    /// Warnings only (plus the one startup line the bench reads the address from).
    Quiet,
    /// The default: one access-log line per request at info, stderr to /dev/null.
    AccessLog,
}

/// The log filter of [`GatewayLog::Quiet`]: `warn` everywhere, except the `portcullis` target
/// that announces the address (the access log's own target stays at `warn`).
pub(crate) const QUIET_FILTER: &str = "warn,portcullis=info,portcullis::access=warn";

/// What is set up on the gateway besides the upstream: client authentication and capture.
#[derive(Clone, Debug, Default)]
pub(crate) struct GatewaySetup {
    /// Extra command-line arguments (`--data-dir …`, `--capture-file …`).
    pub(crate) args: Vec<String>,
    /// Extra environment (`PORTCULLIS_API_KEYS`).
    pub(crate) env: Vec<(String, String)>,
    /// Client authentication is configured (otherwise the gateway runs with `--disable-auth`).
    pub(crate) auth: bool,
}

/// The static client key every main scenario's gateway (and nginx and HAProxy) requires.
pub(crate) const CLIENT_KEY: &str = "pcl-bench-static-key-0123456789";

impl GatewaySetup {
    /// Client authentication on with the static key [`CLIENT_KEY`] (`PORTCULLIS_API_KEYS`).
    pub(crate) fn static_key() -> Self {
        Self {
            env: vec![("PORTCULLIS_API_KEYS".to_owned(), CLIENT_KEY.to_owned())],
            auth: true,
            ..Self::default()
        }
    }
}

fn gateway_command(
    bin_dir: &Path,
    mock: SocketAddr,
    port: u16,
    filter: &str,
    setup: &GatewaySetup,
) -> Command {
    let mut cmd = Command::new(bin_dir.join("portcullis"));
    cmd.env_clear()
        .env("OPENAI_API_KEY", "sk-bench-upstream")
        .env("OPENAI_BASE_URL", format!("http://{mock}/v1"))
        // The scenarios script the mock with `x-mock`, a client header forwarded only on request.
        .env("PORTCULLIS_FORWARD_HEADERS", "x-mock")
        .envs(setup.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["serve", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args([
            "--log-format",
            "json",
            "--log-level",
            filter,
            "--disable-notifications",
        ])
        .args(&setup.args);
    if !setup.auth {
        cmd.arg("--disable-auth");
    }
    cmd
}

/// Issues an agent token in a fresh data dir with `portcullis tokens issue`; returns the token.
pub(crate) fn issue_agent_token(bin_dir: &Path, data_dir: &Path) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(data_dir);
    issue_another_token(bin_dir, data_dir)
}

/// Creates, in a fresh data dir, a virtual key whose rules count every request but never
/// refuse one during a run (`portcullis keys create`); returns the key.
pub(crate) fn create_virtual_key(bin_dir: &Path, data_dir: &Path) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(data_dir);
    let out = Command::new(bin_dir.join("portcullis"))
        .env_clear()
        .args([
            "keys", "create", "--name", "bench", "--json", "--model", "*",
        ])
        .args(["--rpm", "100000000", "--tpm", "100000000000"])
        .args(["--max-concurrent", "100000"])
        .args([
            "--token-budget",
            "1000000000000",
            "--budget-period",
            "monthly",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .map_err(|e| format!("cannot run portcullis keys create: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "portcullis keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("portcullis keys create --json printed no JSON: {e}"))?;
    v["key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "portcullis keys create --json printed no key".to_owned())
}

/// Where the Redis-on variants find Redis (the server `scripts/test` starts).
pub(crate) const REDIS_ADDR: &str = "127.0.0.1:6379";

/// What every key of this run's gateways starts with (each gateway adds a tag of its own).
fn redis_run_prefix() -> String {
    format!("portcullis-bench-{}-", std::process::id())
}

/// Starts a gateway set up as `setup` but with Redis on: `--redis-url` to [`REDIS_ADDR`] and
/// the key prefix `portcullis-bench-<pid>-<tag>:`, so no two gateways (or runs) share a key.
pub(crate) async fn start_with_redis(
    bin_dir: &Path,
    mock: SocketAddr,
    setup: &GatewaySetup,
    tag: &str,
) -> Result<Proc, String> {
    let mut s = setup.clone();
    s.args
        .extend(["--redis-url".to_owned(), format!("redis://{REDIS_ADDR}")]);
    s.env.push((
        "PORTCULLIS_STORAGE__REDIS_PREFIX".to_owned(),
        format!("{}{tag}:", redis_run_prefix()),
    ));
    start_gateway(bin_dir, mock, GatewayLog::Quiet, &s).await
}

/// Sends one command (RESP, each argument a bulk string) to [`REDIS_ADDR`] and returns the
/// first bytes of the reply.
async fn redis_command(args: &[&str]) -> Result<Vec<u8>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(REDIS_ADDR)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        Ok(buf[..n].to_vec())
    };
    tokio::time::timeout(Duration::from_secs(2), talk)
        .await
        .map_err(|_| "no answer within 2 s".to_owned())?
}

/// Whether a Redis server answers `PING` at [`REDIS_ADDR`].
pub(crate) async fn redis_answers() -> Result<(), String> {
    let reply = redis_command(&["PING"]).await?;
    if reply.starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&reply)))
    }
}

/// Deletes every key this run's gateways left in Redis (budget counters live for a month);
/// the number deleted.
pub(crate) async fn forget_redis_keys() -> Result<u64, String> {
    const SCRIPT: &str = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do redis.call('DEL', k) n = n + 1 end return n";
    let reply = redis_command(&["EVAL", SCRIPT, "0", &redis_run_prefix()]).await?;
    let text = String::from_utf8_lossy(&reply);
    text.strip_prefix(':')
        .and_then(|t| t.trim_end().parse().ok())
        .ok_or_else(|| format!("answered {text:?}"))
}

/// Adds a local user with `password` in a fresh data dir (`portcullis users add`).
pub(crate) fn add_user(
    bin_dir: &Path,
    data_dir: &Path,
    user: &str,
    password: &str,
) -> Result<(), String> {
    use std::io::Write as _;
    let _ = std::fs::remove_dir_all(data_dir);
    let mut child = Command::new(bin_dir.join("portcullis"))
        .env_clear()
        .args(["users", "add", user, "--password-stdin", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run portcullis users add: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{password}");
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "portcullis users add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A JWT from the gateway's `/oauth/token` (password grant).
pub(crate) async fn password_grant(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("username", user)
        .append_pair("password", password)
        .finish();
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!(
        "POST /oauth/token HTTP/1.0\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("token endpoint: {e}: {text}"))?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access token: {text}"))
}

/// Issues one more agent token into the store in `data_dir` (created if needed).
pub(crate) fn issue_another_token(bin_dir: &Path, data_dir: &Path) -> Result<String, String> {
    let out = Command::new(bin_dir.join("portcullis"))
        .env_clear()
        .args([
            "tokens",
            "issue",
            "--user",
            "bench@localhost",
            "--name",
            "bench",
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .map_err(|e| format!("cannot run portcullis tokens issue: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("sk-pcl-") && w.len() > 40)
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "portcullis tokens issue printed no token: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Starts `portcullis serve` in front of `mock`.
pub(crate) async fn start_gateway(
    bin_dir: &Path,
    mock: SocketAddr,
    log: GatewayLog,
    setup: &GatewaySetup,
) -> Result<Proc, String> {
    match log {
        GatewayLog::Quiet => {
            let cmd = gateway_command(bin_dir, mock, 0, QUIET_FILTER, setup);
            spawn_and_wait("portcullis", cmd, true, |line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                if v.get("message")?.as_str()? != "portcullis listening" {
                    return None;
                }
                v.get("addr")?.as_str()?.parse().ok()
            })
        }
        GatewayLog::AccessLog => {
            let port = free_port()?;
            let mut cmd = gateway_command(bin_dir, mock, port, "info", setup);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start portcullis: {e}"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let proc = register("portcullis (access log)", child, addr, false);
            wait_http_ok(addr, "/health", Duration::from_secs(20)).await?;
            Ok(proc)
        }
    }
}

/// Starts an arbitrary server command that binds `addr` (LiteLLM), logging to `log`, in its
/// own process group (so its forked workers die with it).
pub(crate) async fn start_server(
    name: &'static str,
    mut cmd: Command,
    addr: SocketAddr,
    log: &Path,
    health: &str,
    within: Duration,
) -> Result<Proc, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let proc = register(name, child, addr, true);
    wait_http_ok(addr, health, within).await.map_err(|e| {
        if proc.exited() {
            format!(
                "{} exited during startup (see {})",
                proc.name,
                log.display()
            )
        } else {
            e
        }
    })?;
    Ok(proc)
}

/// Polls `GET path` until it answers 200.
pub(crate) async fn wait_http_ok(
    addr: SocketAddr,
    path: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if get_status(addr, path).await == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{addr}{path} did not answer 200 within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `GET` over a fresh connection; the status, or `None` on any failure.
async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.ok()?;
    let mut buf = [0u8; 16];
    let fut = tcp.read_exact(&mut buf);
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}
