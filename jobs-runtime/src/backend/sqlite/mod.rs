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
//! (`sqlite/migrations/*.sql`, recorded in `jobs_schema`), applied under
//! `BEGIN IMMEDIATE` so processes starting together migrate once. Timestamps
//! are integer microseconds since the Unix epoch (UTC); payloads, metadata,
//! results and the error history are JSON text. A partial index over waiting
//! rows keeps the claim cost independent of how many finished jobs the table
//! holds; finished jobs are removed by [`Backend::prune`] in bounded batches.
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

// For the intra-doc link above.
#[cfg(doc)]
use jobs_core::Backend;

mod backend;
mod claim;
mod conn;
mod enqueue;
mod error;
mod lease;
mod listener;
mod migrate;
mod options;
mod queue;
mod read;
mod record;
mod row;
mod sql;
mod time;

pub use backend::SqliteBackend;
