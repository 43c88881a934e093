//! The [`SqliteBackend`] handle: what it holds, opening and closing it, waking
//! its workers.

use std::sync::Arc;

use jobs_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::conn::{checkpointer, open_writer, reader_pool};
use super::listener::{shared_signals, Signals};
use super::native;
use super::options::{check_path, is_memory_url};
use super::writer::{Conns, Writer};
// For an intra-doc link.
#[cfg(doc)]
use jobs_core::backend::TransactionalEnqueue;

/// The SQLite queue backend. Clones share the connections and the wake-up signal.
#[derive(Clone)]
pub struct SqliteBackend {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    /// One connection: every write of this process goes through it, on a
    /// thread of its own (see [`Writer`]). Not a pool: sqlx pings a pooled
    /// connection on every release, which would double the round trips of
    /// each call.
    pub(super) writer: Writer,
    /// Reads (`get`, `list`, `counts`, listener); `None` for `:memory:`, where
    /// the writer serves reads too.
    pub(super) reader: Option<SqlitePool>,
    pub(super) signals: Arc<Signals>,
    /// Jobs with limits of their own that this handle claimed and that may
    /// still run: when one of them ends, a slot of its keys is free, so
    /// idle workers are woken (as for new work).
    pub(super) limited_running: std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
    pub(super) location: String,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `url`: `sqlite://path/to/jobs.db`,
    /// `sqlite:relative.db`, or `sqlite::memory:` (private to this handle and its
    /// clones). Creates missing parent directories and the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = Self::options(url)?;
        Self::connect_with(url, options, is_memory_url(url)).await
    }

    /// Opens a database with `options` exactly as given (start from
    /// [`options`](Self::options)). `label` names it in errors and logs;
    /// `in_memory` says the database lives only as long as its connections, so
    /// a single connection serves reads and writes and is never closed while
    /// the backend lives.
    pub async fn connect_with(
        label: &str,
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<Self> {
        let url = label;
        let connect_err = |reason: String| Error::connect(url, reason);
        if !in_memory {
            check_path(url, options.get_filename())?;
            if let Some(dir) = options.get_filename().parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        connect_err(format!("cannot create directory {}: {e}", dir.display()))
                    })?;
                }
            }
        }

        let mut writer = open_writer(&options)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let native = if in_memory {
            None
        } else {
            match native::open(&mut writer, options.get_filename()).await {
                Ok(native) => Some(native),
                // The sqlx path does everything the native one does, slower.
                Err(e) => {
                    tracing::warn!(url, error = %e, "sqlite: no native connection; the hot path goes through sqlx");
                    None
                }
            }
        };
        let conns = Conns {
            sqlx: writer,
            native,
        };
        let writer = Writer::start(conns, url)
            .map_err(|e| connect_err(format!("cannot start the writer thread: {e}")))?;

        let (reader, key) = if in_memory {
            (None, None)
        } else {
            let reader = reader_pool(&options);
            let key = std::fs::canonicalize(options.get_filename())
                .unwrap_or_else(|_| options.get_filename().to_owned());
            (Some(reader), Some(key))
        };
        tracing::debug!(url, "sqlite backend connected");
        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                writer,
                reader,
                signals: shared_signals(key),
                location: url.to_owned(),
                limited_running: Default::default(),
            }),
        };
        if !in_memory {
            backend
                .inner
                .writer
                .spawn(checkpointer(Arc::downgrade(&backend.inner)));
        }
        Ok(backend)
    }

    /// Closes the connections; other clones of this handle stop working.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        if let Some(reader) = &self.inner.reader {
            reader.close().await;
        }
    }

    pub(super) fn wake(&self) {
        self.inner
            .signals
            .wake
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Notes jobs with limits of their own that this handle just claimed.
    pub(super) fn note_limited(&self, ids: impl IntoIterator<Item = uuid::Uuid>) {
        let mut set = self
            .inner
            .limited_running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set.extend(ids);
    }

    /// Whether any of `ids` was a job with limits that this handle claimed
    /// (and forgets them): its end frees a slot.
    pub(super) fn ended_limited<'a>(&self, ids: impl IntoIterator<Item = &'a uuid::Uuid>) -> bool {
        let mut set = self
            .inner
            .limited_running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if set.is_empty() {
            return false;
        }
        let mut any = false;
        for id in ids {
            any |= set.remove(id);
        }
        any
    }

    /// Tells this process's listeners on this file that a running job's
    /// cancellation was requested.
    pub(super) fn signal_cancel(&self) {
        self.inner
            .signals
            .cancels
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Wakes whoever in this process awaits one of `ids` (they may have finished).
    pub(super) fn finished(&self, ids: impl IntoIterator<Item = jobs_core::JobId>) {
        self.inner.signals.finished.finished(ids);
    }

    /// Wakes this process's idle workers of this database file, e.g. after
    /// committing a transaction that enqueued jobs through
    /// [`TransactionalEnqueue`].
    pub fn notify(&self) {
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>(_: &T) {}

    /// `connect` must be spawnable (sqlx's executors make this easy to break).
    #[tokio::test]
    async fn futures_are_send() {
        let connect = super::SqliteBackend::connect("sqlite::memory:");
        assert_send(&connect);
        let backend = super::SqliteBackend::connect("sqlite::memory:")
            .await
            .expect("open");
        assert_send(&backend.read_all("SELECT 1".into(), |q| q));
        assert_send(&backend.close());
    }
}
