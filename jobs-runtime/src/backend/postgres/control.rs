//! Operator controls: cancelling (running jobs too), requeue under unique
//! keys, deletion, paused queues, progress.
//!
//! A running job's cancellation is a mark (`cancelled_at`) plus a `NOTIFY`
//! with the token `!cancel`: listeners then report
//! `take_cancel_signal`, and the worker learns which job from its
//! heartbeat's reply. Resuming a queue notifies its name, waking its
//! listeners at once (and the `!` token: their timers, which left the
//! paused queue out, are read again).

use jobs_core::backend::Fence;
use jobs_core::{CancelRequest, Error, Job, JobId, JobStatus, Progress, Result};
use serde_json::Value;
use uuid::Uuid;

use super::backend::PostgresBackend;
use super::row::row_to_job;

/// The NOTIFY token that says a running job's cancellation was requested.
pub(super) const CANCEL_TOKEN: &str = "!cancel";

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
    pub(super) async fn exec_text(&self, sql: &str, value: &str) -> Result<()> {
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
        // Like a heartbeat: a report lost in a database crash is replaced by the next.
        let mut conn = self.lease_conns.get().await?;
        let res = sqlx::query(&self.inner.sql.progress)
            .bind(ids)
            .bind(tokens)
            .bind(values)
            .execute(conn.get())
            .await;
        conn.done(res).map(drop)
    }
}
