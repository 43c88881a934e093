//! The backend's own connections.

use std::time::Duration;

use jobs_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use super::error::{db_err, unavailable};

/// Connections for the backend's own statements, without `sqlx::Pool`: a pool
/// pings every connection it gets back (a second round trip per call, which
/// costs the server as much as a small statement). A connection whose call
/// failed below the database (I/O, protocol) or was abandoned mid-call is
/// dropped, so a restarted server costs one transient error per idle connection.
pub(super) struct Conns {
    options: PgConnectOptions,
    idle: std::sync::Mutex<Vec<PgConnection>>,
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
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                .await
                .map_err(|_| unavailable("connect timed out"))?
                .map_err(db_err)?,
        };
        Ok(Conn {
            conns: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// One borrowed connection; returned by [`Conn::done`], dropped otherwise.
pub(super) struct Conn<'a> {
    conns: &'a Conns,
    conn: Option<PgConnection>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conn<'_> {
    pub(super) fn get(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until done")
    }

    /// Hands the connection back unless `result` says it is broken, and maps the error.
    pub(super) fn done<T>(mut self, result: std::result::Result<T, sqlx::Error>) -> Result<T> {
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => matches!(e, sqlx::Error::Database(_) | sqlx::Error::RowNotFound),
        };
        if healthy {
            if let Some(conn) = self.conn.take() {
                self.conns
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
        result.map_err(db_err)
    }

    /// [`done`](Self::done) for a result already mapped to the framework's error.
    pub(super) fn done_mapped<T>(mut self, result: Result<T>) -> Result<T> {
        let healthy = match &result {
            Ok(_) | Err(Error::InvalidJob(_) | Error::DuplicateId(_) | Error::Corrupt { .. }) => {
                true
            }
            Err(Error::Backend(e)) => matches!(
                e.get_ref().and_then(|s| s.downcast_ref::<sqlx::Error>()),
                Some(sqlx::Error::Database(_))
            ),
            Err(_) => false,
        };
        if !healthy {
            self.conn = None;
        }
        self.done(Ok(())).and(result)
    }
}
