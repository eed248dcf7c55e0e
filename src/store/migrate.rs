//! Embedded migrations, one directory per dialect, applied in order and recorded — with a BLAKE3
//! checksum of their SQL — in `portcullis_migrations`. Applying is idempotent and safe for many
//! instances starting at once on one database: on PostgreSQL a run holds a session-level
//! advisory lock ([`MIGRATION_LOCK_KEY`]) on one dedicated connection, each migration in a
//! transaction of its own; on SQLite a run is one `BEGIN IMMEDIATE` transaction. Whoever waits
//! finds the work done. Refused, naming the migration: a database with a migration this binary
//! does not know (written by a newer version), and an applied migration whose recorded checksum
//! is not the embedded one (edited after release). Rows of older binaries, which recorded no
//! checksum, get the embedded one.

use sqlx::{AnyConnection, AnyPool, Connection as _, Row};

use super::StoreError;

/// The SQL dialect of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The PostgreSQL advisory lock a migration run holds (`portcull` in ASCII; `pg_locks` shows it
/// as `classid` 1886351988, `objid` 1668639852).
pub const MIGRATION_LOCK_KEY: i64 = 0x706f_7274_6375_6c6c;

/// A migration recorded in `portcullis_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Migration number.
    pub version: i64,
    /// Its name (the file name after the number).
    pub name: String,
    /// BLAKE3 (hex) of its SQL as applied; `None` only before a run of this binary filled it.
    pub checksum: Option<String>,
}

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
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
    Migration {
        version: 7,
        name: "usage_batches",
        sqlite: include_str!("../../migrations/sqlite/0007_usage_batches.sql"),
        postgres: include_str!("../../migrations/postgres/0007_usage_batches.sql"),
    },
];

/// The migrations this binary ships, `(number, name)` in order (`/internal/health` compares
/// the database's with them).
pub fn shipped() -> impl ExactSizeIterator<Item = (i64, &'static str)> {
    MIGRATIONS.iter().map(|m| (m.version, m.name))
}

/// The checksum recorded for a migration's SQL: BLAKE3 (hex) of the text with `\r\n` read as
/// `\n`, so a checkout's line endings do not make a migration "edited".
fn checksum(sql: &str) -> String {
    super::hex(blake3::hash(sql.replace("\r\n", "\n").as_bytes()).as_bytes())
}

/// Applies every migration not applied yet, under the dialect's lock; returns those it applied.
pub(crate) async fn run(
    pool: &AnyPool,
    dialect: Dialect,
) -> Result<Vec<AppliedMigration>, StoreError> {
    let mut conn = pool.acquire().await?;
    match dialect {
        Dialect::Postgres => {
            // Closed after the run instead of going back to the pool: a run that fails or is
            // cancelled cannot leave a pooled session holding the lock.
            conn.close_on_drop();
            lock(&mut conn).await?;
            let applied = migrate_locked(&mut conn, dialect).await;
            if let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *conn)
                .await
            {
                tracing::warn!(error = %e, "could not release the migration lock; it goes with its connection");
            }
            applied
        }
        Dialect::Sqlite => {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let applied = migrate_locked(&mut tx, dialect).await?;
            tx.commit().await?;
            Ok(applied)
        }
    }
}

