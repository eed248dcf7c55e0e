//! The command line: `portcullis [serve|demo|check-config|migrate|tokens|keys|users|clients|
//! signing-keys|auths]`. Every command takes the configuration options ([`ConfigArgs`]); only
//! the commands that run or check a gateway take the serving options ([`ServeArgs`]), so each
//! `--help` lists what that command uses. Parsing only; `main.rs` runs the chosen command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod keys;

pub use keys::{BudgetPeriod, ExpiryArgs, KeyField, KeysCommand, RulesArgs, UsageArgs};

use crate::config::load::{CliOverrides, ConfigSources};
use crate::config::{LogFormat, OauthConnector};
use crate::secret::Secret;

/// An authenticating gateway between AI coding agents and LLM providers.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
#[command(
    after_help = "Configuration layers, highest first: command line, environment \
(PORTCULLIS_<SECTION>__<KEY>, e.g. PORTCULLIS_SERVER__PORT=9000, plus OPENAI_API_KEY / \
ANTHROPIC_API_KEY / GEMINI_API_KEY and their *_BASE_URL when no backend is configured), the YAML \
file, built-in defaults. See config.example.yaml. The serving options (`portcullis serve --help`) \
also work without the word `serve`."
)]
pub struct Cli {
    /// What to run (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of every command.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Serving options given before the subcommand (or without one: `portcullis --port 9000`).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What the serving commands' help says about the options it does not list.
const MORE_SERVE_OPTIONS: &str = "Also accepted, not listed: the brute-force tuning flags \
--auth-max-failed-attempts, --auth-brute-force-ttl, --auth-brute-force-initial-block, \
--auth-brute-force-multiplier, --auth-brute-force-max-block (README, Security settings), and \
llm-interactive-proxy's subscription-connector switches --allow-oauth-auto-replacement and \
--enable-<connector>-backend-debugging-override for gemini-oauth-auto, gemini-oauth-free, \
gemini-oauth-plan, qwen-oauth, opencode-zen, kiro-oauth-auto, openai-codex (and \
--enable-{copilot,kiro}-oauth-backend-debugging-override): set oauth.allow_auto_replacement and \
oauth.debugging_overrides, refused in Multi User Mode; the connectors serve without them \
(llm-interactive-proxy's default).";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    #[command(after_help = MORE_SERVE_OPTIONS)]
    Serve(ServeArgs),
    /// Run the gateway in front of a built-in mock upstream: no provider key, no network needed.
    #[command(after_help = MORE_SERVE_OPTIONS)]
    Demo(ServeArgs),
    /// Validate the configuration and print the effective settings, secrets masked.
    #[command(after_help = MORE_SERVE_OPTIONS)]
    CheckConfig(ServeArgs),
    /// Create or upgrade the store's tables (also done at every start).
    Migrate,
    /// Manage per-device agent tokens.
    Tokens {
        /// What to do.
        #[command(subcommand)]
        action: TokensCommand,
    },
    /// Manage virtual keys: API keys issued to people, bots and teams, each with a name, an
    /// optional owner and expiry, and rules (allowed backends and models, rate limits, budgets).
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysCommand,
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
    /// entry, a `qwen_code` or `kiro` backend): prints a code to enter at the provider's page,
    /// waits for the approval, and stores the OAuth credential (sealed when
    /// auth.encryption.key is set). A `codex` or `gemini_cli` backend logs in as its CLI does:
    /// a link to approve in a browser on this machine, which comes back to a loopback port. Running gateways
    /// pick it up within a second and refresh it before it expires. Needs no key (it opens the
    /// store directly); the browser page /v0/oauth/<name> does the same with the management key.
    Login {
        /// The login's name under auth.device_login.
        name: String,
    },
    /// Import a subscription CLI's login into a connector backend (type `gemini_cli`, `codex`,
    /// `qwen_code` or `kiro`): reads the CLI's credentials file (`~/.gemini/oauth_creds.json`,
    /// `~/.codex/auth.json`, `~/.qwen/oauth_creds.json`,
    /// `~/.aws/sso/cache/kiro-auth-token.json`, or the backend's `credentials_file`)
    /// and stores the login as an OAuth credential, renewed by the refresh worker. A running
    /// gateway also imports the file by itself whenever it changes. Single-user mode only.
    Import {
        /// The connector backend's name.
        backend: String,
        /// Read this file instead of the backend's.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
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
        /// The token itself, or its id (`sk-pcl-<id>` or `<id>`, from `tokens list`).
        id: String,
    },
    /// Rename a token's device.
    Rename {
        /// The token itself, or its id (`sk-pcl-<id>` or `<id>`, from `tokens list`).
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
        /// Session lifetime in hours (1 to 8760); without it the token works until revoked.
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(1..=8760))]
        session_hours: Option<u64>,
    },
}

