//! The command line: `portcullis [serve|demo|check-config]` and the options shared by all of
//! them. Parsing only; `main.rs` runs the chosen command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;
use crate::config::load::{CliOverrides, ConfigSources};

/// An authenticating gateway between AI coding agents and LLM providers.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
#[command(
    after_help = "Configuration layers, highest first: command line, environment \
(PORTCULLIS_<SECTION>__<KEY>, e.g. PORTCULLIS_SERVER__PORT=9000, plus OPENAI_API_KEY / \
ANTHROPIC_API_KEY / GEMINI_API_KEY and their *_BASE_URL when no backend is configured), the YAML \
file, built-in defaults. See config.example.yaml."
)]
pub struct Cli {
    /// What to run (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options shared by every command.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Run the gateway in front of a built-in mock upstream: no provider key, no network needed.
    Demo,
    /// Validate the configuration and print the effective settings, secrets masked.
    CheckConfig,
}

/// Options that every command accepts.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// YAML configuration file.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to bind (default 127.0.0.1).
    #[arg(long, global = true, value_name = "ADDR")]
    pub host: Option<String>,
    /// Port to bind (default 8080; 0 picks a free port).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Backend for plain model names, optionally with a default model: `openai` or `openai:gpt-4o`.
    #[arg(long, global = true, value_name = "BACKEND[:MODEL]")]
    pub default_backend: Option<String>,
    /// Log line format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `portcullis=debug`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl CommonArgs {
    /// The configuration sources these options describe.
    pub fn sources(&self) -> ConfigSources {
        ConfigSources {
            config_path: self.config.clone(),
            cli: CliOverrides {
                host: self.host.clone(),
                port: self.port,
                default_backend: self.default_backend.clone(),
                log_format: self.log_format,
                log_level: self.log_level.clone(),
                disable_auth: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_work_before_and_after_the_subcommand() {
        let a = Cli::try_parse_from(["portcullis", "--port", "9000", "serve"]).unwrap();
        let b = Cli::try_parse_from(["portcullis", "serve", "--port", "9000"]).unwrap();
        assert_eq!(a.common.port, Some(9000));
        assert_eq!(b.common.port, Some(9000));
        assert!(
            Cli::try_parse_from(["portcullis"])
                .unwrap()
                .command
                .is_none()
        );
        assert!(Cli::try_parse_from(["portcullis", "--port", "nope"]).is_err());
    }
}
