//! Connection options: what a `sqlite:` URL becomes before anything is opened.

use std::str::FromStr;
use std::time::Duration;

use jobs_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::SqliteBackend;

/// How long a write waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl SqliteBackend {
    /// The options [`connect`](Self::connect) uses for `url`: WAL mode,
    /// `synchronous = NORMAL` (files only), a 30 s busy timeout, statement
    /// caching. Adjust them and pass them to [`connect_with`](Self::connect_with),
    /// e.g. `.synchronous(SqliteSynchronous::Full)` to fsync every commit.
    pub fn options(url: &str) -> Result<SqliteConnectOptions> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| Error::Connect {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
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
        })
    }
}
