//! The backend's own connections.

use std::time::Duration;

use jobs_core::{BackendErrorKind, Error, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use super::error::{db_err, kind_of, unavailable};

/// Connections for the backend's own statements, without `sqlx::Pool`: a pool
/// pings every connection it gets back (a second round trip per call, which
/// costs the server as much as a small statement). A connection whose call
/// was abandoned, or failed below the database, is dropped; when the network
/// failed or the server ended the session, every idle one goes with it, so a
/// restarted server costs one transient error, not one per idle connection.
///
/// Connections are opened on first use, by the runtime of the caller: a
/// connection is served by the runtime that opened it, which is why a
/// detached handle (`Backend::detached`) has a `Conns` of its own. One whose
/// runtime has ended is never used again: its socket may still take a
/// statement, but no answer would ever be read (the statement would run
/// with its outcome unknown), so it is dropped before it is handed out.
pub(super) struct Conns {
    options: PgConnectOptions,
    idle: std::sync::Mutex<Vec<Opened>>,
    permits: tokio::sync::Semaphore,
    timeout: Duration,
}

impl Conns {
    pub(super) fn new(options: PgConnectOptions, max: u32, timeout: Duration) -> Conns {
        Conns {
            options,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(max as usize),
            timeout,
        }
    }

    pub(super) async fn get(&self) -> Result<Conn<'_>> {
        let unavailable = |what: &str| {
            unavailable(format!(
                "no database connection within {:?} ({what})",
                self.timeout
            ))
        };
        let permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("all connections busy"))?
            .expect("semaphore never closed");
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Those of an ended runtime all went with it.
            idle.retain_mut(Opened::runtime_alive);
            idle.pop()
        };
        let conn = match idle {
            Some(conn) => conn,
            None => Opened::new(
                tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                    .await
                    .map_err(|_| unavailable("connect timed out"))?
                    .map_err(db_err)?,
            ),
        };
        Ok(Conn {
            conns: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// A connection, and a way to tell whether the runtime that opened it lives.
struct Opened {
    conn: PgConnection,
    /// Closed once the runtime has ended: its sender lives in a task on
    /// that runtime (until this receiver goes), and a runtime drops its
    /// tasks when it shuts down.
    runtime: tokio::sync::oneshot::Receiver<()>,
}

impl Opened {
    /// Must be called on the runtime that opened `conn`.
    fn new(conn: PgConnection) -> Opened {
        let (mut alive, runtime) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move { alive.closed().await });
        Opened { conn, runtime }
    }

    fn runtime_alive(&mut self) -> bool {
        matches!(
            self.runtime.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        )
    }
}

/// One borrowed connection; returned by [`Conn::done`], dropped otherwise.
pub(super) struct Conn<'a> {
    conns: &'a Conns,
    conn: Option<Opened>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conn<'_> {
    pub(super) fn get(&mut self) -> &mut PgConnection {
        &mut self.conn.as_mut().expect("present until done").conn
    }

    /// Hands the connection back unless `result` says it is broken, and maps the error.
    pub(super) fn done<T>(self, result: std::result::Result<T, sqlx::Error>) -> Result<T> {
        let after = match &result {
            Ok(_) => After::Keep,
            Err(e) => After::of(e),
        };
        self.release(after);
        result.map_err(db_err)
    }

    /// [`done`](Self::done) for a result already mapped to the framework's error.
    pub(super) fn done_mapped<T>(self, result: Result<T>) -> Result<T> {
        let after = match &result {
            Ok(_)
            | Err(
                Error::InvalidJob(_)
                | Error::InvalidPayload { .. }
                | Error::DuplicateId(_)
                | Error::Corrupt { .. },
            ) => After::Keep,
            Err(Error::Backend(e)) => e
                .get_ref()
                .and_then(|s| s.downcast_ref::<sqlx::Error>())
                .map_or(After::Drop, After::of),
            Err(_) => After::Drop,
        };
        self.release(after);
        result
    }

    fn release(mut self, after: After) {
        let mut idle = self.conns.idle.lock().unwrap_or_else(|e| e.into_inner());
        match after {
            After::Keep => idle.extend(self.conn.take()),
            After::Drop => {}
            // The idle connections are suspect too (a restarted server, a
            // lost network): a new call opens a fresh one instead of finding
            // out the hard way, once per connection.
            After::DropIdle => idle.clear(),
        }
    }
}

/// What becomes of a connection after its call.
enum After {
    /// Back to the idle ones.
    Keep,
    /// Dropped: the call failed in a way that may have left it unusable.
    Drop,
    /// Dropped with every idle one: the network or the server failed.
    DropIdle,
}

impl After {
    fn of(e: &sqlx::Error) -> After {
        match e {
            // The server is shutting down or ending the session: this
            // connection is done for, and so are the idle ones.
            sqlx::Error::Database(_) if kind_of(e) == BackendErrorKind::Unavailable => {
                After::DropIdle
            }
            // The database answered: the connection is fine.
            sqlx::Error::Database(_) | sqlx::Error::RowNotFound => After::Keep,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) => After::DropIdle,
            _ => After::Drop,
        }
    }
}
