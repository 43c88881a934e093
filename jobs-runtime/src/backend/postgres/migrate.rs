//! The embedded schema migrations, applied at connect.

use jobs_core::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

use super::options::{channel_name, quote_ident, quote_literal};

/// Embedded migrations, never edited once merged: (version, name, SQL with
/// `__SCHEMA__`/`__CHANNEL__` placeholders).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "claim_hints",
        include_str!("migrations/0002_claim_hints.sql"),
    ),
    (
        3,
        "lease_tokens",
        include_str!("migrations/0003_lease_tokens.sql"),
    ),
    (
        4,
        "control_and_limits",
        include_str!("migrations/0004_control_and_limits.sql"),
    ),
    (
        5,
        "job_counts",
        include_str!("migrations/0005_job_counts.sql"),
    ),
    (
        6,
        "throughput",
        include_str!("migrations/0006_throughput.sql"),
    ),
    (7, "listing", include_str!("migrations/0007_listing.sql")),
    (
        8,
        "status_off_path",
        include_str!("migrations/0008_status_off_path.sql"),
    ),
    (
        9,
        "workflows",
        include_str!("migrations/0009_workflows.sql"),
    ),
];

/// Advisory-lock class of the migration lock (`'jobs'` in ASCII); the other key is the schema's hash.
const MIGRATION_LOCK_CLASS: i32 = 0x6a6f_6273;

/// Applies the embedded migrations that `schema` lacks, under an advisory lock.
// Boxed with an explicit `Send` so callers' futures stay `Send` (sqlx's
// `Executor` impls trip the compiler's higher-ranked inference otherwise).
pub(super) fn migrate<'a>(
    options: &'a PgConnectOptions,
    schema: &'a str,
) -> BoxFuture<'a, std::result::Result<(), sqlx::Error>> {
    Box::pin(async move {
        // A connection of its own: closing it releases the session lock whatever happens.
        let mut conn = PgConnection::connect_with(options).await?;
        let result = migrate_locked(&mut conn, schema).await;
        let _ = conn.close().await;
        result
    })
}

fn migrate_locked<'a>(
    conn: &'a mut PgConnection,
    schema: &'a str,
) -> BoxFuture<'a, std::result::Result<(), sqlx::Error>> {
    Box::pin(async move {
        let s = quote_ident(schema);
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(MIGRATION_LOCK_CLASS)
            .bind(schema)
            .execute(&mut *conn)
            .await?;
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.jobs_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"
        );
        conn.execute(sqlx::raw_sql(&create)).await?;
        let applied: Vec<i32> = sqlx::query_scalar(&format!(
            "SELECT version FROM {s}.jobs_migrations ORDER BY version"
        ))
        .fetch_all(&mut *conn)
        .await?;
        if let Some(&newest) = applied.last() {
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if newest > known {
                tracing::warn!(
                    schema,
                    newest,
                    known,
                    "the jobs schema is newer than this binary; running anyway"
                );
            }
        }
        for &(version, name, sql) in MIGRATIONS {
            if applied.contains(&version) {
                continue;
            }
            let sql = sql
                .replace("__SCHEMA__", &s)
                .replace("__CHANNEL__", &quote_literal(&channel_name(schema)));
            // One transaction per migration: its DDL and its row in `jobs_migrations`.
            let sql = format!(
            "BEGIN;\n{sql};\nINSERT INTO {s}.jobs_migrations (version, name) VALUES ({version}, {});\nCOMMIT;",
            quote_literal(name)
        );
            if let Err(e) = conn.execute(sqlx::raw_sql(&sql)).await {
                let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
                return Err(e);
            }
            tracing::info!(schema, version, name, "applied jobs schema migration");
        }
        sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(MIGRATION_LOCK_CLASS)
            .bind(schema)
            .execute(&mut *conn)
            .await?;
        Ok(())
    })
}
