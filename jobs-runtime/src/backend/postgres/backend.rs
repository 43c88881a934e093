//! The backend handle, [`PostgresBackend`]: its state, and the helpers the
//! queue operations share.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobId, JobStatus, Result};
use sqlx::postgres::{PgConnectOptions, PgPool};

use super::super::remote_finish::RemoteFinish;
use super::conns::Conns;
use super::error::corrupt;
use super::hints::Hints;
use super::options::PostgresBuilder;
use super::sql::Sql;

/// A duration in whole microseconds, as the statements take them (saturating).
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The PostgreSQL queue backend. Clones share one set of connections; a
/// [`detached`](jobs_core::Backend::detached) handle has its own.
#[derive(Clone)]
pub struct PostgresBackend {
    pub(super) inner: Arc<Inner>,
    /// Everything but claims and heartbeats (`synchronous_commit = on`).
    pub(super) conns: Arc<Conns>,
    /// Claims and heartbeats: asynchronous commit unless `synchronous_claims`.
    pub(super) lease_conns: Arc<Conns>,
}

/// What every handle to one store shares, detached ones included.
pub(super) struct Inner {
    pub(super) schema: String,
    pub(super) channel: String,
    pub(super) pool: PgPool,
    /// Listeners hold a connection each for as long as they live; a pool of their
    /// own keeps them from starving queue operations.
    pub(super) listen_pool: PgPool,
    pub(super) hints: Hints,
    pub(super) synchronous_claims: bool,
    pub(super) sql: Sql,
    /// How the connections of `conns` and `lease_conns` are opened, for the
    /// connections of a detached handle.
    pub(super) own_options: PgConnectOptions,
    pub(super) lease_options: PgConnectOptions,
    pub(super) acquire_timeout: Duration,
    /// The `finished` channel's signal, for `wait_finished`.
    pub(super) finished: RemoteFinish,
}

/// Connections of each kind a detached handle opens at most: the manager's
/// heartbeat and recorder loops make one call at a time each.
const DETACHED_CONNECTIONS: u32 = 2;

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.schema)
            .field("synchronous_claims", &self.inner.synchronous_claims)
            .finish()
    }
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user:pass@host:port/db[?schema=name]`) and
    /// creates or migrates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Options before connecting: schema name, pool size.
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder::new(url.into())
    }

    /// The schema holding the jobs table.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// A connection pool to the same database (opened lazily), e.g. to begin a
    /// transaction for [`TransactionalEnqueue`](crate::backend::TransactionalEnqueue). The backend's own statements use
    /// connections of their own.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The NOTIFY channel workers of this schema listen on.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// A handle to the same store whose connections are its own, opened on
    /// first use by whichever runtime uses them (see `Backend::detached`).
    /// Statements, claim hints, the caller's pool and the listeners' pool are
    /// shared.
    pub(super) fn detach(&self) -> PostgresBackend {
        let inner = &self.inner;
        let conns = |options: &PgConnectOptions| {
            Arc::new(Conns::new(
                options.clone(),
                DETACHED_CONNECTIONS,
                inner.acquire_timeout,
            ))
        };
        PostgresBackend {
            conns: conns(&inner.own_options),
            lease_conns: conns(&inner.lease_options),
            inner: inner.clone(),
        }
    }

    pub(super) async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query_scalar(&self.inner.sql.status_of)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let status: Option<String> = conn.done(res)?;
        status
            .map(|s| s.parse().map_err(|e| corrupt(id, e)))
            .transpose()
    }
}
