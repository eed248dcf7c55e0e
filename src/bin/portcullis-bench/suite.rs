//! The full suite: starts the mock and the gateway, runs every available scenario as
//! interleaved rounds against the direct path and the gateway (and LiteLLM where asked), the
//! throughput frontier, the memory soak, and the optional LiteLLM block; returns the results
//! for `report` to write.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::load::{self, Pace, RunSpec, Target};
use crate::peers::{self, PeerStatus};
use crate::procs::{self, CLIENT_KEY, GatewayLog, GatewaySetup, Proc};
use crate::scenario::{Gateway, Kind, SCENARIOS, Scenario};
use crate::stats::Stats;
use crate::{frontier, litellm};

/// Who answers the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    Direct,
    /// A plain TCP relay in front of the mock: the floor of any extra hop.
    Relay,
    Portcullis,
    /// The gateway's valid traffic while an attack stream runs.
    UnderAttack,
    /// The gateway with ten upstream credentials in its pool (round robin).
    Pool10,
    /// The gateway authenticating a virtual key whose limits and budget count every request.
    VirtualKey,
    /// The same with the counters in Redis (`--redis-url`).
    VirtualKeyRedis,
    /// The scenario's gateway set-up with Redis on (`--redis-url`, a key prefix of its own).
    PortcullisRedis,
    /// That gateway's valid traffic while an attack stream runs.
    UnderAttackRedis,
    LiteLlm,
    /// nginx: keep-alive proxy pass plus the same bearer check (`bench/nginx.conf`).
    Nginx,
    /// HAProxy, likewise (`bench/haproxy.cfg`).
    Haproxy,
    /// HAProxy speaking HTTP/2 to a TLS upstream (`alpn h2`).
    HaproxyH2,
}

impl Who {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Who::Direct => "direct",
            Who::Relay => "TCP relay",
            Who::Portcullis => "portcullis",
            Who::UnderAttack => "portcullis, under attack",
            Who::Pool10 => "portcullis, 10 credentials",
            Who::VirtualKey => "portcullis, virtual key",
            Who::VirtualKeyRedis => "portcullis, virtual key, Redis counters",
            Who::PortcullisRedis => "portcullis, Redis on",
            Who::UnderAttackRedis => "portcullis, Redis on, under attack",
            Who::LiteLlm => "LiteLLM",
            Who::Nginx => "nginx",
            Who::Haproxy => "HAProxy",
            Who::HaproxyH2 => "HAProxy, h2 upstream",
        }
    }

    /// A portcullis gateway (one of its set-ups), compared with nginx row by row.
    pub(crate) fn is_gateway(self) -> bool {
        matches!(
            self,
            Who::Portcullis
                | Who::Pool10
                | Who::VirtualKey
                | Who::VirtualKeyRedis
                | Who::PortcullisRedis
        )
    }
}

/// Command-line options of a suite run.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) bin_dir: PathBuf,
    /// Scratch directory for logs and generated configuration.
    pub(crate) out_dir: PathBuf,
    pub(crate) venv: PathBuf,
    pub(crate) quick: bool,
    pub(crate) litellm: bool,
    /// When not empty, only the scenarios with these ids run.
    pub(crate) only: Vec<String>,
}

impl Options {
    /// Whether scenario `sc` runs in this suite.
    pub(crate) fn runs(&self, sc: &Scenario) -> bool {
        self.only.is_empty() || self.only.iter().any(|id| id == sc.id)
    }
}

/// Durations and sizes of one suite run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) round: Duration,
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) frontier_round: Duration,
    pub(crate) ladder: Vec<f64>,
    pub(crate) litellm_round: Duration,
    pub(crate) litellm_ladder: Vec<f64>,
    pub(crate) bisect_steps: usize,
    pub(crate) soak_segments: u64,
    pub(crate) soak_segment: u64,
    pub(crate) soak_connections: usize,
    /// Longest the LiteLLM ladder may climb (counted from its own start).
    pub(crate) budget: Duration,
    /// Longest the direct/portcullis ladder may climb (counted from its own start: time spent
    /// earlier waiting for a calm machine, or on more scenarios, must not eat it).
    pub(crate) frontier_budget: Duration,
}

