//! `portcullis-bench smoke`: a seconds-long run of the driver against the direct path and the
//! gateway, non-streaming and streaming, for CI. It fails only when the suite does not work
//! (no completed requests, errors, empty histograms, streams without their chunks), never on
//! how fast anything was.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::load::{self, Pace, RunSpec, Target};
use crate::procs::{self, GatewayLog};
use crate::scenario::Kind;
use crate::stats::{MAX_CHUNKS, Stats};

/// One JSON line describing a run.
pub(crate) fn json_line(kind: &str, target: &str, s: &Stats) -> String {
    let sum = s.summary();
    let ttfb = crate::stats::Summary::of(&s.ttfb);
    serde_json::json!({
        "kind": kind,
        "target": target,
        "ok": s.ok,
        "errors": s.errors.total(),
        "first_error": s.first_error,
        "p50_ms": sum.p50,
        "p90_ms": sum.p90,
        "p99_ms": sum.p99,
        "max_ms": sum.max,
        "ttfb_p50_ms": ttfb.p50,
        "lag_p50_ms": crate::stats::Summary::of(&s.lag).p50,
        "lag_p99_ms": crate::stats::Summary::of(&s.lag).p99,
        "achieved_rps": s.achieved_rps(),
        "chunks": s.chunk_range.map(|(lo, hi)| [lo, hi]),
        "chunk_p50_ms": s.chunk_range.map(|_| {
            s.chunks.iter().map(|h| crate::stats::Summary::of(h).p50).collect::<Vec<_>>()
        }),
    })
    .to_string()
}

fn check(kind: Kind, s: &Stats) -> Result<(), String> {
    let sum = s.summary();
    if s.ok == 0 || s.errors.total() > 0 {
        return Err(format!(
            "{} ok, {} errors (first: {:?})",
            s.ok,
            s.errors.total(),
            s.first_error
        ));
    }
    if !(sum.p50 > 0.0 && sum.p50 <= sum.p99 && sum.p99 <= sum.max) {
        return Err(format!("inconsistent percentiles {sum:?}"));
    }
    if matches!(kind, Kind::Stream | Kind::MessagesStream)
        && s.chunk_range != Some((MAX_CHUNKS, MAX_CHUNKS))
    {
        return Err(format!(
            "expected {MAX_CHUNKS} chunks per stream, saw {:?}",
            s.chunk_range
        ));
    }
    Ok(())
}

pub(crate) async fn run(bin_dir: &Path) -> Result<(), String> {
    let mock = procs::start_mock(bin_dir)?;
    let gw = procs::start_gateway(
        bin_dir,
        mock.addr,
        GatewayLog::Quiet,
        &procs::GatewaySetup::default(),
    )
    .await?;
    let rss = gw.rss_kib().ok_or("cannot read the gateway's RSS")?;
    let targets = [("direct", mock.addr), ("portcullis", gw.addr)];
    let mut out = Vec::new();
    for (kind, name, rate) in [
        (Kind::Chat, "chat", 200.0),
        (Kind::Stream, "stream", 100.0),
        (Kind::Messages, "translated", 200.0),
        (Kind::MessagesStream, "stream-translated", 100.0),
        (Kind::MessagesAgent, "translated-agent", 100.0),
    ] {
        for (target, addr) in targets {
            let spec = RunSpec {
                pace: Pace::Open {
                    rate,
                    duration: Duration::from_millis(500),
                },
                connections: 16,
                timeout: Duration::from_secs(10),
                max_in_flight: 2000,
            };
            let t = Target::new(addr, None);
            let s = load::run(&t, &kind.workload(), &spec).await?;
            out.push(json_line(name, target, &s));
            check(kind, &s).map_err(|e| format!("smoke {name} → {target}: {e}"))?;
        }
    }
    // The attack driver: a short token flood; unknown tokens must cost no Argon2 run and the
    // flood must never get a 2xx (correctness, not speed).
    let opts = crate::suite::Options {
        bin_dir: bin_dir.to_path_buf(),
        out_dir: std::env::temp_dir()
            .join(format!("portcullis-bench-smoke-{}", std::process::id())),
        venv: std::path::PathBuf::new(),
        quick: true,
        litellm: false,
        only: Vec::new(),
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| e.to_string())?;
    let plan = crate::suite::Plan {
        rounds: 1,
        round: Duration::from_millis(500),
        warmup: Duration::from_millis(200),
        ..crate::suite::Plan::new(true)
    };
    let sc = crate::scenario::SCENARIOS
        .iter()
        .find(|s| s.id == "auth-attack-tokens")
        .ok_or("no auth-attack-tokens scenario")?;
    let attack = crate::attack::run(
        crate::scenario::Flood::UnknownTokens,
        sc,
        &opts,
        mock.addr,
        &plan,
        4,
        false,
    )
    .await;
    let _ = std::fs::remove_dir_all(&opts.out_dir);
    let a = attack?;
    let flooded = &a.floods.first().ok_or("the attack measured no gateway")?.1;
    let during = match flooded.verifications {
        (Some(b), Some(c)) => c - b,
        _ => return Err("the gateway did not report its Argon2 verifications".to_owned()),
    };
    let statuses: serde_json::Map<String, serde_json::Value> = flooded
        .flood
        .errors
        .by_status
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    for (who, s) in &a.valid {
        out.push(json_line("attack-valid", who.label(), s));
        check(Kind::Chat, s).map_err(|e| format!("smoke attack ({}): {e}", who.label()))?;
    }
    out.push(
        serde_json::json!({
            "kind": "attack-flood", "ok": flooded.flood.ok, "statuses": statuses,
            "argon2_during_flood": during,
        })
        .to_string(),
    );
    if flooded.flood.ok > 0 || flooded.flood.errors.by_status.is_empty() {
        return Err(format!(
            "the flood was answered {} × 2xx: {statuses:?}",
            flooded.flood.ok
        ));
    }
    if during > 0 {
        return Err(format!(
            "{during} Argon2 verifications during a flood of unknown tokens"
        ));
    }
    let mut stdout = std::io::stdout().lock();
    for line in out {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = writeln!(
        stdout,
        "{}",
        serde_json::json!({"kind": "rss", "target": "portcullis", "kib": rss})
    );
    Ok(())
}
