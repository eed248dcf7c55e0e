//! The store: durable state behind narrow traits, one per aggregate — users, agent tokens,
//! virtual keys, the SSO aggregates (login flows, pending authorizations, browser sessions,
//! shared secrets), local accounts (password hashes, service clients), the token server's
//! signing keys, the credential pool's credentials and usage, and the settled usage of metered
//! requests ([`UsageStore`]).
//!
//! One implementation ([`sql::SqlStore`]) serves both databases through sqlx's `Any` driver:
//! SQLite (the embedded default, a file in `--data-dir`, WAL) and PostgreSQL
//! (`--database-url postgres://…`). Dialect differences live in the per-dialect migrations
//! (`migrations/{sqlite,postgres}`), applied at start and by `portcullis migrate`. SQL never
//! leaves this module; callers see domain types. Times are milliseconds since the epoch, passed
//! in by the caller (time is a parameter).

mod accounts_sql;
mod keys_sql;
mod migrate;
mod pool_sql;
pub mod private;
pub mod sql;
mod sso_sql;
mod usage_sql;

use async_trait::async_trait;

use crate::rules::Rules;
pub use migrate::{AppliedMigration, MIGRATION_LOCK_KEY, shipped as shipped_migrations};
pub use sql::SqlStore;

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A store failure. The message is for logs; clients get a generic error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open the store: {0}")]
    Open(String),
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(String),
    /// A migration failed.
    #[error("store migration {version} failed: {message}")]
    Migration {
        /// Migration number.
        version: i64,
        /// What failed.
        message: String,
    },
    /// An applied migration's recorded checksum is not the one this binary embeds: its SQL was
    /// edited after it was released.
    #[error(
        "store migration {version} ({name}) was edited after it was applied: the database recorded checksum {recorded}, this binary embeds {embedded}; restore the released migration (a change goes in a new one)"
    )]
    MigrationEdited {
        /// Migration number.
        version: i64,
        /// Migration name.
        name: String,
        /// The checksum in `portcullis_migrations`.
        recorded: String,
        /// The checksum of this binary's SQL.
        embedded: String,
    },
    /// A write would break a uniqueness rule.
    #[error("already exists: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Query(e.to_string()),
        }
    }
}

/// The `provider` of users the gateway keeps itself (password hash in the store), as opposed to
/// an SSO provider's.
pub const LOCAL_PROVIDER: &str = "local";

/// A person known to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (`usr_…`).
    pub id: String,
    /// Identity provider name (`google`, `github`, `admin` for CLI-created users).
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// Email, when known.
    pub email: Option<String>,
    /// Display name, when known.
    pub display_name: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Disabled users cannot authenticate.
    pub disabled: bool,
}

impl User {
    /// How lists name the owner of a token or key: the email, else the provider's subject.
    pub fn owner_label(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.subject)
    }
}

/// A per-device agent token; only a hash of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTokenRecord {
    /// Public id (appears in the token and in logs).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Device name, chosen by the user.
    pub name: String,
    /// Argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last successful use (ms).
    pub last_used_at: Option<i64>,
    /// Address of the last use.
    pub last_ip: Option<String>,
    /// User agent of the last use.
    pub last_user_agent: Option<String>,
    /// When the bound SSO session lapses (ms); `None` = no session limit.
    pub session_expires_at: Option<i64>,
    /// Revocation time (ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Finds or creates the user `(provider, subject)`, refreshing email and name.
    async fn upsert_user(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError>;
    /// The user with `id`.
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// All users, oldest first.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Enables or disables a user; false when unknown.
    async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError>;
}

