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
//!   no index the claim reads, so its cost stays flat as history grows.
//! * Outcomes and heartbeats: one statement per batch over `UNNEST` arrays,
//!   each row fenced on `status = 'RUNNING' AND attempt = fence`.
//! * Wake-up: enqueues (and jobs going back to waiting) `NOTIFY` once per
//!   statement; the listener also sleeps until the earliest scheduled job of its
//!   queues, with a poll fallback, so an idle worker issues almost no queries.
//! * Time: every "now" is the database's clock.
//! * Connection loss: calls fail with a transient [`Error::Backend`] while the
//!   database is away; the pool and the listener reconnect when it is back.

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

/// Embedded migrations: (version, name, SQL with `__SCHEMA__`/`__CHANNEL__` placeholders).
const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "init", include_str!("postgres/0001_init.sql"))];

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

        // Pings before every acquire would double the round trips of every call;
        // a dead connection fails its call once (transiently) and is then dropped.
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(options.clone());
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
                pool,
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

const WAITING: &str = "('PENDING', 'SCHEDULED', 'RETRYING')";

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = quote_ident(schema);
        let t = format!("{s}.jobs");
        let cols = JOB_COLUMNS;
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
                        {s}.wake(array_agg(DISTINCT queue_name), bool_or(status = 'SCHEDULED'))::text AS w
                 FROM ins"
            ),
            // Per queue in request order, the first due rows in claim order; the outer
            // LIMIT stops the nested loop once enough rows are locked. `id = ANY(ARRAY(..))`
            // keeps the update on the primary key even under a generic plan (a join
            // there lets the planner pick a hash join over the whole table).
            claim: format!(
                "UPDATE {t} j
                 SET status = 'RUNNING', attempt = j.attempt + 1, started_at = now(),
                     locked_by = $3, lease_until = now() + $4 * interval '1 microsecond'
                 WHERE j.id = ANY(ARRAY(
                   SELECT c.id
                   FROM unnest($1::text[]) AS q(name)
                   CROSS JOIN LATERAL (
                     SELECT w.id FROM {t} w
                     WHERE w.queue_name = q.name AND w.status IN {WAITING} AND w.run_at <= now()
                     ORDER BY w.priority DESC, w.run_at, w.seq
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED) c
                   LIMIT $2))
                 RETURNING {cols}"
            ),
            heartbeat: format!(
                "UPDATE {t} j SET lease_until = now() + $4 * interval '1 microsecond'
                 FROM unnest($1::uuid[], $2::int4[]) AS u(id, attempt)
                 WHERE j.id = ANY($1) AND j.id = u.id AND j.status = 'RUNNING'
                   AND j.attempt = u.attempt AND j.locked_by = $3
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
                   WHERE j.id = ANY($1) AND j.id = u.id AND j.status = 'RUNNING'
                     AND j.attempt = u.attempt
                   RETURNING j.id, j.queue_name, j.status, j.run_at),
                 woke AS (
                   SELECT {s}.wake(array_agg(DISTINCT queue_name), bool_or(run_at > now())) AS w
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
                       SELECT {s}.wake(array_agg(DISTINCT queue_name), false) AS w
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
                 woke AS (SELECT {s}.wake(array_agg(queue_name), false) AS w FROM upd
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

/// The PostgreSQL queue backend. Clones share one pool.
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
    sql: Sql,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.schema)
            .field("pool_size", &self.inner.pool.size())
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
        }
    }

    /// The schema holding the jobs table.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The connection pool, e.g. to begin a transaction for [`TransactionalEnqueue`].
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

    async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>> {
        let status: Option<String> = sqlx::query_scalar(&self.inner.sql.status_of)
            .bind(id.as_uuid())
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(db_err)?;
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
        Box::pin(async move { self.enqueue_with(&self.inner.pool, jobs).await })
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if req.limit == 0 || req.queues.is_empty() {
                return Ok(Vec::new());
            }
            let rows = sqlx::query(&self.inner.sql.claim)
                .bind(req.queues)
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .bind(req.worker_id)
                .bind(micros(req.lease))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
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
            let kept: Vec<Uuid> = sqlx::query_scalar(&self.inner.sql.heartbeat)
                .bind(ids)
                .bind(attempts)
                .bind(worker_id)
                .bind(micros(lease))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
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
            let done: Vec<Option<Uuid>> = sqlx::query_scalar(&self.inner.sql.record)
                .bind(&ids)
                .bind(attempts)
                .bind(statuses)
                .bind(results)
                .bind(delays)
                .bind(messages)
                .bind(retryables)
                .bind(worker_id)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
            Ok(updates
                .iter()
                .map(|u| u.fence.id)
                .filter(|id| !done.contains(&Some(*id.as_uuid())))
                .collect())
        })
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(async move {
            let rows = sqlx::query(&self.inner.sql.recover)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let job = row_to_job(row)?;
                let now: String = row.try_get("new_status").map_err(db_err)?;
                let now = now.parse().map_err(|e| corrupt(job.id, e))?;
                tracing::warn!(
                    job_id = %job.id,
                    job_type = %job.job_type,
                    queue = %job.queue_name,
                    attempt = job.attempt,
                    worker = job.locked_by.as_deref().unwrap_or("?"),
                    now = %now,
                    "lease expired; attempt counted as failed"
                );
                out.push(Recovered { job, now });
            }
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let row = sqlx::query(&self.inner.sql.get)
                .bind(id.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(row_to_job).transpose()
        })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            let rows = sqlx::query(&self.inner.sql.list)
                .bind(filter.queue.as_deref())
                .bind(filter.status.map(JobStatus::as_str))
                .bind(filter.job_type.as_deref())
                .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
            rows.iter().map(row_to_job).collect()
        })
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let row = sqlx::query(&self.inner.sql.cancel)
                .bind(id.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_err)?;
            match row {
                Some(row) => row_to_job(&row),
                None => match self.status_of(id).await? {
                    None => Err(Error::NotFound(id)),
                    Some(from) => Err(Error::InvalidState {
                        id,
                        from,
                        action: "cancelled",
                        allowed: "PENDING, SCHEDULED or RETRYING",
                    }),
                },
            }
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let row = sqlx::query(&self.inner.sql.requeue)
                .bind(id.as_uuid())
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(db_err)?;
            match row {
                Some(row) => row_to_job(&row),
                None => match self.status_of(id).await? {
                    None => Err(Error::NotFound(id)),
                    Some(from) => Err(Error::InvalidState {
                        id,
                        from,
                        action: "requeued",
                        allowed: "FAILED or DEAD_LETTER",
                    }),
                },
            }
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let rows = sqlx::query(&self.inner.sql.counts)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(db_err)?;
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
            let done = sqlx::query(&self.inner.sql.prune)
                .bind(before)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .execute(&self.inner.pool)
                .await
                .map_err(db_err)?;
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
            listener.ensure_connected().await.map_err(db_err)?;
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
    async fn ensure_connected(&mut self) -> std::result::Result<&mut PgListener, sqlx::Error> {
        if self.conn.is_none() {
            let mut l = PgListener::connect_with(&self.backend.inner.listen_pool).await?;
            l.ignore_pool_close_event(true);
            l.listen(&self.backend.inner.channel).await?;
            // We may have missed signals while disconnected: re-read the timer.
            self.next_due = None;
            self.conn = Some(l);
        }
        Ok(self.conn.as_mut().expect("just connected"))
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

    async fn next_due(&mut self) -> std::result::Result<Option<DateTime<Utc>>, sqlx::Error> {
        if let Some((due, read_at)) = self.next_due {
            let fresh = read_at.elapsed() < NEXT_DUE_TTL;
            if fresh && due.is_none_or(|d| d > Utc::now()) {
                return Ok(due);
            }
        }
        let due: Option<DateTime<Utc>> = sqlx::query_scalar(&self.backend.inner.sql.next_due)
            .bind(&self.queues)
            .fetch_one(&self.backend.inner.pool)
            .await?;
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
        if let Err(e) = self.ensure_connected().await {
            tracing::debug!(error = %e, "job listener cannot connect; will retry");
            backoff().await;
            return;
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
}
