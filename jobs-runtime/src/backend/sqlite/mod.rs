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
//! A URL must name the database file (`sqlite://path/to/jobs.db`,
//! `sqlite:jobs.db`). One without a path (`sqlite://`, `sqlite:`,
//! `sqlite://?mode=rwc`) is refused: SQLite would open a temporary database
//! that disappears with its connection, a queue that silently loses every
//! job. An in-memory database is asked for by name, `sqlite::memory:`.
//!
//! # Storage
//!
//! Jobs live in one table, `jobs_queue`, beside small tables for the
//! cluster's state (below); all are created on first use by versioned migrations
//! (`sqlite/migrations/*.sql`, recorded in `jobs_schema`), applied under
//! `BEGIN IMMEDIATE` so processes starting together migrate once; a database
//! of an older version is upgraded on connect, and one of a newer version is
//! refused. Timestamps are integer microseconds since the Unix epoch (UTC);
//! payloads, metadata, results and the error history are JSON text (JSON
//! escapes a NUL, and SQLite text holds one, so results and error messages
//! with a NUL are stored exactly). A partial index over waiting rows keeps the
//! claim cost independent of how many finished jobs the table holds; finished
//! jobs are removed by [`Backend::prune`] in bounded batches.
//!
//! Version 2 added what fences a lease and what an operator sees of a job's
//! failures: `lease_token` (the random token of each claim, a u64 stored bit
//! for bit as a signed integer; heartbeats and outcomes must present it, and
//! every outcome and recovery clears it), `error_count` (all failed attempts;
//! the `errors` history keeps the last [`MAX_ERROR_HISTORY`]), `cancelled_at`
//! and `timeout_ms` (a job's own time limit, 0 for none). It backfills
//! `error_count` from the history and `cancelled_at` from FAILED jobs whose
//! error is `cancelled`. A job that was RUNNING under version 1 has no token,
//! so its lease runs out and is recovered like any other.
//!
//! Version 3 added what the later features store:
//!
//! * **Unique jobs**: `unique_key` (the key as stored, with its period's
//!   bucket by the backend's clock) and `unique_states` (the bit set of the
//!   statuses in which the job holds it). A partial unique index,
//!   `jobs_queue_unique`, covers the rows whose status is in their own bit
//!   set (a deterministic `CASE` on `status`), so the store itself refuses a
//!   second holder, whichever statement would make one: an insert (the
//!   enqueue then names the holder: `Duplicate`, or `Replaced` after
//!   updating a waiting holder in debounce mode) or a requeue (refused as
//!   `UniqueKeyTaken`). Enqueues with a unique job run in one `BEGIN
//!   IMMEDIATE` transaction, row by row in batch order, so a batch's later
//!   duplicate of an earlier job is reported like any other.
//! * **Limits**: one column per field of a job's `JobLimits`
//!   (`concurrency_key`/`_max`, `rate_key`/`_max`/`_per_ms`,
//!   `sequence_key`), partial indexes over the running jobs per key and per
//!   queue and over each sequence's unfinished jobs in enqueue order, and
//!   `jobs_rate_log`, the start times per rate key (a job's key, or
//!   `queue:<name>` for a queue's rate), each kept until its window passed.
//! * `snoozes`, `progress` (JSON) and the tables `jobs_paused`,
//!   `jobs_workers` (a `WorkerInfo` as JSON, until it expires),
//!   `jobs_leaders` (a role's holder and lease end), `jobs_schedules` and
//!   `jobs_audit`.
//!
//! Jobs of an older version read back with no key, no limits, no snoozes.
//!
//! Version 4 added `jobs_counts`, how many jobs each queue has in each
//! status, which [`Backend::counts`] reads instead of scanning every job ever
//! kept (a dashboard polls it): a few rows, whatever the history. Triggers on
//! `jobs_queue` (after an insert, a delete, an update of `status` or `queue`)
//! keep it in the same statement as the change, so it commits or rolls back
//! with it and is exact; no statement uses REPLACE conflict resolution, whose
//! implicit deletes would fire no trigger. The migration fills it from the
//! jobs already there (one scan, once); a count that fell to 0 keeps its row
//! and is left out of the answer.
//!
//! Version 5 added `jobs_throughput` (per-minute counts of completions,
//! failures, dead letters and retries, kept by a trigger) and version 6 the
//! indexes of `list_page`'s orders.
//!
//! Version 7 writes every condition SQLite checks per row as ORs: a partial
//! index's condition is checked for each row a statement writes, a trigger's
//! WHEN for each row it fires on, and `status IN (a, b, c)` (three values or
//! more) makes SQLite build a temporary table of the values for every check
//! — about 70,000 instructions per row and condition, against about 5,000
//! for the same test as ORs (callgrind). It rebuilds the waiting, due,
//! finished and sequence indexes and the throughput trigger so, and
//! replaces the full status index of version 6 with a partial one over the
//! statuses off a job's usual path (scheduled, retrying, failed, dead): a
//! job that is enqueued, runs and completes touches no status index. A
//! statement that needs one of these indexes repeats its condition word for
//! word (`sql::WAITING`, ...), which is how SQLite sees that it may use it.
//! Measured on W1 (5,000 jobs, callgrind): SQLite's instructions per job
//! 295,000 → 147,000. Rule for new statements and indexes: never an `IN`
//! list of constants in an index condition or a trigger.
//!
//! Version 8 added what workflows store beside their jobs: `jobs_edges`,
//! the (child, parent) edges settled so far (each once), and `jobs_waits`,
//! how many edges of each child settled, written together in one `BEGIN
//! IMMEDIATE` transaction (a new edge adds one, an edge settled again
//! nothing). A held step is an ordinary SCHEDULED job due at
//! [`held_until`](jobs_core::workflow::held_until); its release is one
//! conditional `UPDATE` to PENDING, due now. Triggers delete a job's count
//! with its row, and its edges with its count, whichever statement deletes
//! it (an operator's, a prune, a completion that keeps nothing).
//!
//! # Claims and limits
//!
//! A claim without queue limits first tries the fast path: one `UPDATE …
//! RETURNING` that leases the first due jobs of the (unpaused) queues in
//! claim order, provided none of them has limits of its own. That is the
//! whole claim for jobs without limits, an empty one included — no further
//! statement and no other table, but for the lookup of the queues in
//! `jobs_paused`. If one of them has limits, the statement leases none
//! (it rewrites them unchanged, and returns them still waiting, which is
//! how the claim knows). A claim with queue limits, or one whose
//! candidates have limits, takes the limited path (`limits.rs`): one `BEGIN
//! IMMEDIATE` transaction that walks each queue's due jobs in claim order, a
//! page at a time, admits those whose limits allow them (counting what runs
//! per key and per queue, the starts in each rate window, a sequence's
//! oldest unfinished job), leases them and logs their starts. The write lock
//! it holds from its first statement (and, within the process, the writer
//! thread) makes the counting and the leasing one step: two claimers never
//! both take a limit's last slot. A held-back job is skipped, not waited
//! for; the walk looks at no more than 2,000 candidates per queue per claim
//! (`limits::SCAN_LIMIT`), and says `limited` when it stopped there.
//!
//! # Cancelling running jobs
//!
//! A cancel marks a RUNNING job (`cancelled_at`, and its message as the
//! job's error) and signals the listeners of this process on the same file
//! ([`JobListener::take_cancel_signal`](jobs_core::backend::JobListener::take_cancel_signal));
//! a worker in another process learns from its next heartbeat's reply. Its
//! worker's outcome then ends it FAILED, cancelled (unless it completed):
//! a retry, release or snooze of a job whose cancellation was requested is
//! not made, and neither is a retry after its lease expired.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = NORMAL`:
//!
//! * **Process crash** (panic, `kill -9`, OOM): no acknowledged job is
//!   lost. An enqueue returns only after its transaction is committed to
//!   the write-ahead log, which lives in the operating system's page cache
//!   and is recovered on the next open. Claims and outcomes share their
//!   commits (the writer's group commit): each is answered once its
//!   statements ran, and committed with the changes queued beside it,
//!   within a few milliseconds; a crash in between undoes the last group
//!   (at most 16 of them), as if the process had died before making them —
//!   the claimed jobs are claimed again, the finished ones run again once
//!   their leases expire (at-least-once). With `synchronous = FULL` every
//!   claim and outcome commits before it is answered. Jobs that were
//!   RUNNING come back through lease expiry.
//! * **Power loss or kernel crash**: the database stays consistent (never
//!   corrupt, no half-applied transaction), but with `synchronous = NORMAL` a
//!   commit reaches the disk only at the next WAL checkpoint. The backend
//!   checkpoints once a second whenever something was written, on a reader
//!   connection beside the writer (SQLite on its own would wait for ~4 MB of
//!   log, which on a quiet queue can be hours, and would do it inline in a
//!   writer's commit; the writer here checkpoints itself only past ~16 MB of
//!   log, so that the log restarts under steady writes), so
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
//! under `BEGIN IMMEDIATE`, in one short transaction with nothing but their
//! own statements inside, so no job is ever claimed twice. Wake-ups are
//! in-process: every handle on the same file in one process shares one signal;
//! a worker in another process sees new jobs at its poll interval.
//!
//! # Runtimes
//!
//! A `WorkerManager` sends its heartbeats and outcomes from a runtime of its
//! own, so that handlers blocking the application's threads cannot stall
//! lease renewal. This backend serves it with the same handle:
//! [`Backend::detached`] stays `None`, because nothing a heartbeat or an
//! outcome needs is tied to a runtime or waits on one.
//!
//! * sqlx runs every SQLite connection on a thread of its own and talks to
//!   it over channels, so a connection works from any runtime, including
//!   after the runtime that opened it is gone.
//! * The writer connection is shared, and a change holds it from its first
//!   statement to its last. Were it held by the calling task, a call from a
//!   stalled runtime (a claim sent just before a handler blocked the
//!   runtime's only thread) would keep it, and every heartbeat of the process
//!   behind it, until that runtime ran again. So each change runs as a task
//!   on a thread of the backend's own (`writer.rs`), which runs nothing
//!   else; callers only wait for its answer. That costs two thread hand-offs
//!   per write call (a few tens of microseconds of CPU).
//! * On that thread the statements every job runs — the claim without
//!   limits and the recording of outcomes — call SQLite directly, through a
//!   second connection of the writer's (`rusqlite`, the same SQLite library
//!   as sqlx's), with statements prepared once (`native.rs`). Through sqlx
//!   each statement cost two more hand-offs to sqlx's own thread, and each
//!   row returned one more. The two connections never overlap: a change
//!   runs on one of them and commits before the next starts. The native one
//!   copies the sqlx writer's settings (`synchronous`, `busy_timeout`, ...),
//!   so `connect_with` options hold for both. `sqlite::memory:` has no
//!   second connection (its database lives in its one connection) and runs
//!   those statements through sqlx.
//! * The checkpointer runs on that thread too, so it outlives the runtime
//!   that opened the backend. Reads (`get`, `list`, `counts`, the listener)
//!   use the reader pool from the caller's runtime: they never hold the
//!   writer, and WAL readers do not block it.

// For the intra-doc links above.
#[cfg(doc)]
use jobs_core::{Backend, MAX_ERROR_HISTORY};

mod admin;
mod audit;
mod backend;
mod bulk;
mod claim;
mod cluster;
mod conn;
mod control;
mod enqueue;
mod error;
mod lease;
mod limits;
mod listener;
mod listing;
mod migrate;
mod native;
mod options;
mod queue;
mod read;
mod record;
mod row;
mod sql;
mod time;
mod workflow;
mod writer;

pub use backend::SqliteBackend;