impl Plan {
    pub(crate) fn new(quick: bool) -> Self {
        let secs = Duration::from_secs_f64;
        Self {
            round: secs(if quick { 1.0 } else { 2.0 }),
            rounds: if quick { 4 } else { 6 },
            warmup: secs(if quick { 0.3 } else { 0.5 }),
            frontier_round: secs(if quick { 1.0 } else { 2.0 }),
            ladder: if quick {
                vec![1e3, 3e3, 6e3, 10e3, 15e3, 20e3, 30e3]
            } else {
                vec![
                    1e3, 2e3, 3e3, 5e3, 7.5e3, 10e3, 12.5e3, 15e3, 20e3, 25e3, 30e3, 40e3,
                ]
            },
            litellm_round: secs(if quick { 2.0 } else { 3.0 }),
            litellm_ladder: vec![
                25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1000.0,
            ],
            bisect_steps: if quick { 2 } else { 4 },
            soak_segments: 10,
            soak_segment: if quick { 10_000 } else { 100_000 },
            soak_connections: 32,
            budget: secs(if quick { 60.0 } else { 150.0 }),
            frontier_budget: secs(if quick { 60.0 } else { 180.0 }),
        }
    }
}

/// What became of one scenario.
#[derive(Debug)]
pub(crate) enum Outcome {
    NotLanded(&'static str),
    /// Not run in this environment (a binary lacks a feature, a server did not start): why.
    Skipped(String),
    Measured(Vec<(Who, Stats)>),
    Attack(Box<crate::attack::AttackResult>),
}

/// Gateway memory through the run (KiB).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) idle_kib: Option<u64>,
    pub(crate) warm_kib: Option<u64>,
    /// Requests the gateway had served when `warm_kib` was read.
    pub(crate) warm_requests: u64,
    /// (requests so far, RSS) after each soak segment.
    pub(crate) soak: Vec<(u64, Option<u64>)>,
    pub(crate) soak_stats: Option<Stats>,
    pub(crate) soak_secs: f64,
    pub(crate) litellm_idle_kib: Option<u64>,
    pub(crate) litellm_after_kib: Option<u64>,
}

/// LiteLLM's part of the run.
#[derive(Debug)]
pub(crate) enum LiteStatus {
    NotRequested,
    Failed(String),
    Ran { version: String, workers: usize },
}

#[derive(Debug)]
pub(crate) struct Results {
    pub(crate) plan: Plan,
    pub(crate) outcomes: Vec<(Scenario, Outcome)>,
    pub(crate) frontier: frontier::Frontier,
    pub(crate) memory: Memory,
    pub(crate) litellm: LiteStatus,
    /// nginx and HAProxy: their version, or why they were not measured.
    pub(crate) peers: PeerStatus,
    pub(crate) notes: Vec<String>,
    pub(crate) elapsed: Duration,
    /// `/proc/loadavg` (1, 5, 15 min) when the suite started.
    pub(crate) load_start: String,
    /// CPU time a spinning thread lost in 1 s (total, longest gap), at the start and the end.
    pub(crate) stall: [(Duration, Duration); 2],
    /// Time spent before runs waiting for the machine to calm down.
    pub(crate) calm_waited: Duration,
}

/// The authorization every request carries: the static client key the gateway, nginx and
/// HAProxy check (the mock ignores it).
pub(crate) fn client_auth() -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {CLIENT_KEY}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"))
}

