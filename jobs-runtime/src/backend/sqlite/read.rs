//! Reads: one job, a filtered page of jobs, the next due time.

use chrono::{DateTime, Utc};
use jobs_core::{Job, JobFilter, JobId, JobStatus, Result};
use sqlx::Row;

use super::error::db_err;
use super::row::job_from_row;
use super::sql;
use super::time::{from_micros, now_micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn fetch_job(&self, id: JobId) -> Result<Option<Job>> {
        let row = self
            .read_optional(sqlx::query(sql::get()).bind(*id.as_uuid()))
            .await?;
        row.as_ref()
            .map(|r| job_from_row(r).map(|(j, _)| j))
            .transpose()
    }

    pub(super) async fn list_now(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let sql = sql::list(
            filter.queue.is_some(),
            filter.status.is_some(),
            filter.job_type.is_some(),
            filter.cancelled,
        );
        let rows = sqlx::query(&sql)
            .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
            .bind(filter.queue.as_deref())
            .bind(filter.status.map(JobStatus::as_str))
            .bind(filter.job_type.as_deref());
        let rows = self.read_all(rows).await?;
        rows.iter()
            .map(|r| job_from_row(r).map(|(j, _)| j))
            .collect()
    }

    /// The earliest `run_at` in the future among waiting jobs of `queues`.
    pub(super) async fn next_due(&self, queues: &[String]) -> Result<Option<DateTime<Utc>>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let sql = sql::next_due(queues.len());
        let mut q = sqlx::query(&sql).bind(now_micros());
        for queue in queues {
            q = q.bind(queue.as_str());
        }
        let row = self.read_optional(q).await?;
        let due: Option<i64> = match row {
            Some(row) => row.try_get(0).map_err(db_err)?,
            None => None,
        };
        Ok(due.map(from_micros))
    }
}
