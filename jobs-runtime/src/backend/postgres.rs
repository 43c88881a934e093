//! The PostgreSQL backend (`postgres://`): many worker processes on many hosts
//! share one database, and nothing else coordinates them.
//!
//! ```no_run
//! # async fn demo() -> jobs_core::Result<()> {
//! use jobs_runtime::backend::postgres::PostgresBackend;
//! use jobs_runtime::backend::transactional::TransactionalEnqueue;
//!
//! let backend = PostgresBackend::builder("postgres://app@db/app")
//!     .schema("jobs")
//!     .connect()
//!     .await?;
//! // The outbox guarantee: the job exists iff the business write commits.
//! let mut tx = backend.pool().begin().await.map_err(|e| jobs_core::Error::backend("postgres", e))?;
//! sqlx::query("INSERT INTO orders (id) VALUES (1)").execute(&mut *tx).await.ok();
//! backend
//!     .enqueue_in(&mut *tx, jobs_core::NewJob::new("order.confirm", serde_json::json!({"order": 1})))
//!     .await?;
//! tx.commit().await.map_err(|e| jobs_core::Error::backend("postgres", e))?;
//! let queue = jobs_core::Queue::from(backend); // the ordinary handle, for workers and admin
//! # Ok(()) }
//! ```
//!
//! How it works:
//!
//! * Schema: versioned migrations embedded from `postgres/*.sql`, applied at
//!   connect under a session advisory lock keyed by the schema name, so many
//!   processes may start at once. Everything lives in one schema (default
//!   `jobs`; `?schema=name` in the URL or [`PostgresBuilder::schema`]).
//! * Claim: one statement per batch — per queue of the request, in order, the
//!   first due rows in (priority desc, run_at, seq) order taken with
//!   `FOR UPDATE SKIP LOCKED` from a partial index that holds waiting rows
//!   only, then marked RUNNING with `UPDATE … RETURNING`. Finished rows are in
//!   no index the claim reads, and each claim starts past the (not yet
//!   vacuumed) entries of jobs claimed before it, so its cost stays flat as
//!   history and backlog grow. The one approximation: a job enqueued *ahead*
//!   of a draining backlog (higher priority, or a run_at further back) may wait
//!   up to 100 ms before it overtakes; everything else is claimed in exact order.
//! * Outcomes and heartbeats: one statement per batch over `UNNEST` arrays,
//!   each row fenced on `status = 'RUNNING' AND attempt = fence`.
//! * Durability: enqueues, outcomes and lease recovery wait for the WAL flush
//!   like any commit. Claims and heartbeats don't (`synchronous_commit = off`
//!   on their connections): that saves a disk flush per pickup, and a database
//!   crash can at worst forget the last moment's claims, which only hands those
//!   jobs out again — at-least-once either way. Opt out with
//!   [`PostgresBuilder::synchronous_claims`].
//! * Wake-up: enqueues (and jobs going back to waiting) `NOTIFY` once per
//!   statement; the listener also sleeps until the earliest scheduled job of its
//!   queues, with a poll fallback, so an idle worker issues almost no queries.
//! * Pruning: [`JobQueue::prune`] deletes finished jobs oldest first, at most
//!   `limit` per statement, from a partial index on finished rows.
//! * Time: every "now" is the database's clock.
//! * Connections: the backend keeps its own (`sqlx::Pool` pings each one it
//!   gets back, a second round trip per call). Calls fail with a transient
//!   [`Error::Backend`] while the database is away — once per idle connection
//!   after a restart — and connections and the listener are re-established
//!   when it is back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jobs_core::{
    BoxFuture, ClaimRequest, Error, Fence, Job, JobFilter, JobId, JobListener, JobQueue, JobStatus,
    NewJob, Outcome, OutcomeUpdate, QueueCount, Recovered, Result,
};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, Row};
use uuid::Uuid;

use super::transactional::{check_new_job, TransactionalEnqueue};

const BACKEND: &str = "postgres";
/// The schema used unless the URL or the builder names another.
pub const DEFAULT_SCHEMA: &str = "jobs";

/// Embedded migrations, never edited once merged: (version, name, SQL with
/// `__SCHEMA__`/`__CHANNEL__` placeholders).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("postgres/0001_init.sql")),
    (
        2,
        "claim_hints",
        include_str!("postgres/0002_claim_hints.sql"),
    ),
];

/// Advisory-lock class of the migration lock (`'jobs'` in ASCII); the other key is the schema's hash.
const MIGRATION_LOCK_CLASS: i32 = 0x6a6f_6273;

/// How long a cached "earliest scheduled job" is trusted without a signal.
const NEXT_DUE_TTL: Duration = Duration::from_secs(30);

const JOB_COLUMNS: &str = "id, seq, queue_name, job_type, payload, status, priority, retry_count, \
     max_retries, run_at, created_at, started_at, completed_at, error_message, errors, result_data, \
     metadata, locked_by, lease_until, attempt";

