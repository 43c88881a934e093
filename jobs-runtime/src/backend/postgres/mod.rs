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
//! * Pruning: [`Backend::prune`] deletes finished jobs oldest first, at most
//!   `limit` per statement, from a partial index on finished rows.
//! * Time: every "now" is the database's clock.
//! * Connections: the backend keeps its own (`sqlx::Pool` pings each one it
//!   gets back, a second round trip per call). Calls fail with a transient
//!   [`Error::Backend`] while the database is away — once per idle connection
//!   after a restart — and connections and the listener are re-established
//!   when it is back.
//!
//! [`Backend::prune`]: jobs_core::Backend::prune
//! [`Error::Backend`]: jobs_core::Error::Backend

mod backend;
mod conns;
mod error;
mod hints;
mod listener;
mod migrate;
mod options;
mod queue;
mod row;
mod sql;

pub use backend::PostgresBackend;
pub use options::{PostgresBuilder, DEFAULT_SCHEMA};
