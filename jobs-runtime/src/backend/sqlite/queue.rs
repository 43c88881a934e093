//! The trait implementations: [`Backend`], mostly handing each operation to
//! its module, and [`TransactionalEnqueue`].

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{ClaimRequest, Fence, JobListener, OutcomeUpdate, Recovered};
use jobs_core::{
    Backend, BoxFuture, Error, Job, JobFilter, JobId, JobStatus, NewJob, QueueCount, Result,
};
use sqlx::{Executor, Row, SqliteConnection};

use super::enqueue::{insert_rows, insert_rows_of};
use super::error::{db_err, BACKEND};
use super::listener::SqliteListener;
use super::row::job_from_row;
use super::sql::{self, INSERT_CHUNK};
use super::time::{micros, now_micros};
use super::SqliteBackend;
use jobs_core::backend::{check_new_job, TransactionalEnqueue};

/// Enqueue inside your own SQLite transaction (on a connection of your own pool
/// on the same file): the jobs exist if and only if it commits. Begin it with
/// `pool.begin_with("BEGIN IMMEDIATE")` when several processes write the file,
/// so it never has to upgrade a read lock. Workers of this process are woken at
/// once, which may be before you commit; in that case they see the jobs at
/// their next poll, or at once if you call [`SqliteBackend::notify`] after the
/// commit.
///
/// ```no_run
/// # async fn demo(backend: jobs_runtime::backend::sqlite::SqliteBackend) -> Result<(), Box<dyn std::error::Error>> {
/// use jobs_runtime::backend::TransactionalEnqueue;
/// let pool = sqlx::SqlitePool::connect("sqlite://app.db").await?;
/// let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
/// sqlx::query("INSERT INTO orders (id) VALUES (1)").execute(&mut *tx).await?;
/// backend.enqueue_in(&mut *tx, jobs_core::NewJob::new("order.ship", serde_json::json!({ "order": 1 }))).await?;
/// tx.commit().await?;
/// backend.notify();
/// # Ok(()) }
/// ```
impl TransactionalEnqueue for SqliteBackend {
    type Connection = SqliteConnection;

    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut SqliteConnection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            for job in &jobs {
                check_new_job(job)?;
            }
            if jobs.is_empty() {
                return Ok(Vec::new());
            }
            let now = now_micros();
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let rows = insert_rows_of(jobs, now)?;
            // A savepoint makes the batch all-or-none whether or not the caller's
            // connection is inside a transaction.
            conn.execute("SAVEPOINT jobs_enqueue")
                .await
                .map_err(db_err)?;
            let mut result = Ok(());
            for chunk in rows.chunks(INSERT_CHUNK) {
                result = insert_rows(conn, chunk, now).await;
                if result.is_err() {
                    break;
                }
            }
            if result.is_err() {
                conn.execute("ROLLBACK TO jobs_enqueue")
                    .await
                    .map_err(db_err)?;
            }
            conn.execute("RELEASE jobs_enqueue").await.map_err(db_err)?;
            result?;
            self.wake();
            Ok(ids)
        })
    }
}

impl Backend for SqliteBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.heartbeat_now(worker_id, fences, lease))
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.record_now(worker_id, updates))
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(self.recover_now())
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.fetch_job(id))
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.list_now(filter))
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            self.change_one(id, sql::cancel(), now_micros(), Error::cannot_cancel)
                .await
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let job = self
                .change_one(id, sql::requeue(), now_micros(), Error::cannot_requeue)
                .await?;
            self.wake();
            Ok(job)
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let rows = self.read_all(sql::counts().into(), |q| q).await?;
            let mut out = rows
                .iter()
                .map(|r| {
                    let queue: String = r.try_get(0).map_err(db_err)?;
                    let status: &str = r.try_get(1).map_err(db_err)?;
                    let count: i64 = r.try_get(2).map_err(db_err)?;
                    let status = JobStatus::from_str(status).map_err(|e| Error::Corrupt {
                        backend: BACKEND,
                        id: format!("(some job of queue `{queue}`)"),
                        reason: e.to_string(),
                    })?;
                    Ok(QueueCount::new(queue, status, count.unsigned_abs()))
                })
                .collect::<Result<Vec<_>>>()?;
            out.sort();
            Ok(out)
        })
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(0);
            }
            let before = micros(before);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            self.write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(sql::prune())
                        .bind(before)
                        .bind(limit)
                        .execute(conn)
                        .await
                        .map_err(db_err)?;
                    Ok(done.rows_affected())
                })
            })
            .await
        })
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(SqliteListener::new(self, queues));
            Ok(listener)
        })
    }
}

impl SqliteBackend {
    /// Runs a single-row state change; when it matches nothing, tells why.
    async fn change_one(
        &self,
        id: JobId,
        sql: &'static str,
        now: i64,
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let row = self
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(sql)
                        .bind(now)
                        .bind(*id.as_uuid())
                        .fetch_optional(conn)
                        .await
                        .map_err(db_err)
                })
            })
            .await?;
        match row {
            Some(row) => Ok(job_from_row(&row)?.0),
            None => match self.fetch_job(id).await? {
                None => Err(Error::NotFound(id)),
                Some(job) => Err(refuse(id, job.status)),
            },
        }
    }
}