/// Agent tokens.
#[async_trait]
pub trait AgentTokenStore: Send + Sync {
    /// Stores a new token.
    async fn insert_token(&self, token: &AgentTokenRecord) -> Result<(), StoreError>;
    /// The token with public id `id` (revoked ones included).
    async fn get_token(&self, id: &str) -> Result<Option<AgentTokenRecord>, StoreError>;
    /// Tokens of `user_id`, or of everyone; newest first.
    async fn list_tokens(&self, user_id: Option<&str>)
    -> Result<Vec<AgentTokenRecord>, StoreError>;
    /// Renames a token; false when unknown.
    async fn rename_token(&self, id: &str, name: &str) -> Result<bool, StoreError>;
    /// Revokes a token at `now`; false when unknown or already revoked.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Records a use.
    async fn touch_token(
        &self,
        id: &str,
        now: i64,
        ip: &str,
        user_agent: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Moves the token's session end (re-authentication keeps the token).
    async fn set_session_expiry(
        &self,
        id: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError>;
}

/// An issued virtual key (PRODUCT §7); only a hash of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualKeyRecord {
    /// Public id (appears in the key and in logs).
    pub id: String,
    /// The key's name, chosen by the operator.
    pub name: String,
    /// The user who owns the key, if any (an existing user's id).
    pub owner: Option<String>,
    /// Hash of the secret (hex; see `identity::virtual_key::hash_secret`).
    pub secret_hash: String,
    /// What the key may do (stored as JSON).
    pub rules: Rules,
    /// Creation (ms).
    pub created_at: i64,
    /// Last change of name, expiry or rules (ms).
    pub updated_at: i64,
    /// End of validity (ms), if any.
    pub expires_at: Option<i64>,
    /// Revocation (ms), if revoked.
    pub revoked_at: Option<i64>,
}

/// A change to a virtual key: each `Some` field replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new expiry (`Some(None)` clears it).
    pub expires_at: Option<Option<i64>>,
    /// New rules (replacing the old ones whole).
    pub rules: Option<Rules>,
}

/// Virtual keys. Revoking and updating bump the store revision, so every instance drops its
/// cached copy within its poll interval.
#[async_trait]
pub trait VirtualKeyStore: Send + Sync {
    /// Stores a new key (its owner, when given, must be an existing user).
    async fn insert_key(&self, key: &VirtualKeyRecord) -> Result<(), StoreError>;
    /// The key with public id `id` (revoked ones included), by primary key.
    async fn get_key(&self, id: &str) -> Result<Option<VirtualKeyRecord>, StoreError>;
    /// The keys of `owner`, or every key; newest first.
    async fn list_keys(&self, owner: Option<&str>) -> Result<Vec<VirtualKeyRecord>, StoreError>;
    /// Applies `change` at `now` (sets `updated_at`); false when unknown.
    async fn update_key(&self, id: &str, change: &KeyUpdate, now: i64) -> Result<bool, StoreError>;
    /// Revokes a key at `now`; false when unknown or already revoked.
    async fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError>;
}

/// The store-wide change counter.
#[async_trait]
pub trait RevisionStore: Send + Sync {
    /// A number that grows with every change running instances must see (revocations, renames,
    /// credentials added or changed).
    async fn revision(&self) -> Result<i64, StoreError>;

    /// Calls `hook` after every committed change made through this store that moved the
    /// revision (the composition root tells the other instances at once; see `bus`). Set once;
    /// later calls are ignored.
    fn on_change(&self, hook: ChangeHook) {
        let _ = hook;
    }
}

/// What the store says of itself (`/internal/health`).
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Where the database is: its URL without password and query.
    fn shown_url(&self) -> &str;
    /// A cheap query (`SELECT 1`), then the migrations the database records as applied, in
    /// order. The caller bounds it in time.
    async fn check(&self) -> Result<Vec<AppliedMigration>, StoreError>;
}

/// What [`RevisionStore::on_change`] calls.
pub type ChangeHook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// An OAuth authorization-code login in progress, keyed by a hash of its `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFlow {
    /// Hash of the `state` parameter (the state itself only travels through the browser).
    pub state_hash: String,
    /// Hash of the cookie given to the browser that started the flow: only that browser can
    /// finish it.
    pub browser_hash: String,
    /// Configured provider name.
    pub provider: String,
    /// PKCE code verifier.
    pub pkce_verifier: String,
    /// OIDC nonce expected in the ID token.
    pub nonce: String,
    /// The agent token a re-authentication is for.
    pub bound_token_id: Option<String>,
    /// Browser address that started the flow.
    pub client_ip: Option<String>,
    /// Start (ms).
    pub created_at: i64,
    /// End of validity (ms).
    pub expires_at: i64,
}

/// A login the identity provider confirmed, waiting for the console confirmation code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// Hash of the browser's flow cookie.
    pub id_hash: String,
    /// The user who logged in.
    pub user_id: String,
    /// Provider name.
    pub provider: String,
    /// The agent token a re-authentication is for.
    pub bound_token_id: Option<String>,
    /// Keyed hash of the confirmation code.
    pub code_hash: String,
    /// Wrong codes still allowed.
    pub attempts_left: i64,
    /// Browser address.
    pub client_ip: Option<String>,
    /// Creation (ms).
    pub created_at: i64,
    /// End of validity (ms).
    pub expires_at: i64,
}

/// A logged-in browser (the devices page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Hash of the session cookie.
    pub id_hash: String,
    /// The user.
    pub user_id: String,
    /// Creation (ms).
    pub created_at: i64,
    /// End of validity (ms).
    pub expires_at: i64,
}

