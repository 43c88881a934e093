//! Enqueueing: new jobs as rows, inserted by multi-row `INSERT`s; unique
//! jobs one by one, the store's unique index deciding which one holds a key.

use jobs_core::{Enqueued, Error, JobId, NewJob, Result, UniqueStates};
use sqlx::{Connection, Row, SqliteConnection};
use uuid::Uuid;

use super::error::db_err;
use super::native::{native_err, Binder};
use super::sql::{self, INSERT_CHUNK};
use super::time::{from_micros, micros, now_micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        // All or none: a job that cannot be stored fails the batch before
        // anything is written.
        for job in &jobs {
            job.validate()?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let rows = insert_rows_of(jobs, now)?;

        let out = self
            .inner
            .writer
            .write_conns(move |conns| {
                Box::pin(async move {
                    // A unique job needs its own statements (what holds the
                    // key, a replace), and a big batch several inserts: one
                    // transaction, so the batch is stored whole or not at all.
                    let unique = rows.iter().any(|r| r.unique.is_some());
                    if let (false, Some(native)) = (unique, &conns.native) {
                        return insert_native(native, &rows, now);
                    }
                    let conn = &mut conns.sqlx;
                    if unique || rows.len() > INSERT_CHUNK {
                        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                        let out = store_rows(&mut tx, &rows, now).await?;
                        tx.commit().await.map_err(db_err)?;
                        Ok(out)
                    } else {
                        store_rows(conn, &rows, now).await
                    }
                })
            })
            .await?;
        if out.iter().any(|e| !e.is_duplicate()) {
            self.wake();
        }
        Ok(out)
    }
}

/// What makes a row unique: its key as stored, its states, and whether a
/// waiting holder is replaced.
pub(super) struct UniqueRow {
    key: String,
    states: i64,
    replace: bool,
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
    unique: Option<UniqueRow>,
    concurrency: Option<(String, i64)>,
    rate: Option<(String, i64, i64)>,
    sequence: Option<String>,
}

/// Serializes jobs for [`insert_rows`]; an unserializable job stores nothing.
/// `now` is the backend's clock: a job is due at its `run_at`, else `delay`
/// after `now`, else at `now`; a unique key's period bucket is by `now` too.
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
            let unique = j.unique.as_ref().map(|u| UniqueRow {
                key: u.stored_key(now_t.timestamp()),
                // With the active states always in (as `from_bits` makes
                // sure): a job that held no key while it waited or ran
                // could not take it when it finishes.
                states: i64::from(UniqueStates::from_bits(u.states.bits()).bits()),
                replace: u.replace,
            });
            let limits = j.limits;
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
                unique,
                concurrency: limits.concurrency.map(|c| (c.key, i64::from(c.max))),
                rate: limits.rate.map(|r| {
                    let per = i64::try_from(r.per.as_millis()).unwrap_or(i64::MAX);
                    (r.key, i64::from(r.max), per)
                }),
                sequence: limits.sequence,
            })
        })
        .collect()
}

/// Stores `rows` with `conn` (inside a transaction or savepoint of the
/// caller's when there is more than one statement to run): jobs without a
/// unique key by multi-row inserts, a batch with one row by row, in order.
pub(super) async fn store_rows(
    conn: &mut SqliteConnection,
    rows: &[InsertRow],
    now: i64,
) -> Result<Vec<Enqueued>> {
    if rows.iter().all(|r| r.unique.is_none()) {
        for chunk in rows.chunks(INSERT_CHUNK) {
            insert_rows(conn, chunk, now).await?;
        }
        return Ok(rows
            .iter()
            .map(|r| Enqueued::Inserted(JobId::from_uuid(r.id)))
            .collect());
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(store_one(conn, row, now).await?);
    }
    Ok(out)
}

/// Stores one job, unique or not. The insert skips a row that breaks a
/// uniqueness constraint; then the id says whether it was the job's id (an
/// error) or its unique key, whose holder the unique index guarantees.
async fn store_one(conn: &mut SqliteConnection, row: &InsertRow, now: i64) -> Result<Enqueued> {
    let id = JobId::from_uuid(row.id);
    let Some(unique) = &row.unique else {
        insert_rows(conn, std::slice::from_ref(row), now).await?;
        return Ok(Enqueued::Inserted(id));
    };
    let inserted = bind_row(sqlx::query(sql::insert_unique()), row, now)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if inserted.is_some() {
        return Ok(Enqueued::Inserted(id));
    }
    if id_exists(conn, row.id).await? {
        return Err(Error::DuplicateId(id));
    }
    let holder = sqlx::query(sql::unique_holder())
        .bind(unique.key.as_str())
        .bind(None::<Uuid>)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let Some(holder) = holder else {
        return Err(super::error::backend_msg(
            jobs_core::BackendErrorKind::Conflict,
            format!("job {id} was refused by a uniqueness constraint, but no job holds its key"),
        ));
    };
    let holder_id = JobId::from_uuid(holder.try_get::<Uuid, _>(0).map_err(db_err)?);
    let status: &str = holder.try_get(1).map_err(db_err)?;
    let waiting = matches!(status, "PENDING" | "SCHEDULED" | "RETRYING");
    if !(unique.replace && waiting) {
        return Ok(Enqueued::Duplicate(holder_id));
    }
    sqlx::query(sql::replace())
        .bind(*holder_id.as_uuid())
        .bind(row.payload.as_str())
        .bind(row.metadata.as_deref())
        .bind(row.priority)
        .bind(row.max_retries)
        .bind(row.timeout_ms)
        .bind(row.run_at)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(Enqueued::Replaced(holder_id))
}