/// The gateway set-up of an auth or capture scenario, and the `Authorization` its requests send.
fn setup_for(gateway: Gateway, opts: &Options) -> Result<(GatewaySetup, HeaderValue), String> {
    let header = |v: String| HeaderValue::from_str(&v).map_err(|e| e.to_string());
    match gateway {
        Gateway::StaticKey => Ok((GatewaySetup::static_key(), client_auth())),
        Gateway::AgentToken => {
            let dir = opts.out_dir.join("agent-token-data");
            let token = procs::issue_agent_token(&opts.bin_dir, &dir)?;
            Ok((
                GatewaySetup {
                    args: vec!["--data-dir".to_owned(), dir.display().to_string()],
                    auth: true,
                    ..GatewaySetup::default()
                },
                header(format!("Bearer {token}"))?,
            ))
        }
        _ => {
            let file = opts.out_dir.join("capture.jsonl");
            let _ = std::fs::remove_file(&file);
            Ok((
                GatewaySetup {
                    args: vec!["--capture-file".to_owned(), file.display().to_string()],
                    ..GatewaySetup::static_key()
                },
                client_auth(),
            ))
        }
    }
}

/// `server` sending the static client key, its CPU and its upstream's (`up`) metered.
pub(crate) fn target(server: &Proc, up: &Proc) -> Target {
    target_auth(server, up, client_auth())
}

/// The same sending `auth`.
pub(crate) fn target_auth(server: &Proc, up: &Proc, auth: HeaderValue) -> Target {
    Target::new(server.addr, Some(auth)).metered(server.meter(), up.meter())
}

/// `targets` with `peers` (nginx, HAProxy) inserted after the direct path and the relay.
pub(crate) fn with_peers(
    peers: &[(Who, Target)],
    mut targets: Vec<(Who, Target)>,
) -> Vec<(Who, Target)> {
    let at = targets
        .iter()
        .position(|(w, _)| !matches!(w, Who::Direct | Who::Relay))
        .unwrap_or(targets.len());
    for (i, p) in peers.iter().enumerate() {
        targets.insert(at + i, p.clone());
    }
    targets
}

/// Runs `sc` as `rounds` interleaved rounds over `targets` (the order rotates every round, so
/// each target goes first equally often), after an unrecorded warm-up run of each.
pub(crate) async fn rounds(
    targets: &[(Who, Target)],
    sc: &Scenario,
    plan: &Plan,
) -> Result<Vec<(Who, Stats)>, String> {
    let work = sc.kind.workload();
    let spec = |duration| RunSpec {
        pace: Pace::Open {
            rate: sc.rate,
            duration,
        },
        connections: sc.connections,
        timeout: Duration::from_secs(10),
        max_in_flight: 2000,
    };
    for (_, t) in targets {
        load::run(t, &work, &spec(plan.warmup)).await?;
    }
    let mut acc: Vec<Stats> = targets.iter().map(|_| Stats::new(work.stream)).collect();
    for r in 0..plan.rounds {
        for i in 0..targets.len() {
            let k = (i + r) % targets.len();
            crate::relay::wait_calm().await;
            let s = load::run(&targets[k].1, &work, &spec(plan.round)).await?;
            acc[k].merge(&s);
        }
    }
    Ok(targets.iter().map(|(w, _)| *w).zip(acc).collect())
}