/// Options of every command: where the configuration and the store are, and logging.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// YAML configuration file.
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log lines: `text` (key=value) or `json` (one object per line).
    #[arg(long, global = true, value_enum, hide_possible_values = true)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `portcullis=debug`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Directory of the embedded SQLite store (default ./portcullis-data). Env: PORTCULLIS_DATA_DIR.
    #[arg(long, global = true, value_name = "DIR", help_heading = "Storage")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL instead of the embedded store (prefer the env var: the command line is visible to other users). Env: PORTCULLIS_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL", help_heading = "Storage")]
    pub database_url: Option<String>,
}

/// Options of the commands that run or check a gateway (`serve`, `demo`, `check-config`).
#[derive(Debug, Args, Clone, Default, PartialEq)]
pub struct ServeArgs {
    /// Address to bind (default 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,
    /// Port to bind (default 8080; 0 picks a free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Backend for plain model names, optionally with a default model: `openai` or `openai:gpt-4o`.
    #[arg(long, value_name = "BACKEND[:MODEL]")]
    pub default_backend: Option<String>,

    /// Client API keys, comma-separated (prefer PORTCULLIS_API_KEYS: the command line is visible to other local users).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "KEY,...",
        help_heading = "Authentication"
    )]
    pub api_keys: Vec<String>,
    /// Turn client authentication off (allowed only on a loopback bind). Env: DISABLE_AUTH.
    #[arg(long, help_heading = "Authentication")]
    pub disable_auth: bool,
    /// Turn brute-force protection on (the default).
    #[arg(long, help_heading = "Authentication")]
    pub enable_brute_force_protection: bool,
    /// Turn brute-force protection off.
    #[arg(long, help_heading = "Authentication")]
    pub disable_brute_force_protection: bool,
    /// Failed attempts within the window that start a block (default 5).
    #[arg(long, value_name = "N", help_heading = "Authentication", hide = true)]
    pub auth_max_failed_attempts: Option<u32>,
    /// Seconds failed attempts are remembered (default 900).
    #[arg(
        long,
        value_name = "SECONDS",
        help_heading = "Authentication",
        hide = true
    )]
    pub auth_brute_force_ttl: Option<u64>,
    /// Seconds of the first block (default 30).
    #[arg(
        long,
        value_name = "SECONDS",
        help_heading = "Authentication",
        hide = true
    )]
    pub auth_brute_force_initial_block: Option<u64>,
    /// Growth factor of each further block (default 2.0).
    #[arg(
        long,
        value_name = "FACTOR",
        help_heading = "Authentication",
        hide = true
    )]
    pub auth_brute_force_multiplier: Option<f64>,
    /// Longest block in seconds (default 3600).
    #[arg(
        long,
        value_name = "SECONDS",
        help_heading = "Authentication",
        hide = true
    )]
    pub auth_brute_force_max_block: Option<u64>,
    /// A proxy (IP or CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        help_heading = "Authentication"
    )]
    pub trusted_proxies: Vec<String>,

    /// Single User Mode: one developer, loopback only (the default). Env: LLM_PROXY_ACCESS_MODE.
    #[arg(long, help_heading = "Access mode")]
    pub single_user_mode: bool,
    /// Multi User Mode: a shared deployment; OAuth connectors and desktop notifications refused.
    #[arg(long, help_heading = "Access mode")]
    pub multi_user_mode: bool,
    /// Force desktop notifications on (default: on for a loopback bind). Env: LLM_PROXY_ENABLE_NOTIFICATIONS.
    #[arg(long, help_heading = "Access mode")]
    pub enable_notifications: bool,
    /// Force desktop notifications off.
    #[arg(long, help_heading = "Access mode")]
    pub disable_notifications: bool,
    /// Accepted for llm-interactive-proxy compatibility (oauth.allow_auto_replacement; env ALLOW_OAUTH_AUTO_REPLACEMENT); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub allow_oauth_auto_replacement: bool,
    /// The gemini-oauth-auto connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_gemini_oauth_auto_backend_debugging_override: bool,
    /// The gemini-oauth-free connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_gemini_oauth_free_backend_debugging_override: bool,
    /// The gemini-oauth-plan connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_gemini_oauth_plan_backend_debugging_override: bool,
    /// The qwen-oauth connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_qwen_oauth_backend_debugging_override: bool,
    /// The opencode-zen connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_opencode_zen_backend_debugging_override: bool,
    /// The kiro-oauth-auto connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_kiro_oauth_auto_backend_debugging_override: bool,
    /// The openai-codex connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_openai_codex_backend_debugging_override: bool,
    /// The copilot connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_copilot_oauth_backend_debugging_override: bool,
    /// The kiro connector's debugging override (oauth.debugging_overrides); refused in Multi User Mode; the connectors serve without it (llm-interactive-proxy's default).
    #[arg(long, help_heading = "Access mode", hide = true)]
    pub enable_kiro_oauth_backend_debugging_override: bool,

    /// Turn SSO login on: agents without a valid token get a login link (needs sso.providers). Env: SSO_ENABLED.
    #[arg(long, help_heading = "SSO")]
    pub sso_enabled: bool,
    /// A YAML file with the `sso:` section (providers, authorization), merged over --config.
    #[arg(long, value_name = "PATH", help_heading = "SSO")]
    pub sso_config: Option<PathBuf>,
    /// Key for the management API (/v0/management/…) and the device-login pages (/v0/oauth/<name>, which are off without it); at least 16 characters. Prefer the env var PORTCULLIS_MANAGEMENT_KEY.
    #[arg(long, value_name = "KEY", help_heading = "SSO")]
    pub management_key: Option<String>,

    /// Redis URL: limit counters shared by every instance using it (prefer the env var). Env: PORTCULLIS_REDIS_URL.
    #[arg(long, value_name = "URL", help_heading = "Storage")]
    pub redis_url: Option<String>,

    /// Write a JSONL wire capture (credentials masked) to this file. Env: WIRE_CAPTURE_FILE.
    #[arg(long, value_name = "PATH", help_heading = "Debugging")]
    pub capture_file: Option<PathBuf>,
}

