//! Recording outcomes: completions, failures, retries and releases, applied
//! in batches under their lease fences.

use std::collections::HashSet;

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{BackendErrorKind, JobId, Result};
use sqlx::{Connection, Row, SqliteConnection};
use uuid::Uuid;

use super::error::{backend_msg, db_err};
use super::native::{native_err, Binder, NativeRow};
use super::row::Cols;
use super::sql::{self, padded, UPDATE_CHUNK};
use super::time::{add_micros, rfc3339, unique_now_micros};
use super::SqliteBackend;

/// One batch of outcomes, by the statement that writes them.
struct Batch {
    /// Completions kept: id, lease token, result.
    completions: Vec<(Uuid, i64, Option<String>)>,
    /// Completions dropped at once: id, lease token.
    drops: Vec<(Uuid, i64)>,
    /// Every other outcome.
    transitions: Vec<Transition>,
}

impl Batch {
    /// Whether writing it takes more than one statement (a drop also counts
    /// its completions in the throughput history): then it needs a
    /// transaction of its own to be stored whole or not at all.
    fn needs_transaction(&self) -> bool {
        self.completions.len().div_ceil(UPDATE_CHUNK)
            + 2 * self.drops.len().div_ceil(UPDATE_CHUNK)
            + self.transitions.len().div_ceil(UPDATE_CHUNK)
            > 1
    }
}

/// One row of the batched failure/release update.
pub(super) struct Transition {
    pub(super) id: Uuid,
    /// The lease token the job must still hold (`None`: none, for recovering
    /// a lease taken before tokens existed).
    pub(super) token: Option<i64>,
    pub(super) status: &'static str,
    pub(super) retry_inc: i64,
    pub(super) run_at: Option<i64>,
    pub(super) completed_at: Option<i64>,
    pub(super) message: Option<String>,
    pub(super) retryable: bool,
    pub(super) worker: Option<String>,
    /// `Some(result)`: store it as `result_data` (a failure that carried
    /// data); `None`: leave `result_data` as it is.
    pub(super) result: Option<Option<String>>,
    /// 1 for a snooze.
    pub(super) snooze_inc: i64,
    /// `Some(now)`: the job ends cancelled (FAILED, marked, at `now`) if its
    /// cancellation was requested — or whatever its mark, with `force`.
    pub(super) cancel_at: Option<i64>,
    pub(super) force_cancel: bool,
}

impl Transition {
    /// A transition of job `id` under lease `token` to `status`, nothing else.
    pub(super) fn to(id: Uuid, token: Option<i64>, status: &'static str) -> Self {
        Transition {
            id,
            token,
            status,
            retry_inc: 0,
            run_at: None,
            completed_at: None,
            message: None,
            retryable: false,
            worker: None,
            result: None,
            snooze_inc: 0,
            cancel_at: None,
            force_cancel: false,
        }
    }
}

