//! Leases: heartbeats extend them, recovery takes back the jobs whose lease
//! ran out.

use std::collections::HashSet;
use std::time::Duration;

use jobs_core::backend::{Fence, HeartbeatReply, LeaseToken, Recovered};
use jobs_core::{BoxFuture, Job, JobId, JobStatus, Result};
use sqlx::{Connection, Row, SqliteConnection};
use uuid::Uuid;

use super::claim::fail_unreadable;
use super::error::db_err;
use super::record::Transition;
use super::row::JobRows;
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
    ) -> Result<HeartbeatReply> {
        if fences.is_empty() {
            return Ok(HeartbeatReply::default());
        }
        let until = add_micros(now_micros(), lease);
        let worker = worker_id.to_owned();
        let leases: Vec<(Uuid, i64)> = fences
            .iter()
            .map(|f| (*f.id.as_uuid(), f.token.as_i64()))
            .collect();
        let (kept, cancel) = self
            .write(move |conn| {
                Box::pin(async move {
                    let mut kept = HashSet::with_capacity(leases.len());
                    let mut cancel = Vec::new();
                    for chunk in leases.chunks(UPDATE_CHUNK) {
                        let n = padded(chunk.len());
                        let sql = sql::heartbeat(n);
                        let mut q = sqlx::query(&sql).bind(until);
                        for (id, token) in chunk {
                            q = q.bind(*id).bind(*token);
                        }
                        for _ in chunk.len()..n {
                            q = q.bind(None::<Uuid>).bind(None::<i64>);
                        }
                        q = q.bind(worker.as_str());
                        for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                            let id = row.try_get::<Uuid, _>(0).map_err(db_err)?;
                            if row.try_get::<bool, _>(1).map_err(db_err)? {
                                cancel.push(JobId::from_uuid(id));
                            }
                            kept.insert(id);
                        }
                    }
                    Ok((kept, cancel))
                })
            })
            .await?;
        let lost = fences
            .iter()
            .map(|f| f.id)
            .filter(|id| !kept.contains(id.as_uuid()))
            .collect();
        Ok(HeartbeatReply::new(lost, cancel))
    }

    pub(super) async fn recover_now(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        loop {
            let now = now_micros();
            // The usual answer is "none": find that out with a read, without
            // taking the writer.
            let any = self
                .read_optional(sql::recover_any().into(), move |q| q.bind(now))
                .await?;
            if any.is_none() {
                return Ok(out);
            }
            let (batch, recovered) = self.write(move |conn| recover_batch(conn, now)).await?;
            if !recovered.is_empty() {
                self.ended_limited(recovered.iter().map(|r| r.job.id.as_uuid()));
                self.wake();
            }
            // The manager that recovered them logs them, with its own context.
            out.extend(recovered);
            if batch < RECOVER_BATCH {
                return Ok(out);
            }
        }
    }
}

/// Recovers up to [`RECOVER_BATCH`] jobs whose lease ran out before `now`, in
/// one short `BEGIN IMMEDIATE` transaction: returns how many had expired and
/// the ones recovered.
fn recover_batch(
    conn: &mut SqliteConnection,
    now: i64,
) -> BoxFuture<'_, Result<(usize, Vec<Recovered>)>> {
    Box::pin(async move {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        let rows = sqlx::query(sql::recover_expired())
            .bind(now)
            .bind(RECOVER_BATCH as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let rows = JobRows::of(&rows)?;
        // Rows that cannot be read cannot be retried either: they fail
        // for good, and the others are recovered as ever.
        fail_unreadable(&mut tx, &rows.corrupt, now, None).await?;
        let unreadable = rows.corrupt.len();
        let expired: Vec<Job> = rows.jobs.into_iter().map(|(j, _)| j).collect();
        if expired.is_empty() {
            tx.commit().await.map_err(db_err)?;
            return Ok((unreadable, Vec::new()));
        }
        let mut transitions = Vec::with_capacity(expired.len());
        let mut statuses = Vec::with_capacity(expired.len());
        for job in &expired {
            let cancelled = job.cancelled_at.is_some();
            let retry = !cancelled && job.retry_count < job.max_retries;
            let message = format!(
                "lease expired: worker `{}` stopped heartbeating (lease ran out at {})",
                job.locked_by.as_deref().unwrap_or("?"),
                job.lease_until.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
            let (status, name) = match (cancelled, retry) {
                // Its cancellation was requested: it ends cancelled.
                (true, _) => (JobStatus::Failed, "FAILED"),
                (false, true) => (JobStatus::Retrying, "RETRYING"),
                (false, false) => (JobStatus::DeadLetter, "DEAD_LETTER"),
            };
            statuses.push(status);
            let mut t = Transition::to(
                *job.id.as_uuid(),
                job.lease_token.map(LeaseToken::as_i64),
                name,
            );
            t.retry_inc = i64::from(retry);
            t.run_at = retry.then_some(now);
            t.completed_at = (!retry).then_some(now);
            t.message = Some(message);
            t.retryable = true;
            t.worker = job.locked_by.clone();
            if cancelled {
                t.cancel_at = Some(now);
                t.force_cancel = true;
            }
            transitions.push(t);
        }
        let mut applied = HashSet::with_capacity(expired.len());
        SqliteBackend::apply_transitions(&mut tx, now, &transitions, &mut applied).await?;
        tx.commit().await.map_err(db_err)?;
        let batch = expired.len() + unreadable;
        let recovered = expired
            .into_iter()
            .zip(statuses)
            .filter(|(job, _)| applied.contains(job.id.as_uuid()))
            .map(|(job, now_status)| Recovered::new(job, now_status))
            .collect();
        Ok((batch, recovered))
    })
}
