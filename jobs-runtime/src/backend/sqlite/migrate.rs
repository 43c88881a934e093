//! The schema: embedded, versioned migrations, each applied once per database.

use sqlx::{Connection, Executor, SqliteConnection};

use super::time::now_micros;

/// Embedded migrations, applied in order; each version runs once per database.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/001_init.sql")),
    (2, include_str!("migrations/002_lease_tokens.sql")),
    (3, include_str!("migrations/003_features.sql")),
    (4, include_str!("migrations/004_counts.sql")),
    (5, include_str!("migrations/005_throughput.sql")),
    (6, include_str!("migrations/006_listing.sql")),
    (7, include_str!("migrations/007_or_conditions.sql")),
    (8, include_str!("migrations/008_workflows.sql")),
];

pub(super) async fn migrate(conn: &mut SqliteConnection) -> std::result::Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let conn: &mut SqliteConnection = &mut tx;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS jobs_schema (\
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .await?;
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM jobs_schema")
        .fetch_one(&mut *conn)
        .await?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(sqlx::Error::Configuration(
            format!(
                "the database has jobs schema version {current}, newer than this build knows \
                 ({latest}); upgrade `jobs` or use another database file"
            )
            .into(),
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        conn.execute(*sql).await?;
        sqlx::query("INSERT INTO jobs_schema (version, applied_at) VALUES (?1, ?2)")
            .bind(version)
            .bind(now_micros())
            .execute(&mut *conn)
            .await?;
        tracing::info!(version, "sqlite jobs schema migrated");
    }
    tx.commit().await
}