/// The SSO aggregates. Every read that matters is single-use or atomic, so any instance can
/// finish what another started and no login state lives in process memory.
#[async_trait]
pub trait SsoStore: Send + Sync {
    /// The secret called `name`, creating it from `candidate` if no instance has yet (all
    /// instances end up with the same value).
    async fn shared_secret(
        &self,
        name: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError>;
    /// Every shared secret: `(name, stored value)`, for `rekey`.
    async fn list_shared_secrets(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces the stored value of secret `name` if it is still `expected` (compare-and-swap,
    /// as for credentials); false when it changed meanwhile or does not exist.
    async fn replace_shared_secret(
        &self,
        name: &str,
        expected: &str,
        value: &str,
    ) -> Result<bool, StoreError>;
    /// Marks login link `id` used; false when it already was.
    async fn consume_login_link(&self, id: &str, expires_at: i64) -> Result<bool, StoreError>;
    /// Records a login flow.
    async fn insert_login_flow(&self, flow: &LoginFlow) -> Result<(), StoreError>;
    /// Removes and returns the flow with `state_hash` if it has not expired.
    async fn take_login_flow(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<LoginFlow>, StoreError>;
    /// Records a pending authorization.
    async fn insert_pending(&self, p: &PendingAuthorization) -> Result<(), StoreError>;
    /// The pending authorization (expired or exhausted ones included).
    async fn get_pending(&self, id_hash: &str) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Spends one attempt atomically; returns the record after spending, or `None` when it is
    /// unknown, expired or out of attempts.
    async fn spend_attempt(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Removes and returns the pending authorization (only one caller gets it).
    async fn take_pending(&self, id_hash: &str)
    -> Result<Option<PendingAuthorization>, StoreError>;
    /// Records a browser session.
    async fn insert_web_session(&self, s: &WebSession) -> Result<(), StoreError>;
    /// The browser session, if it has not expired.
    async fn get_web_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<WebSession>, StoreError>;
    /// Ends a browser session.
    async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Deletes expired SSO rows; returns how many.
    async fn purge_expired_sso(&self, now: i64) -> Result<u64, StoreError>;
}

/// A service client of the OAuth2 token server (client-credentials grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthClient {
    /// Client id (`pcl_…`), public.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Argon2id PHC string of the client secret.
    pub secret_hash: String,
    /// Creation (ms).
    pub created_at: i64,
    /// Disabled clients cannot obtain tokens.
    pub disabled: bool,
}

/// Local accounts: user passwords and service clients (the token server's credentials).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The user `(provider, subject)`, if any.
    async fn find_user(&self, provider: &str, subject: &str) -> Result<Option<User>, StoreError>;
    /// The user `(provider, subject)` and their password hash, in one query (the token endpoint
    /// does the same work for known and unknown users).
    async fn find_user_with_password(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;
    /// Sets (or replaces) a user's password hash.
    async fn set_password(&self, user_id: &str, hash: &str, now: i64) -> Result<(), StoreError>;
    /// A user's password hash, if they have one.
    async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a new client.
    async fn insert_client(&self, client: &OauthClient) -> Result<(), StoreError>;
    /// The client with `id`.
    async fn get_client(&self, id: &str) -> Result<Option<OauthClient>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<OauthClient>, StoreError>;
    /// Enables or disables a client; false when unknown.
    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError>;
}

/// A signing key of the token server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// JWS algorithm (`EdDSA`).
    pub alg: String,
    /// PKCS#8 private key, base64url.
    pub private_key: String,
    /// Public key, base64url (the JWK `x`).
    pub public_key: String,
    /// Creation (ms).
    pub created_at: i64,
    /// Retirement (ms): no longer signs, still verifies until its tokens expire.
    pub retired_at: Option<i64>,
}

/// Signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key, newest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Stores a new key.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Stores `key` unless an unretired key exists; true when stored. Atomic among instances:
    /// of several starting together on an empty store, one stores its key.
    async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;
    /// Retires every key but `keep` at `now`; returns how many.
    async fn retire_signing_keys_except(&self, keep: &str, now: i64) -> Result<u64, StoreError>;
    /// Replaces a key's stored private key (re-sealed under a new key); false when unknown.
    async fn replace_private_key(&self, kid: &str, private_key: &str) -> Result<bool, StoreError>;
}

/// An upstream credential kept in the store (added through the management API or a device-flow
/// login). `secret` and `oauth` are stored as given: the pool seals them before they get here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// Credential id (`api-…`).
    pub id: String,
    /// Backend it pays for.
    pub provider: String,
    /// `api_key` or `oauth`.
    pub kind: String,
    /// The upstream secret (sealed when encryption is on).
    pub secret: String,
    /// Lower number = tried first.
    pub priority: i64,
    /// Token quota per period, if limited.
    pub quota_limit: Option<i64>,
    /// Operator's label.
    pub label: Option<String>,
    /// OAuth state (refresh token, flow endpoints), sealed JSON when encryption is on.
    pub oauth: Option<String>,
    /// When the secret expires (ms), for OAuth access tokens.
    pub expires_at: Option<i64>,
    /// Creation (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// The credential pool's durable state: API-added credentials, quota limits set through the API,
/// and token usage per credential and quota period (shared by every instance).
#[async_trait]
pub trait PoolStore: Send + Sync {
    /// Every stored credential, oldest first.
    async fn list_credentials(&self) -> Result<Vec<StoredCredential>, StoreError>;
    /// Stores a new credential.
    async fn insert_credential(&self, c: &StoredCredential) -> Result<(), StoreError>;
    /// Replaces a stored credential if its secret is still `expected_secret` (compare and swap:
    /// a refresh on another instance, or an operator's change, is never overwritten with what
    /// was read before it); false when unknown or changed meanwhile.
    async fn update_credential(
        &self,
        c: &StoredCredential,
        expected_secret: &str,
    ) -> Result<bool, StoreError>;
    /// Deletes a stored credential, its quota limit and usage; false when unknown.
    async fn delete_credential(&self, id: &str) -> Result<bool, StoreError>;
    /// Sets (or, with `None`, clears) the API's quota limit of any credential.
    async fn set_quota_limit(&self, id: &str, limit: Option<i64>) -> Result<(), StoreError>;
    /// Every quota limit set through the API.
    async fn quota_limits(&self) -> Result<Vec<(String, Option<i64>)>, StoreError>;
    /// Adds `delta` tokens to a credential's usage in `period`; returns the new total.
    async fn add_usage(&self, id: &str, period: &str, delta: i64) -> Result<i64, StoreError>;
    /// A credential's usage in `period` (0 when none).
    async fn usage(&self, id: &str, period: &str) -> Result<i64, StoreError>;
    /// Clears a credential's usage in `period`.
    async fn reset_usage(&self, id: &str, period: &str) -> Result<(), StoreError>;
}

/// Settled usage of one UTC day, virtual key, user, backend and model (a stored row, or a
/// report's sum: the columns a report does not group by are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The virtual key's public id; empty when the request used none.
    pub key_id: String,
    /// The user (an agent token's or JWT's user, a key's owner); empty when none.
    pub user_id: String,
    /// Backend name.
    pub backend: String,
    /// Upstream model name.
    pub model: String,
    /// Requests admitted.
    pub requests: i64,
    /// Input tokens (cached ones included).
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Input tokens read from the provider's cache.
    pub cached_input_tokens: i64,
    /// Spend in micro-dollars, priced by the configured table (0 when unpriced).
    pub cost_micros: i64,
}

/// The marks a usage flush writes with its rows: which usage-journal files (or, without a
/// journal, which flush) the rows cover, so that a restart finding such a file, or a flush that
/// retries after a failed commit, can tell the store already counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageBatches<'a> {
    /// Marks to record with the rows.
    pub applied: &'a [String],
    /// Marks an earlier flush recorded whose files are gone: dropped in the same transaction.
    pub forget: &'a [String],
    /// When (Unix seconds), for dropping marks their instance could not.
    pub at: i64,
}

