//! Settled usage on SQL ([`UsageStore`] for [`SqlStore`]): one `usage_daily` row per UTC day,
//! virtual key, user, backend and model, added to with an upsert-add (every instance writes the
//! same rows), summed for budget baselines and reports. The report groups by whichever columns
//! it is asked to with one fixed query: a column left out is replaced by `''` before grouping.
//! With the rows, in their transaction, go the marks of the usage-journal files they cover
//! (`usage_batches`).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    SqlStore, StoreError, UsageBatches, UsageFilter, UsageGrouping, UsageRow, UsageSpent,
    UsageStore, UsageSubject,
};

fn row_from(r: &AnyRow) -> Result<UsageRow, sqlx::Error> {
    Ok(UsageRow {
        day: r.try_get(0)?,
        key_id: r.try_get(1)?,
        user_id: r.try_get(2)?,
        backend: r.try_get(3)?,
        model: r.try_get(4)?,
        requests: r.try_get(5)?,
        input_tokens: r.try_get(6)?,
        output_tokens: r.try_get(7)?,
        cached_input_tokens: r.try_get(8)?,
        cost_micros: r.try_get(9)?,
    })
}

/// `(1, value)` to filter on `value`, `(0, "")` to match any.
fn wanted(v: &Option<String>) -> (i64, &str) {
    match v {
        Some(v) => (1, v.as_str()),
        None => (0, ""),
    }
}

/// Deletes the marks `ids` in `tx`.
async fn drop_marks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    for id in ids {
        sqlx::query("DELETE FROM usage_batches WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl UsageStore for SqlStore {
    async fn record_usage(
        &self,
        rows: &[UsageRow],
        batches: &UsageBatches<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for id in batches.applied {
            sqlx::query("INSERT INTO usage_batches (id, recorded_at) VALUES ($1, $2)")
                .bind(id)
                .bind(batches.at)
                .execute(&mut *tx)
                .await?;
        }
        drop_marks(&mut tx, batches.forget).await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO usage_daily (day, key_id, user_id, backend, model, requests, input_tokens, output_tokens, cached_input_tokens, cost_micros) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (day, key_id, user_id, backend, model) DO UPDATE SET \
                 requests = usage_daily.requests + excluded.requests, \
                 input_tokens = usage_daily.input_tokens + excluded.input_tokens, \
                 output_tokens = usage_daily.output_tokens + excluded.output_tokens, \
                 cached_input_tokens = usage_daily.cached_input_tokens + excluded.cached_input_tokens, \
                 cost_micros = usage_daily.cost_micros + excluded.cost_micros",
            )
            .bind(&r.day)
            .bind(&r.key_id)
            .bind(&r.user_id)
            .bind(&r.backend)
            .bind(&r.model)
            .bind(r.requests)
            .bind(r.input_tokens)
            .bind(r.output_tokens)
            .bind(r.cached_input_tokens)
            .bind(r.cost_micros)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn applied_usage_batches(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for id in ids {
            let row = sqlx::query("SELECT id FROM usage_batches WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if row.is_some() {
                found.push(id.clone());
            }
        }
        Ok(found)
    }

    async fn forget_usage_batches(
        &self,
        ids: &[String],
        recorded_before: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        drop_marks(&mut tx, ids).await?;
        sqlx::query("DELETE FROM usage_batches WHERE recorded_at < $1")
            .bind(recorded_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn usage_spent(
        &self,
        subject: UsageSubject<'_>,
        since_day: &str,
    ) -> Result<UsageSpent, StoreError> {
        let (query, id) = match subject {
            UsageSubject::Key(id) => (
                "SELECT CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) \
                 FROM usage_daily WHERE key_id = $1 AND day >= $2",
                id,
            ),
            UsageSubject::User(id) => (
                "SELECT CAST(COALESCE(SUM(input_tokens + output_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) \
                 FROM usage_daily WHERE user_id = $1 AND day >= $2",
                id,
            ),
        };
        let row = sqlx::query(query)
            .bind(id)
            .bind(since_day)
            .fetch_one(&self.pool)
            .await?;
        let tokens: i64 = row.try_get(0)?;
        let cost: i64 = row.try_get(1)?;
        Ok(UsageSpent {
            tokens: tokens.max(0) as u64,
            cost_micros: cost.max(0) as u64,
        })
    }

    async fn usage_report(
        &self,
        filter: &UsageFilter,
        group: UsageGrouping,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let (by_key, key) = wanted(&filter.key_id);
        let (by_user, user) = wanted(&filter.user_id);
        let (by_backend, backend) = wanted(&filter.backend);
        let (by_model, model) = wanted(&filter.model);
        let rows = sqlx::query(
            "SELECT CASE WHEN $1 = 1 THEN day ELSE '' END, CASE WHEN $2 = 1 THEN key_id ELSE '' END, \
             CASE WHEN $3 = 1 THEN user_id ELSE '' END, CASE WHEN $4 = 1 THEN backend ELSE '' END, \
             CASE WHEN $5 = 1 THEN model ELSE '' END, \
             CAST(SUM(requests) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), \
             CAST(SUM(cached_input_tokens) AS BIGINT), CAST(SUM(cost_micros) AS BIGINT) \
             FROM usage_daily \
             WHERE ($6 = 0 OR key_id = $7) AND ($8 = 0 OR user_id = $9) AND ($10 = 0 OR backend = $11) \
             AND ($12 = 0 OR model = $13) AND day >= $14 AND day <= $15 \
             GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
        )
        .bind(i64::from(group.day))
        .bind(i64::from(group.key))
        .bind(i64::from(group.user))
        .bind(i64::from(group.backend))
        .bind(i64::from(group.model))
        .bind(by_key)
        .bind(key)
        .bind(by_user)
        .bind(user)
        .bind(by_backend)
        .bind(backend)
        .bind(by_model)
        .bind(model)
        .bind(filter.since.as_deref().unwrap_or(""))
        .bind(filter.until.as_deref().unwrap_or("9999-12-31"))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }
}
