//! Decoding a `jobs_queue` row, its columns in the order of `sql::JOB_COLS`,
//! into a [`Job`].

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::LeaseToken;
use jobs_core::{
    AttemptError, ConcurrencyLimit, Error, Job, JobId, JobLimits, JobStatus, RateLimit, Result,
    Timeout,
};
use serde_json::{Map, Value};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use super::error::{db_err, BACKEND};
use super::time::from_micros;

pub(super) fn job_from_row(row: &SqliteRow) -> Result<(Job, i64)> {
    let raw_id: Uuid = row.try_get(0).map_err(db_err)?;
    let id = JobId::from_uuid(raw_id);
    let corrupt = |reason: String| Error::Corrupt {
        backend: BACKEND,
        id: id.to_string(),
        reason,
    };
    let get_err = |e: sqlx::Error| corrupt(e.to_string());
    let json = |col: usize, what: &str| -> Result<Option<Value>> {
        let text: Option<&str> = row.try_get(col).map_err(get_err)?;
        text.map(|t| serde_json::from_str(t).map_err(|e| corrupt(format!("{what}: {e}"))))
            .transpose()
    };
    let status: &str = row.try_get(4).map_err(get_err)?;
    let status = JobStatus::from_str(status).map_err(|e| corrupt(e.to_string()))?;
    let errors: Vec<AttemptError> = match row.try_get::<Option<&str>, _>(13).map_err(get_err)? {
        Some(t) => serde_json::from_str(t).map_err(|e| corrupt(format!("errors: {e}")))?,
        None => Vec::new(),
    };
    let metadata: Map<String, Value> = match json(15, "metadata")? {
        Some(Value::Object(m)) => m,
        Some(other) => return Err(corrupt(format!("metadata is not an object: {other}"))),
        None => Map::new(),
    };
    let ts = |col: usize| -> Result<Option<DateTime<Utc>>> {
        Ok(row
            .try_get::<Option<i64>, _>(col)
            .map_err(get_err)?
            .map(from_micros))
    };
    let int = |col: usize| -> Result<i64> { row.try_get::<i64, _>(col).map_err(get_err) };
    let u32_col = |col: usize| -> Result<u32> {
        u32::try_from(int(col)?).map_err(|e| corrupt(format!("column {col}: {e}")))
    };
    let mut job = Job::new(
        id,
        row.try_get::<String, _>(2).map_err(get_err)?,
        json(3, "payload")?.unwrap_or(Value::Null),
    );
    job.queue_name = row.try_get(1).map_err(get_err)?;
    job.status = status;
    job.priority = i32::try_from(int(5)?).map_err(|e| corrupt(format!("priority: {e}")))?;
    job.retry_count = u32_col(6)?;
    job.max_retries = u32_col(7)?;
    job.run_at = from_micros(int(8)?);
    job.created_at = from_micros(int(9)?);
    job.started_at = ts(10)?;
    job.completed_at = ts(11)?;
    job.error_message = row.try_get(12).map_err(get_err)?;
    job.errors = errors;
    job.result_data = json(14, "result_data")?;
    job.metadata = metadata;
    job.locked_by = row.try_get(16).map_err(get_err)?;
    job.lease_until = ts(17)?;
    job.attempt = u32_col(18)?;
    job.lease_token = row
        .try_get::<Option<i64>, _>(20)
        .map_err(get_err)?
        .map(LeaseToken::from_i64);
    job.error_count = u32_col(21)?;
    job.cancelled_at = ts(22)?;
    job.timeout = row
        .try_get::<Option<i64>, _>(23)
        .map_err(get_err)?
        .map(|ms| {
            u64::try_from(ms)
                .map(Timeout::from_millis)
                .map_err(|_| corrupt(format!("timeout_ms is negative: {ms}")))
        })
        .transpose()?;
    job.snoozes = u32_col(24)?;
    job.progress = json(25, "progress")?
        .map(|v| serde_json::from_value(v).map_err(|e| corrupt(format!("progress: {e}"))))
        .transpose()?;
    job.unique_key = row.try_get(26).map_err(get_err)?;
    job.limits = limits_of(row).map_err(|e| corrupt(e.to_string()))?;
    Ok((job, int(19)?))
}

/// The job's limits, from their columns (24 onwards in `sql::JOB_COLS`).
fn limits_of(row: &SqliteRow) -> std::result::Result<JobLimits, sqlx::Error> {
    let text = |col: usize| row.try_get::<Option<String>, _>(col);
    let count = |col: usize| -> std::result::Result<u32, sqlx::Error> {
        let v = row.try_get::<Option<i64>, _>(col)?.unwrap_or(0);
        u32::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let mut limits = JobLimits::none();
    if let Some(key) = text(27)? {
        limits = limits.concurrency(ConcurrencyLimit::new(key, count(28)?));
    }
    if let Some(key) = text(29)? {
        let per = row.try_get::<Option<i64>, _>(31)?.unwrap_or(0);
        let per = Duration::from_millis(u64::try_from(per).unwrap_or(0));
        limits = limits.rate(RateLimit::new(key, count(30)?, per));
    }
    if let Some(key) = text(32)? {
        limits = limits.sequence(key);
    }
    Ok(limits)
}
