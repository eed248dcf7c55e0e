//! `SqlStore`: the store on SQLite or PostgreSQL through sqlx's `Any` driver (runtime queries with
//! `$n` placeholders, which both dialects accept).

use std::path::Path;
use std::sync::{Arc, Once, OnceLock};

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::migrate::{self, Dialect};
use super::{AgentTokenRecord, AgentTokenStore, AppliedMigration, StoreError, User, UserStore};

/// The store on a SQL database.
#[derive(Clone)]
pub struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    /// The URL without password and query.
    shown: Arc<str>,
    /// Called after a committed change that moved the revision.
    on_change: Arc<OnceLock<super::ChangeHook>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

static DRIVERS: Once = Once::new();

impl SqlStore {
    /// Opens (creating if needed) the SQLite database in `data_dir`.
    pub async fn open_sqlite(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open(&Self::prepare_sqlite(data_dir)?).await
    }

    /// The URL of the SQLite database in `data_dir`, after making sure only the gateway's user
    /// can read it: the directory `0700`, the database (created empty if missing) and its
    /// `-wal`/`-shm` files `0600` — before SQLite writes anything to them.
    pub fn prepare_sqlite(data_dir: &Path) -> Result<String, StoreError> {
        let file = data_dir.join("portcullis.db");
        let fail = |e: std::io::Error| StoreError::Open(format!("{}: {e}", data_dir.display()));
        super::private::private_dir(data_dir).map_err(fail)?;
        super::private::private_file(&file).map_err(fail)?;
        super::private::narrow_sqlite_files(&file).map_err(fail)?;
        Ok(format!("sqlite://{}?mode=rwc", file.display()))
    }

    /// Opens the configured store: `database_url` when set, else SQLite in `data_dir`.
    pub async fn open_configured(
        database_url: Option<&crate::secret::Secret>,
        data_dir: &Path,
    ) -> Result<Self, StoreError> {
        match database_url {
            Some(url) => Self::open(url.expose()).await,
            None => Self::open_sqlite(data_dir).await,
        }
    }