fn db_err(e: sqlx::Error) -> Error {
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

fn corrupt(id: impl ToString, reason: impl ToString) -> Error {
    Error::Corrupt {
        backend: BACKEND,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn check_schema(schema: &str) -> std::result::Result<(), String> {
    let ok = !schema.is_empty()
        && schema.len() <= 40
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema name `{schema}` must be 1 to 40 ASCII letters, digits or `_`, \
             not start with a digit or `pg_`"
        ))
    }
}

/// Splits `?schema=name` off a URL (sqlx does not know the parameter).
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("schema", v)) => {
                schema = Some(v.to_owned());
                false
            }
            _ => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

/// Options for [`PostgresBackend`]; from [`PostgresBackend::builder`].
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    synchronous_claims: bool,
}

impl PostgresBuilder {
    /// The schema holding the jobs table (created if missing). Overrides `?schema=` in the URL.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Size of the connection pool for queue operations (default 10). Each
    /// listener holds one more connection of its own.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a pooled connection — or for the database to come
    /// back — before failing with a transient error (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether claims and heartbeats wait for their WAL flush like everything
    /// else (default `false`). Without the wait a claim saves a disk flush —
    /// the biggest cost of a pickup — and a database crash can at worst forget
    /// the last moment's claims, so those jobs run again: at-least-once delivery
    /// either way. Enqueues, outcomes and lease recovery always wait.
    pub fn synchronous_claims(mut self, yes: bool) -> Self {
        self.synchronous_claims = yes;
        self
    }

    /// Connects, then creates or migrates the schema.
    pub async fn connect(self) -> Result<PostgresBackend> {
        let (url, url_schema) = split_schema(&self.url);
        let schema = self
            .schema
            .or(url_schema)
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
        let bad = |reason: String| Error::Connect {
            url: self.url.clone(),
            reason,
        };
        check_schema(&schema).map_err(bad)?;
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| bad(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("jobs");

        migrate(&options, &schema)
            .await
            .map_err(|e| bad(format!("could not prepare schema `{schema}`: {e}")))?;

        // For the caller's own transactions (`pool()`), created lazily.
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options.clone());
        let conns = Conns::new(options.clone(), self.max_connections, self.acquire_timeout);
        // Claims and heartbeats commit asynchronously (no wait for the WAL flush):
        // if the database itself crashes, the last fraction of a second of them
        // may be lost, which only hands those jobs out again (at-least-once).
        // Enqueues and outcomes always wait for the flush.
        let lease_conns = Conns::new(
            options.clone().options([(
                "synchronous_commit",
                if self.synchronous_claims { "on" } else { "off" },
            )]),
            self.max_connections,
            self.acquire_timeout,
        );
        let listen_pool = PgPoolOptions::new()
            .max_connections(64)
            .acquire_timeout(self.acquire_timeout)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        tracing::debug!(schema = %schema, "postgres backend connected");
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                sql: Sql::new(&schema),
                channel: channel_name(&schema),
                schema,
                synchronous_claims: self.synchronous_claims,
                pool,
                conns,
                hints: Hints::default(),
                lease_conns,
                listen_pool,
            }),
        })
    }
}

fn channel_name(schema: &str) -> String {
    format!("{schema}.jobs_wake")
}

/// Applies the embedded migrations that `schema` lacks, under an advisory lock.
// Boxed with an explicit `Send` so callers' futures stay `Send` (sqlx's
// `Executor` impls trip the compiler's higher-ranked inference otherwise).
fn migrate<'a>(
    options: &'a PgConnectOptions,
    schema: &'a str,
) -> BoxFuture<'a, std::result::Result<(), sqlx::Error>> {
    Box::pin(async move {
        // A connection of its own: closing it releases the session lock whatever happens.
        let mut conn = PgConnection::connect_with(options).await?;
        let result = migrate_locked(&mut conn, schema).await;
        let _ = conn.close().await;
        result
    })
}

fn migrate_locked<'a>(
    conn: &'a mut PgConnection,
    schema: &'a str,
) -> BoxFuture<'a, std::result::Result<(), sqlx::Error>> {
    Box::pin(async move {
        let s = quote_ident(schema);
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(MIGRATION_LOCK_CLASS)
            .bind(schema)
            .execute(&mut *conn)
            .await?;
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.jobs_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"
        );
        conn.execute(sqlx::raw_sql(&create)).await?;
        let applied: Vec<i32> = sqlx::query_scalar(&format!(
            "SELECT version FROM {s}.jobs_migrations ORDER BY version"
        ))
        .fetch_all(&mut *conn)
        .await?;
        if let Some(&newest) = applied.last() {
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if newest > known {
                tracing::warn!(
                    schema,
                    newest,
                    known,
                    "the jobs schema is newer than this binary; running anyway"
                );
            }
        }
        for &(version, name, sql) in MIGRATIONS {
            if applied.contains(&version) {
                continue;
            }
            let sql = sql
                .replace("__SCHEMA__", &s)
                .replace("__CHANNEL__", &quote_literal(&channel_name(schema)));
            // One transaction per migration: its DDL and its row in `jobs_migrations`.
            let sql = format!(
            "BEGIN;\n{sql};\nINSERT INTO {s}.jobs_migrations (version, name) VALUES ({version}, {});\nCOMMIT;",
            quote_literal(name)
        );
            if let Err(e) = conn.execute(sqlx::raw_sql(&sql)).await {
                let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
                return Err(e);
            }
            tracing::info!(schema, version, name, "applied jobs schema migration");
        }
        sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(MIGRATION_LOCK_CLASS)
            .bind(schema)
            .execute(&mut *conn)
            .await?;
        Ok(())
    })
}

