//! The backend handle, [`PostgresBackend`]: its state, and the helpers the
//! queue operations share.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobs_core::{BackendErrorKind, Error, Job, JobId, JobStatus, NewJob, Result};
use serde_json::Value;
use sqlx::postgres::PgPool;
use sqlx::{Executor, Row};

use super::conns::Conns;
use super::error::{corrupt, db_err, enqueue_err, BACKEND};
use super::hints::Hints;
use super::options::PostgresBuilder;
use super::row::row_to_job;
use super::sql::Sql;

/// The PostgreSQL queue backend. Clones share one set of connections.
#[derive(Clone)]
pub struct PostgresBackend {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) schema: String,
    pub(super) channel: String,
    pub(super) pool: PgPool,
    /// Listeners hold a connection each for as long as they live; a pool of their
    /// own keeps them from starving queue operations.
    pub(super) listen_pool: PgPool,
    /// Everything but claims and heartbeats.
    pub(super) conns: Conns,
    pub(super) hints: Hints,
    pub(super) synchronous_claims: bool,
    /// Claims and heartbeats: asynchronous commit unless `synchronous_claims`.
    pub(super) lease_conns: Conns,
    pub(super) sql: Sql,
}

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

    pub(super) async fn enqueue_with<'e, E>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<JobId>>
    where
        E: Executor<'e, Database = sqlx::Postgres>,
    {
        let n = jobs.len();
        let mut ids = Vec::with_capacity(n);
        let mut uuids = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut max_retries = Vec::with_capacity(n);
        let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut metadata = Vec::with_capacity(n);
        for job in jobs {
            let retries = i32::try_from(job.max_retries).map_err(|_| {
                Error::InvalidJob(format!(
                    "max_retries {} of job {} ({}) is too large; at most {}",
                    job.max_retries,
                    job.id,
                    job.job_type,
                    i32::MAX
                ))
            })?;
            ids.push(job.id);
            uuids.push(*job.id.as_uuid());
            queues.push(job.queue_name);
            types.push(job.job_type);
            payloads.push(job.payload);
            priorities.push(job.priority);
            max_retries.push(retries);
            run_ats.push(job.run_at);
            metadata.push(Value::Object(job.metadata));
        }
        if ids.is_empty() {
            return Ok(ids);
        }
        let row = sqlx::query(&self.inner.sql.enqueue)
            .bind(uuids)
            .bind(queues)
            .bind(types)
            .bind(payloads)
            .bind(priorities)
            .bind(max_retries)
            .bind(run_ats)
            .bind(metadata)
            .fetch_one(executor)
            .await
            .map_err(enqueue_err)?;
        let stored: i64 = row.try_get("n").map_err(db_err)?;
        if stored as usize != ids.len() {
            return Err(Error::backend_msg(
                BACKEND,
                BackendErrorKind::Other,
                format!("stored {stored} of {} jobs", ids.len()),
            ));
        }
        Ok(ids)
    }

    /// Runs a one-job state change (cancel, requeue) that returns the job, or
    /// says why it was refused: no such job, or `refuse` for its status.
    pub(super) async fn change_one(
        &self,
        sql: &str,
        id: JobId,
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let mut conn = self.inner.conns.get().await?;
        let res = sqlx::query(sql)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let row = conn.done(res)?;
        match row {
            Some(row) => row_to_job(&row),
            None => match self.status_of(id).await? {
                None => Err(Error::NotFound(id)),
                Some(from) => Err(refuse(id, from)),
            },
        }
    }

    async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>> {
        let mut conn = self.inner.conns.get().await?;
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
