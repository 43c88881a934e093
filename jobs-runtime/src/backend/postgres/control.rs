//! Operator controls and cluster coordination: cancelling (running jobs
//! too), requeue under unique keys, deletion, paused queues, progress, the
//! worker registry, leadership, schedules and the audit log.
//!
//! A running job's cancellation is a mark (`cancelled_at`) plus a `NOTIFY`
//! with the token `!cancel`: listeners then report
//! `take_cancel_signal`, and the worker learns which job from its
//! heartbeat's reply. Resuming a queue notifies its name, waking its
//! listeners at once. Roles are leased by the database's clock: an upsert
//! that takes the role only if it is free, expired or already the
//! caller's, checked on the newest row version under the row lock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::Fence;
use jobs_core::{
    AuditEntry, AuditFilter, CancelRequest, Error, Job, JobId, JobStatus, Leader, Progress, Result,
    ScheduleState, WorkerInfo,
};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{corrupt, db_err};
use super::row::row_to_job;

/// The NOTIFY token that says a running job's cancellation was requested.
pub(super) const CANCEL_TOKEN: &str = "!cancel";

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresBackend {
    pub(super) async fn cancel_job(&self, id: JobId, request: &CancelRequest) -> Result<Job> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.cancel)
            .bind(id.as_uuid())
            .bind(request.message())
            .fetch_optional(conn.get())
            .await;
        let row = conn.done(res)?;
        let job = match row {
            Some(row) => row_to_job(&row)?,
            None => {
                return match self.status_of(id).await? {
                    None => Err(Error::NotFound(id)),
                    Some(from) => Err(Error::cannot_cancel(id, from)),
                }
            }
        };
        if job.status == JobStatus::Running {
            // Its worker's listener hears it (and heartbeats at once).
            self.notify(CANCEL_TOKEN).await?;
        }
        Ok(job)
    }

    pub(super) async fn notify(&self, payload: &str) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.notify)
            .bind(payload)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    /// Requeue; the unique index refuses it if another job took the key.
    pub(super) async fn requeue_job(&self, id: JobId) -> Result<Job> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.requeue)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let taken = matches!(&res, Err(e) if e.as_database_error()
            .is_some_and(|d| d.is_unique_violation() && d.constraint() == Some("jobs_unique_idx")));
        if taken {
            conn.done(Ok(()))?;
            return Err(self.key_taken(id).await);
        }
        match conn.done(res)? {
            Some(row) => row_to_job(&row),
            None => match self.status_of(id).await? {
                None => Err(Error::NotFound(id)),
                Some(from) => Err(Error::cannot_requeue(id, from)),
            },
        }
    }

    /// The error for a requeue of `id` refused because its key is held.
    async fn key_taken(&self, id: JobId) -> Error {
        let holder = async {
            let job = self.get_job(id).await?.ok_or(Error::NotFound(id))?;
            let key = job.unique_key.unwrap_or_default();
            let mut conn = self.conns.get().await?;
            let res = self.holders(conn.get(), &[(0, key)]).await;
            let holders = conn.done_mapped(res)?;
            Ok::<_, Error>(holders.first().map(|h| h.1))
        };
        match holder.await {
            Ok(Some(holder)) => Error::UniqueKeyTaken { id, holder },
            // The holder finished meanwhile: the caller may try again.
            Ok(None) => Error::backend_msg(
                super::error::BACKEND,
                jobs_core::BackendErrorKind::Transient,
                format!("the unique key of job {id} was taken; try again"),
            ),
            Err(e) => e,
        }
    }

    pub(super) async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.get)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let row = conn.done(res)?;
        row.as_ref().map(row_to_job).transpose()
    }

    pub(super) async fn delete(&self, id: JobId) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.delete)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        if conn.done(res)?.is_some() {
            return Ok(());
        }
        match self.status_of(id).await? {
            None => Err(Error::NotFound(id)),
            Some(from) => Err(Error::cannot_delete(id, from)),
        }
    }

    /// A statement binding one text, returning nothing of interest.
    async fn exec_text(&self, sql: &str, value: &str) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(sql).bind(value).fetch_all(conn.get()).await;
        conn.done(res).map(drop)
    }

    pub(super) async fn pause(&self, queue: &str) -> Result<()> {
        self.exec_text(&self.inner.sql.pause, queue).await
    }

    pub(super) async fn resume(&self, queue: &str) -> Result<()> {
        self.exec_text(&self.inner.sql.resume, queue).await
    }

    pub(super) async fn paused(&self) -> Result<Vec<String>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query_scalar(&self.inner.sql.paused)
            .fetch_all(conn.get())
            .await;
        conn.done(res)
    }

    pub(super) async fn progress(&self, updates: &[(Fence, Progress)]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = updates.iter().map(|(f, _)| *f.id.as_uuid()).collect();
        let tokens: Vec<i64> = updates.iter().map(|(f, _)| f.token.as_i64()).collect();
        let values = updates
            .iter()
            .map(|(_, p)| serde_json::to_value(p))
            .collect::<std::result::Result<Vec<Value>, _>>()
            .map_err(|e| Error::InvalidJob(format!("progress is not JSON: {e}")))?;
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.progress)
            .bind(ids)
            .bind(tokens)
            .bind(values)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn register(&self, info: &WorkerInfo, ttl: Duration) -> Result<()> {
        let value = serde_json::to_value(info)
            .map_err(|e| Error::InvalidJob(format!("worker info is not JSON: {e}")))?;
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.register_worker)
            .bind(&info.id)
            .bind(value)
            .bind(micros(ttl))
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn deregister(&self, id: &str) -> Result<()> {
        self.exec_text(&self.inner.sql.deregister_worker, id).await
    }

    pub(super) async fn live_workers(&self) -> Result<Vec<WorkerInfo>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.workers)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let info: Value = row.try_get("info").map_err(db_err)?;
            let mut info: WorkerInfo =
                serde_json::from_value(info).map_err(|e| corrupt("(worker)", e))?;
            info.last_seen = row.try_get("last_seen").map_err(db_err)?;
            out.push(info);
        }
        Ok(out)
    }

    pub(super) async fn lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.try_lead)
            .bind(role)
            .bind(holder)
            .bind(micros(ttl))
            .fetch_optional(conn.get())
            .await;
        Ok(conn.done(res)?.is_some())
    }

    pub(super) async fn resign_role(&self, role: &str, holder: &str) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.resign)
            .bind(role)
            .bind(holder)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn leader_of(&self, role: &str) -> Result<Option<Leader>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.leader)
            .bind(role)
            .fetch_optional(conn.get())
            .await;
        let Some(row) = conn.done(res)? else {
            return Ok(None);
        };
        let holder: String = row.try_get("holder").map_err(db_err)?;
        let until: DateTime<Utc> = row.try_get("until").map_err(db_err)?;
        Ok(Some(Leader::new(holder, until)))
    }

    pub(super) async fn load_schedules(&self) -> Result<Vec<ScheduleState>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.schedules)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("name").map_err(db_err)?;
            let cron: String = row.try_get("cron").map_err(db_err)?;
            let timezone: String = row.try_get("timezone").map_err(db_err)?;
            let mut s = ScheduleState::new(name, cron, timezone);
            s.last_tick = row.try_get("last_tick").map_err(db_err)?;
            s.last_job = row
                .try_get::<Option<Uuid>, _>("last_job")
                .map_err(db_err)?
                .map(JobId::from_uuid);
            s.next_tick = row.try_get("next_tick").map_err(db_err)?;
            s.updated_at = row.try_get("updated_at").map_err(db_err)?;
            out.push(s);
        }
        Ok(out)
    }

    pub(super) async fn store_schedule(&self, s: &ScheduleState) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.save_schedule)
            .bind(&s.name)
            .bind(&s.cron)
            .bind(&s.timezone)
            .bind(s.last_tick)
            .bind(s.last_job.map(|id| *id.as_uuid()))
            .bind(s.next_tick)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn audit(&self, e: &AuditEntry) -> Result<()> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.append_audit)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(e.ok)
            .bind(&e.detail)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }

    pub(super) async fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.audit_log)
            .bind(f.before)
            .bind(limit(f.limit))
            .bind(limit(f.offset))
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let actor: String = row.try_get("actor").map_err(db_err)?;
            let action: String = row.try_get("action").map_err(db_err)?;
            let target: String = row.try_get("target").map_err(db_err)?;
            let ok: bool = row.try_get("ok").map_err(db_err)?;
            let detail: String = row.try_get("detail").map_err(db_err)?;
            let at: DateTime<Utc> = row.try_get("at").map_err(db_err)?;
            out.push(AuditEntry::new(actor, action, target).at(at).result(if ok {
                Ok(detail)
            } else {
                Err(detail)
            }));
        }
        Ok(out)
    }

    pub(super) async fn prune_audit_log(&self, before: DateTime<Utc>, n: usize) -> Result<u64> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.prune_audit)
            .bind(before)
            .bind(limit(n))
            .execute(conn.get())
            .await;
        Ok(conn.done(res)?.rows_affected())
    }
}