/// The statements, with the schema spliced in once at connect (sqlx caches the
/// prepared form per connection, keyed by the text).
#[derive(Debug)]
struct Sql {
    enqueue: String,
    claim: String,
    heartbeat: String,
    record: String,
    recover: String,
    get: String,
    list: String,
    cancel: String,
    requeue: String,
    status_of: String,
    counts: String,
    prune: String,
    next_due: String,
}

/// The NOTIFY of one statement, as an aggregate over rows with a `queue_name`:
/// the payload lists the queues that got claimable work, and a final `!` token
/// when a future run_at was stored (listeners then re-read their timer).
/// Payloads stay well below PostgreSQL's 8000-byte limit: `*` means "any queue".
/// Inline rather than a SQL function: a function call costs more than the insert.
fn wake(channel: &str, refresh: &str) -> String {
    let list = "array_to_string(array_agg(DISTINCT queue_name), ' ')";
    format!(
        "pg_notify({channel}, CASE WHEN octet_length({list}) > 7000 THEN '* !' \
         ELSE {list} || CASE WHEN {refresh} THEN ' !' ELSE '' END END)"
    )
}

const MIN: &str = "-9223372036854775808";

const WAITING: &str = "('PENDING', 'SCHEDULED', 'RETRYING')";

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = quote_ident(schema);
        let t = format!("{s}.jobs");
        let cols = JOB_COLUMNS;
        let channel = quote_literal(&channel_name(schema));
        let wake_enqueue = wake(&channel, "bool_or(status = 'SCHEDULED')");
        let wake_record = wake(&channel, "bool_or(run_at > now())");
        let wake_plain = wake(&channel, "false");
        // The fence, written so the planner can't use it to pick the partial lease
        // index: its statistics often say "no job is running", which makes it scan
        // every running row once per batch row instead of looking each one up by id.
        let running = "j.status || '' = 'RUNNING'";
        Sql {
            enqueue: format!(
                "WITH ins AS (
                   INSERT INTO {t} (id, queue_name, job_type, payload, status, priority,
                                    max_retries, run_at, created_at, metadata)
                   SELECT u.id, u.queue_name, u.job_type, u.payload,
                          CASE WHEN u.run_at > now() THEN 'SCHEDULED' ELSE 'PENDING' END,
                          u.priority, u.max_retries, coalesce(u.run_at, now()), now(), u.metadata
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int4[],
                               $6::int4[], $7::timestamptz[], $8::jsonb[])
                        WITH ORDINALITY AS u(id, queue_name, job_type, payload, priority,
                                             max_retries, run_at, metadata, ord)
                   ORDER BY u.ord
                   RETURNING queue_name, status)
                 SELECT count(*) AS n,
                        {wake_enqueue}::text AS w
                 FROM ins"
            ),
            // Per queue in request order, the first due rows in claim order, from the
            // queue's hint on (see `Hint`); the outer LIMIT stops the nested loop once
            // enough rows are locked. `id = ANY(ARRAY(..))`
            // keeps the update on the primary key even under a generic plan (a join
            // there lets the planner pick a hash join over the whole table).
            claim: format!(
                "UPDATE {t} j
                 SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(),
                     locked_by = $3, lease_until = now() + $4 * interval '1 microsecond'
                 WHERE j.id = ANY(ARRAY(
                   SELECT c.id
                   FROM unnest($1::text[], $5::int8[], $6::timestamptz[], $7::int8[])
                        AS q(name, hp, hr, hs)
                   CROSS JOIN LATERAL (
                     SELECT w.id FROM {t} w
                     WHERE w.queue_name = q.name AND w.status IN {WAITING} AND w.run_at <= now()
                       AND (-w.priority::int8, w.run_at, w.seq)
                           >= (coalesce(q.hp, {MIN}), coalesce(q.hr, '-infinity'), coalesce(q.hs, {MIN}))
                     ORDER BY -w.priority::int8, w.run_at, w.seq
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED) c
                   LIMIT $2))
                 RETURNING {cols}"
            ),
            heartbeat: format!(
                "UPDATE {t} j SET lease_until = now() + $4 * interval '1 microsecond'
                 FROM unnest($1::uuid[], $2::int4[]) AS u(id, attempt)
                 WHERE j.id = u.id AND {running} AND j.attempt = u.attempt
                   AND j.locked_by = $3
                 RETURNING j.id"
            ),
            record: format!(
                "WITH upd AS (
                   UPDATE {t} j SET
                     status = u.status,
                     result_data = CASE WHEN u.status = 'COMPLETED' THEN u.result ELSE j.result_data END,
                     completed_at = CASE WHEN u.status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER')
                                         THEN now() ELSE j.completed_at END,
                     retry_count = j.retry_count + CASE WHEN u.status = 'RETRYING' THEN 1 ELSE 0 END,
                     run_at = CASE WHEN u.status = 'RETRYING' THEN now() + u.delay * interval '1 microsecond'
                                   WHEN u.status = 'PENDING' THEN now() ELSE j.run_at END,
                     error_message = coalesce(u.message, j.error_message),
                     errors = CASE WHEN u.message IS NULL THEN j.errors
                                   ELSE j.errors || jsonb_build_array(jsonb_build_object(
                                     'attempt', j.attempt, 'retry_count', j.retry_count,
                                     'at', now(), 'message', u.message,
                                     'retryable', u.retryable, 'worker', $8::text)) END,
                     locked_by = NULL,
                     lease_until = NULL
                   FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::jsonb[], $5::int8[],
                               $6::text[], $7::bool[])
                        AS u(id, attempt, status, result, delay, message, retryable)
                   WHERE j.id = u.id AND {running} AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.status, j.run_at),
                 woke AS (
                   SELECT {wake_record} AS w
                   FROM upd WHERE status IN ('PENDING', 'RETRYING')
                   HAVING count(*) > 0)
                 SELECT id FROM upd
                 UNION ALL SELECT NULL FROM woke"
            ),
            recover: {
                let message = "format('lease expired: worker `%s` stopped heartbeating \
                               (lease ran out at %s)', coalesce(j.locked_by, '?'), j.lease_until)";
                format!(
                    "WITH expired AS MATERIALIZED (
                       SELECT id FROM {t}
                       WHERE status = 'RUNNING' AND lease_until < now()
                       ORDER BY lease_until
                       LIMIT 1000
                       FOR UPDATE SKIP LOCKED),
                     before AS (SELECT {cols} FROM {t} WHERE id = ANY(ARRAY(SELECT id FROM expired))),
                     upd AS (
                       UPDATE {t} j SET
                         status = CASE WHEN j.retry_count < j.max_retries
                                       THEN 'RETRYING' ELSE 'DEAD_LETTER' END,
                         retry_count = j.retry_count
                                       + CASE WHEN j.retry_count < j.max_retries THEN 1 ELSE 0 END,
                         run_at = CASE WHEN j.retry_count < j.max_retries THEN now() ELSE j.run_at END,
                         completed_at = CASE WHEN j.retry_count < j.max_retries
                                             THEN j.completed_at ELSE now() END,
                         error_message = {message},
                         errors = j.errors || jsonb_build_array(jsonb_build_object(
                           'attempt', j.attempt, 'retry_count', j.retry_count, 'at', now(),
                           'message', {message}, 'retryable', true, 'worker', j.locked_by)),
                         locked_by = NULL,
                         lease_until = NULL
                       WHERE j.id = ANY(ARRAY(SELECT id FROM expired))
                         AND j.status = 'RUNNING' AND j.lease_until < now()
                       RETURNING j.id, j.queue_name, j.status),
                     woke AS (
                       SELECT {wake_plain} AS w
                       FROM upd WHERE status = 'RETRYING'
                       HAVING count(*) > 0)
                     SELECT b.*, u.status AS new_status
                     FROM before b JOIN upd u ON u.id = b.id
                     LEFT JOIN woke ON true"
                )
            },
            get: format!("SELECT {cols} FROM {t} WHERE id = $1"),
            list: format!(
                "SELECT {cols} FROM {t}
                 WHERE ($1::text IS NULL OR queue_name = $1)
                   AND ($2::text IS NULL OR status = $2)
                   AND ($3::text IS NULL OR job_type = $3)
                 ORDER BY seq
                 LIMIT $4 OFFSET $5"
            ),
            cancel: format!(
                "UPDATE {t} SET status = 'FAILED', error_message = 'cancelled', completed_at = now()
                 WHERE id = $1 AND status IN {WAITING}
                 RETURNING {cols}"
            ),
            requeue: format!(
                "WITH upd AS (
                   UPDATE {t} SET status = 'PENDING', retry_count = 0, run_at = now(),
                                  completed_at = NULL
                   WHERE id = $1 AND status IN ('FAILED', 'DEAD_LETTER')
                   RETURNING {cols}),
                 woke AS (SELECT {wake_plain} AS w FROM upd
                          HAVING count(*) > 0)
                 SELECT upd.* FROM upd LEFT JOIN woke ON true"
            ),
            status_of: format!("SELECT status FROM {t} WHERE id = $1"),
            counts: format!(
                "SELECT queue_name, status, count(*) AS n FROM {t} GROUP BY queue_name, status"
            ),
            prune: format!(
                "DELETE FROM {t} WHERE id IN (
                   SELECT id FROM {t}
                   WHERE status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER') AND completed_at < $1
                   ORDER BY completed_at
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)"
            ),
            next_due: format!(
                "SELECT min(d.run_at) FROM unnest($1::text[]) AS q(name)
                 CROSS JOIN LATERAL (
                   SELECT run_at FROM {t}
                   WHERE queue_name = q.name AND status IN ('SCHEDULED', 'RETRYING')
                   ORDER BY run_at LIMIT 1) d"
            ),
        }
    }
}

