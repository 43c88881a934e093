//! The private connection handling: the one writer connection, the reader
//! pool, and the checkpointer that syncs what the writer committed.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use jobs_core::{BackendErrorKind, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Connection, Sqlite, SqliteConnection};

use super::backend::Inner;
use super::error::{backend_msg, db_err};
use super::migrate::migrate;
use super::SqliteBackend;

pub(super) type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// How often written data is checkpointed (and so synced to disk).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        let msg = d.message();
        msg.contains("database is locked") || msg.contains("busy")
    })
}

/// Opens the writer connection and brings the schema up to date.
pub(super) async fn open_writer(
    options: &SqliteConnectOptions,
) -> std::result::Result<SqliteConnection, sqlx::Error> {
    // Two processes opening a fresh file at once may briefly lock each other
    // out while one switches it to WAL; that settles within milliseconds.
    let mut tries = 0;
    loop {
        let attempt = match SqliteConnection::connect_with(options).await {
            Ok(mut conn) => match migrate(&mut conn).await {
                Ok(()) => Ok(conn),
                Err(e) => {
                    let _ = conn.close().await;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        match attempt {
            Ok(conn) => return Ok(conn),
            Err(e) if is_busy(&e) && tries < 100 => {}
            Err(e) => return Err(e),
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The reader pool of a database file, connecting on first use.
pub(super) fn reader_pool(options: &SqliteConnectOptions) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(120))
        .connect_lazy_with(options.clone())
}

impl SqliteBackend {
    /// The writer connection, exclusively.
    pub(super) async fn writer(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>> {
        let guard = self.inner.writer.lock().await;
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut).map_err(|_| {
            backend_msg(
                BackendErrorKind::Unavailable,
                format!(
                    "the sqlite backend for `{}` was closed",
                    self.inner.location
                ),
            )
        })
    }

    /// The writer connection, for a change: the next checkpoint will sync it.
    pub(super) async fn write_conn(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>> {
        let conn = self.writer().await?;
        self.inner.dirty.store(true, Ordering::Relaxed);
        Ok(conn)
    }

    pub(super) async fn read_all(&self, q: Query<'_>) -> Result<Vec<SqliteRow>> {
        match &self.inner.reader {
            Some(pool) => q.fetch_all(pool).await,
            None => q.fetch_all(&mut *self.writer().await?).await,
        }
        .map_err(db_err)
    }

    pub(super) async fn read_optional(&self, q: Query<'_>) -> Result<Option<SqliteRow>> {
        match &self.inner.reader {
            Some(pool) => q.fetch_optional(pool).await,
            None => q.fetch_optional(&mut *self.writer().await?).await,
        }
        .map_err(db_err)
    }
}

/// Once a second, if anything was written, checkpoints the WAL. With
/// `synchronous = NORMAL` a commit is synced to disk only by a checkpoint, so
/// this bounds what a power loss can take to about the last second of writes,
/// however quiet the queue (SQLite's own checkpoint waits for ~4 MB of log).
/// Ends when the backend is dropped.
pub(super) async fn checkpointer(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if !inner.dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        // A passive checkpoint on a reader connection: it neither waits for nor
        // blocks the writer.
        let Some(reader) = inner.reader.clone() else {
            return;
        };
        if reader.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&reader)
            .await
        {
            tracing::debug!(error = %e, location = %inner.location, "sqlite checkpoint failed; will retry");
            inner.dirty.store(true, Ordering::Relaxed);
        }
    }
}
