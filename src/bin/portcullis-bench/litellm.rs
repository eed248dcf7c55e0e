//! The optional peer: LiteLLM's proxy, installed from PyPI into a throwaway venv
//! (`bench/.venv-litellm`, gitignored) and run in master-key mode without a database, in front
//! of the same mock upstream.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::procs::{self, Proc};

/// The pinned release (1.109.x does not install here; 1.82.7/1.82.8 must never be used).
pub(crate) const VERSION: &str = "1.106.2";

/// The master key clients present to LiteLLM.
pub(crate) const MASTER_KEY: &str = "sk-bench-litellm-master";

/// `--num_workers`: one uvicorn worker process per core, as LiteLLM's docs advise.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn installed_version(venv: &Path) -> Option<String> {
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Makes sure `venv` has LiteLLM [`VERSION`]: reuses it, or creates it and runs pip (output to
/// `log`). Returns the version.
pub(crate) fn ensure_installed(venv: &Path, log: &Path) -> Result<String, String> {
    if installed_version(venv).as_deref() == Some(VERSION) {
        return Ok(VERSION.to_owned());
    }
    let log_file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .stdout(log_file(log)?)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run python3 -m venv: {e}"))?;
    if !status.success() {
        return Err(format!("python3 -m venv {} failed", venv.display()));
    }
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--quiet"])
        .arg(format!("litellm[proxy]=={VERSION}"))
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "pip install litellm[proxy]=={VERSION} failed (no network?); see {}",
            log.display()
        ));
    }
    installed_version(venv).ok_or_else(|| "litellm installed but not importable".to_owned())
}

fn config_yaml(mock: SocketAddr) -> String {
    format!(
        "model_list:\n  - model_name: {model}\n    litellm_params:\n      model: openai/{model}\n      \
         api_base: http://{mock}/v1\n      api_key: sk-bench-upstream\n\
         general_settings:\n  master_key: {MASTER_KEY}\n\
         litellm_settings:\n  telemetry: false\n",
        model = crate::scenario::MODEL,
    )
}

/// Starts the LiteLLM proxy on a free port in front of `mock`; waits until it answers.
pub(crate) async fn start(venv: &Path, mock: SocketAddr, out_dir: &Path) -> Result<Proc, String> {
    let config: PathBuf = out_dir.join("litellm.yaml");
    std::fs::write(&config, config_yaml(mock)).map_err(|e| format!("{}: {e}", config.display()))?;
    let port = procs::free_port()?;
    let mut cmd = Command::new(venv.join("bin/litellm"));
    cmd.env_clear()
        .env("PATH", venv.join("bin"))
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_LOG", "ERROR")
        .env("HOME", out_dir)
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--num_workers", &workers().to_string()]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    procs::start_server(
        "litellm",
        cmd,
        addr,
        &out_dir.join("litellm.log"),
        "/health/liveliness",
        Duration::from_secs(120),
    )
    .await
}