/// Which usage rows a report reads: `None` matches any value; days are inclusive `YYYY-MM-DD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only this virtual key.
    pub key_id: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this backend.
    pub backend: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// From this day on.
    pub since: Option<String>,
    /// Up to this day.
    pub until: Option<String>,
}

/// What a usage report sums by (nothing: one total row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageGrouping {
    /// By day.
    pub day: bool,
    /// By virtual key.
    pub key: bool,
    /// By user.
    pub user: bool,
    /// By backend.
    pub backend: bool,
    /// By model.
    pub model: bool,
}

/// Whose spending a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSubject<'a> {
    /// A virtual key (by public id).
    Key(&'a str),
    /// A user (by id).
    User(&'a str),
}

/// What a key or user has spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSpent {
    /// Input + output tokens.
    pub tokens: u64,
    /// Micro-dollars.
    pub cost_micros: u64,
}

/// Settled usage per day, key, user, backend and model, added to by every instance: the baseline
/// of budgets after a restart, and the usage reports.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds each row's amounts to the stored row with its day, key, user, backend and model
    /// (created at zero), records `batches.applied` and drops the marks `batches.forget`: one
    /// transaction, all or nothing.
    async fn record_usage(
        &self,
        rows: &[UsageRow],
        batches: &UsageBatches<'_>,
    ) -> Result<(), StoreError>;
    /// Which of `ids` a [`UsageStore::record_usage`] recorded (and no one dropped since).
    async fn applied_usage_batches(&self, ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// Drops the marks `ids`, and every mark recorded before `recorded_before` (Unix seconds).
    async fn forget_usage_batches(
        &self,
        ids: &[String],
        recorded_before: i64,
    ) -> Result<(), StoreError>;
    /// What `subject` has spent from `since_day` (`YYYY-MM-DD`, inclusive) on.
    async fn usage_spent(
        &self,
        subject: UsageSubject<'_>,
        since_day: &str,
    ) -> Result<UsageSpent, StoreError>;
    /// The rows `filter` selects, summed by `group` (ungrouped columns empty), ordered by the
    /// grouped columns.
    async fn usage_report(
        &self,
        filter: &UsageFilter,
        group: UsageGrouping,
    ) -> Result<Vec<UsageRow>, StoreError>;
}

