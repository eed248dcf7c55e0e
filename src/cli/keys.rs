//! The `portcullis keys` command line: its subcommands, and the expiry and rules flags that
//! `create` and `update` share (parsing only; `admin::keys` runs them). A new subcommand (a
//! usage report) is one more variant of [`KeysCommand`].

use clap::{Args, Subcommand};

/// `portcullis keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (only a hash of its secret is stored). Without rule flags
    /// the key may use every backend and model, unlimited.
    Create {
        /// A name for people (e.g. `ci-pipeline`, `alice-laptop`); 1 to 100 characters.
        #[arg(long)]
        name: String,
        /// The user who owns the key (user id, or the username/email `users list` shows); a
        /// disabled owner's keys stop working, and the owner's own rules apply too.
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// Print the key and its details as one JSON object.
        #[arg(long)]
        json: bool,
        /// When the key stops working.
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// What the key may do.
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// List keys: id, name, owner, status (active, expired, revoked), expiry and rules — never
    /// the key itself.
    List {
        /// Only this user's keys (user id, username or email).
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one key's details (never the key itself).
    Show {
        /// The key's id (`sk-pvk-<id>` or `<id>`, from `keys list`), or the whole key.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a key's name, expiry or rules: only what is given changes. Running gateways apply
    /// it within a second.
    Update {
        /// The key's id (`sk-pvk-<id>` or `<id>`, from `keys list`), or the whole key.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// Remove a setting (repeatable): expiry, backends, models, rpm, tpm, max_concurrent,
        /// token_budget, cost_budget.
        #[arg(long, value_enum, value_name = "FIELD", hide_possible_values = true)]
        unset: Vec<KeyField>,
        /// Print the updated key as JSON.
        #[arg(long)]
        json: bool,
        /// A new expiry.
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// Rules to change (a repeated --backend or --model replaces that whole list;
        /// --rules-json replaces all the rules).
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Revoke a key: it stops working on the next request (other running instances within a
    /// second). The record stays, listed as revoked.
    Revoke {
        /// The key's id (`sk-pvk-<id>` or `<id>`, from `keys list`), or the whole key.
        id: String,
    },
    /// Report settled usage and spend (requests, tokens, cost) per key, user, backend, model and
    /// UTC day, from the store; running gateways write it within a second of each request.
    Usage(UsageArgs),
}

/// When a key stops working (`keys create`, `keys update`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Expiry")]
pub struct ExpiryArgs {
    /// Expire after this long: `30d`, `12h`, `90m` (from now).
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    pub expires_in: Option<String>,
    /// Expire at this time: `2027-01-31` (midnight UTC) or `2027-01-31T18:00:00Z`.
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

/// A key's rules as flags (`keys create`, `keys update`); `--rules-json` gives them whole.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Rules")]
pub struct RulesArgs {
    /// Allow only backends matching this glob (`openai`, `anthropic*`); repeatable. Default: all.
    #[arg(long = "backend", value_name = "GLOB")]
    pub backends: Vec<String>,
    /// Allow only models matching this glob, on the upstream model's name or `backend:model`
    /// (`gpt-4o*`, `anthropic:claude-*`); repeatable. Default: all.
    #[arg(long = "model", value_name = "GLOB")]
    pub models: Vec<String>,
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at once (a stream counts until it ends).
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// Tokens (input + output) per budget period.
    #[arg(long, value_name = "TOKENS")]
    pub token_budget: Option<u64>,
    /// Spend per budget period in US dollars (priced by the configured price table), e.g. `25`.
    #[arg(long, value_name = "USD")]
    pub cost_budget: Option<f64>,
    /// When the budgets start again (UTC): daily, weekly (Mondays), monthly (the default) or
    /// never.
    #[arg(long, value_enum, value_name = "PERIOD", hide_possible_values = true)]
    pub budget_period: Option<BudgetPeriod>,
    /// All the rules as one JSON object, e.g. `{"models":["gpt-4o*"],"rpm":60,
    /// "token_budget":{"tokens":1000000,"period":"weekly"}}` (instead of the flags above).
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with_all = ["backends", "models", "rpm", "tpm", "max_concurrent", "token_budget", "cost_budget", "budget_period"]
    )]
    pub rules_json: Option<String>,
}

/// `--budget-period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BudgetPeriod {
    /// Every day at 00:00 UTC.
    Daily,
    /// Every Monday at 00:00 UTC.
    Weekly,
    /// On the 1st of every month at 00:00 UTC.
    Monthly,
    /// Never: a lifetime budget.
    Never,
}

impl From<BudgetPeriod> for crate::rules::Period {
    fn from(p: BudgetPeriod) -> Self {
        match p {
            BudgetPeriod::Daily => Self::Daily,
            BudgetPeriod::Weekly => Self::Weekly,
            BudgetPeriod::Monthly => Self::Monthly,
            BudgetPeriod::Never => Self::Never,
        }
    }
}

/// A key setting `keys update --unset` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyField {
    /// The expiry (the key works until revoked).
    Expiry,
    /// The backend allow-list (all backends).
    Backends,
    /// The model allow-list (all models).
    Models,
    /// The requests-per-minute limit.
    Rpm,
    /// The tokens-per-minute limit.
    Tpm,
    /// The concurrency limit.
    #[value(name = "max_concurrent", alias = "max-concurrent")]
    MaxConcurrent,
    /// The token budget.
    #[value(name = "token_budget", alias = "token-budget")]
    TokenBudget,
    /// The cost budget.
    #[value(name = "cost_budget", alias = "cost-budget")]
    CostBudget,
}

/// The flags of `keys usage`.
#[derive(Debug, Clone, Default, Args)]
pub struct UsageArgs {
    /// Only this virtual key (`sk-pvk-<id>` as `keys list` shows it, or the bare id).
    #[arg(long)]
    pub key: Option<String>,
    /// Only this user (its id, `usr_…`).
    #[arg(long)]
    pub user: Option<String>,
    /// Only this backend.
    #[arg(long)]
    pub backend: Option<String>,
    /// Only this upstream model.
    #[arg(long)]
    pub model: Option<String>,
    /// From this UTC day on (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this UTC day (YYYY-MM-DD, inclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Sum by these columns (comma-separated: day, key, user, backend, model; "" for one total).
    #[arg(
        long,
        value_name = "COLUMNS",
        default_value = "key,user,backend,model,day"
    )]
    pub group_by: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}