/// A claim's position in a queue's claim order: (-priority, run_at, seq).
type Key = (i64, DateTime<Utc>, i64);

/// Where each queue's next claim starts scanning, so it need not step over the
/// index entries of jobs claimed since the last vacuum (they stay in the index,
/// dead, until then, and at thousands of claims a second they would make every
/// claim slower than the last). A hint is the first job this process claimed
/// from the queue; only a job enqueued *ahead* of it afterwards — higher
/// priority, or an explicit run_at further in the past — can sort before it,
/// so a full scan from the start runs at least every [`HINT_TTL`], and whenever
/// a claim comes back short. Such a job may thus wait up to that long behind
/// ones it outranks; everything else is claimed in exact order.
#[derive(Debug, Default)]
struct Hints(std::sync::Mutex<HashMap<String, (Key, Instant)>>);

/// How long a hint is trusted before a claim scans its queue from the start.
const HINT_TTL: Duration = Duration::from_millis(100);

impl Hints {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Key, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Per queue, the key to start from (`None`: from the start).
    fn starts(&self, queues: &[String]) -> Vec<Option<Key>> {
        let hints = self.lock();
        queues
            .iter()
            .map(|q| {
                hints
                    .get(q)
                    .filter(|(_, full_scan_at)| full_scan_at.elapsed() < HINT_TTL)
                    .map(|(key, _)| *key)
            })
            .collect()
    }

