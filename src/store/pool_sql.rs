//! The credential pool on SQL ([`PoolStore`] for [`SqlStore`]): API-added credentials, quota
//! limits set through the API, and usage counters per credential and period. Credential changes
//! bump the store revision so every instance reloads them; usage is one upsert per flush.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{PoolStore, SqlStore, StoreError, StoredCredential};

fn credential_from(r: &AnyRow) -> Result<StoredCredential, sqlx::Error> {
    Ok(StoredCredential {
        id: r.try_get("id")?,
        provider: r.try_get("provider")?,
        kind: r.try_get("kind")?,
        secret: r.try_get("secret")?,
        priority: r.try_get("priority")?,
        quota_limit: r.try_get("quota_limit")?,
        label: r.try_get("label")?,
        oauth: r.try_get("oauth")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl PoolStore for SqlStore {
    async fn list_credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, provider, kind, secret, priority, quota_limit, label, oauth, expires_at, created_at, updated_at \
             FROM pool_credentials ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(credential_from).collect::<Result<_, _>>()?)
    }

    async fn insert_credential(&self, c: &StoredCredential) -> Result<(), StoreError> {
        self.change_with_revision(
            sqlx::query(
                "INSERT INTO pool_credentials (id, provider, kind, secret, priority, quota_limit, label, oauth, expires_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&c.id)
            .bind(&c.provider)
            .bind(&c.kind)
            .bind(&c.secret)
            .bind(c.priority)
            .bind(c.quota_limit)
            .bind(&c.label)
            .bind(&c.oauth)
            .bind(c.expires_at)
            .bind(c.created_at)
            .bind(c.updated_at),
        )
        .await?;
        Ok(())
    }

    async fn update_credential(
        &self,
        c: &StoredCredential,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        self.change_with_revision(
            sqlx::query(
                "UPDATE pool_credentials SET provider = $1, kind = $2, secret = $3, priority = $4, quota_limit = $5, \
                 label = $6, oauth = $7, expires_at = $8, updated_at = $9 WHERE id = $10 AND secret = $11",
            )
            .bind(&c.provider)
            .bind(&c.kind)
            .bind(&c.secret)
            .bind(c.priority)
            .bind(c.quota_limit)
            .bind(&c.label)
            .bind(&c.oauth)
            .bind(c.expires_at)
            .bind(c.updated_at)
            .bind(&c.id)
            .bind(expected_secret),
        )
        .await
    }

    async fn delete_credential(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM pool_credentials WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query("DELETE FROM pool_quota_limits WHERE credential_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM pool_usage WHERE credential_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE store_revision SET revision = revision + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if gone {
            self.changed();
        }
        Ok(gone)
    }

    async fn set_quota_limit(&self, id: &str, limit: Option<i64>) -> Result<(), StoreError> {
        let q = match limit {
            Some(_) => sqlx::query(
                "INSERT INTO pool_quota_limits (credential_id, quota_limit) VALUES ($1, $2) \
                 ON CONFLICT (credential_id) DO UPDATE SET quota_limit = excluded.quota_limit",
            )
            .bind(id)
            .bind(limit),
            None => sqlx::query("DELETE FROM pool_quota_limits WHERE credential_id = $1").bind(id),
        };
        self.change_with_revision(q).await?;
        Ok(())
    }

    async fn quota_limits(&self) -> Result<Vec<(String, Option<i64>)>, StoreError> {
        let rows = sqlx::query("SELECT credential_id, quota_limit FROM pool_quota_limits")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn add_usage(&self, id: &str, period: &str, delta: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO pool_usage (credential_id, period, used) VALUES ($1, $2, $3) \
             ON CONFLICT (credential_id, period) DO UPDATE SET used = pool_usage.used + excluded.used \
             RETURNING used",
        )
        .bind(id)
        .bind(period)
        .bind(delta)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn usage(&self, id: &str, period: &str) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT used FROM pool_usage WHERE credential_id = $1 AND period = $2")
                .bind(id)
                .bind(period)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    async fn reset_usage(&self, id: &str, period: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pool_usage WHERE credential_id = $1 AND period = $2")
            .bind(id)
            .bind(period)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
