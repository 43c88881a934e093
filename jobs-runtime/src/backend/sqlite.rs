//! The SQLite backend (`sqlite://path/to/jobs.db`, `sqlite::memory:`): durable,
//! embedded, no server. The default for a single machine.
//!
//! ```no_run
//! # async fn demo() -> jobs_core::Result<()> {
//! let queue = jobs_runtime::connect("sqlite://target/jobs.db").await?;
//! queue.enqueue_raw("email.send", serde_json::json!({ "to": "a@example.com" })).await?;
//! # Ok(()) }
//! ```
//!
//! # Storage
//!
//! One table, `jobs_queue`, created on first use by versioned migrations
//! (`sqlite/*.sql`, recorded in `jobs_schema`), applied under `BEGIN IMMEDIATE`
//! so processes starting together migrate once. Timestamps are integer
//! microseconds since the Unix epoch (UTC); payloads, metadata, results and the
//! error history are JSON text. A partial index over waiting rows keeps the
//! claim cost independent of how many finished jobs the table holds; finished
//! jobs are removed by [`JobQueue::prune`] in bounded batches.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = NORMAL`:
//!
//! * **Process crash** (panic, `kill -9`, OOM): nothing acknowledged is lost.
//!   An enqueue, claim or outcome returns only after its transaction is
//!   committed to the write-ahead log, which lives in the operating system's
//!   page cache and is recovered on the next open. Jobs that were RUNNING come
//!   back through lease expiry.
//! * **Power loss or kernel crash**: the database stays consistent (never
//!   corrupt, no half-applied transaction), but with `synchronous = NORMAL` a
//!   commit reaches the disk only at the next WAL checkpoint. The backend
//!   checkpoints once a second whenever something was written (SQLite on its
//!   own would wait for ~4 MB of log, which on a quiet queue can be hours), so
//!   a power loss can take back up to about the last second of acknowledged
//!   enqueues and outcomes (longer only while some connection holds a read
//!   transaction open that long): a lost enqueue is lost, a lost completion runs the
//!   job again (at-least-once). If that second matters more than speed, open
//!   the database with `SqliteBackend::options(url)?.synchronous(SqliteSynchronous::Full)`
//!   and [`SqliteBackend::connect_with`]: every commit is then fsynced and
//!   survives power loss too, at a few hundred to a few thousand commits a
//!   second depending on the disk.
//!
//! # Concurrency
//!
//! Within a process all writes go through one connection (SQLite has one
//! writer at a time anyway), reads through a small pool (or, for
//! `sqlite::memory:`, the one connection too). Several processes
//! may share the file: writes wait for each other (`busy_timeout`), a claim is
//! a single `UPDATE … RETURNING` statement, and multi-statement changes run
//! under `BEGIN IMMEDIATE`, so no job is ever claimed twice. Wake-ups are
//! in-process: every handle on the same file in one process shares one signal;
//! a worker in another process sees new jobs at its poll interval.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use jobs_core::{
    AttemptError, BoxFuture, ClaimRequest, Error, Fence, Job, JobFilter, JobId, JobListener,
    JobQueue, JobStatus, NewJob, Outcome, OutcomeUpdate, QueueCount, Recovered, Result,
};
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Executor, Row, Sqlite, SqliteConnection};

type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
use tokio::sync::watch;
use uuid::Uuid;

use crate::backend::transactional::{check_new_job, TransactionalEnqueue};

const BACKEND: &str = "sqlite";

/// Embedded migrations, applied in order; each version runs once per database.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("sqlite/001_init.sql"))];

/// How long a write waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows per multi-row INSERT (10 parameters each; SQLite allows 32766).
const INSERT_CHUNK: usize = 500;
/// Rows per `VALUES` list of batched updates; lists are padded to a power of two
/// so only a handful of statements are ever prepared.
const UPDATE_CHUNK: usize = 256;
/// How often written data is checkpointed (and so synced to disk).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Expired leases recovered per transaction.
const RECOVER_BATCH: usize = 1000;

const WAITING: &str = "('PENDING', 'SCHEDULED', 'RETRYING')";
const TERMINAL: &str = "('COMPLETED', 'FAILED', 'DEAD_LETTER')";
const JOB_COLS: &str = "id, queue, job_type, payload, status, priority, retry_count, \
    max_retries, run_at, created_at, started_at, completed_at, error_message, errors, \
    result_data, metadata, locked_by, lease_until, attempt, seq";