/// Takes the migration lock on `conn`'s session, saying so when another instance holds it.
async fn lock(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let taken: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    if !taken {
        tracing::info!("another instance is migrating the store; waiting for it to finish");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The run itself, on a connection that holds the lock (SQLite: inside the run's transaction).
async fn migrate_locked(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<Vec<AppliedMigration>, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS portcullis_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL, checksum TEXT)",
    )
    .execute(&mut *conn)
    .await?;
    add_checksum_column(conn, dialect).await?;
    let recorded = recorded(conn).await?;
    check(&recorded, dialect)?;
    fill_checksums(conn, dialect, &recorded).await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS
        .iter()
        .filter(|m| !recorded.iter().any(|r| r.version == m.version))
    {
        applied.push(apply(conn, dialect, m).await?);
    }
    Ok(applied)
}

/// Adds the `checksum` column to a table made by a binary that did not record one.
async fn add_checksum_column(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), StoreError> {
    let present = match dialect {
        Dialect::Sqlite => sqlx::query(
            "SELECT COUNT(*) FROM pragma_table_info('portcullis_migrations') WHERE name = 'checksum'",
        ),
        Dialect::Postgres => sqlx::query(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'portcullis_migrations' AND column_name = 'checksum'",
        ),
    };
    let present: i64 = present.fetch_one(&mut *conn).await?.try_get(0)?;
    if present == 0 {
        sqlx::query("ALTER TABLE portcullis_migrations ADD COLUMN checksum TEXT")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The migrations `portcullis_migrations` records, in order.
pub(crate) async fn recorded(
    conn: &mut AnyConnection,
) -> Result<Vec<AppliedMigration>, StoreError> {
    sqlx::query("SELECT version, name, checksum FROM portcullis_migrations ORDER BY version")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(AppliedMigration {
                version: r.try_get(0)?,
                name: r.try_get(1)?,
                checksum: r.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Refuses a database migrated by a newer binary, and one whose applied migration was edited
/// since (its recorded checksum is not the embedded SQL's).
fn check(recorded: &[AppliedMigration], dialect: Dialect) -> Result<(), StoreError> {
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(unknown) = recorded.iter().find(|r| r.version > newest_known) {
        return Err(StoreError::Migration {
            version: unknown.version,
            message: "the database was migrated by a newer portcullis; upgrade this binary"
                .to_owned(),
        });
    }
    for r in recorded {
        let (Some(m), Some(found)) = (known(r.version), &r.checksum) else {
            continue;
        };
        let embedded = checksum(m.sql(dialect));
        if *found != embedded {
            return Err(StoreError::MigrationEdited {
                version: m.version,
                name: m.name.to_owned(),
                recorded: found.clone(),
                embedded,
            });
        }
    }
    Ok(())
}

fn known(version: i64) -> Option<&'static Migration> {
    MIGRATIONS.iter().find(|m| m.version == version)
}

/// Records the embedded checksum of migrations an older binary applied without one.
async fn fill_checksums(
    conn: &mut AnyConnection,
    dialect: Dialect,
    recorded: &[AppliedMigration],
) -> Result<(), StoreError> {
    let mut filled = 0;
    for m in recorded
        .iter()
        .filter(|r| r.checksum.is_none())
        .filter_map(|r| known(r.version))
    {
        filled += sqlx::query(
            "UPDATE portcullis_migrations SET checksum = $1 WHERE version = $2 AND checksum IS NULL",
        )
        .bind(checksum(m.sql(dialect)))
        .bind(m.version)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    if filled > 0 {
        tracing::info!(
            migrations = filled,
            "recorded the checksums of migrations applied by an older portcullis"
        );
    }
    Ok(())
}

/// Applies `m` and records it, in a transaction of its own (SQLite: a savepoint in the run's).
async fn apply(
    conn: &mut AnyConnection,
    dialect: Dialect,
    m: &Migration,
) -> Result<AppliedMigration, StoreError> {
    let fail = |e: sqlx::Error| StoreError::Migration {
        version: m.version,
        message: e.to_string(),
    };
    let sql = m.sql(dialect);
    let sum = checksum(sql);
    let mut tx = conn.begin().await.map_err(fail)?;
    for statement in split_statements(sql) {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    sqlx::query(
        "INSERT INTO portcullis_migrations (version, name, applied_at, checksum) VALUES ($1, $2, 0, $3)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(&sum)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    tracing::info!(
        version = m.version,
        name = m.name,
        "store migration applied"
    );
    Ok(AppliedMigration {
        version: m.version,
        name: m.name.to_owned(),
        checksum: Some(sum),
    })
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

    fn recorded(version: i64, checksum: Option<&str>) -> AppliedMigration {
        AppliedMigration {
            version,
            name: String::new(),
            checksum: checksum.map(str::to_owned),
        }
    }

    #[test]
    fn checksums_are_checked_and_ignore_line_endings() {
        assert_eq!(checksum("A;\r\nB;\r\n"), checksum("A;\nB;\n"));
        assert_ne!(checksum("A;\n"), checksum("A; \n"));
        let sso = checksum(MIGRATIONS[1].sql(Dialect::Postgres));
        assert_eq!(sso.len(), 64);
        let ok = [recorded(1, None), recorded(2, Some(&sso))];
        assert!(
            check(&ok, Dialect::Postgres).is_ok(),
            "no checksum yet: filled later"
        );
        match check(&[recorded(2, Some("e0"))], Dialect::Postgres) {
            Err(StoreError::MigrationEdited {
                version: 2,
                name,
                recorded,
                embedded,
            }) => assert_eq!(
                (name.as_str(), recorded.as_str(), embedded),
                ("sso", "e0", sso)
            ),
            other => panic!("{other:?}"),
        }
        let newer = [
            recorded(1, None),
            recorded(MIGRATIONS.len() as i64 + 1, None),
        ];
        assert!(matches!(
            check(&newer, Dialect::Sqlite),
            Err(StoreError::Migration { .. })
        ));
    }
}
