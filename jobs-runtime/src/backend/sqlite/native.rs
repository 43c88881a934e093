//! The writer's second connection to a database file: SQLite called directly
//! (`rusqlite`) on the writer's own thread, for the statements every job
//! runs — the claim and the recording of outcomes.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every
//! statement to it and every row back through channels: two thread hand-offs
//! per statement and one per row returned, each a futex wake-up. For the hot
//! path those hand-offs cost more than SQLite's own work (a claim of 16 jobs
//! returns 16 rows of 33 columns, each value copied twice). The writer's
//! thread already runs nothing but the writer's changes, so it can call
//! SQLite itself: a claim or a batch of outcomes is then one call on that
//! thread, with statements prepared once and kept.
//!
//! Both connections are the writer's: a change runs on one or the other,
//! never on both at once, and commits before the next change starts, so they
//! never wait for each other's locks. Everything else (enqueues, limits,
//! admin, workflows, migrations) stays on the sqlx connection. An in-memory
//! database (`sqlite::memory:`) lives in its one connection and has no native
//! one: its changes take the sqlx path.

use std::path::Path;

use jobs_core::{BackendErrorKind, Error, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ToSql};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::error::{db_err, kind_of_code, BACKEND};
use super::row::Cols;

/// Prepared statements kept per connection (the claim's and the padded
/// batch sizes of each outcome statement: a few dozen texts).
const STATEMENT_CACHE: usize = 128;

/// The framework's error for an error of the native connection.
pub(super) fn native_err(e: rusqlite::Error) -> Error {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => kind_of_code(i64::from(f.extended_code)),
        rusqlite::Error::ToSqlConversionFailure(_) => BackendErrorKind::Data,
        _ => BackendErrorKind::Other,
    };
    Error::backend(BACKEND, kind, e)
}

/// Opens the native connection to the file the sqlx writer `conn` has open
/// at `path`, with the settings that connection runs with (read back from it,
/// so options a user set through `connect_with` hold for both).
pub(super) async fn open(conn: &mut SqliteConnection, path: &Path) -> Result<Connection> {
    let mut settings = Vec::with_capacity(6);
    for name in [
        "busy_timeout",
        "synchronous",
        "foreign_keys",
        "temp_store",
        "cache_size",
        "wal_autocheckpoint",
    ] {
        let value: i64 = sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        settings.push((name, value));
    }
    let native = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE,
    )
    .map_err(native_err)?;
    for (name, value) in settings {
        native
            .execute_batch(&format!("PRAGMA {name} = {value}"))
            .map_err(native_err)?;
    }
    native.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(native)
}

/// Binds parameters of a prepared statement in order, from the first.
pub(super) struct Binder<'s, 'c> {
    stmt: &'s mut rusqlite::Statement<'c>,
    next: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    pub(super) fn new(stmt: &'s mut rusqlite::Statement<'c>) -> Self {
        Binder { stmt, next: 1 }
    }

    /// Binds the next parameter.
    pub(super) fn bind<T: ToSql>(&mut self, value: T) -> Result<&mut Self> {
        self.stmt
            .raw_bind_parameter(self.next, value)
            .map_err(native_err)?;
        self.next += 1;
        Ok(self)
    }

    /// Binds the next parameter if the statement has one there: a statement
    /// built from parts may not use the last parameters its caller binds for
    /// every part (sqlx ignores those; SQLite refuses to bind them).
    pub(super) fn bind_if_used<T: ToSql>(&mut self, value: T) -> Result<&mut Self> {
        if self.next > self.stmt.parameter_count() {
            self.next += 1;
            return Ok(self);
        }
        self.bind(value)
    }

    /// Binds the next parameter to a job id, stored as its 16 bytes (as sqlx
    /// stores a `Uuid`).
    pub(super) fn id(&mut self, id: Option<&Uuid>) -> Result<&mut Self> {
        self.bind(id.map(|id| &id.as_bytes()[..]))
    }
}

/// A row of the native connection, read as [`Cols`].
pub(super) struct NativeRow<'r, 's>(pub(super) &'r rusqlite::Row<'s>);

impl Cols for NativeRow<'_, '_> {
    fn text(&self, col: usize) -> std::result::Result<Option<&str>, String> {
        match self.0.get_ref(col).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|e| format!("column {col}: {e}")),
            other => Err(format!(
                "column {col}: expected text, found {:?}",
                other.data_type()
            )),
        }
    }

    fn int(&self, col: usize) -> std::result::Result<Option<i64>, String> {
        match self.0.get_ref(col).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(i) => Ok(Some(i)),
            other => Err(format!(
                "column {col}: expected an integer, found {:?}",
                other.data_type()
            )),
        }
    }

    fn uuid(&self, col: usize) -> std::result::Result<Uuid, String> {
        match self.0.get_ref(col).map_err(|e| e.to_string())? {
            ValueRef::Blob(b) => Uuid::from_slice(b).map_err(|e| format!("column {col}: {e}")),
            other => Err(format!(
                "column {col}: expected a 16-byte id, found {:?}",
                other.data_type()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::sqlite::SqliteSynchronous;

    use super::super::SqliteBackend;

    /// The native connection runs with the settings the writer was opened
    /// with, including a user's `connect_with` options.
    #[tokio::test]
    async fn the_native_connection_runs_with_the_writers_settings() {
        let path = std::env::temp_dir().join(format!("jobs-native-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        let options = SqliteBackend::options(&url)
            .expect("options")
            .synchronous(SqliteSynchronous::Off)
            .busy_timeout(Duration::from_millis(7_500))
            .pragma("wal_autocheckpoint", "2500");
        let backend = SqliteBackend::connect_with(&url, options, false)
            .await
            .expect("open");
        let (synchronous, busy, autocheckpoint, wal) = backend
            .inner
            .writer
            .write_conns(|conns| {
                Box::pin(async move {
                    let native = conns.native.as_ref().expect("native");
                    let int = |name: &str| -> i64 {
                        native
                            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                            .expect("pragma")
                    };
                    let mode: String = native
                        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                        .expect("journal mode");
                    Ok((
                        int("synchronous"),
                        int("busy_timeout"),
                        int("wal_autocheckpoint"),
                        mode,
                    ))
                })
            })
            .await
            .expect("read settings");
        assert_eq!(
            synchronous, 0,
            "OFF, as the options said (SQLite's default is FULL)"
        );
        assert_eq!(busy, 7_500);
        assert_eq!(autocheckpoint, 2_500, "the writer checkpoints as told");
        assert_eq!(wal, "wal");
        backend.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
