//! Decoding rows into jobs.

use jobs_core::backend::LeaseToken;
use std::time::Duration;

use jobs_core::{ConcurrencyLimit, Job, JobId, JobLimits, RateLimit, Result, Timeout};

use super::error::{corrupt, db_err};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

fn to_u32(id: Uuid, name: &str, v: i32) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(id, format!("{name} is {v}")))
}

pub(super) fn row_to_job(row: &PgRow) -> Result<Job> {
    let id: Uuid = row.try_get("id").map_err(db_err)?;
    let get_err = |e: sqlx::Error| corrupt(id, e);
    let status: String = row.try_get("status").map_err(get_err)?;
    let errors: Value = row.try_get("errors").map_err(get_err)?;
    let metadata: Value = row.try_get("metadata").map_err(get_err)?;
    let mut job = Job::new(
        JobId::from_uuid(id),
        row.try_get::<String, _>("job_type").map_err(get_err)?,
        row.try_get("payload").map_err(get_err)?,
    );
    job.queue_name = row.try_get("queue_name").map_err(get_err)?;
    job.status = status.parse().map_err(|e| corrupt(id, e))?;
    job.priority = row.try_get("priority").map_err(get_err)?;
    job.retry_count = to_u32(
        id,
        "retry_count",
        row.try_get("retry_count").map_err(get_err)?,
    )?;
    job.max_retries = to_u32(
        id,
        "max_retries",
        row.try_get("max_retries").map_err(get_err)?,
    )?;
    job.run_at = row.try_get("run_at").map_err(get_err)?;
    job.created_at = row.try_get("created_at").map_err(get_err)?;
    job.started_at = row.try_get("started_at").map_err(get_err)?;
    job.completed_at = row.try_get("completed_at").map_err(get_err)?;
    job.error_message = row.try_get("error_message").map_err(get_err)?;
    job.errors = serde_json::from_value(errors).map_err(|e| corrupt(id, e))?;
    job.result_data = row.try_get("result_data").map_err(get_err)?;
    job.metadata = match metadata {
        Value::Object(m) => m,
        other => return Err(corrupt(id, format!("metadata is not an object: {other}"))),
    };
    job.locked_by = row.try_get("locked_by").map_err(get_err)?;
    job.lease_until = row.try_get("lease_until").map_err(get_err)?;
    job.attempt = to_u32(id, "attempt", row.try_get("attempt").map_err(get_err)?)?;
    job.lease_token = row
        .try_get::<Option<i64>, _>("lease_token")
        .map_err(get_err)?
        .map(LeaseToken::from_i64);
    job.error_count = to_u32(
        id,
        "error_count",
        row.try_get("error_count").map_err(get_err)?,
    )?;
    job.cancelled_at = row.try_get("cancelled_at").map_err(get_err)?;
    job.timeout = match row
        .try_get::<Option<i64>, _>("timeout_ms")
        .map_err(get_err)?
    {
        None => None,
        Some(ms) => Some(Timeout::from_millis(
            u64::try_from(ms).map_err(|_| corrupt(id, format!("timeout_ms is {ms}")))?,
        )),
    };
    job.snoozes = to_u32(id, "snoozes", row.try_get("snoozes").map_err(get_err)?)?;
    job.progress = row
        .try_get::<Option<Value>, _>("progress")
        .map_err(get_err)?
        .map(|p| serde_json::from_value(p).map_err(|e| corrupt(id, e)))
        .transpose()?;
    job.unique_key = row.try_get("unique_key").map_err(get_err)?;
    job.limits = limits(row).map_err(get_err)?;
    Ok(job)
}

/// A job's limits from their columns.
fn limits(row: &PgRow) -> std::result::Result<JobLimits, sqlx::Error> {
    let mut limits = JobLimits::none();
    let conc_key: Option<String> = row.try_get("conc_key")?;
    if let Some(key) = conc_key {
        let max: Option<i32> = row.try_get("conc_max")?;
        let max = max.and_then(|m| u32::try_from(m).ok()).unwrap_or(1);
        limits = limits.concurrency(ConcurrencyLimit::new(key, max));
    }
    let rate_key: Option<String> = row.try_get("rate_key")?;
    if let Some(key) = rate_key {
        let max: Option<i32> = row.try_get("rate_max")?;
        let per: Option<i64> = row.try_get("rate_per_us")?;
        let max = max.and_then(|m| u32::try_from(m).ok()).unwrap_or(1);
        let per = Duration::from_micros(per.and_then(|p| u64::try_from(p).ok()).unwrap_or(0));
        limits = limits.rate(RateLimit::new(key, max, per));
    }
    let seq_key: Option<String> = row.try_get("seq_key")?;
    if let Some(key) = seq_key {
        limits = limits.sequence(key);
    }
    Ok(limits)
}
