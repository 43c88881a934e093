//! The Redis backend (`redis://host:6379`, feature `redis`): many worker
//! processes on many machines share one Redis.
//!
//! ```no_run
//! # async fn demo() -> jobs_core::Result<()> {
//! use jobs_runtime::backend::redis::RedisBackend;
//! // Every key lives under the namespace `{myapp}`; other prefixes are invisible.
//! let backend = RedisBackend::connect("redis://127.0.0.1:6379/?prefix=myapp").await?;
//! let queue = jobs_core::Queue::new(backend);
//! queue.enqueue_raw("email.send", serde_json::json!({"to": "a@example.com"})).await?;
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! Every state change (enqueue a batch, claim a batch, heartbeat, record a
//! batch of outcomes, recover expired leases, cancel, requeue, prune, delete,
//! pause and resume, progress, the worker registry, leadership, schedules,
//! the audit log, settling workflow edges and releasing held steps) is **one
//! Lua script**, so Redis runs it atomically: a crash of the worker between two
//! commands cannot strand a job. The scripts live next to this file in
//! `redis/*.lua`, each prefixed with the definitions of `redis/common.lua` it
//! uses, and are sent with
//! `EVALSHA` (loaded again automatically after a Redis restart). "Now" is the
//! Redis server's `TIME`, so workers on many machines share one clock.
//!
//! A claim takes a fresh random lease token; heartbeats and outcomes apply
//! only while the job is RUNNING under that token (not merely under the same
//! attempt number), and every outcome and every recovery clears it.
//!
//! Every script bounds its own work, so no call blocks Redis for long and no
//! backlog is too big: a claim returns at most 1,000 jobs and promotes at most
//! 1,000 due delayed jobs per queue and call (when more than that come due at
//! once, the next calls promote the rest, so strict priority order among them
//! holds per promoted slice); heartbeats, recovery and prune take 1,000 jobs
//! per call (the Rust side loops); a big enqueue batch is cut into chunks of
//! 1,000 jobs that run together in one `MULTI`/`EXEC`, so it stays all or
//! nothing (and therefore blocks Redis for its whole length: enqueue millions
//! of jobs as several batches). A batch of outcomes is one unit the same way
//! (chunks of 1,000 outcomes or 8 MiB in one `MULTI`), and a value bigger than
//! Redis takes in one argument (512 MiB, `proto-max-bulk-len`) is refused
//! before anything is sent, as [`BackendErrorKind::Data`], so the caller can
//! isolate it. Lua never unpacks more than 1,000 values at a time, so 20,000
//! or 1,000,000 jobs coming due at once are fine.
//!
//! # Key layout
//!
//! With prefix `P` (default `jobs`; set it with `?prefix=P` in the URL or
//! [`RedisBuilder::prefix`]) every key starts with the hash tag `{P}`, so a
//! namespace lives in one Redis Cluster slot and scripts may touch all of it:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P}:j:<id>` | hash | one job (fields below) |
//! | `{P}:ready:<queue>` | zset | due waiting jobs; score `-priority`, member `run_at(17 digits) seq(16 digits) id`, so equal priorities sort by run_at, then enqueue order |
//! | `{P}:lready:<queue>` | zset | due waiting jobs that have limits (their own lane, same score and member) |
//! | `{P}:delayed:<queue>` | zset | SCHEDULED/RETRYING jobs not yet due; score run_at (µs), same member |
//! | `{P}:leases` | zset | RUNNING jobs; score lease expiry (µs), member id |
//! | `{P}:due` | zset | every waiting job; score 0, the member of its ready or delayed set (run_at, seq, id), for the due-soonest order of `list_page`; `{P}:due:built` marks it complete |
//! | `{P}:all` | zset | every job; score enqueue sequence, member id (for `list`) |
//! | `{P}:done` | zset | COMPLETED/FAILED/DEAD_LETTER jobs; score finish time (µs), member id (for `prune`) |
//! | `{P}:counts` | hash | `"<STATUS> <queue>"` → number of jobs, for each pair that has jobs (what [`Backend::counts`] reads; see below) |
//! | `{P}:tp:<minute>` | hash | `"c <queue>"`, `"f …"`, `"d …"`, `"r …"` → jobs that became COMPLETED, FAILED, DEAD_LETTER, RETRYING in the minute starting at `<minute>` (Unix seconds, Redis's clock); expires 25 h after it was made (what [`Backend::throughput`] reads) |
//! | `{P}:seq` | string | the enqueue sequence counter |
//! | `{P}:abort:<nonce>` | string | short-lived marker of a refused multi-chunk enqueue |
//! | `{P}:wake` | pub/sub channel | a queue's name whenever it may have new work |
//! | `{P}:cancel` | pub/sub channel | a job's id when its cancellation is requested while it runs |
//! | `{P}:finished` | pub/sub channel | the ids of the jobs a script call finished (space-separated), once per call |
//! | `{P}:uniq` | hash | stored unique key → id of the job holding it |
//! | `{P}:paused` | set | paused queues |
//! | `{P}:run:conc` | hash | concurrency key → RUNNING jobs with it |
//! | `{P}:run:seq` | hash | sequence key → RUNNING jobs with it |
//! | `{P}:sq:<key>` | zset | unfinished jobs of sequence `<key>`; score enqueue sequence, member id |
//! | `{P}:rate:<key>` | zset | starts of rate key `<key>` (jobs' keys, and `queue:<name>` for a queue's rate) within its window; score start time (µs); expires with the window |
//! | `{P}:workers` | hash | worker id → its [`WorkerInfo`](jobs_core::WorkerInfo) (JSON) |
//! | `{P}:workers:seen` | hash | worker id → when it last registered (µs, Redis's clock) |
//! | `{P}:workers:exp` | zset | worker id; score when its entry expires (µs) |
//! | `{P}:lead:<role>` | string | the role's holder; expires with its lease (`PX`) |
//! | `{P}:sched` | hash | schedule name → its [`ScheduleState`](jobs_core::ScheduleState) (JSON) |
//! | `{P}:sched:at` | hash | schedule name → when it was last saved (µs, Redis's clock) |
//! | `{P}:audit` | zset | audit entries; score their time (µs), member a 16-digit append sequence then the entry (JSON) |
//! | `{P}:audit:seq` | string | the audit append counter |
//! | `{P}:settled:<id>` | set | the workflow parents whose edge to job `<id>` settled (its size is the count [`Backend::settle_dependencies`] returns); goes when the job is deleted, pruned or dropped on completion, and a day after it was made for a job that no longer exists |
//!
//! Job hash fields (short names: a hash with many jobs' worth of field names
//! is memory too):
//!
//! | field | holds | absent means |
//! |---|---|---|
//! | `q` | queue | (required) |
//! | `t` | job type | (required) |
//! | `p` | payload (JSON) | (required) |
//! | `s` | status | (required) |
//! | `pr` | priority | (required) |
//! | `rc` | retry count | 0 |
//! | `mr` | max retries | (required) |
//! | `ra` | run_at (µs) | (required) |
//! | `ca` | created_at (µs) | (required) |
//! | `sa` | started_at (µs) | never started |
//! | `fa` | completed_at (µs) | not finished |
//! | `em` | error message | none |
//! | `er` | error history: JSON objects joined by commas, the last 20 | none |
//! | `ec` | error count: every failed attempt, also those dropped from `er` | the number of entries in `er` |
//! | `rd` | result (JSON) | none |
//! | `md` | metadata (JSON) | empty |
//! | `lb` | locked by (worker) | not leased |
//! | `lu` | lease until (µs) | not leased |
//! | `lt` | lease token (16 hex digits), while RUNNING | no lease to match |
//! | `at` | attempt | 0 |
//! | `cx` | cancelled at (µs) | not cancelled |
//! | `to` | the job's own timeout (ms, 0 = never) | none of its own |
//! | `sq` | enqueue sequence | (required) |
//! | `sn` | snoozes | 0 |
//! | `pg` | latest progress (JSON) | none |
//! | `uk` | the unique key it holds, as stored (with its period's bucket) | not unique |
//! | `us` | its unique states (bits of `UniqueStates`) | the active states |
//! | `lc`, `lcm` | concurrency key and its max | no concurrency limit |
//! | `lr`, `lrm`, `lrp` | rate key, its max, its window (ms) | no rate limit |
//! | `ls` | sequence key | not in a sequence |
//! | `x` | `1`: unique or with limits (an outcome has a key to give up or slots to free) | neither |
//!
//! Times are microseconds since the Unix epoch. An empty string means "not
//! set" too (scripts clear `lb`/`lu`/`lt` that way, in the same `HSET` that
//! changes the status). `lt` is compared as a string, since Lua's numbers
//! (doubles) cannot hold 64 bits.
//!
//! Timestamps in scores are microseconds (below 2^53, so exact in a double);
//! priorities are `i32`, exact too. Delays — `NewJob::delay` at enqueue, and
//! a retry's — are sent as microseconds, cut to [`MAX_DELAY`] (about 100
//! years), and added to the server's `TIME` by the script; `run_at`, when
//! set, wins. So the largest due time is Redis's now + `MAX_DELAY`, which
//! stays below 2^53 µs until about the year 2155.
//!
//! The error history is capped in Lua without decoding JSON: every entry
//! starts with `{"a":`, which cannot occur inside an entry (a JSON string
//! escapes its quotes), so a plain search finds the entries, and each failure
//! does work in proportion to at most 20 of them.
//!
//! # Completed jobs dropped on completion
//!
//! Under a retention that keeps no completed jobs
//! ([`Outcome::CompleteAndDelete`]), the record script deletes the job's hash
//! and its `{P}:all` entry in the same step that checks its fence, gives up
//! its unique key, leaves its sequence and frees its limit slots: the job
//! never enters `{P}:done`, leaves RUNNING in `{P}:counts` and enters no other
//! status there, and counts as a completion in `{P}:tp:<minute>`.
//!
//! # Counts
//!
//! [`Backend::counts`] is one `HGETALL` of `{P}:counts`, never a scan of the
//! jobs: it costs the same with 1,000,000 finished jobs as with none (p50
//! 0.08–0.12 ms, max 1.6 ms over 50 calls, on the `counts` workload of
//! `benches/throughput.rs` with 1,000,000 COMPLETED jobs). The counter is
//! exact because every script that changes a job's status (enqueue, and a
//! unique replace; claim; every outcome of record; recover; cancel; requeue;
//! delete; prune; the release of held workflow steps) adjusts it with
//! `HINCRBY` in the same script, so in the same atomic step; a field that
//! comes down to zero is deleted in that step too, so the hash holds only
//! the pairs that have jobs, however many queues came and went. The counter
//! has been kept this way since the first version of this backend, so
//! existing namespaces need no upgrade (fields an older version left at zero
//! are skipped by `counts()` and go when their pair next comes down to zero).
//!
//! # Unique jobs
//!
//! The enqueue script looks the job's stored key up in `{P}:uniq` and takes
//! it in the same script, so no two producers can both take a key. Every
//! script that changes a job's status gives the key up (`HDEL`, only if this
//! job holds it) when the job's unique states do not hold the new status; a
//! requeue takes it again, or is refused with
//! [`Error::UniqueKeyTaken`] naming the
//! job that took it meanwhile; deleting and pruning give it up.
//!
//! # Limits
//!
//! The claim script applies them as it goes through the due jobs of each
//! queue in claim order. A queue's [`ClaimLimit`](jobs_core::ClaimLimit)
//! caps how many of its jobs the call takes: its `take`, its `global` cap
//! minus its RUNNING jobs (from `{P}:counts`), its `rate` minus the starts in
//! its window. A job's own [`JobLimits`](jobs_core::JobLimits) are checked
//! against `{P}:run:conc`, `{P}:rate:<key>` (old starts are dropped first;
//! starts are logged with Redis's clock as the job is claimed) and, for a
//! sequence, the first member of `{P}:sq:<key>` and `{P}:run:seq`.
//!
//! Due jobs with limits wait in a lane of their own, `{P}:lready:<queue>`,
//! beside the plain `{P}:ready:<queue>`; the claim merges the two in claim
//! order (both have the same score and member scheme). A job held back stays
//! where it is in its lane, and the claim looks past it, so it blocks no
//! later job, and a job without limits never waits behind held-back ones,
//! however many there are. **At most 1,000 jobs of the limits lane are
//! looked at per queue and call**: a job with limits behind more than that
//! many held-back ones waits until some of those can run (the reply says
//! `limited`, and the manager asks again soon). While a queue has no due
//! job with limits and the claim no `ClaimLimit`s for it, its jobs take the
//! same path as before limits existed (one `ZPOPMIN` per batch, one
//! `HGETALL` and one `HSET` per job), plus one `SISMEMBER` (paused?) and
//! one `EXISTS` (limits lane?) per queue and call.
//! A job leaves its concurrency and sequence counts when it stops running
//! (any outcome, or recovery); it leaves its sequence when it finishes
//! (completed, failed, dead-lettered, cancelled, deleted), keeps its place
//! while it waits for a retry, and takes its old place again on requeue.
//!
//! ## Upgrading from the previous version
//!
//! The due-soonest order of `list_page` reads `{P}:due`, a sorted set of
//! every waiting job (score 0, the member of its ready or delayed set, so it
//! sorts by run_at, then enqueue order), which every script keeps in step
//! with the ready and delayed sets. The first connect of this version fills
//! it from those sets, 1,000 jobs per script call, and marks it built
//! (`{P}:due:built`); stop the old workers first, since their scripts do not
//! keep it. It costs about as much memory as the ready and delayed sets.
//!
//! Nothing else needs migrating: the new fields and keys are created as they are
//! first needed, and a job without them reads back as never snoozed, without
//! progress, not unique and without limits — which is what every job
//! written before them was. Stop the old workers before starting new ones:
//! an old worker's claim knows nothing of paused queues or limits.
//!
//! Jobs of the version before that need no migrating either: written
//! before `lt`, `ec`, `cx` and `to` existed, they lack them, and read back
//! as no lease token, as many errors as their history holds (that version
//! did not cap it: reading shows the last 20, and the next failure cuts the
//! stored history to 20 and counts on from the full length), not cancelled (a job cancelled then is FAILED with the
//! error "cancelled", without the mark), and no timeout of their own.
//!
//! A job that was RUNNING under the previous version has no token, so no
//! fence matches it: the late outcome or heartbeat of the worker that ran it
//! is refused (reported lost), and the job comes back when its lease expires,
//! through [`Backend::recover_expired`], as a failed attempt — the same as
//! any attempt whose worker lost its lease. Stop the old workers before
//! starting new ones: an old worker's scripts fence by attempt number and
//! know nothing of tokens.
//!
//! **Redis Cluster.** Each script gets the namespace tag `{P}` as its one key
//! and builds the others from it; since every key of the namespace hashes to
//! that tag's slot, the script runs on the node owning the slot and touches
//! only keys of that slot, which Redis Cluster accepts. The connection itself
//! is a single-node one (the `redis` crate's cluster client is not enabled in
//! this workspace): against a cluster, point the URL at the node that owns
//! the namespace's slot (`CLUSTER KEYSLOT "{P}"`), or use a cluster-aware
//! proxy. Not yet tested against a real cluster.
//!
//! # Connections
//!
//! A handle made by [`RedisBackend::connect`] and its clones share one
//! multiplexed connection (a `ConnectionManager`, which reconnects by itself),
//! opened on the caller's runtime. A [detached](Backend::detached) handle —
//! what a `WorkerManager` renews leases and records outcomes with, on a thread
//! and runtime of its own — shares the namespace, scripts and settings but
//! opens a connection of its own on its first call, on that call's runtime,
//! so its I/O never waits for the application's threads; when that runtime
//! is gone (a manager stopped and started again), the next call opens a new
//! one. A listener subscribes with a connection of its own too.
//!
//! # Waking idle workers
//!
//! Scripts that make work claimable `PUBLISH` the queue's name on `{P}:wake`.
//! A [listener](Backend::listener) holds its own subscribed connection and
//! sleeps until a message for one of its queues arrives, or until the earliest
//! delayed job of its queues comes due, or the caller's timeout. How long
//! until that job is due is computed by a script from Redis's `TIME`, never
//! by comparing its `run_at` with the worker's clock. An idle worker makes
//! one small query per wait, nothing else.
//!
//! Scripts that finish jobs (`record.lua`, `recover.lua`, `cancel.lua` of a
//! waiting job) `PUBLISH` their ids on `{P}:finished`, once per call, where
//! `wait_finished` listens (one subscription per backend), so a result handle
//! in any process wakes at once.
//!
//! # Durability: what each Redis persistence setting gives
//!
//! A job is acknowledged when its script returns. What survives depends on
//! the server's configuration, not on this crate:
//!
//! | Redis setting | a crash of Redis (or its machine) loses |
//! |---|---|
//! | no persistence (`save ""`, `appendonly no`) | **everything**: fine for tests, not for jobs |
//! | RDB snapshots only (`save 60 1000` ...) | every change since the last snapshot: minutes of enqueues and outcomes |
//! | AOF, `appendfsync everysec` (the usual) | about the last second of acknowledged changes on power loss; nothing if only the Redis process dies |
//! | AOF, `appendfsync always` | nothing acknowledged: each write is fsynced before the reply (slower writes) |
//!
//! A worker crash never loses a job whatever the setting: its leases expire
//! and [`Backend::recover_expired`] returns the jobs as failed attempts. While
//! Redis is down every call returns [`Error::Backend`]; the connection
//! reconnects by itself once Redis is back. With replication, a failover can
//! lose what the old primary had not yet sent to the replica (Redis
//! replication is asynchronous; `WAIT` is not used).
//!
//! # Bad data
//!
//! A job hash that lacks a field or holds a payload that is not JSON is
//! reported as [`Error::Corrupt`] naming the job by `get`, `list`, `cancel` and
//! `requeue`; a `claim` that meets one marks that job FAILED with the reason
//! as its error and returns the others, so a worker never sees it.

// For the links of the docs above.
#[cfg(doc)]
use jobs_core::{backend::Outcome, Backend, BackendErrorKind, Error, MAX_DELAY};

mod backend;
// After `backend`: its `impl RedisBackend` block then comes second in the docs.
mod admin;
mod bulk;
mod conn;
mod control;
mod finished;
mod listener;
mod listing;
mod options;
mod queue;
mod record;
mod row;
mod scripts;
mod workflow;

pub use backend::RedisBackend;
pub use options::{RedisBuilder, DEFAULT_PREFIX};