    /// Opens `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        migrate::run(&store.pool, store.dialect).await?;
        Ok(store)
    }

    /// Opens `url` without migrating (for `portcullis migrate`, which reports what it applied).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Open(
                "the database URL must start with sqlite:// or postgres://".to_owned(),
            ));
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(5))
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(url)
            .await
            .map_err(|e| StoreError::Open(redact_url(url, &e.to_string())))?;
        if let Some(file) = sqlite_file(url) {
            // A `sqlite://` URL outside the data directory: its files, at least, are private.
            super::private::narrow_sqlite_files(file)
                .map_err(|e| StoreError::Open(format!("{}: {e}", file.display())))?;
        }
        Ok(Self {
            pool,
            dialect,
            shown: crate::net::shown_url(url).into(),
            on_change: Arc::new(OnceLock::new()),
        })
    }

    /// Applies pending migrations (waiting while another instance does); returns those applied.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate::run(&self.pool, self.dialect).await
    }

    /// The migrations the database records as applied, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate::recorded(&mut *self.pool.acquire().await?).await
    }

    /// Closes every connection; later queries fail at once (shutdown, and tests of a store
    /// that went away).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one administrative statement (`CREATE DATABASE …`); for test set-up and tooling.
    pub async fn execute_admin(&self, statement: &str) -> Result<(), StoreError> {
        self.pool
            .execute(sqlx::AssertSqlSafe(statement.to_owned()))
            .await?;
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn dialect_name(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Runs `q` and, when it changed a row, bumps the revision in the same transaction, so other
    /// instances cannot miss a change that was made.
    pub(super) async fn change_with_revision(
        &self,
        q: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = q.execute(&mut *tx).await?.rows_affected() > 0;
        if changed {
            sqlx::query("UPDATE store_revision SET revision = revision + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if changed {
            self.changed();
        }
        Ok(changed)
    }

    /// Tells the change hook, if any, that the revision moved.
    pub(super) fn changed(&self) {
        if let Some(hook) = self.on_change.get() {
            hook();
        }
    }
}

/// The database file of a `sqlite:` URL (none for an in-memory database).
fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    (!path.is_empty() && path != ":memory:" && !query.contains("mode=memory"))
        .then(|| Path::new(path))
}

/// An error message without the URL's password.
fn redact_url(url: &str, message: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
    {
        Some((userinfo, _)) => message.replace(userinfo, "***"),
        None => message.to_owned(),
    }
}

fn user_from(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        provider: row.try_get("provider")?,
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn token_from(row: &AnyRow) -> Result<AgentTokenRecord, sqlx::Error> {
    Ok(AgentTokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        last_ip: row.try_get("last_ip")?,
        last_user_agent: row.try_get("last_user_agent")?,
        session_expires_at: row.try_get("session_expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Column lists as macros, so queries stay `&'static str` (sqlx refuses strings built at run time).
macro_rules! user_columns {
    () => {
        "id, provider, subject, email, display_name, created_at, disabled"
    };
}
macro_rules! token_columns {
    () => {
        "id, user_id, name, secret_hash, created_at, last_used_at, last_ip, last_user_agent, session_expires_at, revoked_at"
    };
}

#[async_trait]
impl UserStore for SqlStore {
    async fn upsert_user(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        now: i64,
    ) -> Result<User, StoreError> {
        let id = format!(
            "usr_{}",
            hex(&crate::secret::random_bytes::<8>()
                .map_err(|e| StoreError::Query(e.to_string()))?)
        );
        sqlx::query(
            "INSERT INTO users (id, provider, subject, email, display_name, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, 0) \
             ON CONFLICT (provider, subject) DO UPDATE SET email = COALESCE(excluded.email, users.email), display_name = COALESCE(excluded.display_name, users.display_name)",
        )
        .bind(&id)
        .bind(provider)
        .bind(subject)
        .bind(email)
        .bind(display_name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE provider = $1 AND subject = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_one(&self.pool)
        .await?;
        Ok(user_from(&row)?)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from).transpose()?)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_from).collect::<Result<_, _>>()?)
    }

    async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        self.change_with_revision(
            sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(i64::from(disabled))
                .bind(id),
        )
        .await
    }
}

#[async_trait]
impl AgentTokenStore for SqlStore {
    async fn insert_token(&self, t: &AgentTokenRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO agent_tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&t.id)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.last_used_at)
        .bind(t.last_ip.as_deref())
        .bind(t.last_user_agent.as_deref())
        .bind(t.session_expires_at)
        .bind(t.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<AgentTokenRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM agent_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from).transpose()?)
    }

    async fn list_tokens(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<AgentTokenRecord>, StoreError> {
        let rows = match user_id {
            Some(u) => {
                sqlx::query(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM agent_tokens WHERE user_id = $1 ORDER BY created_at DESC, id"
                ))
                .bind(u)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM agent_tokens ORDER BY created_at DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.iter().map(token_from).collect::<Result<_, _>>()?)
    }

    async fn rename_token(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agent_tokens SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.change_with_revision(
            sqlx::query(
                "UPDATE agent_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id),
        )
        .await
    }

    async fn touch_token(
        &self,
        id: &str,
        now: i64,
        ip: &str,
        user_agent: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE agent_tokens SET last_used_at = $1, last_ip = $2, last_user_agent = $3 WHERE id = $4")
            .bind(now)
            .bind(ip)
            .bind(user_agent)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_session_expiry(
        &self,
        id: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.change_with_revision(
            sqlx::query("UPDATE agent_tokens SET session_expires_at = $1 WHERE id = $2")
                .bind(expires_at)
                .bind(id),
        )
        .await
    }
}

#[async_trait]
impl super::RevisionStore for SqlStore {
    async fn revision(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT revision FROM store_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    fn on_change(&self, hook: super::ChangeHook) {
        let _ = self.on_change.set(hook);
    }
}

#[async_trait]
impl super::StatusStore for SqlStore {
    fn kind(&self) -> &'static str {
        self.dialect_name()
    }

    fn shown_url(&self) -> &str {
        &self.shown
    }

    async fn check(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *conn).await?;
        migrate::recorded(&mut conn).await
    }
}

use super::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_connection_errors() {
        let msg = redact_url(
            "postgres://app:hunter2@db:5432/x",
            "error connecting to app:hunter2@db",
        );
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn the_file_of_a_sqlite_url_is_found_and_memory_has_none() {
        let f = |u| sqlite_file(u).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            f("sqlite:///var/lib/p.db?mode=rwc").as_deref(),
            Some("/var/lib/p.db")
        );
        assert_eq!(f("sqlite://rel/p.db").as_deref(), Some("rel/p.db"));
        assert_eq!(f("sqlite:p.db").as_deref(), Some("p.db"));
        for none in [
            "sqlite::memory:",
            "sqlite://x?mode=memory",
            "postgres://h/db",
        ] {
            assert_eq!(f(none), None, "{none}");
        }
    }
}