/// The SQLite queue backend. Clones share the connections and the wake-up signal.
#[derive(Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection: every write of this process goes through it. Not a
    /// pool: sqlx pings a pooled connection on every release, which would
    /// double the round trips of each call. `None` once closed.
    writer: tokio::sync::Mutex<Option<SqliteConnection>>,
    /// Reads (`get`, `list`, `counts`, listener); `None` for `:memory:`, where
    /// the writer serves reads too.
    reader: Option<SqlitePool>,
    wake: Arc<watch::Sender<u64>>,
    location: String,
    /// Written to since the last checkpoint.
    dirty: AtomicBool,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("location", &self.inner.location)
            .finish()
    }
}

fn db_err(e: sqlx::Error) -> Error {
    Error::backend(BACKEND, e)
}

fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        let msg = d.message();
        msg.contains("database is locked") || msg.contains("busy")
    })
}

fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn now_micros() -> i64 {
    micros(Utc::now())
}

/// The current time, but never the same value twice in this process: what a
/// call stamps as `completed_at` identifies the rows it changed.
fn unique_now_micros() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = now_micros();
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    now.max(prev.saturating_add(1))
}

fn add_micros(t: i64, d: Duration) -> i64 {
    t.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn rfc3339(t: i64) -> String {
    from_micros(t).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `n` rounded up to a power of two (at most [`UPDATE_CHUNK`]).
fn padded(n: usize) -> usize {
    n.next_power_of_two().min(UPDATE_CHUNK)
}

/// `(?, ?, …), (…)`: `rows` tuples of `width` anonymous parameters. Big
/// statements use anonymous parameters only: SQLite looks numbered ones up by a
/// linear scan, which makes binding thousands of them quadratic.
fn values_list(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple.as_str(); rows].join(", ")
}

/// Every handle on one database file in this process shares one wake-up signal,
/// whether it came from the same `connect` or not.
fn shared_wake(key: Option<PathBuf>) -> Arc<watch::Sender<u64>> {
    static WAKERS: OnceLock<Mutex<HashMap<PathBuf, Weak<watch::Sender<u64>>>>> = OnceLock::new();
    let Some(key) = key else {
        return Arc::new(watch::Sender::new(0));
    };
    let mut map = WAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(tx) = map.get(&key).and_then(Weak::upgrade) {
        return tx;
    }
    let tx = Arc::new(watch::Sender::new(0));
    map.insert(key, Arc::downgrade(&tx));
    tx
}

fn job_from_row(row: &SqliteRow) -> Result<(Job, i64)> {
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
    let job = Job {
        id,
        queue_name: row.try_get(1).map_err(get_err)?,
        job_type: row.try_get(2).map_err(get_err)?,
        payload: json(3, "payload")?.unwrap_or(Value::Null),
        status,
        priority: i32::try_from(int(5)?).map_err(|e| corrupt(format!("priority: {e}")))?,
        retry_count: u32_col(6)?,
        max_retries: u32_col(7)?,
        run_at: from_micros(int(8)?),
        created_at: from_micros(int(9)?),
        started_at: ts(10)?,
        completed_at: ts(11)?,
        error_message: row.try_get(12).map_err(get_err)?,
        errors,
        result_data: json(14, "result_data")?,
        metadata,
        locked_by: row.try_get(16).map_err(get_err)?,
        lease_until: ts(17)?,
        attempt: u32_col(18)?,
    };
    Ok((job, int(19)?))
}

/// One row of the batched failure/release update.
struct Transition {
    id: Uuid,
    attempt: i64,
    status: &'static str,
    retry_inc: i64,
    run_at: Option<i64>,
    completed_at: Option<i64>,
    message: Option<String>,
    retryable: bool,
    worker: Option<String>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `url`: `sqlite://path/to/jobs.db`,
    /// `sqlite:relative.db`, or `sqlite::memory:` (private to this handle and its
    /// clones). Creates missing parent directories and the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = Self::options(url)?;
        Self::connect_with(url, options, is_memory_url(url)).await
    }

    /// The options [`connect`](Self::connect) uses for `url`: WAL mode,
    /// `synchronous = NORMAL` (files only), a 30 s busy timeout, statement
    /// caching. Adjust them and pass them to [`connect_with`](Self::connect_with),
    /// e.g. `.synchronous(SqliteSynchronous::Full)` to fsync every commit.
    pub fn options(url: &str) -> Result<SqliteConnectOptions> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| Error::Connect {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let options = options
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false)
            .statement_cache_capacity(256)
            .row_buffer_size(256)
            .pragma("temp_store", "memory");
        Ok(if is_memory_url(url) {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        })
    }

    /// Opens a database with `options` exactly as given (start from
    /// [`options`](Self::options)). `label` names it in errors and logs;
    /// `in_memory` says the database lives only as long as its connections, so
    /// a single connection serves reads and writes and is never closed while
    /// the backend lives.
    pub async fn connect_with(
        label: &str,
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<Self> {
        let url = label;
        let connect_err = |reason: String| Error::Connect {
            url: url.to_owned(),
            reason,
        };
        if !in_memory {
            if let Some(dir) = options.get_filename().parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        connect_err(format!("cannot create directory {}: {e}", dir.display()))
                    })?;
                }
            }
        }

        // Two processes opening a fresh file at once may briefly lock each other
        // out while one switches it to WAL; that settles within milliseconds.
        let mut tries = 0;
        let writer = loop {
            let attempt = match SqliteConnection::connect_with(&options).await {
                Ok(mut conn) => match migrate(&mut conn).await {
                    Ok(()) => Ok(conn),
                    Err(e) => {
                        let _ = conn.close().await;
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match attempt {
                Ok(conn) => break conn,
                Err(e) if is_busy(&e) && tries < 100 => {}
                Err(e) => return Err(connect_err(e.to_string())),
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        let (reader, key) = if in_memory {
            (None, None)
        } else {
            let reader = SqlitePoolOptions::new()
                .max_connections(4)
                .min_connections(0)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(120))
                .connect_lazy_with(options.clone());
            let key = std::fs::canonicalize(options.get_filename())
                .unwrap_or_else(|_| options.get_filename().to_owned());
            (Some(reader), Some(key))
        };
        tracing::debug!(url, "sqlite backend connected");
        let backend = SqliteBackend {
            inner: Arc::new(Inner {
                writer: tokio::sync::Mutex::new(Some(writer)),
                reader,
                wake: shared_wake(key),
                location: url.to_owned(),
                dirty: AtomicBool::new(false),
            }),
        };
        if !in_memory {
            tokio::spawn(checkpointer(Arc::downgrade(&backend.inner)));
        }
        Ok(backend)
    }

    /// Closes the connections; other clones of this handle stop working.
    pub async fn close(&self) {
        if let Some(conn) = self.inner.writer.lock().await.take() {
            let _ = conn.close().await;
        }
        if let Some(reader) = &self.inner.reader {
            reader.close().await;
        }
    }

    /// The writer connection, exclusively.
    async fn writer(&self) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>> {
        let guard = self.inner.writer.lock().await;
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut).map_err(|_| Error::Backend {
            backend: BACKEND,
            message: format!(
                "the sqlite backend for `{}` was closed",
                self.inner.location
            ),
            source: None,
        })
    }

    /// The writer connection, for a change: the next checkpoint will sync it.
    async fn write_conn(&self) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>> {
        let conn = self.writer().await?;
        self.inner.dirty.store(true, Ordering::Relaxed);
        Ok(conn)
    }

    async fn read_all(&self, q: Query<'_>) -> Result<Vec<SqliteRow>> {
        match &self.inner.reader {
            Some(pool) => q.fetch_all(pool).await,
            None => q.fetch_all(&mut *self.writer().await?).await,
        }
        .map_err(db_err)
    }

    async fn read_optional(&self, q: Query<'_>) -> Result<Option<SqliteRow>> {
        match &self.inner.reader {
            Some(pool) => q.fetch_optional(pool).await,
            None => q.fetch_optional(&mut *self.writer().await?).await,
        }
        .map_err(db_err)
    }

    fn wake(&self) {
        self.inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Wakes this process's idle workers of this database file, e.g. after
    /// committing a transaction that enqueued jobs through
    /// [`TransactionalEnqueue`].
    pub fn notify(&self) {
        self.wake();
    }

    async fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        let rows = insert_rows_of(jobs, now)?;

        if rows.len() > INSERT_CHUNK {
            let mut conn = self.write_conn().await?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_rows(&mut tx, chunk, now).await?;
            }
            tx.commit().await.map_err(db_err)?;
        } else {
            let mut conn = self.write_conn().await?;
            insert_rows(&mut conn, &rows, now).await?;
        }
        self.wake();
        Ok(ids)
    }

    async fn claim_now(&self, req: ClaimRequest<'_>) -> Result<Vec<Job>> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let lease_until = add_micros(now, req.lease);
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        // ?1 now, ?2 worker, ?3 lease_until, ?4 limit, ?5.. queues.
        let pick = |n: usize| {
            format!(
                "SELECT * FROM (SELECT {pos} AS qp, priority, run_at, seq FROM jobs_queue \
                 WHERE queue = ?{param} AND status IN {WAITING} AND run_at <= ?1 \
                 ORDER BY priority DESC, run_at, seq LIMIT ?4)",
                pos = n,
                param = n + 5
            )
        };
        let selection = if req.queues.len() == 1 {
            format!(
                "SELECT seq FROM jobs_queue WHERE queue = ?5 AND status IN {WAITING} \
                 AND run_at <= ?1 ORDER BY priority DESC, run_at, seq LIMIT ?4"
            )
        } else {
            let arms: Vec<String> = (0..req.queues.len()).map(pick).collect();
            format!(
                "SELECT seq FROM ({}) ORDER BY qp, priority DESC, run_at, seq LIMIT ?4",
                arms.join(" UNION ALL ")
            )
        };
        let sql = format!(
            "UPDATE jobs_queue SET status = 'RUNNING', attempt = attempt + 1, started_at = ?1, \
             locked_by = ?2, lease_until = ?3 WHERE seq IN ({selection}) RETURNING {JOB_COLS}"
        );
        let mut q = sqlx::query(&sql)
            .bind(now)
            .bind(req.worker_id)
            .bind(lease_until)
            .bind(limit);
        for queue in req.queues {
            q = q.bind(queue.as_str());
        }
        let rows = {
            let mut conn = self.write_conn().await?;
            q.fetch_all(&mut *conn).await.map_err(db_err)?
        };
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<(Job, i64)>>>()?;
        let pos: HashMap<&str, usize> = req
            .queues
            .iter()
            .enumerate()
            .rev()
            .map(|(i, q)| (q.as_str(), i))
            .collect();
        jobs.sort_by_key(|(j, seq)| {
            (
                pos.get(j.queue_name.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
                std::cmp::Reverse(j.priority),
                j.run_at,
                *seq,
            )
        });
        Ok(jobs.into_iter().map(|(j, _)| j).collect())
    }

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
            let sql = format!(
                "UPDATE jobs_queue SET status = 'COMPLETED', result_data = v.column3, \
                 completed_at = ?, locked_by = NULL, lease_until = NULL \
                 FROM (VALUES {}) AS v \
                 WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2 \
                 AND jobs_queue.status = 'RUNNING'",
                values_list(n, 3)
            );
            let mut q = sqlx::query(&sql).bind(now);
            for (id, attempt, result) in chunk {
                q = q.bind(*id).bind(*attempt).bind(result.as_deref());
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
            let sql = format!(
                "SELECT v.column1 FROM (VALUES {}) AS v JOIN jobs_queue \
                 ON jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2 \
                 WHERE jobs_queue.status = 'COMPLETED' AND jobs_queue.completed_at = ?",
                values_list(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (id, attempt, _) in chunk {
                q = q.bind(*id).bind(*attempt);
            }
            for row in q.bind(now).fetch_all(&mut *conn).await.map_err(db_err)? {
                applied.insert(row.try_get(0).map_err(db_err)?);
            }
        }
        Ok(())
    }

    /// Applies failures, retries and releases, appending to the error history.
    async fn apply_transitions(
        conn: &mut SqliteConnection,
        now: i64,
        rows: &[Transition],
        applied: &mut HashSet<Uuid>,
    ) -> Result<()> {
        let at = rfc3339(now);
        for chunk in rows.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            // v: 1 id, 2 attempt, 3 status, 4 retry_inc, 5 run_at, 6 completed_at,
            //    7 message, 8 retryable ('true'/'false'), 9 worker.
            let sql = format!(
                "UPDATE jobs_queue SET status = v.column3, \
                 retry_count = jobs_queue.retry_count + v.column4, \
                 run_at = COALESCE(v.column5, jobs_queue.run_at), \
                 completed_at = v.column6, \
                 error_message = COALESCE(v.column7, jobs_queue.error_message), \
                 errors = CASE WHEN v.column7 IS NULL THEN jobs_queue.errors ELSE \
                   json_insert(COALESCE(jobs_queue.errors, '[]'), '$[#]', json_object(\
                     'attempt', jobs_queue.attempt, 'retry_count', jobs_queue.retry_count, \
                     'at', ?, 'message', v.column7, 'retryable', json(v.column8), \
                     'worker', v.column9)) END, \
                 locked_by = NULL, lease_until = NULL \
                 FROM (VALUES {}) AS v \
                 WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2 \
                 AND jobs_queue.status = 'RUNNING' RETURNING jobs_queue.id",
                values_list(n, 9)
            );
            let mut q = sqlx::query(&sql).bind(at.as_str());
            for t in chunk {
                q = q
                    .bind(t.id)
                    .bind(t.attempt)
                    .bind(t.status)
                    .bind(t.retry_inc)
                    .bind(t.run_at)
                    .bind(t.completed_at)
                    .bind(t.message.as_deref())
                    .bind(if t.retryable { "true" } else { "false" })
                    .bind(t.worker.as_deref());
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
                    .bind(None::<&str>);
            }
            for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                applied.insert(row.try_get(0).map_err(db_err)?);
            }
        }
        Ok(())
    }

    async fn record_now(&self, worker_id: &str, updates: &[OutcomeUpdate]) -> Result<Vec<JobId>> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let now = unique_now_micros();
        let mut completions = Vec::new();
        let mut transitions = Vec::new();
        let mut wake = false;
        for u in updates {
            let id = *u.fence.id.as_uuid();
            let attempt = i64::from(u.fence.attempt);
            let fail =
                |status, error: &jobs_core::AttemptFailure, retry_inc, run_at, done| Transition {
                    id,
                    attempt,
                    status,
                    retry_inc,
                    run_at,
                    completed_at: done,
                    message: Some(error.message.clone()),
                    retryable: error.retryable,
                    worker: Some(worker_id.to_owned()),
                };
            match &u.outcome {
                Outcome::Complete { result } => {
                    let result = result
                        .as_ref()
                        .map(|v| {
                            serde_json::to_string(v)
                                .map_err(|e| Error::InvalidJob(format!("result of job {id}: {e}")))
                        })
                        .transpose()?;
                    completions.push((id, attempt, result));
                }
                Outcome::Retry { delay, error } => {
                    wake = true;
                    transitions.push(fail(
                        "RETRYING",
                        error,
                        1,
                        Some(add_micros(now, *delay)),
                        None,
                    ));
                }
                Outcome::Fail { error } => {
                    transitions.push(fail("FAILED", error, 0, None, Some(now)));
                }
                Outcome::DeadLetter { error } => {
                    transitions.push(fail("DEAD_LETTER", error, 0, None, Some(now)));
                }
                Outcome::Release => {
                    wake = true;
                    transitions.push(Transition {
                        id,
                        attempt,
                        status: "PENDING",
                        retry_inc: 0,
                        run_at: Some(now),
                        completed_at: None,
                        message: None,
                        retryable: false,
                        worker: None,
                    });
                }
            }
        }
        let statements =
            completions.len().div_ceil(UPDATE_CHUNK) + transitions.len().div_ceil(UPDATE_CHUNK);
        let mut applied = HashSet::with_capacity(updates.len());
        let mut conn = self.write_conn().await?;
        if statements > 1 {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
            Self::apply_completions(&mut tx, now, &completions, &mut applied).await?;
            Self::apply_transitions(&mut tx, now, &transitions, &mut applied).await?;
            tx.commit().await.map_err(db_err)?;
        } else {
            Self::apply_completions(&mut conn, now, &completions, &mut applied).await?;
            Self::apply_transitions(&mut conn, now, &transitions, &mut applied).await?;
        }
        drop(conn);
        if wake {
            self.wake();
        }
        Ok(updates
            .iter()
            .map(|u| u.fence.id)
            .filter(|id| !applied.contains(id.as_uuid()))
            .collect())
    }

    async fn heartbeat_now(
        &self,
        worker_id: &str,
        fences: &[Fence],
        lease: Duration,
    ) -> Result<Vec<JobId>> {
        if fences.is_empty() {
            return Ok(Vec::new());
        }
        let until = add_micros(now_micros(), lease);
        let mut kept = HashSet::with_capacity(fences.len());
        let mut conn = self.write_conn().await?;
        for chunk in fences.chunks(UPDATE_CHUNK) {
            let n = padded(chunk.len());
            let sql = format!(
                "UPDATE jobs_queue SET lease_until = ? FROM (VALUES {}) AS v \
                 WHERE jobs_queue.id = v.column1 AND jobs_queue.attempt = v.column2 \
                 AND jobs_queue.status = 'RUNNING' AND jobs_queue.locked_by = ? \
                 RETURNING jobs_queue.id",
                values_list(n, 2)
            );
            let mut q = sqlx::query(&sql).bind(until);
            for f in chunk {
                q = q.bind(*f.id.as_uuid()).bind(i64::from(f.attempt));
            }
            for _ in chunk.len()..n {
                q = q.bind(None::<Uuid>).bind(None::<i64>);
            }
            q = q.bind(worker_id);
            for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                kept.insert(row.try_get::<Uuid, _>(0).map_err(db_err)?);
            }
        }
        Ok(fences
            .iter()
            .map(|f| f.id)
            .filter(|id| !kept.contains(id.as_uuid()))
            .collect())
    }

    async fn recover_now(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        loop {
            let now = now_micros();
            let mut conn = self.writer().await?;
            // The usual answer is "none": find that out without taking the write lock.
            let any: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM jobs_queue WHERE status = 'RUNNING' AND lease_until < ?1 LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
            if any.is_none() {
                return Ok(out);
            }
            self.inner.dirty.store(true, Ordering::Relaxed);
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
            let sql = format!(
                "SELECT {JOB_COLS} FROM jobs_queue WHERE status = 'RUNNING' AND lease_until < ?1 \
                 ORDER BY lease_until LIMIT ?2"
            );
            let rows = sqlx::query(&sql)
                .bind(now)
                .bind(RECOVER_BATCH as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let expired = rows
                .iter()
                .map(|r| job_from_row(r).map(|(j, _)| j))
                .collect::<Result<Vec<Job>>>()?;
            if expired.is_empty() {
                return Ok(out);
            }
            let mut transitions = Vec::with_capacity(expired.len());
            let mut statuses = Vec::with_capacity(expired.len());
            for job in &expired {
                let retry = job.retry_count < job.max_retries;
                let message = format!(
                    "lease expired: worker `{}` stopped heartbeating (lease ran out at {})",
                    job.locked_by.as_deref().unwrap_or("?"),
                    job.lease_until.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
                statuses.push(if retry {
                    JobStatus::Retrying
                } else {
                    JobStatus::DeadLetter
                });
                transitions.push(Transition {
                    id: *job.id.as_uuid(),
                    attempt: i64::from(job.attempt),
                    status: if retry { "RETRYING" } else { "DEAD_LETTER" },
                    retry_inc: i64::from(retry),
                    run_at: retry.then_some(now),
                    completed_at: (!retry).then_some(now),
                    message: Some(message),
                    retryable: true,
                    worker: job.locked_by.clone(),
                });
            }
            let mut applied = HashSet::with_capacity(expired.len());
            Self::apply_transitions(&mut tx, now, &transitions, &mut applied).await?;
            tx.commit().await.map_err(db_err)?;
            drop(conn);
            let batch = expired.len();
            for (job, now_status) in expired.into_iter().zip(statuses) {
                if applied.contains(job.id.as_uuid()) {
                    // The manager that recovered it logs it, with its own context.
                    out.push(Recovered {
                        job,
                        now: now_status,
                    });
                }
            }
            self.wake();
            if batch < RECOVER_BATCH {
                return Ok(out);
            }
        }
    }

    async fn fetch_job(&self, id: JobId) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLS} FROM jobs_queue WHERE id = ?1");
        let row = self
            .read_optional(sqlx::query(&sql).bind(*id.as_uuid()))
            .await?;
        row.as_ref()
            .map(|r| job_from_row(r).map(|(j, _)| j))
            .transpose()
    }

    /// Runs a single-row state change; when it matches nothing, tells why.
    async fn change_one(
        &self,
        id: JobId,
        sql: &str,
        now: i64,
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let row = {
            let mut conn = self.write_conn().await?;
            sqlx::query(sql)
                .bind(now)
                .bind(*id.as_uuid())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
        };
        match row {
            Some(row) => Ok(job_from_row(&row)?.0),
            None => match self.fetch_job(id).await? {
                None => Err(Error::NotFound(id)),
                Some(job) => Err(refuse(id, job.status)),
            },
        }
    }

    async fn list_now(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let mut sql = format!("SELECT {JOB_COLS} FROM jobs_queue WHERE 1 = 1");
        if filter.queue.is_some() {
            sql.push_str(" AND queue = ?3");
        }
        if filter.status.is_some() {
            sql.push_str(" AND status = ?4");
        }
        if filter.job_type.is_some() {
            sql.push_str(" AND job_type = ?5");
        }
        sql.push_str(" ORDER BY seq LIMIT ?1 OFFSET ?2");
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
    async fn next_due(&self, queues: &[String]) -> Result<Option<DateTime<Utc>>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let marks = (0..queues.len())
            .map(|i| format!("?{}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT MIN(run_at) FROM jobs_queue WHERE queue IN ({marks}) \
             AND status IN {WAITING} AND run_at > ?1"
        );
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

/// One job as inserted by `enqueue_batch`.
struct InsertRow {
    id: Uuid,
    queue: String,
    job_type: String,
    payload: String,
    status: &'static str,
    priority: i32,
    max_retries: i64,
    run_at: i64,
    metadata: Option<String>,
}

/// Serializes jobs for [`insert_rows`]; an unserializable job stores nothing.
fn insert_rows_of(jobs: Vec<NewJob>, now: i64) -> Result<Vec<InsertRow>> {
    jobs.into_iter()
        .map(|j| {
            let run_at = j.run_at.map_or(now, micros);
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
                metadata,
            })
        })
        .collect()
}