/// What the agent-token verifier reads: tokens, their owners, and the change counter.
pub trait TokenVerifierStore: AgentTokenStore + UserStore + RevisionStore {}

impl<T: AgentTokenStore + UserStore + RevisionStore + ?Sized> TokenVerifierStore for T {}

/// What the credential pool reads and writes: its credentials, quota limits and usage, and the
/// change counter it watches.
pub trait CredentialStore: PoolStore + RevisionStore {}

impl<T: PoolStore + RevisionStore + ?Sized> CredentialStore for T {}

/// What the OAuth2 token server reads: local accounts and service clients, its signing keys, and
/// whether a token's user is still enabled.
pub trait TokenServerStore: AccountStore + SigningKeyStore + UserStore {}

impl<T: AccountStore + SigningKeyStore + UserStore + ?Sized> TokenServerStore for T {}

/// What SSO reads and writes: login state, the users who log in and the agent tokens they get.
pub trait LoginStore: SsoStore + AgentTokenStore + UserStore {}

impl<T: SsoStore + AgentTokenStore + UserStore + ?Sized> LoginStore for T {}

/// What managing agent tokens reads and writes: the tokens and their owners (the management
/// API's token and user routes, the `tokens` commands).
pub trait TokenAdminStore: AgentTokenStore + UserStore {}

impl<T: AgentTokenStore + UserStore + ?Sized> TokenAdminStore for T {}

/// What the virtual-key verifier reads: keys, their owners (a disabled owner's keys are
/// refused), and the change counter.
pub trait KeyVerifierStore: VirtualKeyStore + UserStore + RevisionStore {}

impl<T: VirtualKeyStore + UserStore + RevisionStore + ?Sized> KeyVerifierStore for T {}

/// What managing virtual keys reads and writes: the keys and the users who may own them (the
/// management API's key routes, the `keys` commands).
pub trait KeyAdminStore: VirtualKeyStore + UserStore {}

impl<T: VirtualKeyStore + UserStore + ?Sized> KeyAdminStore for T {}

/// What managing the gateway's own users reads and writes: their rows and password hashes (the
/// `users` commands).
pub trait LocalUserStore: AccountStore + UserStore {}

impl<T: AccountStore + UserStore + ?Sized> LocalUserStore for T {}

/// Everything the gateway stores. Its consumers take the narrow views they need
/// ([`TokenVerifierStore`], [`TokenServerStore`], [`LoginStore`], [`CredentialStore`],
/// [`TokenAdminStore`], [`LocalUserStore`], [`KeyVerifierStore`], [`KeyAdminStore`], or one
/// aggregate trait); an `Arc<dyn Store>` coerces to any of them.
pub trait Store:
    UserStore
    + AgentTokenStore
    + VirtualKeyStore
    + SsoStore
    + AccountStore
    + SigningKeyStore
    + PoolStore
    + UsageStore
    + RevisionStore
    + StatusStore
    + TokenVerifierStore
    + CredentialStore
    + TokenServerStore
    + LoginStore
    + TokenAdminStore
    + LocalUserStore
    + KeyVerifierStore
    + KeyAdminStore
{
}

impl<
    T: UserStore
        + AgentTokenStore
        + VirtualKeyStore
        + SsoStore
        + AccountStore
        + SigningKeyStore
        + PoolStore
        + UsageStore
        + RevisionStore
        + StatusStore,
> Store for T
{
}
