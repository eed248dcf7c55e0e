//! `portcullis-mock`: runs the scriptable mock LLM upstream (OpenAI,
//! Anthropic and Gemini APIs) on a local port, for demos and benchmarks.

use std::io::Write as _;
use std::sync::Arc;

use portcullis::mock::tls::{Alpn, TestCerts, serve_tls};
use portcullis::mock::{MockStats, serve};

const USAGE: &str = "\
Usage: portcullis-mock [--host HOST] [--port PORT] [--tls DIR [--tls-alpn h2|http1|both]]

A scriptable mock LLM upstream speaking the OpenAI, Anthropic and Gemini APIs.

Options:
  --host HOST        address to bind (default 127.0.0.1)
  --port PORT        port to bind (default 9000; 0 picks a free port)
  --tls DIR          serve HTTPS: make a fresh test CA and a certificate for
                     localhost, 127.0.0.1 and ::1 signed by it, write the CA
                     certificate to DIR/ca.pem (creating DIR) for clients to
                     trust (a backend's tls_ca_file, curl --cacert)
  --tls-alpn WHICH   protocols offered by ALPN with --tls: h2, http1 or both
                     (default both)
  -h, --help         print this help

Once bound, prints `portcullis-mock listening on http://ADDR` (https://ADDR
with --tls, once DIR/ca.pem is written) and serves until Ctrl-C or SIGTERM.
Script responses with the request header `x-mock: status=N; retry_after=S;
header_delay_ms=N; chunks=N; chunk_delay_ms=N; drop_after=K; malformed=1`.";

struct Args {
    host: String,
    port: u16,
    tls: Option<std::path::PathBuf>,
    alpn: Option<Alpn>,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut parsed = Args {
        host: "127.0.0.1".to_owned(),
        port: 9000,
        tls: None,
        alpn: None,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--host" => parsed.host = value("--host")?,
            "--port" => {
                let v = value("--port")?;
                parsed.port = v.parse().map_err(|_| format!("invalid --port {v:?}"))?;
            }
            "--tls" => parsed.tls = Some(value("--tls")?.into()),
            "--tls-alpn" => parsed.alpn = Some(value("--tls-alpn")?.parse()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.alpn.is_some() && parsed.tls.is_none() {
        return Err("--tls-alpn needs --tls DIR".to_owned());
    }
    Ok(Parsed::Run(parsed))
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called (not when first polled), so a signal right after the "listening"
/// line already shuts down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "portcullis-mock: {e}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "portcullis-mock: cannot bind {}:{}: {e}",
                args.host,
                args.port
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "portcullis-mock: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let tls = match &args.tls {
        Some(dir) => {
            let config = TestCerts::generate().and_then(|certs| {
                certs.write_ca(dir)?;
                certs.server_config(args.alpn.unwrap_or_default())
            });
            match config {
                Ok(config) => Some(config),
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "portcullis-mock: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let shutdown = shutdown_signal();
    {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "portcullis-mock listening on {scheme}://{addr}");
        let _ = out.flush();
    }
    let stats = Arc::new(MockStats::default());
    let served = match tls {
        Some(config) => serve_tls(listener, stats, config, shutdown).await,
        None => serve(listener, stats, shutdown).await,
    };
    if let Err(e) = served {
        let _ = writeln!(std::io::stderr(), "portcullis-mock: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
