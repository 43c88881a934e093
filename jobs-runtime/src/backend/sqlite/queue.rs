//! The trait implementations: [`Backend`], mostly handing each operation to
//! its module, and [`TransactionalEnqueue`].

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    ClaimRequest, Fence, HeartbeatReply, JobListener, OutcomeUpdate, Recovered,
};
use jobs_core::{
    AuditEntry, AuditFilter, Backend, BoxFuture, CancelRequest, Claimed, Enqueued, Error, Job,
    JobFilter, JobId, JobPage, JobStatus, Leader, NewJob, Progress, PruneRequest, QueueCount,
    Result, ScheduleState, WorkerInfo,
};
use sqlx::{Executor, Row, SqliteConnection};

use super::enqueue::{insert_rows_of, store_rows};
use super::error::{db_err, BACKEND};
use super::listener::SqliteListener;
use super::sql;
use super::time::now_micros;
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
    ) -> BoxFuture<'a, Result<Vec<Enqueued>>> {
        Box::pin(async move {
            for job in &jobs {
                check_new_job(job)?;
            }
            if jobs.is_empty() {
                return Ok(Vec::new());
            }
            let now = now_micros();
            let rows = insert_rows_of(jobs, now)?;
            // A savepoint makes the batch all-or-none whether or not the caller's
            // connection is inside a transaction.
            conn.execute("SAVEPOINT jobs_enqueue")
                .await
                .map_err(db_err)?;
            let result = store_rows(conn, &rows, now).await;
            if result.is_err() {
                conn.execute("ROLLBACK TO jobs_enqueue")
                    .await
                    .map_err(db_err)?;
            }
            conn.execute("RELEASE jobs_enqueue").await.map_err(db_err)?;
            let out = result?;
            self.wake();
            Ok(out)
        })
    }
}

impl Backend for SqliteBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Claimed>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>> {
        Box::pin(self.heartbeat_now(worker_id, fences, lease))
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            let lost = self.record_now(worker_id, updates).await;
            self.finished(updates.iter().map(|u| u.fence.id));
            lost
        })
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(async move {
            let recovered = self.recover_now().await?;
            self.finished(recovered.iter().map(|r| r.job.id));
            Ok(recovered)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.fetch_job(id))
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if filter.is_keyset() {
                return Ok(self.list_page_now(filter).await?.jobs);
            }
            self.list_now(filter).await
        })
    }

    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<JobPage>> {
        Box::pin(self.list_page_now(filter))
    }

    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let job = self.cancel_now(id, request).await;
            self.finished([id]);
            job
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.requeue_now(id))
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

    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let n = self.prune_now(req).await?;
            self.prune_throughput_now().await?;
            Ok(n)
        })
    }

    fn throughput(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'_, Result<Vec<jobs_core::ThroughputBucket>>> {
        Box::pin(self.throughput_now(since))
    }

    fn requeue_many<'a>(
        &'a self,
        filter: &'a jobs_core::RequeueFilter,
    ) -> BoxFuture<'a, Result<jobs_core::RequeueReport>> {
        Box::pin(self.requeue_many_now(filter))
    }

    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.pause_now(queue))
    }

    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.resume_now(queue))
    }

    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.paused_now())
    }

    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.progress_now(updates))
    }

    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.register_now(info, ttl))
    }

    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.deregister_now(id))
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        Box::pin(self.workers_now())
    }

    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.try_lead_now(role, holder, ttl))
    }

    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.resign_now(role, holder))
    }

    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        Box::pin(self.leader_now(role))
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        Box::pin(self.schedules_now())
    }

    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_schedule_now(state))
    }

    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let deleted = self.delete_now(id).await;
            self.finished([id]);
            deleted
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.append_audit_now(entry))
    }

    fn audit_log<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Result<Vec<AuditEntry>>> {
        Box::pin(self.audit_log_now(filter))
    }

    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune_audit_now(before, limit))
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(SqliteListener::new(self, queues));
            Ok(listener)
        })
    }

    /// One statement for all of `ids` (a JSON array of them), in their order.
    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        Box::pin(self.get_many_now(ids))
    }

    /// Every edge in one writer transaction.
    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(self.settle_pairs(edges))
    }

    /// One conditional `UPDATE` on the writer; wakes this process's workers.
    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.release_held_now(ids))
    }

    /// Signalled by this process's own changes (every handle on the file);
    /// a job finished by another process is seen within a second.
    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let signals = self.inner.signals.clone();
            signals.finished.wait(self, id, timeout).await
        })
    }
}
