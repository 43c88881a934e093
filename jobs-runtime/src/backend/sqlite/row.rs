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

use super::error::BACKEND;
use super::time::from_micros;

/// Read access to the columns of a row, whichever connection returned it
/// (sqlx's or the writer's native one): `None` for NULL, an error naming
/// the column for a value of another type.
pub(super) trait Cols {
    fn text(&self, col: usize) -> std::result::Result<Option<&str>, String>;
    fn int(&self, col: usize) -> std::result::Result<Option<i64>, String>;
    fn uuid(&self, col: usize) -> std::result::Result<Uuid, String>;
}

impl Cols for SqliteRow {
    fn text(&self, col: usize) -> std::result::Result<Option<&str>, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    fn int(&self, col: usize) -> std::result::Result<Option<i64>, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }

    fn uuid(&self, col: usize) -> std::result::Result<Uuid, String> {
        self.try_get(col).map_err(|e| e.to_string())
    }
}

/// The rows a claim (or a recovery) statement returned: the jobs, and the
/// rows that could not be read as jobs (a value written past this backend),
/// which it fails instead of delivering (or recovering) them — see
/// `claim.rs`, `lease.rs` and `sql/fail_corrupt.sql` — so that one
/// unreadable row never stops its queue, nor the recovery of the others.
#[derive(Debug, Default)]
pub(super) struct JobRows {
    pub(super) jobs: Vec<(Job, i64)>,
    pub(super) corrupt: Vec<CorruptRow>,
}

/// A claimed row that could not be read as a job.
#[derive(Debug)]
pub(super) struct CorruptRow {
    pub(super) seq: i64,
    /// Its id as far as it could be read (`?` if not at all).
    pub(super) id: String,
    pub(super) reason: String,
    /// Whether the claim leased it (else the statement returned it
    /// unchanged, held back for the limited path).
    pub(super) running: bool,
    /// Its lease token, as far as it could be read.
    pub(super) token: Option<i64>,
}