/// Runs the whole suite.
pub(crate) async fn run(opts: &Options) -> Result<Results, String> {
    let t0 = Instant::now();
    let load_start = crate::report::sh("cut", &["-d", " ", "-f", "1-3", "/proc/loadavg"]);
    // Do not start in the middle of a burst from other tenants (waits at most a minute).
    let mut stall_start = crate::relay::host_stall(Duration::from_secs(1)).await;
    for _ in 0..6 {
        if stall_start.0 < Duration::from_millis(50) {
            break;
        }
        log(&format!(
            "the machine is busy (a spinning thread lost {:.0} ms in 1 s); waiting 10 s",
            stall_start.0.as_secs_f64() * 1e3
        ));
        tokio::time::sleep(Duration::from_secs(10)).await;
        stall_start = crate::relay::host_stall(Duration::from_secs(1)).await;
    }
    let plan = Plan::new(opts.quick);
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| format!("{}: {e}", opts.out_dir.display()))?;
    let mut notes = Vec::new();
    let redis = match procs::redis_answers().await {
        Ok(()) => true,
        Err(e) => {
            let note = format!(
                "Redis at {} does not answer ({e}): the Redis-on rows are not measured",
                procs::REDIS_ADDR
            );
            log(&note);
            notes.push(note);
            false
        }
    };
    let mut memory = Memory::default();
    let mock = procs::start_mock(&opts.bin_dir)?;
    let gw = procs::start_gateway(
        &opts.bin_dir,
        mock.addr,
        GatewayLog::Quiet,
        &GatewaySetup::static_key(),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    memory.idle_kib = gw.rss_kib();
    let relay = procs::start_relay(mock.addr)?;
    let (peer_bins, mut peer_status) = peers::installed();
    let plain = peers::Upstream::Plain(mock.addr);
    let mut plain_peers = Vec::new();
    for (peer, started) in peers::start_all(&peer_bins, &plain, &opts.out_dir.join("peers")).await {
        match started {
            Ok(p) => plain_peers.push((peers::who(peer, &plain), p)),
            Err(e) => {
                for (p, status) in &mut peer_status {
                    if *p == peer {
                        *status = Err(format!("did not start: {e}"));
                    }
                }
            }
        }
    }
    let peer_targets: Vec<(Who, Target)> = plain_peers
        .iter()
        .map(|(w, p)| (*w, target(p, &mock)))
        .collect();
    let peers_of = |sc: &Scenario| if sc.peers { &peer_targets[..] } else { &[] };
    let pair = vec![
        (Who::Direct, target(&mock, &mock)),
        (Who::Portcullis, target(&gw, &mock)),
    ];
    let with_relay = vec![
        (Who::Direct, target(&mock, &mock)),
        (Who::Relay, target(&relay, &mock)),
        (Who::Portcullis, target(&gw, &mock)),
    ];

    // Warm-up: connection pools, allocator arenas, page faults.
    let warm = Scenario {
        rate: 1000.0,
        ..SCENARIOS[0]
    };
    let warmed = rounds(
        &with_peers(&peer_targets, pair.clone()),
        &warm,
        &Plan {
            rounds: 1,
            round: Duration::from_secs(2),
            ..plan.clone()
        },
    )
    .await?;
    memory.warm_kib = gw.rss_kib();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let warmup_requests = (plan.warmup.as_secs_f64() * warm.rate).round() as u64;
    memory.warm_requests =
        find(&warmed, Who::Portcullis).map_or(0, Stats::completed) + warmup_requests;

    let tls_ok = procs::mock_supports_tls(&opts.bin_dir);
    let mut outcomes = Vec::new();
    for sc in SCENARIOS.iter().filter(|sc| opts.runs(sc)) {
        let outcome = if let Some(needs) = sc.needs {
            Outcome::NotLanded(needs)
        } else if sc.litellm {
            continue; // run in the LiteLLM block below, all three side by side
        } else {
            log(&format!("scenario {}", sc.id));
            let measure = |targets: Vec<(Who, Target)>| with_peers(peers_of(sc), targets);
            match sc.gateway {
                Gateway::Plain if sc.relay => {
                    Outcome::Measured(rounds(&measure(with_relay.clone()), sc, &plan).await?)
                }
                Gateway::Plain => Outcome::Measured(rounds(&measure(pair.clone()), sc, &plan).await?),
                Gateway::AccessLog => {
                    let gw_info = procs::start_gateway(
                        &opts.bin_dir,
                        mock.addr,
                        GatewayLog::AccessLog,
                        &GatewaySetup::static_key(),
                    )
                    .await?;
                    let targets = vec![
                        (Who::Direct, target(&mock, &mock)),
                        (Who::Portcullis, target(&gw_info, &mock)),
                    ];
                    Outcome::Measured(rounds(&measure(targets), sc, &plan).await?)
                }
                Gateway::Attack(flood) => Outcome::Attack(Box::new(
                    crate::attack::run(flood, sc, opts, mock.addr, &plan, 16, redis && sc.redis)
                        .await?,
                )),
                Gateway::TlsUpstream(_) if !tls_ok => {
                    Outcome::Skipped(
                        "skipped: this `portcullis-mock` has no `--tls` (its `--help` does not list it), so there is no TLS upstream to proxy to".to_owned(),
                    )
                }
                Gateway::TlsUpstream(proto) => {
                    match crate::tls::rounds_over_tls(proto, sc, opts, &plan, &peer_bins).await {
                        Ok(stats) => Outcome::Measured(stats),
                        Err(e) => {
                            notes.push(format!("`{}` not measured: {e}", sc.id));
                            Outcome::Skipped(format!("not measured: {e}"))
                        }
                    }
                }
                Gateway::Jwt => {
                    let dir = opts.out_dir.join("jwt-data");
                    let password = "bench-password-0123456789";
                    procs::add_user(&opts.bin_dir, &dir, "bench", password)?;
                    let setup = GatewaySetup {
                        args: vec!["--data-dir".to_owned(), dir.display().to_string()],
                        auth: true,
                        ..GatewaySetup::default()
                    };
                    let gw_x =
                        procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup)
                            .await?;
                    let jwt = procs::password_grant(gw_x.addr, "bench", password).await?;
                    let auth = HeaderValue::from_str(&format!("Bearer {jwt}"))
                        .map_err(|e| e.to_string())?;
                    let targets = vec![
                        (Who::Direct, target(&mock, &mock)),
                        (Who::Portcullis, target_auth(&gw_x, &mock, auth)),
                    ];
                    Outcome::Measured(rounds(&measure(targets), sc, &plan).await?)
                }
                Gateway::Pool10 => {
                    let config = opts.out_dir.join("pool-10.yaml");
                    let mut yaml = format!(
                        "auth:\n  selection_strategy: round_robin\nbackends:\n  openai:\n    type: openai\n    base_url: http://{}/v1\n    forward_headers: [x-mock]\n    credentials:\n",
                        mock.addr
                    );
                    for i in 0..10 {
                        yaml.push_str(&format!(
                            "      - api_key: sk-bench-pool-{i:02}-0123456789\n        priority: 1\n"
                        ));
                    }
                    std::fs::write(&config, yaml)
                        .map_err(|e| format!("{}: {e}", config.display()))?;
                    let setup = GatewaySetup {
                        args: vec!["--config".to_owned(), config.display().to_string()],
                        ..GatewaySetup::static_key()
                    };
                    let gw10 =
                        procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup)
                            .await?;
                    let targets = vec![
                        (Who::Direct, target(&mock, &mock)),
                        (Who::Portcullis, target(&gw, &mock)),
                        (Who::Pool10, target(&gw10, &mock)),
                    ];
                    Outcome::Measured(rounds(&measure(targets), sc, &plan).await?)
                }
                Gateway::VirtualKey => {
                    let (setup, auth) = setup_for(Gateway::StaticKey, opts)?;
                    let gw_static =
                        procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup)
                            .await?;
                    let dir = opts.out_dir.join("virtual-key-data");
                    let key = procs::create_virtual_key(&opts.bin_dir, &dir)?;
                    let setup = GatewaySetup {
                        args: vec!["--data-dir".to_owned(), dir.display().to_string()],
                        auth: true,
                        ..GatewaySetup::default()
                    };
                    let gw_key =
                        procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup)
                            .await?;
                    let key = HeaderValue::from_str(&format!("Bearer {key}"))
                        .map_err(|e| e.to_string())?;
                    let targets = vec![
                        (Who::Direct, target(&mock, &mock)),
                        (Who::Portcullis, target_auth(&gw_static, &mock, auth)),
                        (Who::VirtualKey, target_auth(&gw_key, &mock, key.clone())),
                    ];
                    // The same key and store with the counters in Redis, when one answers.
                    let twin = (Who::VirtualKeyRedis, key, &setup);
                    rounds_with_redis(measure(targets), sc, &plan, redis, opts, &mock, twin).await?
                }
                Gateway::StaticKey | Gateway::AgentToken | Gateway::Capture => {
                    let (setup, auth) = setup_for(sc.gateway, opts)?;
                    let gw_x =
                        procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup)
                            .await?;
                    let targets = vec![
                        (Who::Direct, target(&mock, &mock)),
                        (Who::Portcullis, target_auth(&gw_x, &mock, auth.clone())),
                    ];
                    // The same set-up (key, store) with Redis on, in the same rounds.
                    let twin = (Who::PortcullisRedis, auth, &setup);
                    rounds_with_redis(measure(targets), sc, &plan, redis, opts, &mock, twin).await?
                }
            }
        };
        outcomes.push((*sc, outcome));
    }

    let mut front = frontier::Frontier::default();
    if !opts.only.is_empty() {
        notes.push(format!(
            "`--only {}`: the other scenarios, the throughput frontier and the memory soak were not run",
            opts.only.join(",")
        ));
    }
    if opts.only.is_empty() {
        let nginx: Vec<(Who, Target)> = peer_targets
            .iter()
            .filter(|(w, _)| *w == Who::Nginx)
            .cloned()
            .collect();
        let climbers = with_peers(&nginx, pair.clone());
        log("throughput frontier: direct, nginx and portcullis");
        front
            .climb(
                &climbers,
                &plan.ladder,
                plan.frontier_round,
                Some(Instant::now() + plan.frontier_budget),
            )
            .await?;
        front
            .refine(
                &climbers,
                frontier::BOUND_MS,
                plan.bisect_steps,
                plan.frontier_round,
            )
            .await?;
        log("memory soak");
        soak(&gw, &plan, &mut memory).await?;
    }
    if gw.exited() {
        return Err("the gateway exited during the run".to_owned());
    }

    let litellm = if opts.litellm {
        match litellm_block(
            opts,
            &plan,
            (&mock, &gw, &peer_targets),
            &mut outcomes,
            &mut front,
            &mut memory,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("LiteLLM step failed: {e}"));
                LiteStatus::Failed(e)
            }
        }
    } else {
        LiteStatus::NotRequested
    };
    // Scenarios meant to include LiteLLM still run direct vs portcullis without it.
    for sc in SCENARIOS
        .iter()
        .filter(|s| s.litellm && s.needs.is_none() && opts.runs(s))
    {
        if !outcomes.iter().any(|(s, _)| s.id == sc.id) {
            log(&format!("scenario {} (without LiteLLM)", sc.id));
            let targets = with_peers(peers_of(sc), pair.clone());
            outcomes.push((*sc, Outcome::Measured(rounds(&targets, sc, &plan).await?)));
        }
    }
    outcomes.sort_by_key(|(s, _)| SCENARIOS.iter().position(|x| x.id == s.id));
    Ok(Results {
        plan,
        outcomes,
        frontier: front,
        memory,
        litellm,
        peers: peer_status,
        notes,
        elapsed: t0.elapsed(),
        load_start,
        stall: [
            stall_start,
            crate::relay::host_stall(Duration::from_secs(1)).await,
        ],
        calm_waited: crate::relay::calm_waited(),
    })
}