async fn insert_rows(conn: &mut SqliteConnection, rows: &[InsertRow], now: i64) -> Result<()> {
    let sql = format!(
        "INSERT INTO jobs_queue (id, queue, job_type, payload, status, priority, \
         max_retries, run_at, created_at, metadata) VALUES {}",
        values_list(rows.len(), 10)
    );
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
            .bind(r.metadata.as_deref());
    }
    match q.execute(conn).await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            Err(Error::InvalidJob(
                "a job with one of these ids already exists (or an id repeats in the batch); \
                 nothing was stored"
                    .to_owned(),
            ))
        }
        Err(e) => Err(db_err(e)),
    }
}

/// Once a second, if anything was written, checkpoints the WAL. With
/// `synchronous = NORMAL` a commit is synced to disk only by a checkpoint, so
/// this bounds what a power loss can take to about the last second of writes,
/// however quiet the queue (SQLite's own checkpoint waits for ~4 MB of log).
/// Ends when the backend is dropped.
async fn checkpointer(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if !inner.dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        // A passive checkpoint on a reader connection: it neither waits for nor
        // blocks the writer.
        let Some(reader) = inner.reader.clone() else {
            return;
        };
        if reader.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&reader)
            .await
        {
            tracing::debug!(error = %e, location = %inner.location, "sqlite checkpoint failed; will retry");
            inner.dirty.store(true, Ordering::Relaxed);
        }
    }
}

