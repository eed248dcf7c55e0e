//! Writes `bench/RESULTS.md` from a suite run: the machine and commit, the targets with
//! met/missed, one table per scenario (direct, portcullis, added, LiteLLM), the frontier, the
//! memory figures. Every number comes from the run; scenarios whose feature has not landed are
//! listed as such, without figures.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::frontier::{BOUND_MS, Found, LOOSE_BOUND_MS};
use crate::procs::QUIET_FILTER;
use crate::scenario::{Gateway, Kind, Scenario, TlsProto};
use crate::stats::{MAX_CHUNKS, Stats, Summary};
use crate::suite::{LiteStatus, Outcome, Results, Who, find};
use crate::targets;

/// Output of a command, trimmed; empty on failure.
pub(crate) fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `abc1234` or `abc1234 (dirty)`; the generated result files do not count as dirt.
pub(crate) fn commit() -> String {
    let hash = sh("git", &["rev-parse", "--short", "HEAD"]);
    if hash.is_empty() {
        return "unknown (not a git checkout)".to_owned();
    }
    let dirty = sh(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!bench/RESULTS.md",
            ":!bench/latency.svg",
        ],
    );
    if dirty.is_empty() {
        format!("{hash} (clean)")
    } else {
        format!("{hash} (dirty: uncommitted changes)")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn ms(v: f64) -> String {
    format!("{v:.3}")
}

fn plus(v: f64) -> String {
    format!("{v:+.3}")
}

fn mib(kib: Option<u64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

fn stall((lost, worst): (std::time::Duration, std::time::Duration)) -> String {
    format!(
        "{:.1} ms (longest gap {:.1} ms)",
        lost.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    )
}

fn rate(r: f64) -> String {
    if r >= 1000.0 {
        format!("{:.1}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn cpu_cell(us: Option<f64>) -> String {
    us.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
}

/// A difference row: `label`, then `row`'s latency percentiles minus `base`'s (and, with
/// `cpu`, the CPU per request too).
fn diff_row(out: &mut String, label: &str, row: &Stats, base: &Stats, cpu: bool) {
    let (m, d) = (row.summary(), base.summary());
    let cpu_diff = match (cpu, row.cpu_us(), base.cpu_us()) {
        (true, Some(a), Some(b)) => format!("*{:+.1}*", a - b),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "| *{label}* | | | *{}* | *{}* | *{}* | *{}* | *{}* | | | {cpu_diff} | |",
        plus(m.p50 - d.p50),
        plus(m.p90 - d.p90),
        plus(m.p99 - d.p99),
        plus(m.p999 - d.p999),
        plus(m.max - d.max)
    );
}

fn latency_table(out: &mut String, stats: &[(Who, Stats)]) {
    let _ = writeln!(
        out,
        "| | ok | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | achieved rps | loader lag p99 ms | CPU µs/req | mock CPU µs/req |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let direct = find(stats, Who::Direct);
    let nginx = find(stats, Who::Nginx);
    for (who, s) in stats {
        let m = s.summary();
        let lag = Summary::of(&s.lag);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            who.label(),
            s.ok,
            s.errors.total(),
            ms(m.p50),
            ms(m.p90),
            ms(m.p99),
            ms(m.p999),
            ms(m.max),
            s.achieved_rps(),
            ms(lag.p99),
            cpu_cell(s.cpu_us()),
            cpu_cell(s.upstream_cpu_us()),
        );
        if *who != Who::Direct
            && let Some(d) = direct
        {
            diff_row(
                out,
                &format!("added ({} − direct)", who.label()),
                s,
                d,
                false,
            );
        }
        if who.is_gateway()
            && let Some(n) = nginx
        {
            diff_row(out, &format!("{} − nginx", who.label()), s, n, true);
        }
    }
    for (who, s) in stats {
        if let Some(e) = &s.first_error {
            let e = e.replace('|', "\\|").replace('\n', " ");
            let _ = writeln!(
                out,
                "\n{}: {} errors ({} status, {} I/O, {} timeouts, {} not sent); first: `{e}`",
                who.label(),
                s.errors.total(),
                s.errors.status,
                s.errors.io,
                s.errors.timeout,
                s.errors.not_sent
            );
        }
    }
}

/// Per-chunk arrival table of a streaming scenario: first byte, then content chunks 1..=8.
fn chunk_table(out: &mut String, stats: &[(Who, Stats)]) {
    let others: Vec<&(Who, Stats)> = stats.iter().filter(|(w, _)| *w != Who::Direct).collect();
    let Some(direct) = find(stats, Who::Direct) else {
        return;
    };
    let _ = write!(
        out,
        "\nArrival time from the scheduled send (ms), p50 / p99:\n\n| | direct |"
    );
    for (w, _) in &others {
        let _ = write!(out, " {} | added |", w.label());
    }
    let _ = write!(out, "\n|---|---:|");
    for _ in &others {
        let _ = write!(out, "---:|---:|");
    }
    let _ = writeln!(out);
    let row = |out: &mut String, label: String, pick: &dyn Fn(&Stats) -> Summary| {
        let d = pick(direct);
        let _ = write!(out, "| {label} | {} / {} |", ms(d.p50), ms(d.p99));
        for (_, s) in &others {
            let g = pick(s);
            let _ = write!(
                out,
                " {} / {} | {} / {} |",
                ms(g.p50),
                ms(g.p99),
                plus(g.p50 - d.p50),
                plus(g.p99 - d.p99)
            );
        }
        let _ = writeln!(out);
    };
    row(out, "first byte".to_owned(), &|s| Summary::of(&s.ttfb));
    for k in 0..MAX_CHUNKS {
        row(out, format!("chunk {}", k + 1), &|s| {
            s.chunks.get(k).map(Summary::of).unwrap_or_default()
        });
    }
    for (w, s) in stats {
        if let Some((lo, hi)) = s.chunk_range {
            let _ = writeln!(out, "\n{}: {lo}–{hi} content chunks per stream.", w.label());
        }
    }
}

fn scenario_section(out: &mut String, sc: &Scenario, outcome: &Outcome) {
    let _ = writeln!(out, "\n### `{}` — {}\n", sc.id, sc.title);
    match outcome {
        Outcome::NotLanded(needs) => {
            let _ = writeln!(out, "Not yet available (feature not landed: {needs}).");
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(out, "Not measured in this run — {why}.");
        }
        Outcome::Measured(stats) => {
            let _ = writeln!(
                out,
                "{} rps offered over {} keep-alive connection(s){}{}.\n",
                rate(sc.rate),
                sc.connections,
                if sc.gateway == Gateway::AccessLog {
                    "; gateway logging at `info` (one JSON access-log line per request) to /dev/null"
                } else {
                    ""
                },
                if sc.litellm && find(stats, Who::LiteLlm).is_none() {
                    "; LiteLLM not run"
                } else {
                    ""
                },
            );
            latency_table(out, stats);
            if let Gateway::TlsUpstream(proto) = sc.gateway {
                tls_paragraph(out, proto);
            }
            if let (Some(relay), Some(gw)) = (find(stats, Who::Relay), find(stats, Who::Portcullis))
            {
                let (r, g) = (relay.summary(), gw.summary());
                let _ = writeln!(
                    out,
                    "\n*TCP relay*: a byte-for-byte TCP forwarder in front of the mock (`portcullis-bench relay`, \
                     no HTTP parsing): what it adds is the floor of any extra loopback hop here. \
                     portcullis − relay (the gateway's own work): p50 {}, p90 {}, p99 {} ms.",
                    plus(g.p50 - r.p50),
                    plus(g.p90 - r.p90),
                    plus(g.p99 - r.p99)
                );
            }
            if let (Some(one), Some(ten)) = (find(stats, Who::Portcullis), find(stats, Who::Pool10))
            {
                let (o, t) = (one.summary(), ten.summary());
                let _ = writeln!(
                    out,
                    "\n*Credential selection*: the same gateway binary with one upstream credential \
                     and with ten (round robin), same rounds. 10 − 1 credentials: p50 {}, p90 {}, p99 {} ms.",
                    plus(t.p50 - o.p50),
                    plus(t.p90 - o.p90),
                    plus(t.p99 - o.p99)
                );
            }
            if let (Some(st), Some(vk)) =
                (find(stats, Who::Portcullis), find(stats, Who::VirtualKey))
            {
                let (s, v) = (st.summary(), vk.summary());
                let _ = writeln!(
                    out,
                    "\n*Virtual key*: the same gateway binary with a static client key and with a \
                     virtual key whose rules count every request (a reservation on RPM, TPM, \
                     concurrency and a token budget before the upstream call, a settlement after), \
                     same rounds. Virtual key − static key: p50 {}, p90 {}, p99 {} ms.",
                    plus(v.p50 - s.p50),
                    plus(v.p90 - s.p90),
                    plus(v.p99 - s.p99)
                );
                if let Some(r) = find(stats, Who::VirtualKeyRedis) {
                    let r = r.summary();
                    let _ = writeln!(
                        out,
                        "With the counters in Redis (`--redis-url`, one reservation and one \
                         settlement script per request): virtual key (Redis) − static key: p50 {}, \
                         p90 {}, p99 {} ms.",
                        plus(r.p50 - s.p50),
                        plus(r.p90 - s.p90),
                        plus(r.p99 - s.p99)
                    );
                }
            }
            if sc.redis && sc.gateway != Gateway::VirtualKey {
                let both = find(stats, Who::Portcullis).zip(find(stats, Who::PortcullisRedis));
                redis_paragraph(out, &[("", both)]);
            }
            if matches!(sc.kind, Kind::Stream | Kind::MessagesStream) {
                chunk_table(out, stats);
            }
        }
        Outcome::Attack(a) => attack_section(out, sc, a),
    }
}

/// How the servers of a TLS-upstream scenario reach the mock.
fn tls_paragraph(out: &mut String, proto: TlsProto) {
    let (mock, gateway, haproxy) = match proto {
        TlsProto::Http1 => ("`http/1.1` only", "HTTP/1.1", "`alpn http/1.1`"),
        TlsProto::H2 => (
            "`h2` and `http/1.1`",
            "HTTP/2 (`http2_prior_knowledge: true`)",
            "`alpn h2`",
        ),
    };
    let _ = writeln!(
        out,
        "\n*TLS upstream*: a `portcullis-mock --tls` of this scenario's own (a fresh test CA, ALPN \
         {mock}); the gateway trusts its CA with `tls_ca_file` and speaks {gateway}; nginx \
         `proxy_pass https://…` with `proxy_ssl_verify on`, `proxy_ssl_server_name on` and \
         `proxy_ssl_session_reuse on` over keep-alive HTTP/1.1 (nginx cannot proxy over HTTP/2); \
         HAProxy `ssl verify required` with {haproxy}. The loader speaks plain HTTP to each of \
         them, so there is no direct row: compare with nginx."
    );
}

/// "*Redis on*: … Redis on − off: p50, p90, p99" for a scenario measured both ways, or why
/// the Redis-on gateway was not measured.
fn redis_paragraph(out: &mut String, pairs: &[(&str, Option<(&Stats, &Stats)>)]) {
    let mut parts = Vec::new();
    for (what, pair) in pairs {
        let Some((off, on)) = pair else { continue };
        let (f, n) = (off.summary(), on.summary());
        parts.push(format!(
            "{what}Redis on − off: p50 {}, p90 {}, p99 {} ms",
            plus(n.p50 - f.p50),
            plus(n.p90 - f.p90),
            plus(n.p99 - f.p99)
        ));
    }
    if parts.is_empty() {
        let _ = writeln!(
            out,
            "\n*Redis on*: not measured (no Redis answered at {}; see the notes).",
            crate::procs::REDIS_ADDR
        );
    } else {
        let _ = writeln!(
            out,
            "\n*Redis on*: a second gateway with the same set-up (key, store) started with \
             `--redis-url redis://{}` and a key prefix of its own, same rounds. {}.",
            crate::procs::REDIS_ADDR,
            parts.join("; ")
        );
    }
}

fn attack_section(out: &mut String, sc: &Scenario, a: &crate::attack::AttackResult) {
    let _ = writeln!(
        out,
        "Valid traffic: {} rps of one agent token from 127.0.0.1 over {} connection(s), measured alone and \
         while the flood runs (rounds alternate). Brute-force protection on (defaults). Each flood \
         connection is bound to its own source address in 127.0.0.0/8, so the gateway sees the \
         attack come from those addresses (no `X-Forwarded-For`, no trusted proxy).\n",
        rate(sc.rate),
        sc.connections
    );
    latency_table(out, &a.valid);
    for (alone, under) in [
        (Who::Portcullis, Who::UnderAttack),
        (Who::PortcullisRedis, Who::UnderAttackRedis),
    ] {
        if let (Some(x), Some(y)) = (find(&a.valid, alone), find(&a.valid, under)) {
            let (x, y) = (x.summary(), y.summary());
            let _ = writeln!(
                out,
                "\n{} ÷ {}: p50 {:.2}×, p99 {:.2}×.",
                under.label(),
                alone.label(),
                y.p50 / x.p50.max(1e-9),
                y.p99 / x.p99.max(1e-9)
            );
        }
    }
    if sc.redis {
        let both = |off, on| find(&a.valid, off).zip(find(&a.valid, on));
        redis_paragraph(
            out,
            &[
                ("alone, ", both(Who::Portcullis, Who::PortcullisRedis)),
                (
                    "under attack, ",
                    both(Who::UnderAttack, Who::UnderAttackRedis),
                ),
            ],
        );
    }
    for (who, f) in &a.floods {
        let statuses: Vec<String> = f
            .flood
            .errors
            .by_status
            .iter()
            .map(|(code, n)| format!("{n} × HTTP {code}"))
            .collect();
        let _ = writeln!(
            out,
            "\nFlood against {}: {} rps offered from {} source addresses with {} distinct credentials; {} requests answered: {}{}; {} I/O errors, {} timeouts, {} not sent. \
             Argon2id verifications (`/internal/health`): {} before the measured rounds, {} after — {} during the flood.",
            who.label(),
            rate(a.flood_rate),
            a.flood_sources,
            a.flood_credentials,
            f.flood.completed(),
            if f.flood.ok > 0 {
                format!("{} × HTTP 2xx (!), ", f.flood.ok)
            } else {
                String::new()
            },
            statuses.join(", "),
            f.flood.errors.io,
            f.flood.errors.timeout,
            f.flood.errors.not_sent,
            f.verifications
                .0
                .map_or("n/a".to_owned(), |v| v.to_string()),
            f.verifications
                .1
                .map_or("n/a".to_owned(), |v| v.to_string()),
            match f.verifications {
                (Some(b), Some(c)) => (c - b).to_string(),
                _ => "unknown".to_owned(),
            }
        );
    }
}

fn frontier_cell(f: Found) -> String {
    let cell = match (f.rate, f.first_fail) {
        (Some(r), Some(ff)) => format!("{} rps (fails at {})", rate(r), rate(ff)),
        (Some(r), None) => format!("≥ {} rps (nothing above it failed)", rate(r)),
        (None, Some(ff)) => format!("none (fails already at {} rps)", rate(ff)),
        (None, None) => "not measured".to_owned(),
    };
    if f.noise > 0 {
        format!("{cell}; {} lower-rate run(s) missed the bound", f.noise)
    } else {
        cell
    }
}

fn frontier_section(out: &mut String, r: &Results) {
    let f = &r.frontier;
    let _ = writeln!(
        out,
        "\n## Throughput frontier\n\nHighest offered rate (non-streaming) whose p99 stays under the bound with zero \
         errors: a ladder of rates, targets interleaved at each rung, {} s per run, 64 connections; then \
         the gap between the highest passing rate and the next failing one is bisected. A run that \
         misses the bound is repeated once and the better of the two kept, and a failure at a rate \
         *below* a passing one is counted as noise rather than capacity (latency does not fall with \
         load; other tenants of this VM cause stalls of several ms, see the spinning-thread line at the \
         top). LiteLLM climbs its own, lower ladder (judged against the {LOOSE_BOUND_MS} ms bound while \
         climbing).\n",
        r.plan.frontier_round.as_secs_f64()
    );
    let _ = writeln!(out, "| | p99 < {BOUND_MS} ms | p99 < {LOOSE_BOUND_MS} ms |");
    let _ = writeln!(out, "|---|---|---|");
    for who in [Who::Direct, Who::Nginx, Who::Portcullis, Who::LiteLlm] {
        if f.points.iter().any(|p| p.who == who) {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                who.label(),
                frontier_cell(f.found(who, BOUND_MS)),
                frontier_cell(f.found(who, LOOSE_BOUND_MS))
            );
        }
    }
    let _ = writeln!(
        out,
        "\nEvery run (the chart `latency.svg` plots these):\n\n| target | offered rps | achieved rps | p50 ms | p99 ms | max ms | errors | loader lag p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut points = f.points.clone();
    points.sort_by(|a, b| {
        (a.who as u8, a.rate)
            .partial_cmp(&(b.who as u8, b.rate))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for p in &points {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            p.who.label(),
            rate(p.rate),
            p.achieved,
            ms(p.summary.p50),
            ms(p.summary.p99),
            ms(p.summary.max),
            p.errors,
            ms(p.lag_p99)
        );
    }
    for n in &f.notes {
        let _ = writeln!(out, "\n{n}");
    }
}

fn memory_section(out: &mut String, r: &Results) {
    let m = &r.memory;
    let _ = writeln!(
        out,
        "\n## Memory\n\nGateway `VmRSS` from `/proc/PID/status`.\n\n| when | RSS |\n|---|---:|\n| idle (started, no request yet) | {} |\n| after warm-up ({} requests) | {} |",
        mib(m.idle_kib),
        m.warm_requests,
        mib(m.warm_kib)
    );
    for (n, kib) in &m.soak {
        let _ = writeln!(out, "| soak: after {n} requests | {} |", mib(*kib));
    }
    if let Some(s) = &m.soak_stats {
        let sum = s.summary();
        let _ = writeln!(
            out,
            "\nSoak: {} requests closed-loop over {} connections in {:.0} s ({:.0} rps), {} errors, p50 {} ms, p99 {} ms.",
            s.ok + s.errors.total(),
            r.plan.soak_connections,
            m.soak_secs,
            s.achieved_rps(),
            s.errors.total(),
            ms(sum.p50),
            ms(sum.p99)
        );
    }
    if let Some((a, b, slope)) = targets::soak_halves(m) {
        let _ = writeln!(
            out,
            "Between the soak's two halves the median RSS went from {} to {}: {slope:+.1} bytes per request.",
            mib(Some(a)),
            mib(Some(b))
        );
    }
    if m.litellm_idle_kib.is_some() {
        let _ = writeln!(
            out,
            "\nLiteLLM (all processes of its group): idle {}, after its scenarios and ladder {}.",
            mib(m.litellm_idle_kib),
            mib(m.litellm_after_kib)
        );
    }
}

/// The header rows for nginx and HAProxy: version and set-up, or why they were not measured.
fn peer_rows(r: &Results) -> String {
    let mut rows = String::new();
    for (peer, status) in &r.peers {
        let (name, setup) = match peer {
            crate::peers::Peer::Nginx => (
                "nginx",
                "`bench/nginx.conf`: 2 worker processes, keep-alive `proxy_pass` (upstream keepalive 64, `proxy_buffering off`), static bearer check (401 otherwise), access log off",
            ),
            crate::peers::Peer::Haproxy => (
                "HAProxy",
                "`bench/haproxy.cfg`: `nbthread 2`, keep-alive (`http-reuse always`), static bearer check (401 otherwise), no log",
            ),
        };
        let cell = match status {
            Ok(version) => format!("{version}; {setup}"),
            Err(why) => format!("**not measured**: {why}"),
        };
        let _ = writeln!(rows, "| {name} | {cell} |");
    }
    rows
}

/// The whole RESULTS.md.
pub(crate) fn markdown(r: &Results, command: &str, bin_dir: &Path) -> String {
    let mut out = String::new();
    let cores = sh("nproc", &[]);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let litellm = match &r.litellm {
        LiteStatus::NotRequested => "not run (no `--litellm`)".to_owned(),
        LiteStatus::Failed(e) => format!("**not measured**: {e}"),
        LiteStatus::Ran { version, workers } => format!(
            "`litellm[proxy]=={version}` from PyPI, master-key mode, no database, {workers} uvicorn workers"
        ),
    };
    let peers = peer_rows(r);
    let _ = writeln!(
        out,
        "# portcullis benchmark results\n\n\
         Generated by `{command}`; do not edit by hand (profiling notes live in [PROFILE.md](PROFILE.md)).\n\n\
         | | |\n|---|---|\n\
         | date | {} |\n| commit | {} |\n| machine | {cores} cores (`nproc`), {}, Linux {} |\n\
         | load average at start / end | {} / {} |\n\
         | CPU a spinning thread lost in 1 s, start / end (hypervisor, other tenants) | {} / {} |\n\
         | waited for a calm machine before runs | {:.0} s |\n\
         | binaries | `{}` (release) |\n\
         | gateway | `portcullis serve`, client auth on (one static key, `PORTCULLIS_API_KEYS`), usage accounting on (the default), one upstream key; logs `--log-level {QUIET_FILTER}` (access log off) unless a scenario says otherwise |\n\
         {peers}\
         | LiteLLM | {litellm} |\n| suite wall time | {:.0} s ({}) |\n",
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        commit(),
        cpu_model(),
        kernel.trim(),
        r.load_start,
        sh("cut", &["-d", " ", "-f", "1-3", "/proc/loadavg"]),
        stall(r.stall[0]),
        stall(r.stall[1]),
        r.calm_waited.as_secs_f64(),
        bin_dir.display(),
        r.elapsed.as_secs_f64(),
        if r.plan.rounds < 6 { "quick" } else { "full" },
    );
    let _ = writeln!(
        out,
        "Method: everything on 127.0.0.1; the load generator, the mock upstream (`portcullis-mock`) and \
         the server under test share the machine's cores, nothing pinned. Open loop: request *i* is due at \
         start + *i*/rate and its latency runs from that due time to the last body byte, so a loader or server \
         that falls behind is counted, not hidden (\"loader lag\" is how late requests actually left). \
         HTTP/1.1 keep-alive, TCP_NODELAY. Each scenario runs as {} interleaved rounds of {} s per target \
         (the order rotates each round) after an unrecorded warm-up, so machine drift hits every target alike. \
         *added* = the proxy (nginx, HAProxy, portcullis, LiteLLM) − direct, percentile by percentile; \
         *portcullis − nginx* compares the gateway with nginx doing only a keep-alive proxy pass and the \
         same bearer check. *CPU µs/req*: user + system time of the server's processes (`/proc/PID/stat`; \
         nginx: master and workers; the direct row: the mock) over that row's measured runs, divided by \
         the requests answered; *mock CPU µs/req* is the mock's own over the same runs, a reference \
         (clock ticks of 10 ms: figures below ~1 µs/req at 1,000 rps are coarse). Before each measured \
         run the suite probes the machine for 100 ms and waits (2 s at a time, 90 s per suite at most) \
         while a spinning thread loses more than 10 % of its time: this VM's host steals the CPU in \
         bursts, which shows up in every p99 below.\n",
        r.plan.rounds,
        r.plan.round.as_secs_f64()
    );
    out.push_str("## Targets\n\n");
    out.push_str(&targets::table(r));
    out.push_str("\n## Scenarios\n");
    for (sc, outcome) in &r.outcomes {
        scenario_section(&mut out, sc, outcome);
    }
    frontier_section(&mut out, r);
    memory_section(&mut out, r);
    if !r.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}