impl JobRows {
    /// Reads `row` as a job, or notes it as corrupt. An error only if not
    /// even its `seq` could be read (then nothing could address it).
    pub(super) fn push(&mut self, row: &impl Cols) -> Result<()> {
        match job_from_cols(row) {
            Ok(job) => self.jobs.push(job),
            Err(Error::Corrupt { id, reason, .. }) => {
                let seq = row.int(19).ok().flatten().ok_or_else(|| Error::Corrupt {
                    backend: BACKEND,
                    id: id.clone(),
                    reason: reason.clone(),
                })?;
                let running = matches!(row.text(4), Ok(Some("RUNNING")));
                let token = row.int(20).ok().flatten();
                self.corrupt.push(CorruptRow {
                    seq,
                    id,
                    reason,
                    running,
                    token,
                });
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Every row of `rows`.
    pub(super) fn of<'r, C: Cols + 'r>(rows: impl IntoIterator<Item = &'r C>) -> Result<Self> {
        let mut out = JobRows::default();
        for row in rows {
            out.push(row)?;
        }
        Ok(out)
    }

    /// Whether the statement returned some row unchanged (not leased): a
    /// candidate with limits of its own sends the claim to the limited path.
    pub(super) fn held(&self) -> bool {
        self.jobs
            .iter()
            .any(|(j, _)| j.status != JobStatus::Running)
            || self.corrupt.iter().any(|c| !c.running)
    }
}

/// A job and its `seq` from a row of `sql::JOB_COLS`, as sqlx returns it.
pub(super) fn job_from_row(row: &SqliteRow) -> Result<(Job, i64)> {
    job_from_cols(row)
}

/// A job and its `seq` from a row of `sql::JOB_COLS`.
pub(super) fn job_from_cols(row: &impl Cols) -> Result<(Job, i64)> {
    let raw_id: Uuid = row.uuid(0).map_err(|e| Error::Corrupt {
        backend: BACKEND,
        id: "?".to_owned(),
        reason: e,
    })?;
    let id = JobId::from_uuid(raw_id);
    let corrupt = |reason: String| Error::Corrupt {
        backend: BACKEND,
        id: id.to_string(),
        reason,
    };
    let text = |col: usize| row.text(col).map_err(corrupt);
    let json = |col: usize, what: &str| -> Result<Option<Value>> {
        text(col)?
            .map(|t| serde_json::from_str(t).map_err(|e| corrupt(format!("{what}: {e}"))))
            .transpose()
    };
    let opt_int = |col: usize| row.int(col).map_err(corrupt);
    let int = |col: usize| -> Result<i64> {
        opt_int(col)?.ok_or_else(|| corrupt(format!("column {col} is NULL")))
    };
    let required = |col: usize| -> Result<&str> {
        text(col)?.ok_or_else(|| corrupt(format!("column {col} is NULL")))
    };
    let status = JobStatus::from_str(required(4)?).map_err(|e| corrupt(e.to_string()))?;
    let errors: Vec<AttemptError> = match text(13)? {
        Some(t) => serde_json::from_str(t).map_err(|e| corrupt(format!("errors: {e}")))?,
        None => Vec::new(),
    };
    let metadata: Map<String, Value> = match json(15, "metadata")? {
        Some(Value::Object(m)) => m,
        Some(other) => return Err(corrupt(format!("metadata is not an object: {other}"))),
        None => Map::new(),
    };
    let ts = |col: usize| -> Result<Option<DateTime<Utc>>> { Ok(opt_int(col)?.map(from_micros)) };
    let u32_col = |col: usize| -> Result<u32> {
        u32::try_from(int(col)?).map_err(|e| corrupt(format!("column {col}: {e}")))
    };
    let mut job = Job::new(
        id,
        required(2)?.to_owned(),
        json(3, "payload")?.unwrap_or(Value::Null),
    );
    job.queue_name = required(1)?.to_owned();
    job.status = status;
    job.priority = i32::try_from(int(5)?).map_err(|e| corrupt(format!("priority: {e}")))?;
    job.retry_count = u32_col(6)?;
    job.max_retries = u32_col(7)?;
    job.run_at = from_micros(int(8)?);
    job.created_at = from_micros(int(9)?);
    job.started_at = ts(10)?;
    job.completed_at = ts(11)?;
    job.error_message = text(12)?.map(str::to_owned);
    job.errors = errors;
    job.result_data = json(14, "result_data")?;
    job.metadata = metadata;
    job.locked_by = text(16)?.map(str::to_owned);
    job.lease_until = ts(17)?;
    job.attempt = u32_col(18)?;
    job.lease_token = opt_int(20)?.map(LeaseToken::from_i64);
    job.error_count = u32_col(21)?;
    job.cancelled_at = ts(22)?;
    job.timeout = opt_int(23)?
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
    job.unique_key = text(26)?.map(str::to_owned);
    job.limits = limits_of(row).map_err(corrupt)?;
    Ok((job, int(19)?))
}

/// The job's limits, from their columns (27 onwards in `sql::JOB_COLS`).
fn limits_of(row: &impl Cols) -> std::result::Result<JobLimits, String> {
    let count = |col: usize| -> std::result::Result<u32, String> {
        let v = row.int(col)?.unwrap_or(0);
        u32::try_from(v).map_err(|e| format!("column {col}: {e}"))
    };
    let mut limits = JobLimits::none();
    if let Some(key) = row.text(27)? {
        limits = limits.concurrency(ConcurrencyLimit::new(key, count(28)?));
    }
    if let Some(key) = row.text(29)? {
        let per = row.int(31)?.unwrap_or(0);
        let per = Duration::from_millis(u64::try_from(per).unwrap_or(0));
        limits = limits.rate(RateLimit::new(key, count(30)?, per));
    }
    if let Some(key) = row.text(32)? {
        limits = limits.sequence(key);
    }
    Ok(limits)
}