async fn migrate(conn: &mut SqliteConnection) -> std::result::Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let conn: &mut SqliteConnection = &mut tx;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS jobs_schema (\
            version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .await?;
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM jobs_schema")
        .fetch_one(&mut *conn)
        .await?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(sqlx::Error::Configuration(
            format!(
                "the database has jobs schema version {current}, newer than this build knows \
                 ({latest}); upgrade `jobs` or use another database file"
            )
            .into(),
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        conn.execute(*sql).await?;
        sqlx::query("INSERT INTO jobs_schema (version, applied_at) VALUES (?1, ?2)")
            .bind(version)
            .bind(now_micros())
            .execute(&mut *conn)
            .await?;
        tracing::info!(version, "sqlite jobs schema migrated");
    }
    tx.commit().await
}

/// Enqueue inside your own SQLite transaction (on a connection of your own pool
/// on the same file): the jobs exist if and only if it commits. Begin it with
/// `pool.begin_with("BEGIN IMMEDIATE")` when several processes write the file,
/// so it never has to upgrade a read lock. Workers of this process are woken at
/// once, which may be before you commit; in that case they see the jobs at
/// their next poll, or at once if you call [`SqliteBackend::notify`] after the
/// commit.
///
/// ```no_run
/// # async fn demo(backend: jobs_runtime::backend::sqlite::SqliteBackend) -> Result<(), Box<dyn std::error::Error>> {
/// use jobs_runtime::backend::transactional::TransactionalEnqueue;
/// let pool = sqlx::SqlitePool::connect("sqlite://app.db").await?;
/// let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
/// sqlx::query("INSERT INTO orders (id) VALUES (1)").execute(&mut *tx).await?;
/// backend.enqueue_in(&mut *tx, jobs_core::NewJob::new("order.ship", serde_json::json!({ "order": 1 }))).await?;
/// tx.commit().await?;
/// backend.notify();
/// # Ok(()) }
/// ```
impl TransactionalEnqueue for SqliteBackend {
    type Connection = SqliteConnection;

    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut SqliteConnection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            for job in &jobs {
                check_new_job(job)?;
            }
            if jobs.is_empty() {
                return Ok(Vec::new());
            }
            let now = now_micros();
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let rows = insert_rows_of(jobs, now)?;
            // A savepoint makes the batch all-or-none whether or not the caller's
            // connection is inside a transaction.
            conn.execute("SAVEPOINT jobs_enqueue")
                .await
                .map_err(db_err)?;
            let mut result = Ok(());
            for chunk in rows.chunks(INSERT_CHUNK) {
                result = insert_rows(conn, chunk, now).await;
                if result.is_err() {
                    break;
                }
            }
            if result.is_err() {
                conn.execute("ROLLBACK TO jobs_enqueue")
                    .await
                    .map_err(db_err)?;
            }
            conn.execute("RELEASE jobs_enqueue").await.map_err(db_err)?;
            result?;
            self.wake();
            Ok(ids)
        })
    }
}

