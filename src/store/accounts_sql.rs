//! Local accounts on SQL ([`AccountStore`] for [`SqlStore`]): password hashes of local users and
//! the token server's service clients.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::migrate::Dialect;
use super::{AccountStore, OauthClient, SqlStore, StoreError, User};

fn client_from(r: &AnyRow) -> Result<OauthClient, sqlx::Error> {
    Ok(OauthClient {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn find_user(&self, provider: &str, subject: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id FROM users WHERE provider = $1 AND subject = $2")
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => {
                let id: String = r.try_get(0)?;
                super::UserStore::get_user(self, &id).await
            }
            None => Ok(None),
        }
    }

    async fn find_user_with_password(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.provider, u.subject, u.email, u.display_name, u.created_at, u.disabled, p.password_hash \
             FROM users u LEFT JOIN user_passwords p ON p.user_id = u.id WHERE u.provider = $1 AND u.subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user = User {
            id: r.try_get("id")?,
            provider: r.try_get("provider")?,
            subject: r.try_get("subject")?,
            email: r.try_get("email")?,
            display_name: r.try_get("display_name")?,
            created_at: r.try_get("created_at")?,
            disabled: r.try_get::<i64, _>("disabled")? != 0,
        };
        Ok(Some((user, r.try_get("password_hash")?)))
    }

    async fn set_password(&self, user_id: &str, hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_passwords (user_id, password_hash, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM user_passwords WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn insert_client(&self, c: &OauthClient) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, secret_hash, created_at, disabled) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(c.created_at)
        .bind(i64::from(c.disabled))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_client(&self, id: &str) -> Result<Option<OauthClient>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, secret_hash, created_at, disabled FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(client_from).transpose()?)
    }

    async fn list_clients(&self) -> Result<Vec<OauthClient>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, secret_hash, created_at, disabled FROM oauth_clients ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(client_from).collect::<Result<_, _>>()?)
    }

    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE oauth_clients SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl super::SigningKeyStore for SqlStore {
    async fn list_signing_keys(&self) -> Result<Vec<super::SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(super::SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    private_key: r.try_get("private_key")?,
                    public_key: r.try_get("public_key")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn insert_signing_key(&self, k: &super::SigningKeyRecord) -> Result<(), StoreError> {
        bind_key(
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6)",
            ),
            k,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_signing_key_if_none(
        &self,
        k: &super::SigningKeyRecord,
    ) -> Result<bool, StoreError> {
        // The check and the insert must not interleave with another instance's: SQLite takes
        // the database's write lock at `BEGIN IMMEDIATE`; PostgreSQL makes the writers of
        // `signing_keys` wait for each other (readers do not).
        let mut tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let done = bind_key(
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at, retired_at) SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
            ),
            k,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn retire_signing_keys_except(&self, keep: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn replace_private_key(&self, kid: &str, private_key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2")
            .bind(private_key)
            .bind(kid)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Binds a signing key's six columns, in table order, to `$1`…`$6` of `q`.
fn bind_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    k: &'q super::SigningKeyRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_key)
        .bind(&k.public_key)
        .bind(k.created_at)
        .bind(k.retired_at)
}
