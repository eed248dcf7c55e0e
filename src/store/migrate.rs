//! Embedded migrations, one directory per dialect, applied in order inside transactions and
//! recorded in `portcullis_migrations`. Applying is idempotent; a database that has a migration
//! this binary does not know is refused (it was written by a newer version).

use sqlx::{AnyPool, Row};

use super::StoreError;

/// The SQL dialect of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users_and_agent_tokens",
        sqlite: include_str!("../../migrations/sqlite/0001_users_and_agent_tokens.sql"),
        postgres: include_str!("../../migrations/postgres/0001_users_and_agent_tokens.sql"),
    },
    Migration {
        version: 2,
        name: "sso",
        sqlite: include_str!("../../migrations/sqlite/0002_sso.sql"),
        postgres: include_str!("../../migrations/postgres/0002_sso.sql"),
    },
    Migration {
        version: 3,
        name: "accounts",
        sqlite: include_str!("../../migrations/sqlite/0003_accounts.sql"),
        postgres: include_str!("../../migrations/postgres/0003_accounts.sql"),
    },
    Migration {
        version: 4,
        name: "credential_pool",
        sqlite: include_str!("../../migrations/sqlite/0004_credential_pool.sql"),
        postgres: include_str!("../../migrations/postgres/0004_credential_pool.sql"),
    },
    Migration {
        version: 5,
        name: "virtual_keys",
        sqlite: include_str!("../../migrations/sqlite/0005_virtual_keys.sql"),
        postgres: include_str!("../../migrations/postgres/0005_virtual_keys.sql"),
    },
    Migration {
        version: 6,
        name: "usage",
        sqlite: include_str!("../../migrations/sqlite/0006_usage.sql"),
        postgres: include_str!("../../migrations/postgres/0006_usage.sql"),
    },
];

/// Applies every migration not applied yet; returns how many ran.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<usize, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS portcullis_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> =
        sqlx::query("SELECT version FROM portcullis_migrations ORDER BY version")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(unknown) = applied.iter().find(|v| **v > newest_known) {
        return Err(StoreError::Migration {
            version: *unknown,
            message: "the database was migrated by a newer portcullis; upgrade this binary"
                .to_owned(),
        });
    }
    let mut ran = 0;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        let fail = |e: sqlx::Error| StoreError::Migration {
            version: m.version,
            message: e.to_string(),
        };
        let mut tx = pool.begin().await.map_err(fail)?;
        for statement in split_statements(sql) {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        sqlx::query(
            "INSERT INTO portcullis_migrations (version, name, applied_at) VALUES ($1, $2, 0)",
        )
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "store migration applied"
        );
        ran += 1;
    }
    Ok(ran)
}

/// Splits a migration file into statements (`;` at the end of a line; `--` comments dropped).
fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, line) in sql.split_inclusive('\n').scan(0, |pos, l| {
        let at = *pos;
        *pos += l.len();
        Some((at, l))
    }) {
        if line.trim_end().ends_with(';') {
            let stmt = sql[start..i + line.len()].trim();
            let stmt = stmt.trim_end_matches(';').trim();
            let has_code = stmt
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
            if has_code {
                out.push(stmt);
            }
            start = i + line.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_at_line_ends() {
        let s = split_statements(
            "-- c\nCREATE TABLE a (x TEXT);\nCREATE INDEX i ON a (x);\n\nINSERT INTO a VALUES ('a;b');\n",
        );
        assert_eq!(s.len(), 3);
        assert!(s[0].contains("CREATE TABLE a"));
        assert_eq!(s[2], "INSERT INTO a VALUES ('a;b')");
        assert_eq!(split_statements(MIGRATIONS[0].sqlite).len(), 5);
    }
}