impl JobQueue for SqliteBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.heartbeat_now(worker_id, fences, lease))
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.record_now(worker_id, updates))
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(self.recover_now())
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.fetch_job(id))
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.list_now(filter))
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE jobs_queue SET status = 'FAILED', error_message = 'cancelled', \
                 completed_at = ?1 WHERE id = ?2 AND status IN {WAITING} RETURNING {JOB_COLS}"
            );
            self.change_one(id, &sql, now_micros(), Error::cannot_cancel)
                .await
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let sql = format!(
                "UPDATE jobs_queue SET status = 'PENDING', retry_count = 0, run_at = ?1, \
                 completed_at = NULL WHERE id = ?2 AND status IN ('FAILED', 'DEAD_LETTER') \
                 RETURNING {JOB_COLS}"
            );
            let job = self
                .change_one(id, &sql, now_micros(), Error::cannot_requeue)
                .await?;
            self.wake();
            Ok(job)
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let rows = self
                .read_all(sqlx::query(
                    "SELECT queue, status, COUNT(*) FROM jobs_queue GROUP BY queue, status \
                     ORDER BY queue, status",
                ))
                .await?;
            let mut out = rows
                .iter()
                .map(|r| {
                    let queue: String = r.try_get(0).map_err(db_err)?;
                    let status: &str = r.try_get(1).map_err(db_err)?;
                    let count: i64 = r.try_get(2).map_err(db_err)?;
                    let status = JobStatus::from_str(status).map_err(|e| Error::Corrupt {
                        backend: BACKEND,
                        id: format!("(some job of queue `{queue}`)"),
                        reason: e.to_string(),
                    })?;
                    Ok(QueueCount {
                        queue,
                        status,
                        count: count.unsigned_abs(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.sort();
            Ok(out)
        })
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(0);
            }
            let sql = format!(
                "DELETE FROM jobs_queue WHERE seq IN (SELECT seq FROM jobs_queue \
                 WHERE status IN {TERMINAL} AND completed_at < ?1 ORDER BY completed_at LIMIT ?2)"
            );
            let mut conn = self.write_conn().await?;
            let done = sqlx::query(&sql)
                .bind(micros(before))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected())
        })
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(SqliteListener {
                backend: self.clone(),
                queues: queues.to_vec(),
                rx: self.inner.wake.subscribe(),
                next_due: None,
            });
            Ok(listener)
        })
    }
}

