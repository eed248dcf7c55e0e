//! `portcullis-bench`: the benchmark suite. Spawns `portcullis-mock` and `portcullis` (and,
//! with `--litellm`, LiteLLM's proxy) on loopback, drives them with an open-loop constant-rate
//! load generator, and writes `bench/RESULTS.md` and `bench/latency.svg`. `smoke` is a
//! seconds-long sanity run for CI (it checks that numbers come out, never how fast they are).
//!
//! Module map: `load` (the driver), `stats` (histograms), `cpu` (CPU time per request from
//! `/proc`), `scenario` (the scenario table), `suite` (orchestration), `frontier` (throughput
//! frontier), `procs` (child processes, RSS), `peers` (nginx and HAProxy, the reference
//! proxies), `tls` (the TLS-upstream scenarios), `litellm` (the Python peer), `report`
//! (RESULTS.md), `targets` (met or missed), `svg` (the chart), `smoke`.

mod agent;
mod attack;
mod cpu;
mod frontier;
mod litellm;
mod load;
mod peers;
mod procs;
mod relay;
mod report;
mod scenario;
mod smoke;
mod stats;
mod suite;
mod svg;
mod targets;
mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The portcullis benchmark suite.
#[derive(Debug, Parser)]
#[command(name = "portcullis-bench", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the suite and write RESULTS.md and the latency chart.
    Run {
        /// Shorter rounds and soak (about half the time).
        #[arg(long, overrides_with = "no_quick")]
        quick: bool,
        /// The full-length suite (the default).
        #[arg(long)]
        no_quick: bool,
        /// Also install and measure LiteLLM's proxy.
        #[arg(long, overrides_with = "no_litellm")]
        litellm: bool,
        /// Skip LiteLLM (the default).
        #[arg(long)]
        no_litellm: bool,
        /// Directory holding `portcullis` and `portcullis-mock` (default: next to this binary).
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// The benchmark directory: RESULTS.md, latency.svg, out/ and .venv-litellm go here.
        #[arg(long, value_name = "DIR", default_value = "bench")]
        dir: PathBuf,
        /// The command line to quote in RESULTS.md.
        #[arg(long, value_name = "TEXT", default_value = "bench/run")]
        command_line: String,
        /// Run only these scenarios (comma-separated ids, e.g. `chat,chat-tls`), without the
        /// frontier and the soak (for working on a scenario; the report says what was not run).
        #[arg(long, value_name = "IDS", value_delimiter = ',')]
        only: Vec<String>,
    },
    /// A few seconds against the direct path and the gateway: checks that the suite runs and
    /// produces sane numbers (prints one JSON line per measurement).
    Smoke {
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Argon2id verification throughput through the gateway: issues N agent tokens, then uses
    /// each once (a cache miss each, so one Argon2id run each) over C connections; prints one
    /// JSON line with verifications per second.
    Argon2 {
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        tokens: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
    },
    /// A plain TCP relay to ADDR (the suite's "extra hop" reference; prints its address).
    Relay {
        #[arg(long, value_name = "ADDR")]
        to: SocketAddr,
    },
    /// One open-loop run against any server (for profiling): POST /v1/chat/completions (or
    /// /v1/messages); streams also print each content chunk's p50 arrival.
    Load {
        /// Server address, e.g. 127.0.0.1:8080.
        addr: SocketAddr,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Stream 8 chunks 5 ms apart instead of a JSON answer.
        #[arg(long)]
        stream: bool,
        /// POST /v1/messages (Anthropic) instead: translated by a gateway whose backend speaks
        /// OpenAI.
        #[arg(long)]
        messages: bool,
        /// Send a coding agent's ~100 KB request (the `chat-agent` scenario's) instead; with
        /// `--messages`, the same turn as Anthropic Messages (Claude Code's dialect).
        #[arg(long, conflicts_with = "stream")]
        agent: bool,
        /// Send this file's content as the body instead of the scenario's.
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
        /// Send `Authorization: Bearer KEY` (a gateway with client auth on).
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
    /// Print the `chat-agent` scenario's request body: a coding agent's ~100 KB chat completion
    /// request, the same bytes every time (for `bench/callgrind --agent`, or any load tool).
    AgentBody {
        /// The same turn as an Anthropic Messages request (`POST /v1/messages`).
        #[arg(long)]
        messages: bool,
    },
}

/// Kills the children on Ctrl-C or SIGTERM (and on panic) before exiting.
fn install_cleanup() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        procs::kill_all();
        previous(info);
    }));
    tokio::spawn(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        procs::kill_all();
        suite::log("interrupted; child processes killed");
        std::process::exit(130);
    });
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Run {
            quick,
            litellm,
            no_quick: _,
            no_litellm: _,
            bin_dir,
            dir,
            command_line,
            only,
        } => {
            let opts = suite::Options {
                bin_dir: bin_dir.unwrap_or_else(procs::default_bin_dir),
                out_dir: dir.join("out"),
                venv: dir.join(".venv-litellm"),
                quick,
                litellm,
                only,
            };
            let results = suite::run(&opts).await;
            procs::kill_all();
            match procs::forget_redis_keys().await {
                Ok(0) => {}
                Ok(n) => suite::log(&format!("deleted this run's {n} Redis keys")),
                Err(e) => suite::log(&format!("could not delete this run's Redis keys: {e}")),
            }
            let results = results?;
            let md = report::markdown(&results, &command_line, &opts.bin_dir);
            let svg = svg::chart(&results.frontier);
            let md_path = dir.join("RESULTS.md");
            std::fs::write(&md_path, md).map_err(|e| format!("{}: {e}", md_path.display()))?;
            let svg_path = dir.join("latency.svg");
            std::fs::write(&svg_path, svg).map_err(|e| format!("{}: {e}", svg_path.display()))?;
            suite::log(&format!(
                "wrote {} and {} in {:.0} s",
                md_path.display(),
                svg_path.display(),
                results.elapsed.as_secs_f64()
            ));
            Ok(())
        }
        Cmd::Smoke { bin_dir } => {
            let bin_dir = bin_dir.unwrap_or_else(procs::default_bin_dir);
            let result = smoke::run(&bin_dir).await;
            procs::kill_all();
            result
        }
        Cmd::Relay { to } => relay::serve(to).await,
        Cmd::AgentBody { messages } => std::io::stdout()
            .lock()
            .write_all(&if messages {
                agent::messages_request(scenario::MODEL)
            } else {
                agent::request(scenario::MODEL)
            })
            .map_err(|e| format!("stdout: {e}")),
        Cmd::Argon2 {
            bin_dir,
            tokens,
            connections,
        } => {
            let bin_dir = bin_dir.unwrap_or_else(procs::default_bin_dir);
            let result = attack::argon2_throughput(&bin_dir, tokens, connections).await;
            procs::kill_all();
            let line = result?;
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            Ok(())
        }
        Cmd::Load {
            addr,
            rate,
            seconds,
            connections,
            stream,
            messages,
            agent,
            body,
            key,
        } => {
            let kind = match (stream, messages) {
                _ if agent && messages => scenario::Kind::MessagesAgent,
                _ if agent => scenario::Kind::Agent,
                (false, false) => scenario::Kind::Chat,
                (true, false) => scenario::Kind::Stream,
                (false, true) => scenario::Kind::Messages,
                (true, true) => scenario::Kind::MessagesStream,
            };
            let spec = load::RunSpec {
                pace: load::Pace::Open {
                    rate,
                    duration: Duration::from_secs_f64(seconds),
                },
                connections,
                timeout: Duration::from_secs(10),
                max_in_flight: 2000,
            };
            let mut workload = kind.workload();
            if let Some(path) = body {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                workload.body = bytes::Bytes::from(bytes);
            }
            let auth = key
                .map(|k| http::HeaderValue::from_str(&format!("Bearer {k}")))
                .transpose()
                .map_err(|_| "--key: not a header value".to_owned())?;
            let t = load::Target::new(addr, auth);
            let s = load::run(&t, &workload, &spec).await?;
            let line = smoke::json_line("load", &format!("{addr}"), &s);
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            suite::log(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        install_cleanup();
        run(cli).await
    });
    procs::kill_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            suite::log(&format!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}
