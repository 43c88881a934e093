//! The PostgreSQL backend (`postgres://`): many worker processes on many hosts
//! share one database, and nothing else coordinates them.
//!
//! ```no_run
//! # async fn demo() -> jobs_core::Result<()> {
//! use jobs_runtime::backend::postgres::PostgresBackend;
//! use jobs_runtime::backend::TransactionalEnqueue;
//!
//! let backend = PostgresBackend::builder("postgres://app@db/app")
//!     .schema("jobs")
//!     .connect()
//!     .await?;
//! // The outbox guarantee: the job exists iff the business write commits.
//! let mut tx = backend.pool().begin().await.map_err(|e| jobs_core::Error::backend("postgres", jobs_core::BackendErrorKind::Other, e))?;
//! sqlx::query("INSERT INTO orders (id) VALUES (1)").execute(&mut *tx).await.ok();
//! backend
//!     .enqueue_in(&mut *tx, jobs_core::NewJob::new("order.confirm", serde_json::json!({"order": 1})))
//!     .await?;
//! tx.commit().await.map_err(|e| jobs_core::Error::backend("postgres", jobs_core::BackendErrorKind::Other, e))?;
//! let queue = jobs_core::Queue::from(backend); // the ordinary handle, for workers and admin
//! # Ok(()) }
//! ```
//!
//! How it works:
//!
//! * Schema: versioned migrations embedded from `postgres/migrations/*.sql`,
//!   applied at connect under a session advisory lock keyed by the schema name,
//!   so many processes may start at once. Everything lives in one schema (default
//!   `jobs`; `?schema=name` in the URL or [`PostgresBuilder::schema`]). Version 3
//!   adds `lease_token`, `error_count`, `cancelled_at` and `timeout_ms`, and
//!   backfills the jobs stored before: `error_count` from their error
//!   history, `cancelled_at = completed_at` for FAILED jobs whose error is
//!   `cancelled`. Version 4 adds unique keys, snoozes, progress and per-job
//!   limits (columns, NULL for the jobs stored before), and the tables of
//!   paused queues, the rate log, the worker registry, leaders, schedules
//!   and the audit log. Version 5 keeps the counts (below) and fills them
//!   from the jobs stored before, under a lock that holds writers off.
//! * Counts: `counts()` never scans the jobs. Statement-level triggers with
//!   transition tables append, in the changing statement's own transaction,
//!   one row per (queue, status) it changed to `job_count_deltas`, an
//!   index-free heap that writers only insert into: no counter row is
//!   shared, so claimers and recorders never wait on one nor deadlock over
//!   one, whatever order they lock jobs in (and jobs written by hand-made
//!   SQL or a caller's transaction count too). `count_jobs()` folds the
//!   committed deltas into `job_counts` (one folder at a time, `NOWAIT`;
//!   the reaper's tick folds as well) and sums both: exact under MVCC.
//! * Listing (version 7) adds the indexes of `list_page`'s orders; version 8
//!   narrows its (status, seq) index to the statuses off a job's usual path
//!   (scheduled, retrying, failed, dead): every status change is a new row
//!   version with an entry in each index whose condition it meets, and a
//!   full status index cost each claim and each completion one more.
//! * Workflows (version 9): `job_edges` holds each settled (child, parent)
//!   edge once, `job_waits` each child's count of them. A settle is one
//!   statement: the edges it inserts (a conflict inserts nothing) add one
//!   each to their child's count, in an upsert whose row lock serializes
//!   concurrent settles of one child (children in id order, so no two
//!   settles deadlock). A held step is a SCHEDULED job due at
//!   [`held_until`](jobs_core::workflow::held_until); its release is one
//!   conditional `UPDATE` to PENDING, due now, that notifies its queue. A
//!   statement-level trigger deletes the counts and edges of deleted jobs
//!   in the deleting statement.
//! * Throughput (version 6) costs the hot path nothing new: each count
//!   delta row also records when it was written (`at`, a column default),
//!   and the fold turns the positive deltas of COMPLETED, FAILED,
//!   DEAD_LETTER and RETRYING into per-minute rows of `job_throughput`
//!   (dropping minutes older than a day) while it moves the deltas into the
//!   totals; `throughput_since()` folds, then sums both.
//! * Unique jobs (see `enqueue.rs`): the store enforces them. A job stores
//!   its key (with its period's bucket by the database's clock) and the bit
//!   set of the statuses in which it holds it; the partial unique index
//!   `jobs_unique_idx` covers a row exactly while its status is in its own
//!   set (an immutable expression of the row), so a status change takes the
//!   key or frees it. Enqueue inserts `ON CONFLICT DO NOTHING`, then looks
//!   the holders of the refused jobs up (and, in replace mode, updates a
//!   waiting holder), in one transaction; a requeue that would make two
//!   jobs hold a key is refused by the index itself.
//! * Enqueue: every job is checked first (all or none of a batch); due at its
//!   `run_at`, else the database's now + its `delay`, else now.
//! * Claim: one statement per batch — per queue of the request, in order, the
//!   first due rows in (priority desc, run_at, seq) order taken with
//!   `FOR UPDATE SKIP LOCKED` from a partial index that holds waiting rows
//!   only, then marked RUNNING with `UPDATE … RETURNING` under a fresh random
//!   lease token. Finished rows are in
//!   no index the claim reads, and each claim starts past the (not yet
//!   vacuumed) entries of jobs claimed before it, so its cost stays flat as
//!   history and backlog grow. The one approximation: a job enqueued *ahead*
//!   of a draining backlog (higher priority, or a run_at further back) may wait
//!   up to 100 ms before it overtakes; everything else is claimed in exact order.
//!   Paused queues are skipped (one primary-key probe of the small
//!   `paused_queues` table per queue). If a candidate has limits of its own,
//!   or the request caps a queue, the claim goes the limited way instead:
//!   one transaction that reads up to 1,000 due jobs per queue, picks what
//!   the limits admit, locks the picked jobs' limit keys (advisory
//!   transaction locks in one global order) and picks again under them;
//!   see `claim.rs`. Jobs without limits never pay for it.
//! * Outcomes and heartbeats: one statement per batch over `UNNEST` arrays,
//!   each row fenced on its lease: RUNNING under the same `lease_token` (and
//!   attempt, which also fences workers of an older version during a rolling
//!   upgrade). The error history keeps the last
//!   [`MAX_ERROR_HISTORY`](jobs_core::MAX_ERROR_HISTORY) entries; `error_count`
//!   counts them all. A NUL character, which `text` and `jsonb` cannot hold,
//!   is stored as U+FFFD in a result or an error message (payloads with one
//!   are refused at enqueue).
//! * No deadlocks: every statement that updates several jobs — record,
//!   heartbeat, lease recovery — first locks its rows in `id` order (claims
//!   and pruning skip locked rows and never wait), so no two of them can wait
//!   for each other in a cycle, however their batches are ordered.
//! * Durability: enqueues, outcomes and lease recovery wait for the WAL flush
//!   (`synchronous_commit = on` on their connections, whatever the server's or
//!   role's default). Claims, heartbeats and progress reports don't (`off`
//!   on theirs): that saves a disk flush per pickup. A database crash can then undo the last moment's
//!   claims. Such a job is claimed again — possibly under the same attempt
//!   number, but always under a new lease token — and the first worker's
//!   heartbeats and outcome are refused: its lease is gone. So the job may run
//!   twice (at-least-once), but no stale outcome overwrites a newer attempt.
//!   Opt out with [`PostgresBuilder::synchronous_claims`].
//! * Control: cancelling a running job marks it (`cancelled_at`) and sends
//!   `!cancel` on the channel, so listeners report `take_cancel_signal` and
//!   the worker learns which job from its heartbeat's reply; snoozes and
//!   progress are fenced like outcomes; resuming a queue notifies it;
//!   roles are leases by the database's clock, taken by an upsert that
//!   succeeds only if the role is free, expired or the caller's.
//! * Wake-up: enqueues (and jobs going back to waiting, and limited jobs
//!   freeing a slot) `NOTIFY` once per statement; the listener also sleeps until the earliest scheduled job of its
//!   queues, with a poll fallback, so an idle worker issues almost no queries.
//! * Result handles: the statements that finish jobs (record, lease
//!   recovery, cancelling a waiting job) `NOTIFY` the finished jobs' ids
//!   on a `finished` channel, once per call, and `wait_finished` listens on
//!   one connection per backend, so a handle in any process wakes at once.
//! * Pruning: [`Backend::prune`] deletes finished jobs oldest first, at most
//!   `limit` per statement, from a partial index on finished rows.
//! * Time: every "now" is the database's clock, the listener's timer too (the
//!   database says how long until the next scheduled job is due).
//! * Connections: the backend keeps its own (`sqlx::Pool` pings each one it
//!   gets back, a second round trip per call), each with a
//!   [`statement_timeout`](PostgresBuilder::statement_timeout) and a
//!   [`lock_timeout`](PostgresBuilder::lock_timeout), so the server ends a
//!   stuck statement and frees its locks even if the worker is gone. TCP
//!   keepalive is not set: sqlx 0.8's `PgConnectOptions` has no option for it
//!   (the runtime's deadline on every backend call bounds a call on a dead
//!   connection instead). Calls fail with a transient [`Error::Backend`] while
//!   the database is away — once after a restart: a connection that fails below
//!   the database takes the idle ones with it — and connections and the
//!   listener are re-established when it is back.
//! * Detached handles ([`Backend::detached`]): the same store with connections
//!   of their own, opened on first use by the runtime that uses them (a
//!   `WorkerManager` heartbeats and records on a thread of its own with one).
//!   A connection whose runtime has ended is never used again. The caller's
//!   [`pool`](PostgresBackend::pool) keeps the server's and role's settings.
//!
//! [`Backend::detached`]: jobs_core::Backend::detached
//! [`Backend::prune`]: jobs_core::Backend::prune
//! [`Error::Backend`]: jobs_core::Error::Backend

mod audit;
mod backend;
mod bulk;
mod claim;
mod cluster;
mod conns;
mod control;
mod enqueue;
mod error;
mod finished;
mod hints;
mod listener;
mod listing;
mod migrate;
mod options;
mod outcome;
mod queue;
mod row;
mod sql;
mod workflow;

pub use backend::PostgresBackend;
pub use options::{
    PostgresBuilder, DEFAULT_LOCK_TIMEOUT, DEFAULT_SCHEMA, DEFAULT_STATEMENT_TIMEOUT,
};
