//! The command line: `portcullis [serve|demo|check-config]` and the options shared by all of
//! them. Parsing only; `main.rs` runs the chosen command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;
use crate::config::load::{CliOverrides, ConfigSources};
use crate::secret::Secret;

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
    /// Create or upgrade the store's tables (also done at every start).
    Migrate,
    /// Manage per-device agent tokens.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        action: TokensCommand,
    },
    /// Manage users (local accounts for the password grant, and SSO users).
    Users {
        /// What to do.
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Manage service clients (client-credentials grant).
    Clients {
        /// What to do.
        #[command(subcommand)]
        action: ClientsCommand,
    },
    /// The token server's signing keys.
    SigningKeys {
        /// What to do.
        #[command(subcommand)]
        action: SigningKeysCommand,
    },
    /// The upstream credential pool: list, add, remove credentials; re-seal secrets after a key
    /// rotation.
    Auths {
        /// What to do.
        #[command(subcommand)]
        action: AuthsCommand,
    },
}

/// `portcullis auths …`
#[derive(Debug, Subcommand)]
pub enum AuthsCommand {
    /// List every upstream credential (config, credential directory, store) with its masked
    /// hint, priority and this period's quota use; never a secret.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a credential to the store (sealed when auth.encryption.key is set). The secret is
    /// read from stdin, or from the environment variable named by --token-env.
    Add {
        /// Provider: a configured backend name (`claude` means `anthropic`).
        #[arg(long)]
        provider: String,
        /// Read the secret from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
        /// `api_key` or `oauth`.
        #[arg(long = "type", default_value = "api_key")]
        kind: String,
        /// Lower number = tried first (default 100).
        #[arg(long)]
        priority: Option<i64>,
        /// Token quota per period.
        #[arg(long, value_name = "TOKENS")]
        quota: Option<u64>,
        /// A label for the listing.
        #[arg(long)]
        label: Option<String>,
    },
    /// Log in with a device-flow provider (`copilot`, `kiro`, or another auth.device_login
    /// entry): prints a code to enter at the provider's page, waits for the approval, and
    /// stores the OAuth credential (sealed when auth.encryption.key is set). Running gateways
    /// pick it up within a second and refresh it before it expires. Needs no key (it opens the
    /// store directly); the browser page /v0/oauth/<name> does the same with the management key.
    Login {
        /// The login's name under auth.device_login.
        name: String,
    },
    /// Remove a credential (a stored one from the store; a file credential by deleting its file).
    Remove {
        /// Credential id (see `auths list`).
        id: String,
    },
    /// Re-seal every stored secret (pool credentials, signing keys) and every sealed secret in
    /// the credential directory under the current auth.encryption.key. Put the old key in
    /// auth.encryption.previous_keys first; remove it once this has run.
    Rekey,
}

/// `portcullis signing-keys …`
#[derive(Debug, Subcommand)]
pub enum SigningKeysCommand {
    /// List the keys (kid, algorithm, created, retired); never the private halves.
    List,
    /// Make a new signing key; the others retire but keep verifying the tokens they signed.
    /// Running instances switch within five minutes.
    Rotate,
}

