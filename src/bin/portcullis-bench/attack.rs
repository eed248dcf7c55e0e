//! The auth-under-attack scenarios: valid agent-token traffic at a fixed rate from 127.0.0.1,
//! measured alone and while a second stream floods the gateway at [`FLOOD_FACTOR`]× that rate
//! from other loopback addresses — with well-formed agent tokens the store does not know, or
//! with random garbage from many addresses in 127.0.0.0/8. Brute-force protection is on (the
//! default), so flooding addresses get locked out as they would in production. Reports the
//! valid traffic's latency in both conditions, what the flood got back, and how many Argon2id
//! verifications the gateway ran (from `/internal/health`), which must not grow with the flood.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::load::{self, Pace, RunSpec, Target};
use crate::procs::{self, GatewayLog, GatewaySetup};
use crate::scenario::{FLOOD_FACTOR, Flood, Scenario};
use crate::stats::Stats;
use crate::suite::{Options, Plan, Who, log};

/// What an attack scenario measured.
#[derive(Debug)]
pub(crate) struct AttackResult {
    /// `Portcullis` (valid traffic alone) and `UnderAttack` (valid traffic during the flood).
    pub(crate) valid: Vec<(Who, Stats)>,
    /// The flood's own requests.
    pub(crate) flood: Stats,
    pub(crate) flood_rate: f64,
    pub(crate) flood_sources: usize,
    pub(crate) flood_credentials: usize,
    /// Argon2id verifications before the first measured round and after the last.
    pub(crate) verifications: (Option<u64>, Option<u64>),
}

/// Well-formed tokens unknown to the gateway: each issued into its own scratch store.
fn unknown_tokens(opts: &Options, n: usize) -> Result<Vec<HeaderValue>, String> {
    (0..n)
        .map(|i| {
            let dir = opts.out_dir.join(format!("attack-token-{i}"));
            let token = procs::issue_agent_token(&opts.bin_dir, &dir)?;
            let _ = std::fs::remove_dir_all(&dir);
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())
        })
        .collect()
}

/// Random printable credentials of assorted shapes.
fn garbage(n: usize) -> Vec<HeaderValue> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .filter_map(|i| {
            let len = 8 + (next() % 80) as usize;
            let body: String = (0..len)
                .map(|_| {
                    char::from(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                            [(next() % 64) as usize],
                    )
                })
                .collect();
            let prefix = ["sk-", "sk-pcl-", "", "Bearer-"][i % 4];
            HeaderValue::from_str(&format!("Bearer {prefix}{body}")).ok()
        })
        .collect()
}

/// `/internal/health`'s `agent_token_verifications`.
async fn verifications(addr: SocketAddr) -> Option<u64> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /internal/health HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1)?;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["agent_token_verifications"].as_u64()
}