struct SqliteListener {
    backend: SqliteBackend,
    queues: Vec<String>,
    rx: watch::Receiver<u64>,
    /// The earliest future `run_at` of our queues as last read, if still valid.
    /// Re-read only after a local change or once it has passed, so an idle
    /// worker's wait costs no query.
    next_due: Option<Option<DateTime<Utc>>>,
}

impl JobListener for SqliteListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let now = Utc::now();
            let known = match self.next_due {
                Some(Some(due)) if due <= now => None,
                other => other,
            };
            let next_due = match known {
                Some(due) => due,
                None => match self.backend.next_due(&self.queues).await {
                    Ok(due) => {
                        self.next_due = Some(due);
                        due
                    }
                    Err(e) => {
                        // The plain timeout still bounds the wait.
                        tracing::debug!(error = %e, "sqlite listener could not read the next due time");
                        None
                    }
                },
            };
            let timeout = match next_due {
                Some(due) => (due - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(timeout),
                None => timeout,
            };
            if let Ok(Ok(())) = tokio::time::timeout(timeout, self.rx.changed()).await {
                // Something was enqueued or rescheduled here: the next due time may be earlier.
                self.next_due = None;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>(_: &T) {}

    /// `connect` must be spawnable (sqlx's executors make this easy to break).
    #[tokio::test]
    async fn futures_are_send() {
        let connect = super::SqliteBackend::connect("sqlite::memory:");
        assert_send(&connect);
        let backend = super::SqliteBackend::connect("sqlite::memory:")
            .await
            .expect("open");
        assert_send(&backend.writer());
        assert_send(&backend.close());
    }
}
