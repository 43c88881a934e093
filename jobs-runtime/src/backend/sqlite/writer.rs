//! The writer: the one connection every write of this process goes through,
//! driven by a thread of the backend's own.
//!
//! A change holds the writer from its first statement to its last (a claim,
//! a batch of outcomes, a transaction), across awaits. If the calling task
//! held it, a caller whose runtime stalls — a handler blocking the only
//! thread of a current-thread runtime, or every thread of a multi-threaded
//! one — would keep the writer, and every heartbeat and outcome of this
//! process queued behind it, waiting until that runtime runs again: long
//! enough for leases to expire and for other workers to run the jobs a second
//! time. So each change runs as a task on this thread, which runs nothing
//! else (the writer's changes and the checkpointer), and the caller only
//! waits for the answer. No change depends on the caller's runtime making
//! progress, whichever runtime calls — which is why the backend needs no
//! `Backend::detached` handle. Reads of a database file go through the
//! reader pool on the caller's runtime instead: they hold nothing a write
//! waits for (WAL readers never block the writer).
//!
//! Cost: one hand-off to this thread and one back per call, a few
//! microseconds. The hot path's statements run on this thread itself, on
//! the writer's native connection ([`native`](super::native)); the others
//! go through sqlx, which hands each statement to a thread of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jobs_core::{BackendErrorKind, BoxFuture, Error, Result};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{oneshot, Mutex};

use super::error::backend_msg;

/// The writer connection and the thread its changes run on. Dropping it ends
/// the thread once its current task yields; queued changes are dropped (no
/// caller is left to wait for them).
pub(super) struct Writer {
    conn: Arc<Mutex<Option<Conns>>>,
    /// Written to since the last checkpoint (set once a change has run).
    pub(super) dirty: Arc<AtomicBool>,
    rt: tokio::runtime::Handle,
    location: Arc<str>,
    _stop: oneshot::Sender<()>,
}

/// The writer's connections: sqlx's, and for a database file the native one
/// (see [`native`](super::native)). A change uses one of them at a time.
pub(super) struct Conns {
    pub(super) sqlx: SqliteConnection,
    pub(super) native: Option<rusqlite::Connection>,
}

impl Writer {
    /// Starts the writer's thread with `conns`; `location` names the database
    /// in errors.
    pub(super) fn start(conns: Conns, location: &str) -> std::io::Result<Writer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("jobs-sqlite-writer".to_owned())
            .spawn(move || {
                // Runs the spawned changes until the writer is dropped; the
                // runtime, and any change still queued, goes with the thread.
                rt.block_on(async move {
                    let _ = stopped.await;
                });
            })?;
        Ok(Writer {
            conn: Arc::new(Mutex::new(Some(conns))),
            dirty: Arc::new(AtomicBool::new(false)),
            rt: handle,
            location: Arc::from(location),
            _stop: stop,
        })
    }

    /// Runs `change` on the writer connection, exclusively, on the writer's
    /// thread, and marks the database written for the next checkpoint.
    ///
    /// Once started, a change runs to its end even if the caller stops
    /// waiting (a deadline): a transaction is never cut in the middle by a
    /// caller going away, and the next change finds the connection clean.
    pub(super) async fn write<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(true, |c: &mut Conns| change(&mut c.sqlx)).await
    }

    /// Runs `change` like [`write`](Self::write), with both connections
    /// (the native one only for a database file): for the statements every
    /// job runs.
    pub(super) async fn write_conns<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conns) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(true, change).await
    }

    /// Runs `read` on the writer connection (for `sqlite::memory:`, whose
    /// only connection it is), like [`write`](Self::write) but without
    /// marking anything written.
    pub(super) async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.run(false, |c: &mut Conns| read(&mut c.sqlx)).await
    }

    async fn run<T, F>(&self, writes: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conns) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let conn = self.conn.clone();
        let dirty = writes.then(|| self.dirty.clone());
        let location = self.location.clone();
        let task = self.rt.spawn(async move {
            let mut guard = conn.lock().await;
            let Some(conn) = guard.as_mut() else {
                return Err(closed(&location));
            };
            let out = f(conn).await;
            if let Some(dirty) = dirty {
                dirty.store(true, Ordering::Relaxed);
            }
            out
        });
        match task.await {
            Ok(out) => out,
            // The change panicked: the caller sees the panic, as if it had
            // run the change itself.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(closed(&self.location)),
        }
    }

    /// Spawns `task` on the writer's thread (the checkpointer: so it does
    /// not depend on the runtime that opened the backend staying alive).
    pub(super) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.rt.spawn(task);
    }

    /// Closes the connection once the change in progress, if any, is done;
    /// later changes fail as "closed".
    pub(super) async fn close(&self) {
        let conns = self.conn.lock().await.take();
        if let Some(conns) = conns {
            drop(conns.native);
            let _ = conns.sqlx.close().await;
        }
    }
}

fn closed(location: &str) -> Error {
    backend_msg(
        BackendErrorKind::Unavailable,
        format!("the sqlite backend for `{location}` was closed"),
    )
}