/// Runs one attack scenario against its own gateway; `unknown` is how many distinct unknown
/// tokens the token flood rotates through.
pub(crate) async fn run(
    flood: Flood,
    sc: &Scenario,
    opts: &Options,
    mock: SocketAddr,
    plan: &Plan,
    unknown: usize,
) -> Result<AttackResult, String> {
    let data = opts.out_dir.join("attack-data");
    let valid_token = procs::issue_agent_token(&opts.bin_dir, &data)?;
    let (credentials, sources): (Vec<HeaderValue>, Vec<IpAddr>) = match flood {
        Flood::UnknownTokens => (
            unknown_tokens(opts, unknown)?,
            (2..34)
                .map(|d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d)))
                .collect(),
        ),
        Flood::Garbage => (
            garbage(256),
            (0..256u16)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1)))
                .collect(),
        ),
    };
    let setup = GatewaySetup {
        args: vec!["--data-dir".to_owned(), data.display().to_string()],
        auth: true,
        ..GatewaySetup::default()
    };
    let gw = procs::start_gateway(&opts.bin_dir, mock, GatewayLog::Quiet, &setup).await?;
    let mut valid = Target::new(
        gw.addr,
        Some(HeaderValue::from_str(&format!("Bearer {valid_token}")).map_err(|e| e.to_string())?),
    );
    valid.sources = Arc::from(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let mut attacker = Target::new(gw.addr, None);
    attacker.rotate_auth = Arc::from(credentials.clone());
    attacker.sources = Arc::from(sources.clone());
    let work = sc.kind.workload();
    let spec = |rate: f64, connections: usize, duration: Duration| RunSpec {
        pace: Pace::Open { rate, duration },
        connections,
        timeout: Duration::from_secs(10),
        max_in_flight: 4000,
    };
    // Warm-up: the valid token's first (and only) Argon2id run, connection pools.
    load::run(&valid, &work, &spec(sc.rate, sc.connections, plan.warmup)).await?;
    let before = verifications(gw.addr).await;
    let flood_rate = sc.rate * FLOOD_FACTOR;
    let mut alone = Stats::new(false);
    let mut attacked = Stats::new(false);
    let mut flood_stats = Stats::new(false);
    for r in 0..plan.rounds {
        log(&format!("  round {} of {}", r + 1, plan.rounds));
        crate::relay::wait_calm().await;
        let s = load::run(&valid, &work, &spec(sc.rate, sc.connections, plan.round)).await?;
        alone.merge(&s);
        crate::relay::wait_calm().await;
        let (valid_spec, flood_spec) = (
            spec(sc.rate, sc.connections, plan.round),
            spec(flood_rate, sources.len(), plan.round),
        );
        let (v, f) = tokio::join!(
            load::run(&valid, &work, &valid_spec),
            load::run(&attacker, &work, &flood_spec),
        );
        attacked.merge(&v?);
        flood_stats.merge(&f?);
    }
    let after = verifications(gw.addr).await;
    if gw.exited() {
        return Err("the gateway exited during the attack scenario".to_owned());
    }
    Ok(AttackResult {
        valid: vec![(Who::Portcullis, alone), (Who::UnderAttack, attacked)],
        flood: flood_stats,
        flood_rate,
        flood_sources: sources.len(),
        flood_credentials: credentials.len(),
        verifications: (before, after),
    })
}

/// `portcullis-bench argon2`: first-use verifications per second through a real gateway. Every
/// token is new to the verifier's cache, so each request costs exactly one Argon2id run (checked
/// against `/internal/health`); the gateway bounds them to one per core at a time.
pub(crate) async fn argon2_throughput(
    bin_dir: &std::path::Path,
    tokens: usize,
    connections: usize,
) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("portcullis-bench-argon2-{}", std::process::id()));
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&dir);
    let mut headers = Vec::with_capacity(tokens);
    for _ in 0..tokens {
        let t = procs::issue_another_token(bin_dir, &data)?;
        headers.push(HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| e.to_string())?);
    }
    let mock = procs::start_mock(bin_dir)?;
    let setup = GatewaySetup {
        args: vec!["--data-dir".to_owned(), data.display().to_string()],
        auth: true,
        ..GatewaySetup::default()
    };
    let gw = procs::start_gateway(bin_dir, mock.addr, GatewayLog::Quiet, &setup).await?;
    let before = verifications(gw.addr).await;
    let mut target = Target::new(gw.addr, None);
    target.rotate_auth = Arc::from(headers);
    let spec = RunSpec {
        pace: Pace::Closed {
            requests: tokens as u64,
        },
        connections,
        timeout: Duration::from_secs(60),
        max_in_flight: 4000,
    };
    let work = crate::scenario::Kind::Chat.workload();
    let started = std::time::Instant::now();
    let stats = load::run(&target, &work, &spec).await?;
    let secs = started.elapsed().as_secs_f64();
    let after = verifications(gw.addr).await;
    let _ = std::fs::remove_dir_all(&dir);
    let ran = match (before, after) {
        (Some(b), Some(a)) => a - b,
        _ => return Err("the gateway did not report its Argon2 verifications".to_owned()),
    };
    if stats.ok != tokens as u64 {
        return Err(format!(
            "{} of {tokens} requests succeeded ({:?})",
            stats.ok, stats.first_error
        ));
    }
    Ok(serde_json::json!({
        "kind": "argon2",
        "tokens": tokens,
        "connections": connections,
        "verifications": ran,
        "seconds": secs,
        "verifications_per_second": ran as f64 / secs,
        "cores": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    })
    .to_string())
}