/// Runs `sc` over `targets` plus — when the scenario asks for it and Redis answers — a gateway
/// set up as `setup` but with Redis on, measured as `who` sending `auth`.
async fn rounds_with_redis(
    mut targets: Vec<(Who, Target)>,
    sc: &Scenario,
    plan: &Plan,
    redis: bool,
    opts: &Options,
    mock: &Proc,
    (who, auth, setup): (Who, HeaderValue, &GatewaySetup),
) -> Result<Outcome, String> {
    let _twin = if redis && sc.redis {
        let gw = procs::start_with_redis(&opts.bin_dir, mock.addr, setup, sc.id).await?;
        targets.push((who, target_auth(&gw, mock, auth)));
        Some(gw)
    } else {
        None
    };
    Ok(Outcome::Measured(rounds(&targets, sc, plan).await?))
}

async fn soak(gw: &Proc, plan: &Plan, memory: &mut Memory) -> Result<(), String> {
    let work = Kind::Chat.workload();
    let spec = RunSpec {
        pace: Pace::Closed {
            requests: plan.soak_segment,
        },
        connections: plan.soak_connections,
        timeout: Duration::from_secs(10),
        max_in_flight: 2000,
    };
    let t = Target::new(gw.addr, Some(client_auth()));
    let mut total = Stats::new(false);
    let started = Instant::now();
    for i in 1..=plan.soak_segments {
        let s = load::run(&t, &work, &spec).await?;
        total.merge(&s);
        memory.soak.push((i * plan.soak_segment, gw.rss_kib()));
    }
    memory.soak_secs = started.elapsed().as_secs_f64();
    memory.soak_stats = Some(total);
    Ok(())
}