/// `portcullis users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a local user with a password (read from stdin with --password-stdin, else generated and shown once).
    Add {
        /// Username (what the password grant's `username` is).
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a local user's password (from stdin with --password-stdin, else generated and shown once).
    Passwd {
        /// Username.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their password, tokens and agent tokens stop working.
    Disable {
        /// Username, user id or email.
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Username, user id or email.
        user: String,
    },
    /// List users.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `portcullis clients …`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Add a service client; its id and secret are shown once.
    Add {
        /// A name for people (e.g. `ci-pipeline`).
        name: String,
    },
    /// List clients (never their secrets).
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a client: it can no longer obtain tokens.
    Disable {
        /// Client id.
        id: String,
    },
    /// Enable a disabled client.
    Enable {
        /// Client id.
        id: String,
    },
}

/// `portcullis tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List agent tokens: device name, owner, created, last used (address and user agent), session end, status.
    List {
        /// Only this user's tokens (user id, or the subject/email given to `tokens issue`).
        #[arg(long)]
        user: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; it stops working on the next request (other running instances within a second).
    Revoke {
        /// Token id, as `sk-pcl-<id>` or `<id>`.
        id: String,
    },
    /// Rename a token's device.
    Rename {
        /// Token id, as `sk-pcl-<id>` or `<id>`.
        id: String,
        /// New device name.
        name: String,
    },
    /// Issue a token for a user without SSO (for CI bots and headless machines). Shown once.
    Issue {
        /// The user (an email or any stable name); created if new.
        #[arg(long)]
        user: String,
        /// Device name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Session lifetime in hours; without it the token works until revoked.
        #[arg(long, value_name = "HOURS")]
        session_hours: Option<u64>,
    },
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

    /// Client API keys, comma-separated (prefer PORTCULLIS_API_KEYS: the command line is visible to other local users).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        value_name = "KEY,...",
        help_heading = "Authentication"
    )]
    pub api_keys: Vec<String>,
    /// Turn client authentication off (allowed only on a loopback bind). Env: DISABLE_AUTH.
    #[arg(long, global = true, help_heading = "Authentication")]
    pub disable_auth: bool,
    /// Turn brute-force protection on (the default).
    #[arg(long, global = true, help_heading = "Authentication")]
    pub enable_brute_force_protection: bool,
    /// Turn brute-force protection off.
    #[arg(long, global = true, help_heading = "Authentication")]
    pub disable_brute_force_protection: bool,
    /// Failed attempts within the window that start a block (default 5).
    #[arg(long, global = true, value_name = "N", help_heading = "Authentication")]
    pub auth_max_failed_attempts: Option<u32>,
    /// Seconds failed attempts are remembered (default 900).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        help_heading = "Authentication"
    )]
    pub auth_brute_force_ttl: Option<u64>,
    /// Seconds of the first block (default 30).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        help_heading = "Authentication"
    )]
    pub auth_brute_force_initial_block: Option<u64>,
    /// Growth factor of each further block (default 2.0).
    #[arg(
        long,
        global = true,
        value_name = "FACTOR",
        help_heading = "Authentication"
    )]
    pub auth_brute_force_multiplier: Option<f64>,
    /// Longest block in seconds (default 3600).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        help_heading = "Authentication"
    )]
    pub auth_brute_force_max_block: Option<u64>,
    /// A proxy (IP or CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(
        long = "trusted-proxy",
        global = true,
        value_name = "CIDR",
        help_heading = "Authentication"
    )]
    pub trusted_proxies: Vec<String>,

    /// Single User Mode: one developer, loopback only (the default). Env: LLM_PROXY_ACCESS_MODE.
    #[arg(long, global = true, help_heading = "Access mode")]
    pub single_user_mode: bool,
    /// Multi User Mode: a shared deployment; OAuth connectors and desktop notifications refused.
    #[arg(long, global = true, help_heading = "Access mode")]
    pub multi_user_mode: bool,
    /// Force desktop notifications on (default: on for a loopback bind). Env: LLM_PROXY_ENABLE_NOTIFICATIONS.
    #[arg(long, global = true, help_heading = "Access mode")]
    pub enable_notifications: bool,
    /// Force desktop notifications off.
    #[arg(long, global = true, help_heading = "Access mode")]
    pub disable_notifications: bool,
    /// Let the credential pool replace an OAuth credential that needs re-login (single-user only; the OAuth connectors are not built yet, so today this is only validated).
    #[arg(long, global = true, help_heading = "Access mode")]
    pub allow_oauth_auto_replacement: bool,
    /// Debugging override for the GitHub Copilot OAuth connector (single-user only; only validated until that connector lands).
    #[arg(long, global = true, help_heading = "Access mode")]
    pub enable_copilot_oauth_backend_debugging_override: bool,
    /// Debugging override for the Kiro OAuth connector (single-user only; only validated until that connector lands).
    #[arg(long, global = true, help_heading = "Access mode")]
    pub enable_kiro_oauth_backend_debugging_override: bool,

    /// Directory of the embedded SQLite store (default ./portcullis-data). Env: PORTCULLIS_DATA_DIR.
    #[arg(long, global = true, value_name = "DIR", help_heading = "Storage")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL instead of the embedded store (prefer the env var: the command line is visible to other users). Env: PORTCULLIS_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL", help_heading = "Storage")]
    pub database_url: Option<String>,

    /// Turn SSO login on: agents without a valid token get a login link (needs sso.providers). Env: SSO_ENABLED.
    #[arg(long, global = true, help_heading = "SSO")]
    pub sso_enabled: bool,
    /// A YAML file with the `sso:` section (providers, authorization), merged over --config.
    #[arg(long, global = true, value_name = "PATH", help_heading = "SSO")]
    pub sso_config: Option<PathBuf>,
    /// Key for the management API (/v0/management/…) and the device-login pages (/v0/oauth/<name>, which are off without it); at least 16 characters. Prefer the env var PORTCULLIS_MANAGEMENT_KEY.
    #[arg(long, global = true, value_name = "KEY", help_heading = "SSO")]
    pub management_key: Option<String>,

    /// Write a JSONL wire capture (credentials masked) to this file. Env: WIRE_CAPTURE_FILE.
    #[arg(long, global = true, value_name = "PATH", help_heading = "Debugging")]
    pub capture_file: Option<PathBuf>,
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
                disable_auth: self.disable_auth,
                api_keys: self.api_keys.iter().map(Secret::new).collect(),
                single_user_mode: self.single_user_mode,
                multi_user_mode: self.multi_user_mode,
                notifications: flag_pair(self.enable_notifications, self.disable_notifications),
                brute_force_enabled: flag_pair(
                    self.enable_brute_force_protection,
                    self.disable_brute_force_protection,
                ),
                max_failed_attempts: self.auth_max_failed_attempts,
                brute_force_ttl: self.auth_brute_force_ttl,
                brute_force_initial_block: self.auth_brute_force_initial_block,
                brute_force_multiplier: self.auth_brute_force_multiplier,
                brute_force_max_block: self.auth_brute_force_max_block,
                trusted_proxies: self.trusted_proxies.clone(),
                capture_file: self.capture_file.clone(),
                allow_oauth_auto_replacement: self.allow_oauth_auto_replacement,
                data_dir: self.data_dir.clone(),
                database_url: self.database_url.as_deref().map(Secret::new),
                sso_enabled: self.sso_enabled,
                sso_config: self.sso_config.clone(),
                management_key: self.management_key.as_deref().map(Secret::new),
                oauth_debugging_overrides: [
                    (
                        "copilot",
                        self.enable_copilot_oauth_backend_debugging_override,
                    ),
                    ("kiro", self.enable_kiro_oauth_backend_debugging_override),
                ]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(c, _)| (*c).to_owned())
                .collect(),
            },
        }
    }
}

/// `--enable-x` / `--disable-x`: the disabling flag wins when both are given.
fn flag_pair(enable: bool, disable: bool) -> Option<bool> {
    if disable {
        Some(false)
    } else if enable {
        Some(true)
    } else {
        None
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