    /// Records what a claim found: `firsts[i]` is the first job claimed from
    /// `queues[i]`; `short` means the claim got fewer jobs than it asked for.
    fn update(&self, queues: &[String], used: &[Option<Key>], firsts: &[Option<Key>], short: bool) {
        let mut hints = self.lock();
        for ((queue, used), first) in queues.iter().zip(used).zip(firsts) {
            match (first, short) {
                // Ran dry: next time scan from the start, for anything enqueued ahead.
                (_, true) => {
                    hints.remove(queue);
                }
                (Some(first), false) => {
                    // The TTL counts from the last scan from the start.
                    let full_scan_at = match (used, hints.get(queue)) {
                        (Some(_), Some((_, at))) => *at,
                        _ => Instant::now(),
                    };
                    hints.insert(queue.clone(), (*first, full_scan_at));
                }
                // Earlier queues filled the claim: nothing learnt about this one.
                (None, false) => {}
            }
        }
    }
}

/// Connections for the backend's own statements, without `sqlx::Pool`: a pool
/// pings every connection it gets back (a second round trip per call, which
/// costs the server as much as a small statement). A connection whose call
/// failed below the database (I/O, protocol) or was abandoned mid-call is
/// dropped, so a restarted server costs one transient error per idle connection.
struct Conns {
    options: PgConnectOptions,
    idle: std::sync::Mutex<Vec<PgConnection>>,
    permits: tokio::sync::Semaphore,
    timeout: Duration,
}

impl Conns {
    fn new(options: PgConnectOptions, max: u32, timeout: Duration) -> Conns {
        Conns {
            options,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(max as usize),
            timeout,
        }
    }

