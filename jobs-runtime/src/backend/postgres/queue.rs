//! The queue operations: [`Backend`] and [`TransactionalEnqueue`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    ClaimRequest, Fence, HeartbeatReply, JobListener, OutcomeUpdate, Recovered,
};
use jobs_core::{
    AuditEntry, AuditFilter, Backend, BoxFuture, CancelRequest, Claimed, Enqueued, Error, Job,
    JobFilter, JobId, JobPage, JobStatus, Leader, NewJob, Progress, PruneRequest, QueueCount,
    RequeueFilter, RequeueReport, Result, ScheduleState, ThroughputBucket, WorkerInfo,
};
use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{corrupt, db_err, BACKEND};
use super::listener::PgJobListener;
use super::outcome::OutcomeColumns;
use super::row::row_to_job;
use jobs_core::backend::{check_new_job, TransactionalEnqueue};

impl TransactionalEnqueue for PostgresBackend {
    type Connection = PgConnection;

    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<Enqueued>>> {
        Box::pin(async move {
            for job in &jobs {
                check_new_job(job)?;
            }
            self.enqueue_with(conn, jobs).await
        })
    }
}

impl Backend for PostgresBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>> {
        Box::pin(async move {
            // All or none: every job is checked before anything is sent.
            for job in &jobs {
                job.validate()?;
            }
            let mut conn = self.conns.get().await?;
            let res = self.enqueue_with(conn.get(), jobs).await;
            conn.done_mapped(res)
        })
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Claimed>> {
        Box::pin(self.claim_jobs(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>> {
        Box::pin(async move {
            if fences.is_empty() {
                return Ok(HeartbeatReply::default());
            }
            let ids: Vec<Uuid> = fences.iter().map(|f| *f.id.as_uuid()).collect();
            let tokens: Vec<i64> = fences.iter().map(|f| f.token.as_i64()).collect();
            let attempts: Vec<i32> = fences
                .iter()
                .map(|f| i32::try_from(f.attempt).unwrap_or(-1))
                .collect();
            let mut conn = self.lease_conns.get().await?;
            let res = sqlx::query_as(&self.inner.sql.heartbeat)
                .bind(ids)
                .bind(tokens)
                .bind(worker_id)
                .bind(micros(lease))
                .bind(attempts)
                .fetch_all(conn.get())
                .await;
            let kept: Vec<(Uuid, bool)> = conn.done(res)?;
            let lost = fences
                .iter()
                .map(|f| f.id)
                .filter(|id| !kept.iter().any(|k| k.0 == *id.as_uuid()))
                .collect();
            let cancel = fences
                .iter()
                .map(|f| f.id)
                .filter(|id| kept.iter().any(|k| k.0 == *id.as_uuid() && k.1))
                .collect();
            Ok(HeartbeatReply::new(lost, cancel))
        })
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            if updates.is_empty() {
                return Ok(Vec::new());
            }
            let c = OutcomeColumns::new(updates);
            let mut conn = self.conns.get().await?;
            let sql = if c.drops {
                &self.inner.sql.record_dropping
            } else {
                &self.inner.sql.record
            };
            let res = sqlx::query_scalar(sql)
                .bind(&c.ids)
                .bind(&c.tokens)
                .bind(&c.kinds)
                .bind(&c.results)
                .bind(&c.delays)
                .bind(&c.messages)
                .bind(&c.retryables)
                .bind(worker_id)
                .bind(&c.attempts)
                .fetch_all(conn.get())
                .await;
            let done: Vec<Option<Uuid>> = conn.done(res)?;
            Ok(updates
                .iter()
                .map(|u| u.fence.id)
                .filter(|id| !done.contains(&Some(*id.as_uuid())))
                .collect())
        })
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            // The maintainer's tick also keeps the count deltas few where
            // nobody asks for counts. Before the recovery, so that a failure
            // can't lose the recovered jobs from the answer.
            let res = match sqlx::query(&self.inner.sql.fold_counts)
                .execute(conn.get())
                .await
            {
                Ok(_) => {
                    sqlx::query(&self.inner.sql.recover)
                        .fetch_all(conn.get())
                        .await
                }
                Err(e) => Err(e),
            };
            let rows = conn.done(res)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let job = match row_to_job(row) {
                    Ok(job) => job,
                    // Recovered all the same (the statement did it); a claim
                    // fails it once it comes up again (see `claim.rs`). The
                    // others are still reported.
                    Err(Error::Corrupt { id, reason, .. }) => {
                        tracing::error!(
                            job_id = %id,
                            reason = %reason,
                            backend = BACKEND,
                            "corrupt job data in postgres: a job whose lease ran out was recovered, \
                             but cannot be read"
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let now: String = row.try_get("new_status").map_err(db_err)?;
                let now = now.parse().map_err(|e| corrupt(job.id, e))?;
                // The manager that recovered it logs it, with its own context.
                out.push(Recovered::new(job, now));
            }
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.get_job(id))
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if filter.is_keyset() {
                return Ok(self.list_page_now(filter).await?.jobs);
            }
            let mut conn = self.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.list)
                .bind(filter.queue.as_deref())
                .bind(filter.status.map(JobStatus::as_str))
                .bind(filter.job_type.as_deref())
                .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
                .bind(filter.cancelled)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<JobPage>> {
        Box::pin(self.list_page_now(filter))
    }

    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(self.cancel_job(id, request))
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.requeue_job(id))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.counts)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let queue: String = row.try_get("queue_name").map_err(db_err)?;
                let status: String = row.try_get("status").map_err(db_err)?;
                let count: i64 = row.try_get("n").map_err(db_err)?;
                let status = status
                    .parse()
                    .map_err(|e| corrupt(format!("(queue {queue})"), e))?;
                out.push(QueueCount::new(queue, status, count as u64));
            }
            out.sort();
            Ok(out)
        })
    }

    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let statuses: Vec<&str> = req.statuses.iter().map(|s| s.as_str()).collect();
            let mut conn = self.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.prune)
                .bind(req.before)
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .bind(statuses)
                .bind(req.queue.as_deref())
                .execute(conn.get())
                .await;
            let done = conn.done(res)?;
            Ok(done.rows_affected())
        })
    }

    fn throughput(&self, since: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<ThroughputBucket>>> {
        Box::pin(self.throughput_buckets(since))
    }

    fn requeue_many<'a>(
        &'a self,
        filter: &'a RequeueFilter,
    ) -> BoxFuture<'a, Result<RequeueReport>> {
        Box::pin(self.requeue_many_jobs(filter))
    }

    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.pause(queue))
    }

    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.resume(queue))
    }

    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.paused())
    }

    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.progress(updates))
    }

    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.register(info, ttl))
    }

    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.deregister(id))
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        Box::pin(self.live_workers())
    }

    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.lead(role, holder, ttl))
    }

    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.resign_role(role, holder))
    }

    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        Box::pin(self.leader_of(role))
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        Box::pin(self.load_schedules())
    }

    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.store_schedule(state))
    }

    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.delete(id))
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.audit(entry))
    }

    fn audit_log<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Result<Vec<AuditEntry>>> {
        Box::pin(self.audit_entries(filter))
    }

    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune_audit_log(before, limit))
    }

    /// One statement (`id = ANY($1)`), in the order of `ids`.
    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        Box::pin(self.get_many_jobs(ids))
    }

    /// Every edge in one statement: a fan-in's count is updated once per
    /// call, however many of its parents finished.
    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(self.settle_pairs(edges))
    }

    /// One conditional `UPDATE`, which notifies the released jobs' queues.
    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.release_held_jobs(ids))
    }

    fn detached(&self) -> Option<Arc<dyn Backend>> {
        Some(Arc::new(self.detach()))
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let mut listener = PgJobListener::new(self.clone(), queues.to_vec());
            // Subscribe before returning, so no signal sent after this call is missed.
            // If the database is away, the listener connects on its first wait.
            if let Err(e) = listener.ensure_connected().await {
                tracing::warn!(error = %e, "job listener could not subscribe yet; it will retry on each wait");
            }
            let listener: Box<dyn JobListener> = Box::new(listener);
            Ok(listener)
        })
    }

    /// Woken by the `finished` channel, so a handle in any process resolves
    /// as soon as its job finishes (see `finished.rs`).
    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.wait_finished_now(id, timeout))
    }
}
