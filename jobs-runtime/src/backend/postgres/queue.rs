//! The queue operations: [`Backend`] and [`TransactionalEnqueue`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{ClaimRequest, Fence, JobListener, LeaseToken, OutcomeUpdate, Recovered};
use jobs_core::{
    Backend, BoxFuture, Error, Job, JobFilter, JobId, JobStatus, NewJob, QueueCount, Result,
};
use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{corrupt, db_err, BACKEND};
use super::hints::Key;
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
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
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

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
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

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if req.limit == 0 || req.queues.is_empty() {
                return Ok(Vec::new());
            }
            let hints = self.inner.hints.starts(req.queues);
            // One fresh token per claim: it fences every job of this claim.
            let token = LeaseToken::random();
            let mut conn = self.lease_conns.get().await?;
            let res = sqlx::query(&self.inner.sql.claim)
                .bind(req.queues)
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .bind(req.worker_id)
                .bind(micros(req.lease))
                .bind(hints.iter().map(|h| h.map(|k| k.0)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.1)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.2)).collect::<Vec<_>>())
                .bind(token.as_i64())
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut keyed = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq: i64 = row.try_get("seq").map_err(db_err)?;
                let job = row_to_job(row)?;
                let ord = req.queues.iter().position(|q| *q == job.queue_name);
                keyed.push((ord, seq, job));
            }
            // RETURNING has no order; restore the claim order.
            keyed.sort_by(|a, b| {
                (a.0, std::cmp::Reverse(a.2.priority), a.2.run_at, a.1).cmp(&(
                    b.0,
                    std::cmp::Reverse(b.2.priority),
                    b.2.run_at,
                    b.1,
                ))
            });
            let firsts: Vec<Option<Key>> = (0..req.queues.len())
                .map(|i| {
                    keyed
                        .iter()
                        .find(|k| k.0 == Some(i))
                        .map(|(_, seq, job)| (-i64::from(job.priority), job.run_at, *seq))
                })
                .collect();
            self.inner
                .hints
                .update(req.queues, &hints, &firsts, keyed.len() < req.limit);
            Ok(keyed.into_iter().map(|(_, _, job)| job).collect())
        })
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            if fences.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<Uuid> = fences.iter().map(|f| *f.id.as_uuid()).collect();
            let tokens: Vec<i64> = fences.iter().map(|f| f.token.as_i64()).collect();
            let attempts: Vec<i32> = fences
                .iter()
                .map(|f| i32::try_from(f.attempt).unwrap_or(-1))
                .collect();
            let mut conn = self.lease_conns.get().await?;
            let res = sqlx::query_scalar(&self.inner.sql.heartbeat)
                .bind(ids)
                .bind(tokens)
                .bind(worker_id)
                .bind(micros(lease))
                .bind(attempts)
                .fetch_all(conn.get())
                .await;
            let kept: Vec<Uuid> = conn.done(res)?;
            Ok(fences
                .iter()
                .map(|f| f.id)
                .filter(|id| !kept.contains(id.as_uuid()))
                .collect())
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
            let res = sqlx::query_scalar(&self.inner.sql.record)
                .bind(&c.ids)
                .bind(&c.tokens)
                .bind(&c.statuses)
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
            let res = sqlx::query(&self.inner.sql.recover)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let job = row_to_job(row)?;
                let now: String = row.try_get("new_status").map_err(db_err)?;
                let now = now.parse().map_err(|e| corrupt(job.id, e))?;
                // The manager that recovered it logs it, with its own context.
                out.push(Recovered::new(job, now));
            }
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.get)
                .bind(id.as_uuid())
                .fetch_optional(conn.get())
                .await;
            let row = conn.done(res)?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
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

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change_one(&self.inner.sql.cancel, id, Error::cannot_cancel))
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change_one(&self.inner.sql.requeue, id, Error::cannot_requeue))
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

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.prune)
                .bind(before)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .execute(conn.get())
                .await;
            let done = conn.done(res)?;
            Ok(done.rows_affected())
        })
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
}