/// Stores `rows`, none of them unique, on the writer's native connection:
/// as [`store_rows`] does, in one transaction if it takes several inserts.
fn insert_native(
    conn: &rusqlite::Connection,
    rows: &[InsertRow],
    now: i64,
) -> Result<Vec<Enqueued>> {
    let tx = if rows.len() > INSERT_CHUNK {
        Some(
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
                .map_err(native_err)?,
        )
    } else {
        None
    };
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut stmt = conn
            .prepare_cached(&sql::insert(chunk.len()))
            .map_err(native_err)?;
        let mut b = Binder::new(&mut stmt);
        for r in chunk {
            b.id(Some(&r.id))?
                .bind(r.queue.as_str())?
                .bind(r.job_type.as_str())?
                .bind(r.payload.as_str())?
                .bind(r.status)?
                .bind(r.priority)?
                .bind(r.max_retries)?
                .bind(r.run_at)?
                .bind(now)?
                .bind(r.metadata.as_deref())?
                .bind(r.timeout_ms)?
                .bind(None::<&str>)?
                .bind(None::<i64>)?
                .bind(r.concurrency.as_ref().map(|c| c.0.as_str()))?
                .bind(r.concurrency.as_ref().map(|c| c.1))?
                .bind(r.rate.as_ref().map(|c| c.0.as_str()))?
                .bind(r.rate.as_ref().map(|c| c.1))?
                .bind(r.rate.as_ref().map(|c| c.2))?
                .bind(r.sequence.as_deref())?;
        }
        match stmt.raw_execute() {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                // Which id (as `duplicate_among` finds it): one repeated in
                // the chunk, or one stored already — earlier chunks of this
                // batch included. The transaction, if any, rolls back as it
                // is dropped.
                drop(stmt);
                let mut seen = std::collections::HashSet::with_capacity(chunk.len());
                let repeated = chunk.iter().find(|r| !seen.insert(r.id));
                let stored = || {
                    chunk.iter().find(|r| {
                        conn.prepare_cached("SELECT 1 FROM jobs_queue WHERE id = ?")
                            .and_then(|mut s| s.exists([&r.id.as_bytes()[..]]))
                            .unwrap_or(false)
                    })
                };
                return match repeated.or_else(stored) {
                    Some(r) => Err(Error::DuplicateId(JobId::from_uuid(r.id))),
                    None => Err(native_err(rusqlite::Error::SqliteFailure(f, None))),
                };
            }
            Err(e) => return Err(native_err(e)),
        }
    }
    if let Some(tx) = tx {
        tx.commit().map_err(native_err)?;
    }
    Ok(rows
        .iter()
        .map(|r| Enqueued::Inserted(JobId::from_uuid(r.id)))
        .collect())
}

fn bind_row<'q>(
    mut q: super::conn::Query<'q>,
    r: &'q InsertRow,
    now: i64,
) -> super::conn::Query<'q> {
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
        .bind(r.timeout_ms)
        .bind(r.unique.as_ref().map(|u| u.key.as_str()))
        .bind(r.unique.as_ref().map(|u| u.states))
        .bind(r.concurrency.as_ref().map(|c| c.0.as_str()))
        .bind(r.concurrency.as_ref().map(|c| c.1))
        .bind(r.rate.as_ref().map(|c| c.0.as_str()))
        .bind(r.rate.as_ref().map(|c| c.1))
        .bind(r.rate.as_ref().map(|c| c.2))
        .bind(r.sequence.as_deref());
    q
}

pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[InsertRow],
    now: i64,
) -> Result<()> {
    let sql = sql::insert(rows.len());
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = bind_row(q, r, now);
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

async fn id_exists(conn: &mut SqliteConnection, id: Uuid) -> Result<bool> {
    let found = sqlx::query("SELECT 1 FROM jobs_queue WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}

/// After a unique violation, the id that caused it: one repeated within
/// `rows`, or one already stored (SQLite's message does not name it).
async fn duplicate_among(conn: &mut SqliteConnection, rows: &[InsertRow]) -> Option<JobId> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    if let Some(r) = rows.iter().find(|r| !seen.insert(r.id)) {
        return Some(JobId::from_uuid(r.id));
    }
    for r in rows {
        if id_exists(conn, r.id).await.ok()? {
            return Some(JobId::from_uuid(r.id));
        }
    }
    None
}