async fn litellm_block(
    opts: &Options,
    plan: &Plan,
    (mock, gw, peer_targets): (&Proc, &Proc, &[(Who, Target)]),
    outcomes: &mut Vec<(Scenario, Outcome)>,
    front: &mut frontier::Frontier,
    memory: &mut Memory,
) -> Result<LiteStatus, String> {
    log(&format!(
        "LiteLLM {}: installing into {}",
        litellm::VERSION,
        opts.venv.display()
    ));
    let venv = opts.venv.clone();
    let install_log = opts.out_dir.join("litellm-install.log");
    let version =
        tokio::task::spawn_blocking(move || litellm::ensure_installed(&venv, &install_log))
            .await
            .map_err(|e| format!("install task failed: {e}"))??;
    log("LiteLLM: starting");
    let lite = litellm::start(&opts.venv, mock.addr, &opts.out_dir).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    memory.litellm_idle_kib = lite.group_rss_kib();
    let lite_target = Target::new(
        lite.addr,
        HeaderValue::from_str(&format!("Bearer {}", litellm::MASTER_KEY)).ok(),
    )
    .metered(lite.meter(), mock.meter());
    let three = vec![
        (Who::Direct, target(mock, mock)),
        (Who::Portcullis, target(gw, mock)),
        (Who::LiteLlm, lite_target.clone()),
    ];
    for sc in SCENARIOS
        .iter()
        .filter(|s| s.litellm && s.needs.is_none() && opts.runs(s))
    {
        log(&format!("scenario {} (with LiteLLM)", sc.id));
        let peers = if sc.peers { peer_targets } else { &[] };
        let targets = with_peers(peers, three.clone());
        outcomes.push((*sc, Outcome::Measured(rounds(&targets, sc, plan).await?)));
    }
    log("throughput frontier: LiteLLM");
    let deadline = Instant::now() + plan.budget;
    let only = [(Who::LiteLlm, lite_target)];
    front
        .climb(
            &only,
            &plan.litellm_ladder,
            plan.litellm_round,
            Some(deadline),
        )
        .await?;
    front
        .refine(&only, frontier::BOUND_MS, 2, plan.litellm_round)
        .await?;
    front
        .refine(&only, frontier::LOOSE_BOUND_MS, 2, plan.litellm_round)
        .await?;
    memory.litellm_after_kib = lite.group_rss_kib();
    if lite.exited() {
        return Err("LiteLLM exited during the run".to_owned());
    }
    Ok(LiteStatus::Ran {
        version,
        workers: litellm::workers(),
    })
}

/// Progress line on stderr.
pub(crate) fn log(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "portcullis-bench: {msg}");
}

/// The latency summary of one target in a measured outcome.
pub(crate) fn find(stats: &[(Who, Stats)], who: Who) -> Option<&Stats> {
    stats.iter().find(|(w, _)| *w == who).map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_go_after_the_direct_path_and_the_relay() {
        let t = |port| Target::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)), None);
        let base = vec![
            (Who::Direct, t(1)),
            (Who::Relay, t(2)),
            (Who::Portcullis, t(3)),
        ];
        let peers = [(Who::Nginx, t(4)), (Who::Haproxy, t(5))];
        let order: Vec<Who> = with_peers(&peers, base)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(
            order,
            [
                Who::Direct,
                Who::Relay,
                Who::Nginx,
                Who::Haproxy,
                Who::Portcullis
            ]
        );
        let only_peers: Vec<Who> = with_peers(&peers, Vec::new())
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(only_peers, [Who::Nginx, Who::Haproxy]);
    }
}
