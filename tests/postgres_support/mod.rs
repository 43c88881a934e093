//! Shared by the PostgreSQL tests: the server URL, and a fresh schema per test.
#![allow(dead_code)]

use jobs_runtime::backend::postgres::PostgresBackend;

/// `JOBS_TEST_POSTGRES_URL`, or `None` (with the reason printed) when unset —
/// except in CI, where a missing database is a failure, never a skip.
pub fn url() -> Option<String> {
    match std::env::var("JOBS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but JOBS_TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI"
            )
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema(tag: &str) -> String {
    format!("jobs_test_{tag}_{:016x}", fastrand::u64(..))
        .chars()
        .take(40)
        .collect()
}

/// A backend on a schema of its own; `None` when the tests are skipped.
pub async fn fresh_backend(tag: &str) -> Option<PostgresBackend> {
    let url = url()?;
    Some(
        PostgresBackend::builder(url)
            .schema(fresh_schema(tag))
            .connect()
            .await
            .expect("connect to JOBS_TEST_POSTGRES_URL"),
    )
}

/// Drops the backend's schema and everything in it.
pub async fn drop_schema(backend: &PostgresBackend) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", backend.schema());
    sqlx::query(&sql)
        .execute(backend.pool())
        .await
        .expect("drop test schema");
}
