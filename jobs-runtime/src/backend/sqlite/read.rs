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
        let id = *id.as_uuid();
        let row = self
            .read_optional(sql::get().into(), move |q| q.bind(id))
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
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let queue = filter.queue.clone();
        let status = filter.status.map(JobStatus::as_str);
        let job_type = filter.job_type.clone();
        let rows = self
            .read_all(sql.into(), move |q| {
                q.bind(limit)
                    .bind(offset)
                    .bind(queue)
                    .bind(status)
                    .bind(job_type)
            })
            .await?;
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
        let now = now_micros();
        let queues = queues.to_vec();
        let row = self
            .read_optional(sql.into(), move |q| {
                queues
                    .into_iter()
                    .fold(q.bind(now), |q, queue| q.bind(queue))
            })
            .await?;
        let due: Option<i64> = match row {
            Some(row) => row.try_get(0).map_err(db_err)?,
            None => None,
        };
        Ok(due.map(from_micros))
    }
}