impl SqliteBackend {
    /// Applies completions: one statement per chunk; `now` must be unique to
    /// this call (see [`unique_now_micros`]). Adds the ids applied to `applied`.
    async fn apply_completions(
        conn: &mut SqliteConnection,
        now: i64,
        rows: &[(Uuid, i64, Option<String>)],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let sql = sql::complete(n);
            let mut q = sqlx::query(&sql).bind(now);
            for (id, token, result) in chunk {
                q = q.bind(*id).bind(*token).bind(result.as_deref());
            }
            for _ in chunk.len()..n {
                q = q.bind(None::<Uuid>).bind(None::<i64>).bind(None::<&str>);
            }
            // Not `RETURNING id`: every returned row is one more hand-off from
            // SQLite's thread, and nearly always every fence matches.
            let done = q.execute(&mut *conn).await.map_err(db_err)?;
            if done.rows_affected() == chunk.len() as u64 {
                applied.extend(chunk.iter().map(|c| c.0));
                continue;
            }
            // Some fences were stale: the rows this call completed are the ones
            // stamped with its `now`, unique per call in this process.
            let sql = sql::completed_by_call(chunk.len());
            let mut q = sqlx::query(&sql);
            for (id, _, _) in chunk {
                q = q.bind(*id);
            }
            for row in q.bind(now).fetch_all(&mut *conn).await.map_err(db_err)? {
                applied.insert(row.try_get(0).map_err(db_err)?);
            }
        }
        Ok(())
    }

    /// Deletes the attempts of `rows` (id, lease token) that still hold their
    /// lease, as completed and not kept (a retention that keeps no completed
    /// jobs), and counts them as completed at `now` in the throughput
    /// history. Adds the ids deleted to `applied`.
    async fn drop_completed(
        conn: &mut SqliteConnection,
        now: i64,
        rows: &[(Uuid, i64)],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let mut per_queue = Dropped::default();
        for chunk in rows.chunks(UPDATE_CHUNK) {
            // Padded as the completions are: a few statement texts, each
            // prepared once, whatever the batch sizes.
            let n = padded(chunk.len());
            let sql = sql::drop_completed(n);
            let mut q = sqlx::query(&sql);
            for (id, token) in chunk {
                q = q.bind(*id).bind(*token);
            }
            for _ in chunk.len()..n {
                q = q.bind(None::<Uuid>).bind(None::<i64>);
            }
            for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                applied.insert(row.try_get(0).map_err(db_err)?);
                per_queue.add(row.try_get::<&str, _>(1).map_err(db_err)?);
            }
        }
        for (queue, n) in per_queue.0 {
            sqlx::query(sql::count_dropped())
                .bind(now)
                .bind(queue)
                .bind(n)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Applies failures, retries and releases, appending to the error history.
    pub(super) async fn apply_transitions(
        conn: &mut SqliteConnection,
        now: i64,
        rows: &[Transition],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let at = rfc3339(now);
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            // The stamp (once per branch of the history update), then rows of
            // v: 1 id, 2 lease_token, 3 status, 4 retry_inc, 5 run_at,
            //    6 completed_at, 7 message, 8 retryable ('true'/'false'),
            //    9 worker, 10 set result_data (0/1), 11 result_data,
            //    12 snooze_inc, 13 cancel_at, 14 force_cancel.
            let sql = sql::transition(n);
            let mut q = sqlx::query(&sql).bind(at.as_str()).bind(at.as_str());
            for t in chunk {
                q = q
                    .bind(t.id)
                    .bind(t.token)
                    .bind(t.status)
                    .bind(t.retry_inc)
                    .bind(t.run_at)
                    .bind(t.completed_at)
                    .bind(t.message.as_deref())
                    .bind(if t.retryable { "true" } else { "false" })
                    .bind(t.worker.as_deref())
                    .bind(t.result.is_some())
                    .bind(t.result.as_ref().and_then(Option::as_deref))
                    .bind(t.snooze_inc)
                    .bind(t.cancel_at)
                    .bind(t.force_cancel);
            }
            for _ in chunk.len()..n {
                q = q
                    .bind(None::<Uuid>)
                    .bind(None::<i64>)
                    .bind(None::<&str>)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(None::<&str>)
                    .bind(None::<&str>)
                    .bind(None::<&str>)
                    .bind(false)
                    .bind(None::<&str>)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(false);
            }
            for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                applied.insert(row.try_get(0).map_err(db_err)?);
            }
        }
        Ok(())
    }

    /// `batch` on the writer's native connection outside a group commit: in
    /// a transaction of its own if it takes more than one statement (rolled
    /// back if dropped uncommitted: an error, a panic).
    fn apply_alone_native(
        conn: &rusqlite::Connection,
        now: i64,
        batch: &Batch,
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let tx = batch
            .needs_transaction()
            .then(|| {
                rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
            })
            .transpose()
            .map_err(native_err)?;
        Self::apply_all_native(conn, now, batch, applied)?;
        match tx {
            Some(tx) => tx.commit().map_err(native_err),
            None => Ok(()),
        }
    }

    /// `batch` on the writer's native connection, in the transaction (or
    /// savepoint) its caller opened.
    fn apply_all_native(
        conn: &rusqlite::Connection,
        now: i64,
        batch: &Batch,
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        Self::apply_completions_native(conn, now, &batch.completions, applied)?;
        Self::drop_completed_native(conn, now, &batch.drops, applied)?;
        Self::apply_transitions_native(conn, now, &batch.transitions, applied)
    }

    /// [`apply_completions`](Self::apply_completions) on the writer's native
    /// connection.
    fn apply_completions_native(
        conn: &rusqlite::Connection,
        now: i64,
        rows: &[(Uuid, i64, Option<String>)],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let mut stmt = conn.prepare_cached(&sql::complete(n)).map_err(native_err)?;
            let mut b = Binder::new(&mut stmt);
            b.bind(now)?;
            for (id, token, result) in chunk {
                b.id(Some(id))?.bind(token)?.bind(result.as_deref())?;
            }
            for _ in chunk.len()..n {
                b.id(None)?.bind(None::<i64>)?.bind(None::<&str>)?;
            }
            let done = stmt.raw_execute().map_err(native_err)?;
            if done == chunk.len() {
                applied.extend(chunk.iter().map(|c| c.0));
                continue;
            }
            let mut stmt = conn
                .prepare_cached(&sql::completed_by_call(chunk.len()))
                .map_err(native_err)?;
            let mut b = Binder::new(&mut stmt);
            for (id, _, _) in chunk {
                b.id(Some(id))?;
            }
            b.bind(now)?;
            returned_ids(&mut stmt, applied)?;
        }
        Ok(())
    }

    /// [`drop_completed`](Self::drop_completed) on the writer's native
    /// connection.
    fn drop_completed_native(
        conn: &rusqlite::Connection,
        now: i64,
        rows: &[(Uuid, i64)],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let mut per_queue = Dropped::default();
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let mut stmt = conn
                .prepare_cached(&sql::drop_completed(n))
                .map_err(native_err)?;
            let mut b = Binder::new(&mut stmt);
            for (id, token) in chunk {
                b.id(Some(id))?.bind(token)?;
            }
            for _ in chunk.len()..n {
                b.id(None)?.bind(None::<i64>)?;
            }
            let mut deleted = stmt.raw_query();
            while let Some(row) = deleted.next().map_err(native_err)? {
                let row = NativeRow(row);
                let id = row.uuid(0).map_err(|e| {
                    backend_msg(BackendErrorKind::Other, format!("a dropped job's id: {e}"))
                })?;
                applied.insert(id);
                let queue = row
                    .text(1)
                    .map_err(|e| {
                        backend_msg(
                            BackendErrorKind::Other,
                            format!("a dropped job's queue: {e}"),
                        )
                    })?
                    .ok_or_else(|| {
                        backend_msg(BackendErrorKind::Other, "a dropped job without a queue")
                    })?;
                per_queue.add(queue);
            }
        }
        for (queue, n) in per_queue.0 {
            let mut stmt = conn
                .prepare_cached(sql::count_dropped())
                .map_err(native_err)?;
            stmt.execute(rusqlite::params![now, queue, n])
                .map_err(native_err)?;
        }
        Ok(())
    }

    /// [`apply_transitions`](Self::apply_transitions) on the writer's native
    /// connection.
    fn apply_transitions_native(
        conn: &rusqlite::Connection,
        now: i64,
        rows: &[Transition],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let at = rfc3339(now);
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let mut stmt = conn
                .prepare_cached(&sql::transition(n))
                .map_err(native_err)?;
            let mut b = Binder::new(&mut stmt);
            // The parameters of `apply_transitions`, in its order.
            b.bind(at.as_str())?.bind(at.as_str())?;
            for t in chunk {
                b.id(Some(&t.id))?
                    .bind(t.token)?
                    .bind(t.status)?
                    .bind(t.retry_inc)?
                    .bind(t.run_at)?
                    .bind(t.completed_at)?
                    .bind(t.message.as_deref())?
                    .bind(if t.retryable { "true" } else { "false" })?
                    .bind(t.worker.as_deref())?
                    .bind(t.result.is_some())?
                    .bind(t.result.as_ref().and_then(Option::as_deref))?
                    .bind(t.snooze_inc)?
                    .bind(t.cancel_at)?
                    .bind(t.force_cancel)?;
            }
            for _ in chunk.len()..n {
                b.id(None)?
                    .bind(None::<i64>)?
                    .bind(None::<&str>)?
                    .bind(None::<i64>)?
                    .bind(None::<i64>)?
                    .bind(None::<i64>)?
                    .bind(None::<&str>)?
                    .bind(None::<&str>)?
                    .bind(None::<&str>)?
                    .bind(false)?
                    .bind(None::<&str>)?
                    .bind(None::<i64>)?
                    .bind(None::<i64>)?
                    .bind(false)?;
            }
            returned_ids(&mut stmt, applied)?;
        }
        Ok(())
    }

    pub(super) async fn record_now(
        &self,
        worker_id: &str,
        updates: &[OutcomeUpdate],
    ) -> Result<Vec<JobId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let now = unique_now_micros();
        let mut completions = Vec::new();
        let mut drops = Vec::new();
        let mut transitions = Vec::new();
        let mut wake = false;
        for u in updates {
            let id = *u.fence.id.as_uuid();
            let token = u.fence.token.as_i64();
            let fail =
                |status, error: &jobs_core::backend::AttemptFailure, retry_inc, run_at, done| {
                    let mut t = Transition::to(id, Some(token), status);
                    t.retry_inc = retry_inc;
                    t.run_at = run_at;
                    t.completed_at = done;
                    t.message = Some(error.message.clone());
                    t.retryable = error.retryable;
                    t.worker = Some(worker_id.to_owned());
                    t
                };
            match &u.outcome {
                Outcome::Complete { result } => {
                    completions.push((id, token, result_text(id, result.as_ref())?));
                }
                Outcome::CompleteAndDelete => drops.push((id, token)),
                Outcome::Retry { delay, error } => {
                    wake = true;
                    // Unless its cancellation was requested meanwhile.
                    let mut t = fail("RETRYING", error, 1, Some(add_micros(now, *delay)), None);
                    t.cancel_at = Some(now);
                    transitions.push(t);
                }
                Outcome::Fail { error, result } => {
                    let mut t = fail("FAILED", error, 0, None, Some(now));
                    t.result = Some(result_text(id, result.as_ref())?);
                    transitions.push(t);
                }
                Outcome::DeadLetter { error } => {
                    transitions.push(fail("DEAD_LETTER", error, 0, None, Some(now)));
                }
                Outcome::Cancel { error } => {
                    let mut t = fail("FAILED", error, 0, None, Some(now));
                    t.cancel_at = Some(now);
                    t.force_cancel = true;
                    transitions.push(t);
                }
                Outcome::Release => {
                    wake = true;
                    let mut t = Transition::to(id, Some(token), "PENDING");
                    t.run_at = Some(now);
                    t.cancel_at = Some(now);
                    transitions.push(t);
                }
                Outcome::Snooze { delay } => {
                    wake = true;
                    let run_at = add_micros(now, *delay);
                    let status = if run_at > now { "SCHEDULED" } else { "PENDING" };
                    let mut t = Transition::to(id, Some(token), status);
                    t.run_at = Some(run_at);
                    t.snooze_inc = 1;
                    t.cancel_at = Some(now);
                    transitions.push(t);
                }
            }
        }
        let capacity = updates.len();
        let batch = Batch {
            completions,
            drops,
            transitions,
        };
        let writer = &self.inner.writer;
        let applied = if writer.groups() {
            // A savepoint of a group commit (see the writer): the batch is
            // stored whole or not at all, and shares its commit with the
            // changes queued beside it (usually the next claim).
            writer
                .write_grouped(move |conn| {
                    let mut applied = HashSet::with_capacity(capacity);
                    Self::apply_all_native(conn, now, &batch, &mut applied)?;
                    Ok(applied)
                })
                .await?
        } else {
            writer
                .write_conns(move |conns| {
                    Box::pin(async move {
                        let mut applied = HashSet::with_capacity(capacity);
                        if let Some(native) = &conns.native {
                            // Not sharing commits (see `Writer::groups`).
                            Self::apply_alone_native(native, now, &batch, &mut applied)?;
                            return Ok(applied);
                        }
                        let conn = &mut conns.sqlx;
                        // One statement is atomic on its own; more make one
                        // transaction, so a batch is stored whole or not at all.
                        if batch.needs_transaction() {
                            let mut tx =
                                conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                            Self::apply_completions(&mut tx, now, &batch.completions, &mut applied)
                                .await?;
                            Self::drop_completed(&mut tx, now, &batch.drops, &mut applied).await?;
                            Self::apply_transitions(&mut tx, now, &batch.transitions, &mut applied)
                                .await?;
                            tx.commit().await.map_err(db_err)?;
                        } else {
                            Self::apply_completions(conn, now, &batch.completions, &mut applied)
                                .await?;
                            Self::drop_completed(conn, now, &batch.drops, &mut applied).await?;
                            Self::apply_transitions(conn, now, &batch.transitions, &mut applied)
                                .await?;
                        }
                        Ok(applied)
                    })
                })
                .await?
        };
        // A job with limits that ended frees a slot of its keys.
        // (Lost ones are forgotten too: some other worker took them over.)
        let ended = self.ended_limited(updates.iter().map(|u| u.fence.id.as_uuid()));
        if wake || ended {
            self.wake();
        }
        Ok(updates
            .iter()
            .map(|u| u.fence.id)
            .filter(|id| !applied.contains(id.as_uuid()))
            .collect())
    }
}

