//! Virtual keys on SQL ([`VirtualKeyStore`] for [`SqlStore`]): one row per key, looked up by its
//! primary key; the rules are stored as the JSON of [`Rules`]. Revocations and updates bump the
//! store revision in the same transaction.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{KeyUpdate, SqlStore, StoreError, VirtualKeyRecord, VirtualKeyStore};
use crate::rules::Rules;

/// The column list, as a macro so queries stay `&'static str`.
macro_rules! key_columns {
    () => {
        "id, name, owner, secret_hash, rules, created_at, updated_at, expires_at, revoked_at"
    };
}

fn rules_json(rules: &Rules) -> Result<String, StoreError> {
    serde_json::to_string(rules).map_err(|e| StoreError::Query(format!("rules: {e}")))
}

fn key_from(row: &AnyRow) -> Result<VirtualKeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let rules: String = row.try_get("rules")?;
    let rules = serde_json::from_str(&rules).map_err(|e| {
        StoreError::Query(format!(
            "virtual key {id}: stored rules are unreadable: {e}"
        ))
    })?;
    Ok(VirtualKeyRecord {
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        secret_hash: row.try_get("secret_hash")?,
        rules,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        id,
    })
}

#[async_trait]
impl VirtualKeyStore for SqlStore {
    async fn insert_key(&self, k: &VirtualKeyRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO virtual_keys (",
            key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.owner.as_deref())
        .bind(&k.secret_hash)
        .bind(rules_json(&k.rules)?)
        .bind(k.created_at)
        .bind(k.updated_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_key(&self, id: &str) -> Result<Option<VirtualKeyRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM virtual_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from).transpose()
    }

    async fn list_keys(&self, owner: Option<&str>) -> Result<Vec<VirtualKeyRecord>, StoreError> {
        let rows = match owner {
            Some(o) => {
                sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM virtual_keys WHERE owner = $1 ORDER BY created_at DESC, id"
                ))
                .bind(o)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    key_columns!(),
                    " FROM virtual_keys ORDER BY created_at DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(key_from).collect()
    }

    async fn update_key(&self, id: &str, change: &KeyUpdate, now: i64) -> Result<bool, StoreError> {
        let rules = change.rules.as_ref().map(rules_json).transpose()?;
        self.change_with_revision(
            sqlx::query(
                "UPDATE virtual_keys SET name = COALESCE($1, name), \
                 expires_at = CASE WHEN $2 = 1 THEN $3 ELSE expires_at END, \
                 rules = COALESCE($4, rules), updated_at = $5 WHERE id = $6",
            )
            .bind(change.name.as_deref())
            .bind(i64::from(change.expires_at.is_some()))
            .bind(change.expires_at.flatten())
            .bind(rules)
            .bind(now)
            .bind(id),
        )
        .await
    }

    async fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.change_with_revision(
            sqlx::query(
                "UPDATE virtual_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id),
        )
        .await
    }
}
