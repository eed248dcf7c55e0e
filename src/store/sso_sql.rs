//! The SSO aggregates on SQL ([`SsoStore`] for [`SqlStore`]). Single-use reads are
//! `DELETE … RETURNING` and attempt counting is one conditional `UPDATE … RETURNING`, so two
//! instances racing on the same row cannot both win.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{LoginFlow, PendingAuthorization, SqlStore, SsoStore, StoreError, WebSession};

macro_rules! flow_columns {
    () => {
        "state_hash, browser_hash, provider, pkce_verifier, nonce, bound_token_id, client_ip, created_at, expires_at"
    };
}
macro_rules! pending_columns {
    () => {
        "id_hash, user_id, provider, bound_token_id, code_hash, attempts_left, client_ip, created_at, expires_at"
    };
}

fn flow_from(r: &AnyRow) -> Result<LoginFlow, sqlx::Error> {
    Ok(LoginFlow {
        state_hash: r.try_get("state_hash")?,
        browser_hash: r.try_get("browser_hash")?,
        provider: r.try_get("provider")?,
        pkce_verifier: r.try_get("pkce_verifier")?,
        nonce: r.try_get("nonce")?,
        bound_token_id: r.try_get("bound_token_id")?,
        client_ip: r.try_get("client_ip")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn pending_from(r: &AnyRow) -> Result<PendingAuthorization, sqlx::Error> {
    Ok(PendingAuthorization {
        id_hash: r.try_get("id_hash")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        bound_token_id: r.try_get("bound_token_id")?,
        code_hash: r.try_get("code_hash")?,
        attempts_left: r.try_get("attempts_left")?,
        client_ip: r.try_get("client_ip")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

#[async_trait]
impl SsoStore for SqlStore {
    async fn shared_secret(
        &self,
        name: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO gateway_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM gateway_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn list_shared_secrets(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, value FROM gateway_secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn replace_shared_secret(
        &self,
        name: &str,
        expected: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE gateway_secrets SET value = $1 WHERE name = $2 AND value = $3")
                .bind(value)
                .bind(name)
                .bind(expected)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn consume_login_link(&self, id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sso_used_login_links (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_login_flow(&self, f: &LoginFlow) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sso_login_flows (",
            flow_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&f.state_hash)
        .bind(&f.browser_hash)
        .bind(&f.provider)
        .bind(&f.pkce_verifier)
        .bind(&f.nonce)
        .bind(f.bound_token_id.as_deref())
        .bind(f.client_ip.as_deref())
        .bind(f.created_at)
        .bind(f.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_login_flow(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<LoginFlow>, StoreError> {
        let row = sqlx::query(concat!(
            "DELETE FROM sso_login_flows WHERE state_hash = $1 RETURNING ",
            flow_columns!()
        ))
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let flow = row.as_ref().map(flow_from).transpose()?;
        Ok(flow.filter(|f| f.expires_at > now))
    }

    async fn insert_pending(&self, p: &PendingAuthorization) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sso_pending_authorizations (",
            pending_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&p.id_hash)
        .bind(&p.user_id)
        .bind(&p.provider)
        .bind(p.bound_token_id.as_deref())
        .bind(&p.code_hash)
        .bind(p.attempts_left)
        .bind(p.client_ip.as_deref())
        .bind(p.created_at)
        .bind(p.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_pending(&self, id_hash: &str) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            pending_columns!(),
            " FROM sso_pending_authorizations WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(pending_from).transpose()?)
    }

    async fn spend_attempt(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE sso_pending_authorizations SET attempts_left = attempts_left - 1 \
             WHERE id_hash = $1 AND attempts_left > 0 AND expires_at > $2 RETURNING ",
            pending_columns!()
        ))
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(pending_from).transpose()?)
    }

    async fn take_pending(
        &self,
        id_hash: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let row = sqlx::query(concat!(
            "DELETE FROM sso_pending_authorizations WHERE id_hash = $1 RETURNING ",
            pending_columns!()
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(pending_from).transpose()?)
    }

    async fn insert_web_session(&self, s: &WebSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_web_sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_web_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, created_at, expires_at FROM sso_web_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(WebSession {
            id_hash: r.try_get("id_hash")?,
            user_id: r.try_get("user_id")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }

    async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sso_web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired_sso(&self, now: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for q in [
            "DELETE FROM sso_used_login_links WHERE expires_at <= $1",
            "DELETE FROM sso_login_flows WHERE expires_at <= $1",
            "DELETE FROM sso_pending_authorizations WHERE expires_at <= $1",
            "DELETE FROM sso_web_sessions WHERE expires_at <= $1",
        ] {
            n += sqlx::query(q)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}