/// Why the command line cannot be used as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CliError {
    /// Serving options given to a command that does not serve.
    #[error(
        "`{command}` does not take serving options such as --port or --api-keys; they apply to serve, demo and check-config (see `portcullis {command} --help`)"
    )]
    ServeOptionsElsewhere {
        /// The subcommand's name.
        command: &'static str,
    },
    /// Serving options on both sides of the subcommand.
    #[error(
        "serving options were given both before and after `{command}`: put them all after it (`portcullis {command} --port 9000 …`)"
    )]
    SplitServeOptions {
        /// The subcommand's name.
        command: &'static str,
    },
}

impl Cli {
    /// The parser, with the serving options hidden from the top-level help (`serve --help`
    /// lists them; they work before the subcommand, or without one, too).
    pub fn command_line() -> clap::Command {
        let serving: Vec<clap::Id> =
            <ServeArgs as clap::Args>::augment_args(clap::Command::new("x"))
                .get_arguments()
                .map(|a| a.get_id().clone())
                .collect();
        <Self as clap::CommandFactory>::command().mut_args(|a| {
            if serving.contains(a.get_id()) {
                a.hide(true)
            } else {
                a
            }
        })
    }

    /// Parses the process's arguments (exits with clap's message on a parse error).
    pub fn from_env() -> Self {
        let matches = Self::command_line().get_matches();
        match <Self as clap::FromArgMatches>::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }

    /// The command to run (`serve` when none is named) and the configuration sources the
    /// options describe.
    pub fn resolve(self) -> Result<(Command, ConfigSources), CliError> {
        let before = self.serve;
        let command = self.command.unwrap_or_default();
        let name = command.name();
        let serve = match &command {
            Command::Serve(after) | Command::Demo(after) | Command::CheckConfig(after) => {
                if before == ServeArgs::default() {
                    after.clone()
                } else if *after == ServeArgs::default() {
                    before
                } else {
                    return Err(CliError::SplitServeOptions { command: name });
                }
            }
            _ if before != ServeArgs::default() => {
                return Err(CliError::ServeOptionsElsewhere { command: name });
            }
            _ => ServeArgs::default(),
        };
        let sources = self.config.sources(&serve);
        Ok((command, sources))
    }
}

impl Default for Command {
    fn default() -> Self {
        Command::Serve(ServeArgs::default())
    }
}

impl Command {
    /// The subcommand as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Demo(_) => "demo",
            Command::CheckConfig(_) => "check-config",
            Command::Migrate => "migrate",
            Command::Tokens { .. } => "tokens",
            Command::Keys { .. } => "keys",
            Command::Users { .. } => "users",
            Command::Clients { .. } => "clients",
            Command::SigningKeys { .. } => "signing-keys",
            Command::Auths { .. } => "auths",
        }
    }
}

