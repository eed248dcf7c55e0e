//! The administrative commands that work on the store: `portcullis migrate`,
//! `portcullis tokens list|revoke|rename|issue`, ([`keys`]) `keys`, and ([`accounts`]) `users`
//! and `clients`. They print for people (or JSON lines with `--json`) and never print a secret
//! except the one new token `issue` (or key `keys create`) exists to show.

pub mod accounts;
pub mod auths;
pub mod keys;
pub mod usage;

use std::fmt::Write as _;
use std::sync::Arc;

use crate::cli::TokensCommand;
use crate::clock::{Clock, iso8601};
use crate::config::Config;
use crate::identity::agent_token::{self, display_id, id_from_argument, token_status, token_view};
use crate::identity::virtual_key::manage::KeyError;
use crate::store::{AgentTokenRecord, SqlStore, StoreError, TokenAdminStore, User};

/// Opens the configured store: `storage.database_url`, else SQLite in `storage.data_dir`.
async fn open_store(storage: &crate::config::StorageConfig) -> Result<SqlStore, StoreError> {
    SqlStore::open_configured(storage.database_url.as_ref(), &storage.data_dir).await
}

/// Why an administrative command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing has that id.
    #[error("no agent token with id {0} (`portcullis tokens list` shows the ids)")]
    NoSuchToken(String),
    /// Nothing has that name.
    #[error("no user {0} (`portcullis users list` shows them)")]
    NoSuchUser(String),
    /// The operating system failed (randomness, hashing thread).
    #[error("{0}")]
    Io(String),
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Refused(String),
    /// A virtual-key operation was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The user a command-line argument names: a user id, or a subject (username) or email.
fn find_user<'a>(users: &'a [User], arg: &str) -> Result<&'a User, AdminError> {
    users
        .iter()
        .find(|u| u.id == arg || u.subject == arg || u.email.as_deref() == Some(arg))
        .ok_or_else(|| AdminError::NoSuchUser(arg.to_owned()))
}

/// How a user appears in listings: their email, else their subject, else the id given.
fn user_label(users: &[User], id: &str) -> String {
    users
        .iter()
        .find(|u| u.id == id)
        .map(|u| u.owner_label().to_owned())
        .unwrap_or_else(|| id.to_owned())
}

/// A time in a table: `2027-01-31 18:00:00` (UTC), or `-`.
fn time(t: Option<i64>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |ms| iso8601(ms.max(0) as u64)[..19].replace('T', " "),
    )
}

/// Where the configured store is, for people: the SQLite file, or "the PostgreSQL database".
fn store_location(config: &Config) -> String {
    match &config.storage.database_url {
        Some(_) => "the PostgreSQL database".to_owned(),
        None => config.storage.sqlite_file().display().to_string(),
    }
}

/// `portcullis migrate`: applies pending migrations and says what it did.
pub async fn migrate(config: &Config) -> Result<String, AdminError> {
    let store = match &config.storage.database_url {
        Some(url) => SqlStore::connect(url.expose()).await?,
        None => SqlStore::connect(&SqlStore::prepare_sqlite(&config.storage.data_dir)?).await?,
    };
    let applied = store.migrate().await?;
    let mut out = format!(
        "applied {} migration(s) to {} ({}); the store is up to date\n",
        applied.len(),
        store_location(config),
        store.dialect_name()
    );
    for m in &applied {
        out.push_str(&format!("  {:04}_{}\n", m.version, m.name));
    }
    Ok(out)
}

/// `portcullis tokens …`
pub async fn tokens(
    config: &Config,
    clock: &dyn Clock,
    action: &TokensCommand,
) -> Result<String, AdminError> {
    let store: Arc<dyn TokenAdminStore> = Arc::new(open_store(&config.storage).await?);
    let now = clock.now_millis() as i64;
    match action {
        TokensCommand::List { user, json } => {
            list(store.as_ref(), user.as_deref(), *json, now).await
        }
        TokensCommand::Revoke { id } => {
            let id = id_from_argument(id).map_err(AdminError::Refused)?;
            if store.revoke_token(id, now).await? {
                Ok(format!("revoked {}\n", display_id(id)))
            } else {
                match store.get_token(id).await? {
                    Some(_) => Ok(format!("{} was already revoked\n", display_id(id))),
                    None => Err(AdminError::NoSuchToken(display_id(id))),
                }
            }
        }
        TokensCommand::Rename { id, name } => {
            let id = id_from_argument(id).map_err(AdminError::Refused)?;
            if store.rename_token(id, name).await? {
                Ok(format!("renamed {} to {name:?}\n", display_id(id)))
            } else {
                Err(AdminError::NoSuchToken(display_id(id)))
            }
        }
        TokensCommand::Issue {
            user,
            name,
            session_hours,
        } => {
            let email = user.contains('@').then_some(user.as_str());
            let owner = store.upsert_user("admin", user, email, None, now).await?;
            let minted = tokio::task::spawn_blocking(agent_token::mint)
                .await
                .map_err(|e| AdminError::Io(e.to_string()))?
                .map_err(|e| AdminError::Io(e.to_string()))?;
            let session_expires_at = session_hours.map(|h| now + (h as i64) * 3_600_000);
            store
                .insert_token(&AgentTokenRecord {
                    id: minted.id.clone(),
                    user_id: owner.id.clone(),
                    name: name.clone(),
                    secret_hash: minted.secret_hash,
                    created_at: now,
                    last_used_at: None,
                    last_ip: None,
                    last_user_agent: None,
                    session_expires_at,
                    revoked_at: None,
                })
                .await?;
            Ok(format!(
                "issued {} for {} ({}), device {name:?}{}\n\n  {}\n\nThis is the only time the token is shown. Use it as the API key (Authorization: Bearer …).\n",
                display_id(&minted.id),
                user,
                owner.id,
                session_expires_at.map_or_else(String::new, |t| format!(
                    ", session until {}",
                    iso8601(t as u64)
                )),
                minted.token.expose(),
            ))
        }
    }
}

async fn list(
    store: &dyn TokenAdminStore,
    user: Option<&str>,
    as_json: bool,
    now: i64,
) -> Result<String, AdminError> {
    let users = store.list_users().await?;
    let owner = match user {
        Some(u) => Some(find_user(&users, u)?.id.clone()),
        None => None,
    };
    let tokens = store.list_tokens(owner.as_deref()).await?;
    let who = |id: &str| user_label(&users, id);
    let mut out = String::new();
    if as_json {
        for t in &tokens {
            let _ = writeln!(out, "{}", token_view(t, &who(&t.user_id), now));
        }
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<20} {:<24} {:<16} {:<19} {:<19} {:<15} {:<19} {:<15} USER AGENT",
        "ID", "USER", "DEVICE", "CREATED", "LAST USED", "LAST IP", "SESSION ENDS", "STATUS"
    );
    for t in &tokens {
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:<16} {:<19} {:<19} {:<15} {:<19} {:<15} {}",
            display_id(&t.id),
            who(&t.user_id),
            t.name,
            time(Some(t.created_at)),
            time(t.last_used_at),
            t.last_ip.as_deref().unwrap_or("-"),
            time(t.session_expires_at),
            token_status(t, now),
            t.last_user_agent.as_deref().unwrap_or("-"),
        );
    }
    if tokens.is_empty() {
        out.push_str("(no agent tokens)\n");
    }
    Ok(out)
}
