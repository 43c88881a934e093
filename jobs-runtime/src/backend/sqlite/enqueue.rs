//! Enqueueing: new jobs as rows, inserted by multi-row `INSERT`s.

use jobs_core::{Error, JobId, NewJob, Result};
use sqlx::{Connection, SqliteConnection};
use uuid::Uuid;

use super::error::db_err;
use super::sql::{self, INSERT_CHUNK};
use super::time::{from_micros, micros, now_micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        // All or none: a job that cannot be stored fails the batch before
        // anything is written.
        for job in &jobs {
            job.validate()?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        let rows = insert_rows_of(jobs, now)?;

        self.write(move |conn| {
            Box::pin(async move {
                if rows.len() > INSERT_CHUNK {
                    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                    for chunk in rows.chunks(INSERT_CHUNK) {
                        insert_rows(&mut tx, chunk, now).await?;
                    }
                    tx.commit().await.map_err(db_err)
                } else {
                    insert_rows(conn, &rows, now).await
                }
            })
        })
        .await?;
        self.wake();
        Ok(ids)
    }
}

/// One job as inserted by `enqueue_batch`.
pub(super) struct InsertRow {
    id: Uuid,
    queue: String,
    job_type: String,
    payload: String,
    status: &'static str,
    priority: i32,
    max_retries: i64,
    run_at: i64,
    timeout_ms: Option<i64>,
    metadata: Option<String>,
}

/// Serializes jobs for [`insert_rows`]; an unserializable job stores nothing.
/// `now` is the backend's clock: a job is due at its `run_at`, else `delay`
/// after `now`, else at `now`.
pub(super) fn insert_rows_of(jobs: Vec<NewJob>, now: i64) -> Result<Vec<InsertRow>> {
    let now_t = from_micros(now);
    jobs.into_iter()
        .map(|j| {
            let run_at = micros(j.due_at(now_t));
            let payload = serde_json::to_string(&j.payload).map_err(|e| Error::InvalidPayload {
                job_type: j.job_type.clone(),
                reason: e.to_string(),
            })?;
            let metadata = if j.metadata.is_empty() {
                None
            } else {
                Some(
                    serde_json::to_string(&j.metadata)
                        .map_err(|e| Error::InvalidJob(format!("metadata of job {}: {e}", j.id)))?,
                )
            };
            Ok(InsertRow {
                id: *j.id.as_uuid(),
                queue: j.queue_name,
                job_type: j.job_type,
                payload,
                status: if run_at > now { "SCHEDULED" } else { "PENDING" },
                priority: j.priority,
                max_retries: i64::from(j.max_retries),
                run_at,
                // Millis beyond i64 (a limit of some 292 million years) are
                // stored as the largest that fits.
                timeout_ms: j
                    .timeout
                    .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
                metadata,
            })
        })
        .collect()
}

pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[InsertRow],
    now: i64,
) -> Result<()> {
    let sql = sql::insert(rows.len());
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(r.id)
            .bind(r.queue.as_str())
            .bind(r.job_type.as_str())
            .bind(r.payload.as_str())
            .bind(r.status)
            .bind(r.priority)
            .bind(r.max_retries)
            .bind(r.run_at)
            .bind(now)
            .bind(r.metadata.as_deref())
            .bind(r.timeout_ms);
    }
    match q.execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            match duplicate_among(conn, rows).await {
                Some(id) => Err(Error::DuplicateId(id)),
                None => Err(db_err(e)),
            }
        }
        Err(e) => Err(db_err(e)),
    }
}

/// After a unique violation, the id that caused it: one repeated within
/// `rows`, or one already stored (SQLite's message does not name it).
async fn duplicate_among(conn: &mut SqliteConnection, rows: &[InsertRow]) -> Option<JobId> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    if let Some(r) = rows.iter().find(|r| !seen.insert(r.id)) {
        return Some(JobId::from_uuid(r.id));
    }
    for r in rows {
        let found = sqlx::query("SELECT 1 FROM jobs_queue WHERE id = ?")
            .bind(r.id)
            .fetch_optional(&mut *conn)
            .await
            .ok()?;
        if found.is_some() {
            return Some(JobId::from_uuid(r.id));
        }
    }
    None
}