    async fn get(&self) -> Result<Conn<'_>> {
        let unavailable = |what: &str| Error::Backend {
            backend: BACKEND,
            message: format!("no database connection within {:?} ({what})", self.timeout),
            source: None,
        };
        let permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| unavailable("all connections busy"))?
            .expect("semaphore never closed");
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                .await
                .map_err(|_| unavailable("connect timed out"))?
                .map_err(db_err)?,
        };
        Ok(Conn {
            conns: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

/// One borrowed connection; returned by [`Conn::done`], dropped otherwise.
struct Conn<'a> {
    conns: &'a Conns,
    conn: Option<PgConnection>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conn<'_> {
    fn get(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until done")
    }

    /// Hands the connection back unless `result` says it is broken, and maps the error.
    fn done<T>(mut self, result: std::result::Result<T, sqlx::Error>) -> Result<T> {
        let healthy = match &result {
            Ok(_) => true,
            Err(e) => matches!(e, sqlx::Error::Database(_) | sqlx::Error::RowNotFound),
        };
        if healthy {
            if let Some(conn) = self.conn.take() {
                self.conns
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
        result.map_err(db_err)
    }

    /// [`done`](Self::done) for a result already mapped to the framework's error.
    fn done_mapped<T>(mut self, result: Result<T>) -> Result<T> {
        let healthy = match &result {
            Ok(_) | Err(Error::InvalidJob(_) | Error::Corrupt { .. }) => true,
            Err(Error::Backend {
                source: Some(source),
                ..
            }) => matches!(
                source.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::Database(_))
            ),
            Err(_) => false,
        };
        if !healthy {
            self.conn = None;
        }
        self.done(Ok(())).and(result)
    }
}

/// The PostgreSQL queue backend. Clones share one set of connections.
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

struct Inner {
    schema: String,
    channel: String,
    pool: PgPool,
    /// Listeners hold a connection each for as long as they live; a pool of their
    /// own keeps them from starving queue operations.
    listen_pool: PgPool,
    /// Everything but claims and heartbeats.
    conns: Conns,
    hints: Hints,
    synchronous_claims: bool,
    /// Claims and heartbeats: asynchronous commit unless `synchronous_claims`.
    lease_conns: Conns,
    sql: Sql,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.schema)
            .field("synchronous_claims", &self.inner.synchronous_claims)
            .finish()
    }
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user:pass@host:port/db[?schema=name]`) and
    /// creates or migrates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Options before connecting: schema name, pool size.
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder {
            url: url.into(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            synchronous_claims: false,
        }
    }

    /// The schema holding the jobs table.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// A connection pool to the same database (opened lazily), e.g. to begin a
    /// transaction for [`TransactionalEnqueue`]. The backend's own statements use
    /// connections of their own.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The NOTIFY channel workers of this schema listen on.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    async fn enqueue_with<'e, E>(&self, executor: E, jobs: Vec<NewJob>) -> Result<Vec<JobId>>
    where
        E: Executor<'e, Database = sqlx::Postgres>,
    {
        let n = jobs.len();
        let mut ids = Vec::with_capacity(n);
        let mut uuids = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut max_retries = Vec::with_capacity(n);
        let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut metadata = Vec::with_capacity(n);
        for job in jobs {
            let retries = i32::try_from(job.max_retries).map_err(|_| {
                Error::InvalidJob(format!(
                    "max_retries {} of job {} ({}) is too large; at most {}",
                    job.max_retries,
                    job.id,
                    job.job_type,
                    i32::MAX
                ))
            })?;
            ids.push(job.id);
            uuids.push(*job.id.as_uuid());
            queues.push(job.queue_name);
            types.push(job.job_type);
            payloads.push(job.payload);
            priorities.push(job.priority);
            max_retries.push(retries);
            run_ats.push(job.run_at);
            metadata.push(Value::Object(job.metadata));
        }
        if ids.is_empty() {
            return Ok(ids);
        }
        let row = sqlx::query(&self.inner.sql.enqueue)
            .bind(uuids)
            .bind(queues)
            .bind(types)
            .bind(payloads)
            .bind(priorities)
            .bind(max_retries)
            .bind(run_ats)
            .bind(metadata)
            .fetch_one(executor)
            .await
            .map_err(db_err)?;
        let stored: i64 = row.try_get("n").map_err(db_err)?;
        if stored as usize != ids.len() {
            return Err(Error::Backend {
                backend: BACKEND,
                message: format!("stored {stored} of {} jobs", ids.len()),
                source: None,
            });
        }
        Ok(ids)
    }

    /// Runs a one-job state change (cancel, requeue) that returns the job, or
    /// says why it was refused: no such job, or `refuse` for its status.
    async fn change_one(
        &self,
        sql: &str,
        id: JobId,
        refuse: fn(JobId, JobStatus) -> Error,
    ) -> Result<Job> {
        let mut conn = self.inner.conns.get().await?;
        let res = sqlx::query(sql)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let row = conn.done(res)?;
        match row {
            Some(row) => row_to_job(&row),
            None => match self.status_of(id).await? {
                None => Err(Error::NotFound(id)),
                Some(from) => Err(refuse(id, from)),
            },
        }
    }

    async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>> {
        let mut conn = self.inner.conns.get().await?;
        let res = sqlx::query_scalar(&self.inner.sql.status_of)
            .bind(id.as_uuid())
            .fetch_optional(conn.get())
            .await;
        let status: Option<String> = conn.done(res)?;
        status
            .map(|s| s.parse().map_err(|e| corrupt(id, e)))
            .transpose()
    }
}

fn to_u32(id: Uuid, name: &str, v: i32) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(id, format!("{name} is {v}")))
}

fn row_to_job(row: &PgRow) -> Result<Job> {
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

impl TransactionalEnqueue for PostgresBackend {
    type Connection = PgConnection;

    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            for job in &jobs {
                check_new_job(job)?;
            }
            self.enqueue_with(conn, jobs).await
        })
    }
}

impl JobQueue for PostgresBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = self.enqueue_with(conn.get(), jobs).await;
            conn.done_mapped(res)
        })
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if req.limit == 0 || req.queues.is_empty() {
                return Ok(Vec::new());
            }
            let hints = self.inner.hints.starts(req.queues);
            let mut conn = self.inner.lease_conns.get().await?;
            let res = sqlx::query(&self.inner.sql.claim)
                .bind(req.queues)
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .bind(req.worker_id)
                .bind(micros(req.lease))
                .bind(hints.iter().map(|h| h.map(|k| k.0)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.1)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.2)).collect::<Vec<_>>())
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut keyed = Vec::with_capacity(rows.len());
            for row in &rows {
                let seq: i64 = row.try_get("seq").map_err(db_err)?;
                let job = row_to_job(row)?;
                let ord = req.queues.iter().position(|q| *q == job.queue_name);
                keyed.push((ord, seq, job));
            }
            // RETURNING has no order; restore the claim order.
            keyed.sort_by(|a, b| {
                (a.0, std::cmp::Reverse(a.2.priority), a.2.run_at, a.1).cmp(&(
                    b.0,
                    std::cmp::Reverse(b.2.priority),
                    b.2.run_at,
                    b.1,
                ))
            });
            let firsts: Vec<Option<Key>> = (0..req.queues.len())
                .map(|i| {
                    keyed
                        .iter()
                        .find(|k| k.0 == Some(i))
                        .map(|(_, seq, job)| (-i64::from(job.priority), job.run_at, *seq))
                })
                .collect();
            self.inner
                .hints
                .update(req.queues, &hints, &firsts, keyed.len() < req.limit);
            Ok(keyed.into_iter().map(|(_, _, job)| job).collect())
        })
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            if fences.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<Uuid> = fences.iter().map(|f| *f.id.as_uuid()).collect();
            let attempts: Vec<i32> = fences
                .iter()
                .map(|f| i32::try_from(f.attempt).unwrap_or(-1))
                .collect();
            let mut conn = self.inner.lease_conns.get().await?;
            let res = sqlx::query_scalar(&self.inner.sql.heartbeat)
                .bind(ids)
                .bind(attempts)
                .bind(worker_id)
                .bind(micros(lease))
                .fetch_all(conn.get())
                .await;
            let kept: Vec<Uuid> = conn.done(res)?;
            Ok(fences
                .iter()
                .map(|f| f.id)
                .filter(|id| !kept.contains(id.as_uuid()))
                .collect())
        })
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            if updates.is_empty() {
                return Ok(Vec::new());
            }
            let n = updates.len();
            let mut ids = Vec::with_capacity(n);
            let mut attempts = Vec::with_capacity(n);
            let mut statuses = Vec::with_capacity(n);
            let mut results: Vec<Option<Value>> = Vec::with_capacity(n);
            let mut delays = Vec::with_capacity(n);
            let mut messages: Vec<Option<&str>> = Vec::with_capacity(n);
            let mut retryables = Vec::with_capacity(n);
            for u in updates {
                ids.push(*u.fence.id.as_uuid());
                attempts.push(i32::try_from(u.fence.attempt).unwrap_or(-1));
                let (status, result, delay, error) = match &u.outcome {
                    Outcome::Complete { result } => (JobStatus::Completed, result.clone(), 0, None),
                    Outcome::Retry { delay, error } => {
                        (JobStatus::Retrying, None, micros(*delay), Some(error))
                    }
                    Outcome::Fail { error } => (JobStatus::Failed, None, 0, Some(error)),
                    Outcome::DeadLetter { error } => (JobStatus::DeadLetter, None, 0, Some(error)),
                    Outcome::Release => (JobStatus::Pending, None, 0, None),
                };
                statuses.push(status.as_str());
                // A JSON `null` result is stored as SQL NULL: both read back as `None`.
                results.push(result.filter(|v| !v.is_null()));
                delays.push(delay);
                messages.push(error.map(|e| e.message.as_str()));
                retryables.push(error.is_some_and(|e| e.retryable));
            }
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query_scalar(&self.inner.sql.record)
                .bind(&ids)
                .bind(attempts)
                .bind(statuses)
                .bind(results)
                .bind(delays)
                .bind(messages)
                .bind(retryables)
                .bind(worker_id)
                .fetch_all(conn.get())
                .await;
            let done: Vec<Option<Uuid>> = conn.done(res)?;
            Ok(updates
                .iter()
                .map(|u| u.fence.id)
                .filter(|id| !done.contains(&Some(*id.as_uuid())))
                .collect())
        })
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.recover)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let job = row_to_job(row)?;
                let now: String = row.try_get("new_status").map_err(db_err)?;
                let now = now.parse().map_err(|e| corrupt(job.id, e))?;
                // The manager that recovered it logs it, with its own context.
                out.push(Recovered { job, now });
            }
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.get)
                .bind(id.as_uuid())
                .fetch_optional(conn.get())
                .await;
            let row = conn.done(res)?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.list)
                .bind(filter.queue.as_deref())
                .bind(filter.status.map(JobStatus::as_str))
                .bind(filter.job_type.as_deref())
                .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change_one(&self.inner.sql.cancel, id, Error::cannot_cancel))
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change_one(&self.inner.sql.requeue, id, Error::cannot_requeue))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.counts)
                .fetch_all(conn.get())
                .await;
            let rows = conn.done(res)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let queue: String = row.try_get("queue_name").map_err(db_err)?;
                let status: String = row.try_get("status").map_err(db_err)?;
                let count: i64 = row.try_get("n").map_err(db_err)?;
                out.push(QueueCount {
                    status: status
                        .parse()
                        .map_err(|e| corrupt(format!("(queue {queue})"), e))?,
                    queue,
                    count: count as u64,
                });
            }
            out.sort();
            Ok(out)
        })
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut conn = self.inner.conns.get().await?;
            let res = sqlx::query(&self.inner.sql.prune)
                .bind(before)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .execute(conn.get())
                .await;
            let done = conn.done(res)?;
            Ok(done.rows_affected())
        })
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let mut listener = PgJobListener {
                backend: self.clone(),
                queues: queues.to_vec(),
                conn: None,
                next_due: None,
            };
            // Subscribe before returning, so no signal sent after this call is missed.
            // If the database is away, the listener connects on its first wait.
            if let Err(e) = listener.ensure_connected().await {
                tracing::warn!(error = %e, "job listener could not subscribe yet; it will retry on each wait");
            }
            let listener: Box<dyn JobListener> = Box::new(listener);
            Ok(listener)
        })
    }
}

/// LISTEN on the schema's channel, plus a timer for the earliest scheduled job.
struct PgJobListener {
    backend: PostgresBackend,
    queues: Vec<String>,
    conn: Option<PgListener>,
    /// The earliest scheduled run_at of our queues (`None` inside: none), and when it was read.
    next_due: Option<(Option<DateTime<Utc>>, Instant)>,
}

impl PgJobListener {
    /// Subscribes if not subscribed; `Ok(true)` when it had to (re)connect.
    async fn ensure_connected(&mut self) -> std::result::Result<bool, sqlx::Error> {
        if self.conn.is_some() {
            return Ok(false);
        }
        let mut l = PgListener::connect_with(&self.backend.inner.listen_pool).await?;
        l.ignore_pool_close_event(true);
        l.listen(&self.backend.inner.channel).await?;
        // Signals may have been missed while disconnected: re-read the timer.
        self.next_due = None;
        self.conn = Some(l);
        Ok(true)
    }

    /// Whether a notification concerns us; a `!` token asks to re-read the timer.
    fn relevant(&mut self, payload: &str) -> bool {
        let mut mine = false;
        for token in payload.split(' ') {
            match token {
                "!" => self.next_due = None,
                "*" => mine = true,
                q => mine |= self.queues.iter().any(|mine| mine == q),
            }
        }
        mine
    }

    async fn next_due(&mut self) -> Result<Option<DateTime<Utc>>> {
        if let Some((due, read_at)) = self.next_due {
            let fresh = read_at.elapsed() < NEXT_DUE_TTL;
            if fresh && due.is_none_or(|d| d > Utc::now()) {
                return Ok(due);
            }
        }
        let mut conn = self.backend.inner.conns.get().await?;
        let res = sqlx::query_scalar(&self.backend.inner.sql.next_due)
            .bind(&self.queues)
            .fetch_one(conn.get())
            .await;
        let due: Option<DateTime<Utc>> = conn.done(res)?;
        self.next_due = Some((due, Instant::now()));
        Ok(due)
    }

    async fn wait_inner(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // While the database is away, retry no faster than this.
        let backoff = || {
            tokio::time::sleep_until(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(500)),
            )
        };
        match self.ensure_connected().await {
            Ok(false) => {}
            // Newly subscribed: anything sent before was missed, so wake once.
            Ok(true) => return,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot connect; will retry");
                backoff().await;
                return;
            }
        }
        let until = match self.next_due().await {
            Ok(Some(due)) => {
                let Ok(left) = (due - Utc::now()).to_std() else {
                    return; // a scheduled job is due now
                };
                deadline.min(tokio::time::Instant::now() + left)
            }
            Ok(None) => deadline,
            Err(e) => {
                tracing::debug!(error = %e, "job listener cannot read the next due time");
                backoff().await;
                return;
            }
        };
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match tokio::time::timeout_at(until, conn.try_recv()).await {
                Err(_) => return,
                Ok(Ok(Some(note))) => {
                    let mut mine = self.relevant(note.payload());
                    // Coalesce a burst of signals into one wake-up.
                    while let Some(more) = self.conn.as_mut().and_then(PgListener::next_buffered) {
                        mine |= self.relevant(more.payload());
                    }
                    if mine {
                        return;
                    }
                }
                Ok(Ok(None)) => {
                    // The connection dropped (it reconnects): signals may be lost, so wake.
                    tracing::debug!("job listener lost its connection");
                    self.next_due = None;
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "job listener failed; reconnecting");
                    self.conn = None;
                    self.next_due = None;
                    backoff().await;
                    return;
                }
            }
        }
    }
}

impl JobListener for PgJobListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_inner(timeout))
    }

    fn signals_all_work(&self) -> bool {
        // LISTEN/NOTIFY reaches every process, and the listener sleeps until the
        // earliest scheduled job is due.
        true
    }
}