/// How many jobs of each queue a call dropped (nearly always one queue).
#[derive(Default)]
struct Dropped(Vec<(String, i64)>);

impl Dropped {
    fn add(&mut self, queue: &str) {
        match self.0.iter_mut().find(|(q, _)| q == queue) {
            Some((_, n)) => *n += 1,
            None => self.0.push((queue.to_owned(), 1)),
        }
    }
}

/// Adds the job ids a statement of the native connection returns (its
/// first column) to `applied`.
fn returned_ids(stmt: &mut rusqlite::Statement<'_>, applied: &mut HashSet<Uuid>) -> Result<()> {
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(native_err)? {
        let id = NativeRow(row).uuid(0).map_err(|e| {
            backend_msg(BackendErrorKind::Other, format!("an applied job's id: {e}"))
        })?;
        applied.insert(id);
    }
    Ok(())
}

/// A result as stored: JSON text. JSON escapes a NUL (`\u0000`), so it is
/// stored faithfully. Serializing a `Value` cannot fail in practice; if it
/// did, the batch is refused as data the backend cannot store, so the
/// runtime isolates the outcome.
fn result_text(id: Uuid, result: Option<&serde_json::Value>) -> Result<Option<String>> {
    result
        .map(|v| {
            serde_json::to_string(v).map_err(|e| {
                backend_msg(
                    BackendErrorKind::Data,
                    format!("the result of job {id} cannot be stored: {e}"),
                )
            })
        })
        .transpose()
}
