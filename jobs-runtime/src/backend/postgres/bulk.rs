//! Work over many jobs at once: the throughput history (kept by the update
//! trigger, migration 6) and bulk requeue.

use chrono::{DateTime, Utc};
use jobs_core::{JobId, RequeueFilter, RequeueReport, Result, ThroughputBucket};
use sqlx::Row;
use uuid::Uuid;

use super::backend::PostgresBackend;
use super::error::db_err;

/// Jobs per batch of a bulk requeue (one statement each).
const REQUEUE_BATCH: usize = 500;

/// How often a batch is tried again when a concurrent enqueue took a unique
/// key between the batch's check and its update (the next try skips the job).
const KEY_RACE_TRIES: usize = 5;

impl PostgresBackend {
    pub(super) async fn throughput_buckets(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ThroughputBucket>> {
        let mut conn = self.conns.get().await?;
        let res = sqlx::query(&self.inner.sql.throughput)
            .bind(since)
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut out = rows
            .iter()
            .map(|r| {
                let minute: DateTime<Utc> = r.try_get(0).map_err(db_err)?;
                let queue: String = r.try_get(1).map_err(db_err)?;
                let n = |i: usize| -> Result<u64> {
                    Ok(r.try_get::<i64, _>(i).map_err(db_err)?.unsigned_abs())
                };
                Ok(ThroughputBucket::new(minute, queue).with_counts(n(2)?, n(3)?, n(4)?, n(5)?))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    pub(super) async fn requeue_many_jobs(&self, filter: &RequeueFilter) -> Result<RequeueReport> {
        filter.validate()?;
        let mut report = RequeueReport::default();
        let mut after = i64::MIN;
        loop {
            let left = filter.limit.saturating_sub(report.requeued as usize);
            if left == 0 {
                break;
            }
            let batch = left.min(REQUEUE_BATCH);
            let mut tries = 0;
            let row = loop {
                tries += 1;
                let mut conn = self.conns.get().await?;
                let res = sqlx::query(&self.inner.sql.requeue_many)
                    .bind(filter.status.as_str())
                    .bind(after)
                    .bind(i64::try_from(batch).unwrap_or(i64::MAX))
                    .bind(filter.queue.as_deref())
                    .bind(filter.job_type.as_deref())
                    .fetch_one(conn.get())
                    .await;
                let raced = matches!(&res, Err(e) if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()
                        && d.constraint() == Some("jobs_unique_idx")));
                if raced && tries < KEY_RACE_TRIES {
                    conn.done(Ok(()))?;
                    continue;
                }
                break conn.done(res)?;
            };
            let seen: i64 = row.try_get("seen").map_err(db_err)?;
            let last: Option<i64> = row.try_get("last").map_err(db_err)?;
            let requeued: i64 = row.try_get("requeued").map_err(db_err)?;
            let skipped: Vec<Uuid> = row.try_get("skipped").map_err(db_err)?;
            report.requeued += requeued.unsigned_abs();
            report
                .skipped_unique
                .extend(skipped.into_iter().map(JobId::from_uuid));
            match last {
                Some(last) if seen.unsigned_abs() as usize >= batch => after = last,
                _ => break,
            }
        }
        Ok(report)
    }
}