impl ConfigArgs {
    /// The configuration sources these options and `serve`'s describe.
    pub fn sources(&self, serve: &ServeArgs) -> ConfigSources {
        ConfigSources {
            config_path: self.config.clone(),
            cli: CliOverrides {
                host: serve.host.clone(),
                port: serve.port,
                default_backend: serve.default_backend.clone(),
                log_format: self.log_format,
                log_level: self.log_level.clone(),
                disable_auth: serve.disable_auth,
                api_keys: serve.api_keys.iter().map(Secret::new).collect(),
                single_user_mode: serve.single_user_mode,
                multi_user_mode: serve.multi_user_mode,
                notifications: flag_pair(serve.enable_notifications, serve.disable_notifications),
                brute_force_enabled: flag_pair(
                    serve.enable_brute_force_protection,
                    serve.disable_brute_force_protection,
                ),
                max_failed_attempts: serve.auth_max_failed_attempts,
                brute_force_ttl: serve.auth_brute_force_ttl,
                brute_force_initial_block: serve.auth_brute_force_initial_block,
                brute_force_multiplier: serve.auth_brute_force_multiplier,
                brute_force_max_block: serve.auth_brute_force_max_block,
                trusted_proxies: serve.trusted_proxies.clone(),
                capture_file: serve.capture_file.clone(),
                allow_oauth_auto_replacement: serve.allow_oauth_auto_replacement,
                data_dir: self.data_dir.clone(),
                database_url: self.database_url.as_deref().map(Secret::new),
                redis_url: serve.redis_url.as_deref().map(Secret::new),
                sso_enabled: serve.sso_enabled,
                sso_config: serve.sso_config.clone(),
                management_key: serve.management_key.as_deref().map(Secret::new),
                oauth_debugging_overrides: serve.debugging_overrides(),
            },
        }
    }
}

impl ServeArgs {
    /// The connectors whose debugging-override flag was given.
    fn debugging_overrides(&self) -> Vec<OauthConnector> {
        use OauthConnector::*;
        [
            (
                GeminiOauthAuto,
                self.enable_gemini_oauth_auto_backend_debugging_override,
            ),
            (
                GeminiOauthFree,
                self.enable_gemini_oauth_free_backend_debugging_override,
            ),
            (
                GeminiOauthPlan,
                self.enable_gemini_oauth_plan_backend_debugging_override,
            ),
            (QwenOauth, self.enable_qwen_oauth_backend_debugging_override),
            (
                OpencodeZen,
                self.enable_opencode_zen_backend_debugging_override,
            ),
            (
                KiroOauthAuto,
                self.enable_kiro_oauth_auto_backend_debugging_override,
            ),
            (
                OpenaiCodex,
                self.enable_openai_codex_backend_debugging_override,
            ),
            (
                Copilot,
                self.enable_copilot_oauth_backend_debugging_override,
            ),
            (Kiro, self.enable_kiro_oauth_backend_debugging_override),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
        .collect()
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

    fn resolve(args: &[&str]) -> Result<(Command, ConfigSources), CliError> {
        Cli::try_parse_from(args).unwrap().resolve()
    }

    #[test]
    fn serving_options_work_before_and_after_the_subcommand() {
        for args in [
            &["portcullis", "--port", "9000", "serve"][..],
            &["portcullis", "serve", "--port", "9000"],
            &["portcullis", "--port", "9000"],
            &["portcullis", "demo", "--port", "9000"],
        ] {
            let (_, sources) = resolve(args).unwrap();
            assert_eq!(sources.cli.port, Some(9000), "{args:?}");
        }
        let (command, _) = resolve(&["portcullis"]).unwrap();
        assert_eq!(command.name(), "serve");
        assert!(Cli::try_parse_from(["portcullis", "--port", "nope"]).is_err());
        assert_eq!(
            resolve(&["portcullis", "--port", "1", "serve", "--host", "::1"]).unwrap_err(),
            CliError::SplitServeOptions { command: "serve" }
        );
    }

    #[test]
    fn each_debugging_override_flag_names_its_connector() {
        for connector in OauthConnector::ALL {
            let flag = connector.flag();
            let (_, sources) = resolve(&["portcullis", "check-config", &flag]).unwrap();
            assert_eq!(sources.cli.oauth_debugging_overrides, [connector], "{flag}");
        }
        let (_, sources) = resolve(&["portcullis", "--allow-oauth-auto-replacement"]).unwrap();
        assert!(sources.cli.allow_oauth_auto_replacement);
        assert!(sources.cli.oauth_debugging_overrides.is_empty());
    }

    #[test]
    fn store_commands_take_only_the_configuration_options() {
        let (command, sources) = resolve(&[
            "portcullis",
            "tokens",
            "list",
            "--data-dir",
            "/tmp/d",
            "--log-level",
            "warn",
        ])
        .unwrap();
        assert_eq!(command.name(), "tokens");
        assert_eq!(sources.cli.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(sources.cli.log_level.as_deref(), Some("warn"));
        // After the subcommand a serving option is unknown; before it, a clear refusal.
        assert!(Cli::try_parse_from(["portcullis", "tokens", "list", "--port", "1"]).is_err());
        let refused = resolve(&["portcullis", "--api-keys", "k", "tokens", "list"]).unwrap_err();
        assert_eq!(
            refused,
            CliError::ServeOptionsElsewhere { command: "tokens" }
        );
        assert!(refused.to_string().contains("portcullis tokens --help"));
    }
}
