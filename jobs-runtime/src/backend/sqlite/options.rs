//! Connection options: what a `sqlite:` URL becomes before anything is opened.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use jobs_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::SqliteBackend;

/// How long a write waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many pages of write-ahead log the writer lets grow before it
/// checkpoints inline, at the end of one of its own commits (SQLite's default
/// is 1,000, ~4 MB).
///
/// The backend's checkpointer copies the log into the database and syncs it
/// once a second on a reader connection, beside the writer, and that is where
/// the work and the disk syncs happen. But a checkpoint that runs beside a
/// writer that keeps writing never catches up with it, and SQLite restarts the
/// log from its start only after one has: with the writer's own checkpoint off,
/// the log grew to 143 MB in 10 s of 200 jobs/s. So the writer still
/// checkpoints itself, past ~16 MB of log: it then finds most of the log
/// already copied, and the log restarts. At SQLite's 1,000 pages the writer
/// did it three times a second at 200 jobs/s, stalling the job that came next
/// (W3's p99 2.7–3.0 ms; 0.7–0.8 ms at 4,000, W1 unchanged).
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 4_000;

pub(super) fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl SqliteBackend {
    /// The options [`connect`](Self::connect) uses for `url`: WAL mode,
    /// `synchronous = NORMAL` (files only), a 30 s busy timeout, statement
    /// caching. Adjust them and pass them to [`connect_with`](Self::connect_with),
    /// e.g. `.synchronous(SqliteSynchronous::Full)` to fsync every commit.
    ///
    /// A URL without a path (`sqlite://`, `sqlite:`, `sqlite://?mode=rwc`) is
    /// refused: SQLite would open a temporary database that vanishes with
    /// its connection, a queue that silently loses every job. In memory is
    /// asked for by name: `sqlite::memory:`.
    pub fn options(url: &str) -> Result<SqliteConnectOptions> {
        if url.contains("://") && !url.starts_with("sqlite:") {
            return Err(Error::connect(
                url,
                "not a SQLite URL; use `sqlite://path/to/jobs.db` (or `jobs_runtime::connect` \
                 for the other backends)",
            ));
        }
        let options =
            SqliteConnectOptions::from_str(url).map_err(|e| Error::connect(url, e.to_string()))?;
        if !is_memory_url(url) {
            check_path(url, options.get_filename())?;
        }
        let options = options
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false)
            .statement_cache_capacity(256)
            .row_buffer_size(256)
            .pragma("temp_store", "memory");
        Ok(if is_memory_url(url) {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
        })
    }
}

/// Refuses what cannot be a database file of a durable queue: no path at all
/// (SQLite would open a private temporary database), or a directory.
pub(super) fn check_path(url: &str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::connect(
            url,
            "no database path: a durable queue needs a file, e.g. `sqlite://path/to/jobs.db` \
             or `sqlite:jobs.db` (created if missing); for an in-memory database that lives \
             as long as the backend, say so with `sqlite::memory:`",
        ));
    }
    if path.is_dir() {
        return Err(Error::connect(
            url,
            format!(
                "`{}` is a directory; name the database file in it, e.g. `{}`",
                path.display(),
                path.join("jobs.db").display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_path_are_refused() {
        for url in [
            "sqlite://",
            "sqlite:",
            "sqlite://?mode=rwc",
            "sqlite://?mode=rw",
            "sqlite:?cache=shared",
            "sqlite:///",
        ] {
            let err = SqliteBackend::options(url).expect_err(url);
            assert!(matches!(err, Error::Connect { .. }), "{url}: {err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("sqlite::memory:") || msg.contains("directory"),
                "{url}: {msg}"
            );
        }
        let err = SqliteBackend::options("sqlite://").unwrap_err().to_string();
        assert!(err.contains("no database path"), "{err}");
        let err = SqliteBackend::options("postgres://db/app")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a SQLite URL"), "{err}");
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://jobs.db",
            "sqlite:jobs.db",
            "sqlite:///tmp/jobs.db?mode=rwc",
        ] {
            SqliteBackend::options(url).expect(url);
        }
    }
}
