//! Leases: heartbeats extend them, recovery takes back the jobs whose lease
//! ran out.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jobs_core::backend::{Fence, LeaseToken, Recovered};
use jobs_core::{Job, JobId, JobStatus, Result};
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::error::db_err;
use super::record::Transition;
use super::row::job_from_row;
use super::sql::{self, padded, UPDATE_CHUNK};
use super::time::{add_micros, now_micros};
use super::SqliteBackend;

/// Expired leases recovered per transaction.
const RECOVER_BATCH: usize = 1000;

impl SqliteBackend {
    pub(super) async fn heartbeat_now(
        &self,
        worker_id: &str,
        fences: &[Fence],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        if fences.is_empty() {
            return Ok(Vec::new());
        }
        let until = add_micros(now_micros(), lease);
        let mut kept = HashSet::with_capacity(fences.len());
        let mut conn = self.write_conn().await?;
        for chunk in fences.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let sql = sql::heartbeat(n);
            let mut q = sqlx::query(&sql).bind(until);
            for f in chunk {
                q = q.bind(*f.id.as_uuid()).bind(f.token.as_i64());
            }
            for _ in chunk.len()..n {
                q = q.bind(None::<Uuid>).bind(None::<i64>);
            }
            q = q.bind(worker_id);
            for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                kept.insert(row.try_get::<Uuid, _>(0).map_err(db_err)?);
            }
        }
        Ok(fences
            .iter()
            .map(|f| f.id)
            .filter(|id| !kept.contains(id.as_uuid()))
            .collect())
    }

    pub(super) async fn recover_now(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        loop {
            let now = now_micros();
            let mut conn = self.writer().await?;
            // The usual answer is "none": find that out without taking the write lock.
            let any: Option<i64> = sqlx::query_scalar(sql::recover_any())
                .bind(now)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
            if any.is_none() {
                return Ok(out);
            }
            self.inner.dirty.store(true, Ordering::Relaxed);
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
            let rows = sqlx::query(sql::recover_expired())
                .bind(now)
                .bind(RECOVER_BATCH as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let expired = rows
                .iter()
                .map(|r| job_from_row(r).map(|(j, _)| j))
                .collect::<Result<Vec<Job>>>()?;
            if expired.is_empty() {
                return Ok(out);
            }
            let mut transitions = Vec::with_capacity(expired.len());
            let mut statuses = Vec::with_capacity(expired.len());
            for job in &expired {
                let retry = job.retry_count < job.max_retries;
                let message = format!(
                    "lease expired: worker `{}` stopped heartbeating (lease ran out at {})",
                    job.locked_by.as_deref().unwrap_or("?"),
                    job.lease_until.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
                statuses.push(if retry {
                    JobStatus::Retrying
                } else {
                    JobStatus::DeadLetter
                });
                transitions.push(Transition {
                    id: *job.id.as_uuid(),
                    token: job.lease_token.map(LeaseToken::as_i64),
                    status: if retry { "RETRYING" } else { "DEAD_LETTER" },
                    retry_inc: i64::from(retry),
                    run_at: retry.then_some(now),
                    completed_at: (!retry).then_some(now),
                    message: Some(message),
                    retryable: true,
                    worker: job.locked_by.clone(),
                    result: None,
                });
            }
            let mut applied = HashSet::with_capacity(expired.len());
            Self::apply_transitions(&mut tx, now, &transitions, &mut applied).await?;
            tx.commit().await.map_err(db_err)?;
            drop(conn);
            let batch = expired.len();
            for (job, now_status) in expired.into_iter().zip(statuses) {
                if applied.contains(job.id.as_uuid()) {
                    // The manager that recovered it logs it, with its own context.
                    out.push(Recovered::new(job, now_status));
                }
            }
            self.wake();
            if batch < RECOVER_BATCH {
                return Ok(out);
            }
        }
    }
}
