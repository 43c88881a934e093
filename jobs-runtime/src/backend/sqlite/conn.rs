//! The private connection handling: opening the writer connection, running
//! changes on it (through [`Writer`](super::writer::Writer)) and reads on the
//! reader pool, and the checkpointer that syncs what the writer committed.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use jobs_core::{BoxFuture, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Connection, Sqlite, SqliteConnection};

use super::backend::Inner;
use super::error::db_err;
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
    /// Runs `change` on the writer connection, on the writer's thread (see
    /// [`Writer`](super::writer::Writer) for why).
    pub(super) async fn write<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.inner.writer.write(change).await
    }

    /// The rows of `sql` with the arguments `bind` adds, read through the
    /// reader pool (for `sqlite::memory:`, the writer connection).
    pub(super) async fn read_all<B>(
        &self,
        sql: Cow<'static, str>,
        bind: B,
    ) -> Result<Vec<SqliteRow>>
    where
        B: for<'q> FnOnce(Query<'q>) -> Query<'q> + Send + 'static,
    {
        match &self.inner.reader {
            Some(pool) => {
                self.inner.writer.settle().await?;
                bind(sqlx::query(&sql))
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)
            }
            None => {
                self.inner
                    .writer
                    .read(move |conn| {
                        Box::pin(async move {
                            bind(sqlx::query(&sql))
                                .fetch_all(conn)
                                .await
                                .map_err(db_err)
                        })
                    })
                    .await
            }
        }
    }

    /// The first row of `sql` with the arguments `bind` adds, if any; read
    /// like [`read_all`](Self::read_all).
    pub(super) async fn read_optional<B>(
        &self,
        sql: Cow<'static, str>,
        bind: B,
    ) -> Result<Option<SqliteRow>>
    where
        B: for<'q> FnOnce(Query<'q>) -> Query<'q> + Send + 'static,
    {
        match &self.inner.reader {
            Some(pool) => {
                self.inner.writer.settle().await?;
                bind(sqlx::query(&sql))
                    .fetch_optional(pool)
                    .await
                    .map_err(db_err)
            }
            None => {
                self.inner
                    .writer
                    .read(move |conn| {
                        Box::pin(async move {
                            bind(sqlx::query(&sql))
                                .fetch_optional(conn)
                                .await
                                .map_err(db_err)
                        })
                    })
                    .await
            }
        }
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
        if !inner.writer.dirty.swap(false, Ordering::Relaxed) {
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
            inner.writer.dirty.store(true, Ordering::Relaxed);
        }
    }
}
