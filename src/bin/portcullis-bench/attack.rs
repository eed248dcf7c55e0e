//! The auth-under-attack scenarios: valid agent-token traffic at a fixed rate from 127.0.0.1,
//! measured alone and while a second stream floods the gateway at [`FLOOD_FACTOR`]× that rate
//! from other loopback addresses — with well-formed agent tokens the store does not know, or
//! with random garbage from many addresses in 127.0.0.0/8. Brute-force protection is on (the
//! default), so flooding addresses get locked out as they would in production. Every address is
//! a real source address (the loader binds each connection to one; Linux routes all of
//! 127.0.0.0/8 to loopback), so the gateway sees the flood come from addresses other than the
//! valid client's without trusting any `X-Forwarded-For`. Reports the valid traffic's latency
//! in both conditions, what the flood got back, and how many Argon2id verifications the gateway
//! ran (from `/internal/health`), which must not grow with the flood. With `redis`, a second
//! gateway on the same store with Redis on (its own key prefix) runs in the same rounds.

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

/// What the flood against one gateway got.
#[derive(Debug)]
pub(crate) struct Flooded {
    /// The flood's own requests.
    pub(crate) flood: Stats,
    /// Argon2id verifications before the first measured round and after the last.
    pub(crate) verifications: (Option<u64>, Option<u64>),
}

/// What an attack scenario measured.
#[derive(Debug)]
pub(crate) struct AttackResult {
    /// `Portcullis` (valid traffic alone) and `UnderAttack` (valid traffic during the flood);
    /// with Redis, `PortcullisRedis` and `UnderAttackRedis` too.
    pub(crate) valid: Vec<(Who, Stats)>,
    /// Per gateway (`Portcullis`, then `PortcullisRedis`).
    pub(crate) floods: Vec<(Who, Flooded)>,
    pub(crate) flood_rate: f64,
    pub(crate) flood_sources: usize,
    pub(crate) flood_credentials: usize,
}

/// One gateway under test and what it measured so far.
struct Side {
    gw: procs::Proc,
    valid: Target,
    attacker: Target,
    labels: (Who, Who),
    alone: Stats,
    attacked: Stats,
    flood: Stats,
    before: Option<u64>,
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

/// Runs one attack scenario against its own gateway (and, with `redis`, a second one with Redis
/// on); `unknown` is how many distinct unknown tokens the token flood rotates through.
pub(crate) async fn run(
    flood: Flood,
    sc: &Scenario,
    opts: &Options,
    mock: SocketAddr,
    plan: &Plan,
    unknown: usize,
    redis: bool,
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
    let auth =
        HeaderValue::from_str(&format!("Bearer {valid_token}")).map_err(|e| e.to_string())?;
    let side = |gw: procs::Proc, labels: (Who, Who)| {
        let mut valid = Target::new(gw.addr, Some(auth.clone()));
        valid.sources = Arc::from(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let mut attacker = Target::new(gw.addr, None);
        attacker.rotate_auth = Arc::from(credentials.clone());
        attacker.sources = Arc::from(sources.clone());
        Side {
            gw,
            valid,
            attacker,
            labels,
            alone: Stats::new(false),
            attacked: Stats::new(false),
            flood: Stats::new(false),
            before: None,
        }
    };
    let gw = procs::start_gateway(&opts.bin_dir, mock, GatewayLog::Quiet, &setup).await?;
    let mut sides = vec![side(gw, (Who::Portcullis, Who::UnderAttack))];
    if redis {
        let gw = procs::start_with_redis(&opts.bin_dir, mock, &setup, sc.id).await?;
        sides.push(side(gw, (Who::PortcullisRedis, Who::UnderAttackRedis)));
    }
    let work = sc.kind.workload();
    let spec = |rate: f64, connections: usize, duration: Duration| RunSpec {
        pace: Pace::Open { rate, duration },
        connections,
        timeout: Duration::from_secs(10),
        max_in_flight: 4000,
    };
    let valid_spec = spec(sc.rate, sc.connections, plan.round);
    let flood_rate = sc.rate * FLOOD_FACTOR;
    let flood_spec = spec(flood_rate, sources.len(), plan.round);
    // Warm-up: the valid token's first (and only) Argon2id run, connection pools.
    for s in &mut sides {
        let warm = spec(sc.rate, sc.connections, plan.warmup);
        load::run(&s.valid, &work, &warm).await?;
        s.before = verifications(s.gw.addr).await;
    }
    let n = sides.len();
    for r in 0..plan.rounds {
        log(&format!("  round {} of {}", r + 1, plan.rounds));
        // Each gateway alone, then each under the flood; which goes first rotates.
        for i in 0..n {
            let s = &mut sides[(i + r) % n];
            crate::relay::wait_calm().await;
            s.alone
                .merge(&load::run(&s.valid, &work, &valid_spec).await?);
        }
        for i in 0..n {
            let s = &mut sides[(i + r) % n];
            crate::relay::wait_calm().await;
            let (v, f) = tokio::join!(
                load::run(&s.valid, &work, &valid_spec),
                load::run(&s.attacker, &work, &flood_spec),
            );
            s.attacked.merge(&v?);
            s.flood.merge(&f?);
        }
    }
    let mut valid = Vec::new();
    let mut floods = Vec::new();
    for s in sides {
        let after = verifications(s.gw.addr).await;
        if s.gw.exited() {
            return Err(format!(
                "the gateway ({}) exited during the attack scenario",
                s.labels.0.label()
            ));
        }
        valid.push((s.labels.0, s.alone));
        valid.push((s.labels.1, s.attacked));
        floods.push((
            s.labels.0,
            Flooded {
                flood: s.flood,
                verifications: (s.before, after),
            },
        ));
    }
    Ok(AttackResult {
        valid,
        floods,
        flood_rate,
        flood_sources: sources.len(),
        flood_credentials: credentials.len(),
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
