//! The `portcullis` binary: parse the command line, load and validate the configuration, run the
//! chosen command. Errors are printed as one clear line; exit status 2 means bad configuration.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use portcullis::cli::{Cli, Command};
use portcullis::clock::SystemClock;
use portcullis::config::{self, Config};
use portcullis::jobs::Scheduler;
use portcullis::{admin, demo, logging, server, state::AppState};

/// jemalloc rather than glibc's malloc: the request path allocates a few dozen small objects per
/// request, and glibc's free lists cost ~8,000 of the ~81,000 instructions a proxied request
/// takes (callgrind; mimalloc saved as much but started at 27 MB of RSS: bench/PROFILE.md §7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let (command, mut sources) = match Cli::from_env().resolve() {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(
        command,
        Command::Demo(_)
            | Command::Migrate
            | Command::Tokens { .. }
            | Command::Keys { .. }
            | Command::Users { .. }
            | Command::Clients { .. }
            | Command::SigningKeys { .. }
            | Command::Auths { .. }
    ) {
        // The demo talks to an in-process mock on loopback, and the store commands serve
        // nothing: the client-key rule does not apply to them.
        sources.cli.disable_auth = true;
    }
    let config = match config::load(&sources) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig(_) = command {
        return check_config(&config);
    }
    logging::init(config.logging.format, &config.logging.level);
    let mut config = config;
    let opens_store = match command {
        Command::Demo(_) => false,
        Command::Serve(_) => config.needs_store(),
        _ => true,
    };
    if opens_store {
        // Sealing at rest by default: the data directory's generated key (see `seal`).
        let shared_database = config.storage.database_url.is_some();
        let enc = &mut config.auth.encryption;
        if let Err(e) =
            portcullis::seal::default_key(enc, &config.storage.data_dir, shared_database)
        {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Demo(_) => run_demo(config).await,
            Command::Migrate => print(admin::migrate(&config).await),
            Command::Tokens { action } => {
                print(admin::tokens(&config, &SystemClock, &action).await)
            }
            Command::Keys { action } => {
                print(admin::keys::keys(&config, &SystemClock, &action).await)
            }
            Command::Users { action } => {
                let stdin = std::io::stdin();
                print(
                    admin::accounts::users(&config, &SystemClock, &action, &mut stdin.lock()).await,
                )
            }
            Command::Clients { action } => {
                print(admin::accounts::clients(&config, &SystemClock, &action).await)
            }
            Command::SigningKeys { action } => {
                print(admin::accounts::signing_keys(&config, &SystemClock, &action).await)
            }
            Command::Auths { action } => {
                let stdin = std::io::stdin();
                print(admin::auths::auths(&config, &SystemClock, &action, &mut stdin.lock()).await)
            }
            _ => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print(result: Result<String, admin::AdminError>) -> anyhow::Result<()> {
    let text = result?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(())
}

fn check_config(config: &Config) -> ExitCode {
    match serde_norway::to_string(config) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "# configuration is valid; effective settings (secrets masked):"
            );
            let _ = write!(out, "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot print the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.backends.is_empty() {
        anyhow::bail!(
            "no backend configured: set OPENAI_API_KEY (and/or ANTHROPIC_API_KEY, GEMINI_API_KEY, \
             OPENAI_BASE_URL for a local server), configure `backends` in a YAML file (--config), \
             or try `portcullis demo`"
        );
    }
    let mut config = config;
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    pin_public_url(&mut config, local);
    let (state, jobs) = AppState::open(config).await.context("cannot start")?;
    let job_names = jobs.names().join(",");
    // Background work runs on this (the main) runtime; the event loops serve requests.
    let _jobs = Scheduler::new(jobs, state.clock().clone()).start();
    let event_loops = state.config().server.event_loops();
    let backends: Vec<String> = state
        .router()
        .backends()
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    tracing::info!(
        addr = %local,
        access_mode = state.config().access_mode.mode.as_str(),
        store = state.token_store().map_or("none", |_| "open"),
        redis = state.redis().map_or("none", |r| r.shown_url()),
        auth = if state.auth().is_disabled() { "disabled" } else { "enabled" },
        backends = %backends.join(","),
        jobs = %job_names,
        event_loops,
        "portcullis listening"
    );
    match event_loops {
        0 => server::run(listener, state.clone(), server::shutdown_signal()).await?,
        loops => {
            server::run_event_loops(listener, state.clone(), loops, server::shutdown_signal())
                .await?;
        }
    }
    // What the last requests spent reaches the counters and the store before the process ends.
    let settling = std::time::Duration::from_secs(5);
    if tokio::time::timeout(settling, state.policy().settled())
        .await
        .is_err()
    {
        tracing::warn!("some settlements did not reach the limit counters before shutdown");
    }
    if let Err(e) = state.policy().flush().await {
        tracing::warn!(error = %e, "could not record the last usage in the store");
    }
    state.capture().flush();
    Ok(())
}

/// Without a configured `sso.public_url`, login links use the address actually bound (so
/// `--port 0` works).
fn pin_public_url(config: &mut Config, local: std::net::SocketAddr) {
    if config.sso.enabled && config.sso.public_url.is_none() {
        config.server.port = local.port();
        config.sso.public_url = Some(config.public_url());
    }
}

async fn run_demo(config: Config) -> anyhow::Result<()> {
    let mock = demo::start_mock()
        .await
        .context("cannot start the mock upstream")?;
    let mut config = demo::demo_config(config, mock);
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| {
            format!("cannot listen on {addr} (is something else using it? try --port 0)")
        })?;
    let local = listener.local_addr()?;
    let (state, jobs) = if config.sso.enabled {
        // With SSO the demo shows the login flow: authentication stays on, the store is opened.
        config.auth.disable_auth = false;
        pin_public_url(&mut config, local);
        AppState::open(config).await.context("cannot start")?
    } else {
        let state = AppState::new(config).context("cannot set up the demo backends")?;
        let jobs = state.jobs();
        (state, jobs)
    };
    let _jobs = Scheduler::new(jobs, state.clock().clone()).start();
    {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", demo::banner(local, mock));
        if state.sso().is_some() {
            let _ = writeln!(
                out,
                "SSO is on: a request without a token is answered with a login link; after logging in, use the token from the success page instead of \"demo\".\n"
            );
        }
        let _ = out.flush();
    }
    server::run(listener, state, server::shutdown_signal()).await?;
    Ok(())
}
