//! Work over many jobs at once: the throughput history (kept by a trigger,
//! migration 5) and bulk requeue.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jobs_core::{
    JobId, RequeueFilter, RequeueReport, Result, ThroughputBucket, THROUGHPUT_RETENTION,
};
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::error::db_err;
use super::sql;
use super::time::{from_micros, micros, now_micros};
use super::SqliteBackend;

/// Jobs per batch of a bulk requeue: each batch is one transaction on the
/// writer, so other writes wait at most one batch.
const REQUEUE_BATCH: usize = 500;

impl SqliteBackend {
    pub(super) async fn throughput_now(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ThroughputBucket>> {
        let since = micros(since);
        let rows = self
            .read_all(sql::throughput().into(), move |q| q.bind(since))
            .await?;
        rows.iter()
            .map(|r| {
                let minute: i64 = r.try_get(0).map_err(db_err)?;
                let queue: String = r.try_get(1).map_err(db_err)?;
                let n = |i: usize| -> Result<u64> {
                    Ok(r.try_get::<i64, _>(i).map_err(db_err)?.unsigned_abs())
                };
                Ok(
                    ThroughputBucket::new(from_micros(minute), queue).with_counts(
                        n(2)?,
                        n(3)?,
                        n(4)?,
                        n(5)?,
                    ),
                )
            })
            .collect()
    }

    /// Drops the throughput buckets older than [`THROUGHPUT_RETENTION`].
    pub(super) async fn prune_throughput_now(&self) -> Result<()> {
        let keep = i64::try_from(THROUGHPUT_RETENTION.as_micros()).unwrap_or(i64::MAX);
        let before = now_micros().saturating_sub(keep);
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(sql::prune_throughput())
                    .bind(before)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn requeue_many_now(&self, filter: &RequeueFilter) -> Result<RequeueReport> {
        filter.validate()?;
        let mut report = RequeueReport::default();
        let mut after = i64::MIN;
        loop {
            let left = filter.limit.saturating_sub(report.requeued as usize);
            if left == 0 {
                break;
            }
            let batch = left.min(REQUEUE_BATCH);
            let status = filter.status.as_str();
            let queue = filter.queue.clone();
            let job_type = filter.job_type.clone();
            let now = now_micros();
            let (seen, last, requeued, skipped) = self
                .write(move |conn| {
                    Box::pin(async move {
                        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
                        let cands = sqlx::query(sql::requeue_candidates())
                            .bind(status)
                            .bind(after)
                            .bind(limit)
                            .bind(queue.as_deref())
                            .bind(job_type.as_deref())
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        let done = sqlx::query(sql::requeue_many())
                            .bind(status)
                            .bind(after)
                            .bind(limit)
                            .bind(queue.as_deref())
                            .bind(job_type.as_deref())
                            .bind(now)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        tx.commit().await.map_err(db_err)?;
                        let done: HashSet<Uuid> = done
                            .iter()
                            .map(|r| r.try_get::<Uuid, _>(0).map_err(db_err))
                            .collect::<Result<_>>()?;
                        let mut last = after;
                        let mut skipped = Vec::new();
                        for r in &cands {
                            last = r.try_get(0).map_err(db_err)?;
                            let id: Uuid = r.try_get(1).map_err(db_err)?;
                            if !done.contains(&id) {
                                skipped.push(JobId::from_uuid(id));
                            }
                        }
                        Ok((cands.len(), last, done.len(), skipped))
                    })
                })
                .await?;
            report.requeued += requeued as u64;
            report.skipped_unique.extend(skipped);
            if requeued > 0 {
                self.wake();
            }
            if seen < batch {
                break;
            }
            after = last;
        }
        Ok(report)
    }
}
