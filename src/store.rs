//! The store: durable state behind narrow traits, one per aggregate — users and agent tokens
//! today; SSO sessions, login state and pending authorizations join the same way.
//!
//! One implementation ([`sql::SqlStore`]) serves both databases through sqlx's `Any` driver:
//! SQLite (the embedded default, a file in `--data-dir`, WAL) and PostgreSQL
//! (`--database-url postgres://…`). Dialect differences live in the per-dialect migrations
//! (`migrations/{sqlite,postgres}`), applied at start and by `portcullis migrate`. SQL never
//! leaves this module; callers see domain types. Times are milliseconds since the epoch, passed
//! in by the caller (time is a parameter).

mod migrate;
pub mod sql;

use async_trait::async_trait;

pub use sql::SqlStore;

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
    /// A number that grows with every change running instances must see (revocations, renames).
    async fn revision(&self) -> Result<i64, StoreError>;
}

/// Everything the gateway stores.
pub trait Store: UserStore + AgentTokenStore {}

impl<T: UserStore + AgentTokenStore> Store for T {}
