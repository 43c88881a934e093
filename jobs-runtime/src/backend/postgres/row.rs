//! Decoding rows, and mapping errors.

use jobs_core::{Error, Job, JobId, Result};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

pub(super) const BACKEND: &str = "postgres";

pub(super) fn db_err(e: sqlx::Error) -> Error {
    if let Some(db) = e.as_database_error() {
        if db.is_unique_violation() {
            return Error::InvalidJob(format!(
                "a job with this id already exists ({})",
                db.message()
            ));
        }
    }
    Error::backend(BACKEND, e)
}

pub(super) fn corrupt(id: impl ToString, reason: impl ToString) -> Error {
    Error::Corrupt {
        backend: BACKEND,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

fn to_u32(id: Uuid, name: &str, v: i32) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(id, format!("{name} is {v}")))
}

pub(super) fn row_to_job(row: &PgRow) -> Result<Job> {
    let id: Uuid = row.try_get("id").map_err(db_err)?;
    let get_err = |e: sqlx::Error| corrupt(id, e);
    let status: String = row.try_get("status").map_err(get_err)?;
    let errors: Value = row.try_get("errors").map_err(get_err)?;
    let metadata: Value = row.try_get("metadata").map_err(get_err)?;
    Ok(Job {
        id: JobId::from_uuid(id),
        queue_name: row.try_get("queue_name").map_err(get_err)?,
        job_type: row.try_get("job_type").map_err(get_err)?,
        payload: row.try_get("payload").map_err(get_err)?,
        status: status.parse().map_err(|e| corrupt(id, e))?,
        priority: row.try_get("priority").map_err(get_err)?,
        retry_count: to_u32(
            id,
            "retry_count",
            row.try_get("retry_count").map_err(get_err)?,
        )?,
        max_retries: to_u32(
            id,
            "max_retries",
            row.try_get("max_retries").map_err(get_err)?,
        )?,
        run_at: row.try_get("run_at").map_err(get_err)?,
        created_at: row.try_get("created_at").map_err(get_err)?,
        started_at: row.try_get("started_at").map_err(get_err)?,
        completed_at: row.try_get("completed_at").map_err(get_err)?,
        error_message: row.try_get("error_message").map_err(get_err)?,
        errors: serde_json::from_value(errors).map_err(|e| corrupt(id, e))?,
        result_data: row.try_get("result_data").map_err(get_err)?,
        metadata: match metadata {
            Value::Object(m) => m,
            other => return Err(corrupt(id, format!("metadata is not an object: {other}"))),
        },
        locked_by: row.try_get("locked_by").map_err(get_err)?,
        lease_until: row.try_get("lease_until").map_err(get_err)?,
        attempt: to_u32(id, "attempt", row.try_get("attempt").map_err(get_err)?)?,
    })
}
