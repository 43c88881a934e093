//! The backend port: what a queue backend implements, and the types of its
//! protocol with the worker. Memory, SQLite, PostgreSQL and Redis implement it;
//! so can a third party.
//!
//! Users rarely name anything here: they hold a [`Queue`](crate::Queue) (the
//! client handle) and let a `WorkerManager` speak this protocol.
//!
//! Three things are called "queue" in this project, and they are kept apart by
//! name: a **queue** is a name that jobs are routed by (`NewJob::queue_name`);
//! the [`Queue`](crate::Queue) is the client handle applications enqueue and
//! inspect jobs through; a [`Backend`] is the storage behind that handle.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    BoxFuture, CancelRequest, Enqueued, Error, Job, JobCursor, JobFilter, JobId, JobPage,
    JobPayload, JobSort, JobStatus, Leader, NewJob, Progress, PruneRequest, QueueCount, Result,
    ScheduleState, WorkerInfo,
};

/// The random token of one lease. A backend makes a fresh one for every
/// claim, stores it with the job while it runs, and applies an outcome or a
/// heartbeat only under the same token — so no later claim can be mistaken for
/// this one, even one that gets the same `attempt` number after a database
/// crash undid a claim.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(u64);

impl LeaseToken {
    /// A fresh random token (never zero).
    pub fn random() -> Self {
        LeaseToken(uuid::Uuid::new_v4().as_u64_pair().0 | 1)
    }

    /// The token stored as `v` (e.g. read back from a row).
    pub const fn from_u64(v: u64) -> Self {
        LeaseToken(v)
    }

    /// The token as stored.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The token as a signed 64-bit integer, for SQL `bigint` columns (a
    /// bit-for-bit reinterpretation, undone by [`from_i64`](Self::from_i64)).
    pub const fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// The inverse of [`as_i64`](Self::as_i64).
    pub const fn from_i64(v: i64) -> Self {
        LeaseToken(v as u64)
    }
}

impl std::fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeaseToken({:016x})", self.0)
    }
}

impl std::fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Identifies one lease of a job: its id, the `attempt` counter of the claim
/// and the claim's random [`LeaseToken`]. Outcomes and heartbeats carry it, and
/// a backend applies them only while the job is RUNNING under that same token —
/// a worker whose lease was taken over can't overwrite the newer attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fence {
    /// The job.
    pub id: JobId,
    /// The job's `attempt` counter under this lease (for messages).
    pub attempt: u32,
    /// The lease's token: what the backend checks.
    pub token: LeaseToken,
}

impl Fence {
    /// The fence of the lease `token` that `attempt` took on job `id`.
    pub const fn new(id: JobId, attempt: u32, token: LeaseToken) -> Self {
        Fence { id, attempt, token }
    }
}

/// A request to claim ready jobs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ClaimRequest<'a> {
    /// Who takes the lease (`locked_by`).
    pub worker_id: &'a str,
    /// Queues in priority order: a job of an earlier queue always goes first.
    pub queues: &'a [String],
    /// At most this many jobs.
    pub limit: usize,
    /// The lease runs until now + `lease`.
    pub lease: Duration,
    /// The limits of some of `queues` (global running cap, rate, this
    /// claim's local cap); queues not listed have none. Jobs' own limits
    /// ([`JobLimits`](crate::JobLimits)) apply whatever this says.
    pub limits: &'a [crate::ClaimLimit],
}

impl<'a> ClaimRequest<'a> {
    /// Up to `limit` jobs from `queues` (in that order), leased to `worker_id` for `lease`.
    pub fn new(worker_id: &'a str, queues: &'a [String], limit: usize, lease: Duration) -> Self {
        ClaimRequest {
            worker_id,
            queues,
            limit,
            lease,
            limits: &[],
        }
    }

    /// With queue limits.
    pub fn with_limits(mut self, limits: &'a [crate::ClaimLimit]) -> Self {
        self.limits = limits;
        self
    }

    /// The limits of `queue`, if any.
    pub fn limit_of(&self, queue: &str) -> Option<&'a crate::ClaimLimit> {
        self.limits.iter().find(|l| l.queue == queue)
    }
}

/// What happened to an attempt, as the worker reports it.
///
/// Exhaustive on purpose: a backend must apply every outcome, so a new one
/// is a change every backend has to make, and the compiler should say so.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// → COMPLETED, storing `result`.
    Complete {
        /// What the handler returned, stored as the job's `result_data`.
        result: Option<Value>,
    },
    /// → COMPLETED, then deleted in the same step, nothing stored: what a
    /// retention that keeps no completed jobs asks for
    /// (`Retention::drop_completed()` in the runtime), so a finished job is
    /// not written back only to be pruned a moment later. The backend keeps
    /// its counts exact (the job leaves RUNNING and is counted nowhere
    /// after) and counts it in the throughput history as a completion; the
    /// fence is checked exactly as for [`Outcome::Complete`], so a stale one
    /// deletes nothing.
    CompleteAndDelete,
    /// → RETRYING, `retry_count + 1`, claimable after `delay` (the backend's clock).
    Retry {
        /// How long from now (the backend's now) until the next attempt.
        delay: Duration,
        /// Why the attempt failed.
        error: AttemptFailure,
    },
    /// → FAILED (no retry).
    Fail {
        /// Why the attempt failed.
        error: AttemptFailure,
        /// Data the handler returned with its failure (a failed `JobResult`
        /// may carry some), stored as the job's `result_data`.
        result: Option<Value>,
    },
    /// → DEAD_LETTER (retries exhausted).
    DeadLetter {
        /// Why the last attempt failed.
        error: AttemptFailure,
    },
    /// → PENDING, due now, not counted as a failure (graceful shutdown).
    Release,
    /// → SCHEDULED, due after `delay` (the backend's clock): "not now". Not a
    /// failure and not a retry: `retry_count` and the error history stay as
    /// they are, `snoozes` counts it.
    Snooze {
        /// How long from now until the job may be claimed again.
        delay: Duration,
    },
    /// → FAILED, for good, keeping its `cancelled_at` mark: the attempt of a
    /// job whose cancellation was requested while it ran has ended.
    Cancel {
        /// What the job's error says (who cancelled it and why).
        error: AttemptFailure,
    },
}

/// The error of a failed attempt, as stored in the job's history.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AttemptFailure {
    /// The error, as a person reads it.
    pub message: String,
    /// Whether the failure asked for a retry.
    pub retryable: bool,
}

impl AttemptFailure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>, retryable: bool) -> Self {
        AttemptFailure {
            message: message.into(),
            retryable,
        }
    }
}

/// One outcome under one lease.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutcomeUpdate {
    /// The lease the outcome belongs to.
    pub fence: Fence,
    /// What happened.
    pub outcome: Outcome,
}

impl OutcomeUpdate {
    /// `outcome` under the lease `fence`.
    pub fn new(fence: Fence, outcome: Outcome) -> Self {
        OutcomeUpdate { fence, outcome }
    }
}

/// A job whose lease expired, as recovered by [`Backend::recover_expired`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Recovered {
    /// The job as it was during the lost attempt (RUNNING, its `retry_count` then).
    pub job: Job,
    /// RETRYING or DEAD_LETTER.
    pub now: JobStatus,
}

impl Recovered {
    /// `job` (as it was while running) is now in status `now`.
    pub fn new(job: Job, now: JobStatus) -> Self {
        Recovered { job, now }
    }
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatReply {
    /// Jobs whose lease was lost (no longer RUNNING under the fence's token).
    pub lost: Vec<JobId>,
    /// Jobs still held whose cancellation was requested: their workers cancel them.
    pub cancel: Vec<JobId>,
}

impl HeartbeatReply {
    /// A reply: `lost` leases, and jobs to `cancel`.
    pub fn new(lost: Vec<JobId>, cancel: Vec<JobId>) -> Self {
        HeartbeatReply { lost, cancel }
    }
}

/// Waits for a sign that jobs may be ready, so idle workers need not poll hard.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a job listener",
    note = "a listener is what `Backend::listener` returns: `wait(timeout)` completes when jobs may be ready"
)]
pub trait JobListener: Send {
    /// Returns when new work may be claimable, or after `timeout` at the latest.
    /// Spurious returns are fine; missed signals must not be (within `timeout`).
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()>;

    /// True when every change that makes a job claimable for these queues —
    /// from any process — is signalled (enqueue, release, retry and scheduled
    /// jobs coming due), so a worker need poll only as a rare safety net.
    /// False (the default) when some changes are only found by polling.
    fn signals_all_work(&self) -> bool {
        false
    }

    /// Whether, since the last call, a job's cancellation was requested (a
    /// running job's worker then heartbeats at once, and learns which from the
    /// reply). `false` by default: workers then learn at their next heartbeat.
    fn take_cancel_signal(&mut self) -> bool {
        false
    }
}

/// The backend port. Methods work in batches where it matters for speed; every
/// state change is atomic, and the state machine of [`JobStatus`] is enforced.
///
/// One conformance suite (`tests/conformance/` in the project) defines the
/// contract; a backend is done when it passes it unchanged.
///
/// The required methods are the worker protocol (claim, heartbeat, record,
/// recover) and the producer/admin side (enqueue, get, list, cancel, requeue,
/// counts, prune). Capabilities added later come as provided methods whose
/// default says honestly what a backend without them does (for example,
/// [`listener`](Backend::listener) polls), so a new release does not break a
/// third-party backend.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a queue backend",
    label = "not a `Backend`",
    note = "open a queue with `jobs::connect(url).await?` (`memory://`, `sqlite://`, `postgres://`, `redis://`), or implement `jobs::backend::Backend` for your storage"
)]
pub trait Backend: Send + Sync + 'static {
    /// `"memory"`, `"sqlite"`, `"postgres"`, `"redis"`.
    fn backend_name(&self) -> &'static str;

    /// Stores the jobs atomically (all or none), PENDING or SCHEDULED by their
    /// due time: `run_at` if given, else now + `delay` (by the backend's clock,
    /// saturating at [`MAX_DELAY`](crate::MAX_DELAY) from now), else now.
    /// Implementations check every job with [`NewJob::validate`] first.
    ///
    /// A job with [`Uniqueness`](crate::Uniqueness) is stored only if no job
    /// holds its key (its stored key, with the period's bucket by the
    /// backend's clock) in one of the holder's unique states — enforced by the
    /// store itself, never by a read then a write; otherwise the result says
    /// [`Enqueued::Duplicate`] (or, in replace mode with a waiting holder,
    /// [`Enqueued::Replaced`] after updating it). Within a batch, a later job
    /// with the key of an earlier one is its duplicate the same way.
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>>;

    /// Claims up to `limit` due jobs in order — queue list order, then `priority`
    /// descending, then `run_at`, then enqueue order — marks them RUNNING under a
    /// lease with a fresh [`LeaseToken`], increments their `attempt`, and
    /// returns them. No job is returned to two claimers.
    ///
    /// Limits hold jobs back without claiming them, atomically with every
    /// other claim (no two claimers can both take the last slot): a job's
    /// [`JobLimits`](crate::JobLimits) — at most `max` RUNNING per
    /// concurrency key, at most `max` started per rate key in any window of
    /// `per` (starts are logged at claim time by the backend's clock), only
    /// the oldest unfinished job of a sequence key and only while none of
    /// the key runs — and the request's [`ClaimLimit`](crate::ClaimLimit)s per
    /// queue. A held-back job does not stop later ones from being claimed
    /// (a backend may look at a bounded number of candidates per call, and
    /// documents it); [`Claimed::limited`](crate::Claimed) says some were.
    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<crate::Claimed>>;

    /// Extends the leases of running jobs to now + `lease`; reports the ones
    /// that were lost (no longer RUNNING under that fence's token), and those
    /// whose cancellation was requested.
    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>>;

    /// Records outcomes; returns the ids whose update was refused because the
    /// lease behind it was lost (the job is no longer RUNNING under that
    /// fence's token).
    ///
    /// A batch is applied as one unit where the backend can (a failure of
    /// the call stores none of it), so a caller may split a batch that the
    /// backend refuses as [`BackendErrorKind::Data`](crate::BackendErrorKind::Data)
    /// to find the outcome it cannot store.
    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>>;

    /// Turns RUNNING jobs whose lease expired into failed attempts: RETRYING
    /// (`retry_count + 1`, due now) or DEAD_LETTER when no retry is left — or
    /// FAILED, cancelled, if its cancellation had been requested.
    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>>;

    /// The job with this id, if it exists.
    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>>;

    /// Jobs matching `filter`, in enqueue order, paged by offset. A filter
    /// that [needs keyset paging](JobFilter::is_keyset) (a search, another
    /// order, a cursor) is the jobs of one [`list_page`](Backend::list_page).
    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>>;

    /// Cancels a job. A waiting one (PENDING, SCHEDULED, RETRYING) becomes
    /// FAILED at once, never claimed, with `cancelled_at` set and
    /// [`CancelRequest::message`] as its error. A RUNNING one gets
    /// `cancelled_at` set and stays RUNNING: its worker learns of it (from
    /// the listener's signal or its next heartbeat), stops it, and records
    /// [`Outcome::Cancel`]. Anything else is refused.
    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>>;

    /// Puts a FAILED or DEAD_LETTER job back to PENDING, due now, with a fresh
    /// retry budget (`retry_count = 0`) and no cancellation mark; its error
    /// history is kept.
    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>>;

    /// Counts by queue and status (statuses with no job are left out).
    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>>;

    /// Deletes up to `req.limit` jobs in `req.statuses` (terminal ones) of
    /// `req.queue` (or any) that finished before `req.before`.
    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>>;

    /// The same store, with connections of its own that are opened on first
    /// use by whichever async runtime uses them. A `WorkerManager` runs its
    /// heartbeats and recording on a thread of its own with this handle, so
    /// handlers that block the threads of the application's runtime cannot
    /// stall lease renewal (a connection opened on a runtime is served by
    /// that runtime's threads). `heartbeat` must use the handle's own
    /// connections; `record` may go through this handle's (the manager's
    /// heartbeat renews a job's lease until its outcome is written, so a
    /// record that waits for blocked threads costs no lease). `None` (the
    /// default): the manager shares this handle, which is right for a
    /// backend without I/O of its own.
    fn detached(&self) -> Option<std::sync::Arc<dyn Backend>> {
        None
    }

    /// Pauses `queue` for every worker: its jobs are not claimed (running
    /// ones finish) until [`resume_queue`](Backend::resume_queue). Persisted.
    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = queue;
        unsupported(self.backend_name(), "pausing queues")
    }

    /// Resumes a paused queue and wakes idle workers at once.
    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = queue;
        unsupported(self.backend_name(), "pausing queues")
    }

    /// The paused queues.
    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        unsupported(self.backend_name(), "pausing queues")
    }

    /// Stores the latest progress of running jobs, each only while it is
    /// RUNNING under its fence's token (a late report of a lost lease is dropped).
    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        let _ = updates;
        unsupported(self.backend_name(), "progress")
    }

    /// Registers (or refreshes) a running worker; its entry lives for `ttl`
    /// past now (backend clock) unless refreshed, and `last_seen` is now.
    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        let _ = (info, ttl);
        unsupported(self.backend_name(), "the worker registry")
    }

    /// Removes a worker's entry (it stopped).
    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = id;
        unsupported(self.backend_name(), "the worker registry")
    }

    /// The registered workers whose entry has not expired, by id.
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        unsupported(self.backend_name(), "the worker registry")
    }

    /// Takes or renews `role` for `holder` until now + `ttl` (backend clock):
    /// `true` if `holder` holds it now. At most one holder at a time; a role
    /// whose holder stopped renewing is free once its lease has run out.
    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = (role, holder, ttl);
        unsupported(self.backend_name(), "leader election")
    }

    /// Gives up `role` if `holder` holds it.
    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = (role, holder);
        unsupported(self.backend_name(), "leader election")
    }

    /// Who holds `role`, if anyone's lease on it has not run out.
    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        let _ = role;
        unsupported(self.backend_name(), "leader election")
    }

    /// The stored states of periodic schedules, by name.
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        unsupported(self.backend_name(), "periodic schedules")
    }

    /// Stores a schedule's state (insert or replace by name; `updated_at` is
    /// the backend's now).
    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        let _ = state;
        unsupported(self.backend_name(), "periodic schedules")
    }

    /// Deletes a job that is not RUNNING, and everything pointing at it (its
    /// unique key, its sequence membership): [`Error::NotFound`] if there is
    /// none, [`Error::cannot_delete`] if it runs.
    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        let _ = id;
        unsupported(self.backend_name(), "deleting a job")
    }

    /// Appends an entry to the audit log.
    fn append_audit<'a>(&'a self, entry: &'a crate::AuditEntry) -> BoxFuture<'a, Result<()>> {
        let _ = entry;
        unsupported(self.backend_name(), "an audit log")
    }

    /// Audit entries, newest first (by `at`, then the order they were
    /// appended), as `filter` says.
    fn audit_log<'a>(
        &'a self,
        filter: &'a crate::AuditFilter,
    ) -> BoxFuture<'a, Result<Vec<crate::AuditEntry>>> {
        let _ = filter;
        unsupported(self.backend_name(), "an audit log")
    }

    /// Deletes at most `limit` audit entries older than `before`; returns
    /// how many went.
    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        let _ = (before, limit);
        unsupported(self.backend_name(), "an audit log")
    }

    /// What the jobs did per minute and per queue since `since`: the
    /// buckets whose minute starts at or after `since`, ordered by minute,
    /// then queue (minutes and queues without any change are left out).
    ///
    /// Kept by the same writes that change the jobs — whoever makes them —
    /// each move into COMPLETED, FAILED (cancellations too), DEAD_LETTER or
    /// RETRYING counted in the minute it happened by the backend's clock.
    /// Buckets are kept for [`THROUGHPUT_RETENTION`](crate::THROUGHPUT_RETENTION)
    /// at least; older ones go when [`prune`](Backend::prune) runs (or expire).
    fn throughput(
        &self,
        since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<crate::ThroughputBucket>>> {
        let _ = since;
        unsupported(self.backend_name(), "throughput history")
    }

    /// Requeues the jobs `filter` takes, as [`requeue`](Backend::requeue)
    /// would each — PENDING, due now, `retry_count = 0`, no cancellation
    /// mark, history kept — in enqueue order, a batch at a time, each batch
    /// applied atomically by one statement or script (not one call per job).
    /// A unique job whose key another job holds now is left as it is and
    /// reported in [`RequeueReport::skipped_unique`](crate::RequeueReport),
    /// not failed. A status other than FAILED or DEAD_LETTER is refused
    /// ([`RequeueFilter::validate`](crate::RequeueFilter::validate)) and
    /// changes nothing.
    fn requeue_many<'a>(
        &'a self,
        filter: &'a crate::RequeueFilter,
    ) -> BoxFuture<'a, Result<crate::RequeueReport>> {
        let _ = filter;
        unsupported(self.backend_name(), "bulk requeue")
    }

    /// One page of the jobs matching `filter`, in `filter.sort` order, from
    /// just after `filter.after` (or from the start), with the cursor of the
    /// next page. Native implementations walk an index in the sort's order
    /// from the cursor, so a deep page costs what the first one does, and
    /// look at no more than `filter.scan_limit` rows per page (past those the
    /// index skips): a page that stopped there says so in
    /// [`JobPage::scan_limited`] and continues where it stopped.
    ///
    /// `filter.offset` is honoured on the first page only (no cursor): it
    /// widens that page's window by as many jobs, so it costs them; it is
    /// refused together with a cursor. A malformed cursor, or one of another
    /// order, is refused with [`Error::InvalidFilter`].
    ///
    /// The default, for backends written before it, pages
    /// [`list`](Backend::list) by offset in enqueue order (its cursors count
    /// the matches skipped, so a deep page costs the rows before it) and
    /// searches the jobs it reads; other orders are
    /// [`Error::Unsupported`].
    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<JobPage>> {
        Box::pin(async move {
            if filter.sort != JobSort::Oldest {
                return Err(Error::Unsupported {
                    backend: self.backend_name(),
                    feature: "job lists in another order than enqueue order",
                });
            }
            let start = page_start(filter, false)?;
            let mut skipped = match start {
                PageStart::Offset(n) => n,
                _ => filter.offset as u64,
            };
            let needle = crate::listing::search_needle(filter.search.as_deref());
            let mut base = filter.clone();
            base.search = None;
            base.after = None;
            let mut out = Vec::new();
            let mut examined = 0usize;
            let scan_limit = filter.scan_limit.max(1);
            while out.len() < filter.limit {
                base.offset = usize::try_from(skipped).unwrap_or(usize::MAX);
                base.limit = (scan_limit - examined).min(1_000);
                let rows = self.list(&base).await?;
                let full = rows.len() == base.limit;
                for job in rows {
                    examined += 1;
                    skipped += 1;
                    if needle
                        .as_deref()
                        .is_none_or(|n| crate::listing::search_hits(&job, n))
                    {
                        out.push(job);
                        if out.len() == filter.limit {
                            break;
                        }
                    }
                }
                if out.len() == filter.limit {
                    let next = JobCursor::offset(JobSort::Oldest, skipped);
                    return Ok(JobPage::new(out, Some(next), false));
                }
                if !full {
                    return Ok(JobPage::new(out, None, false));
                }
                if examined >= scan_limit {
                    let next = JobCursor::offset(JobSort::Oldest, skipped);
                    return Ok(JobPage::new(out, Some(next), true));
                }
            }
            Ok(JobPage::new(out, None, false))
        })
    }

    /// A wake-up signal for workers of `queues`. By default none
    /// ([`Error::Unsupported`]): workers then find work by polling.
    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        let _ = queues;
        let backend = self.backend_name();
        Box::pin(async move {
            Err(Error::Unsupported {
                backend,
                feature: "wake-up signals",
            })
        })
    }

    /// Waits until job `id` has finished (COMPLETED, FAILED or DEAD_LETTER)
    /// or `timeout` passes, and returns it as it then is: finished, still
    /// unfinished when the time ran out, or `None` if there is no such job.
    /// It changes nothing. Returning early with an unfinished job is allowed
    /// (callers wait again); returning late past a finish is not.
    ///
    /// By default it reads the job with a backoff from 20 ms to 1 s. A
    /// backend with a completion signal overrides it, and must not lose a
    /// wake-up: register interest first, then read the job, then wait.
    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(crate::handle::poll_finished(self, id, timeout))
    }

    /// The jobs with these ids, in the same order (`None` for one that does
    /// not exist). By default one [`get`](Backend::get) per id; backends
    /// read them in one round trip.
    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                out.push(self.get(id).await?);
            }
            Ok(out)
        })
    }

    /// Settles the edges from `parent` to each of `children` (a workflow
    /// parent that finished), atomically and at most once per (parent,
    /// child) pair, and returns for each child, in order, how many of its
    /// edges are settled now (this call's included). Settling an edge a
    /// second time changes nothing and returns the same count, so a caller
    /// that crashed may settle again.
    ///
    /// The backend keeps the settled edges until the child is deleted or
    /// pruned. By default one [`settle_many`](Backend::settle_many) call.
    fn settle_dependencies<'a>(
        &'a self,
        parent: JobId,
        children: &'a [JobId],
    ) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(async move {
            let edges: Vec<(JobId, JobId)> = children.iter().map(|c| (parent, *c)).collect();
            self.settle_many(&edges).await
        })
    }

    /// [`settle_dependencies`](Backend::settle_dependencies) for many
    /// parents at once: settles each `(parent, child)` edge (at most once
    /// per pair, as there) and returns, for each edge in order, how many
    /// edges of its child are settled after the call. Workers that finish
    /// many steps of one fan-in settle them in one call, so the child's
    /// count is written once per call, not once per parent: one transaction
    /// (or one script). What backends implement for workflows (by default
    /// [`Error::Unsupported`]).
    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        let _ = edges;
        unsupported(self.backend_name(), "workflows")
    }

    /// Releases held workflow steps: each of `ids` that is SCHEDULED with
    /// its `run_at` at or after [`held_until`](crate::workflow::held_until)
    /// becomes PENDING, due now (and wakes workers, as an enqueue does).
    /// Any other job is left as it is. Returns the ids released. By default
    /// [`Error::Unsupported`].
    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        let _ = ids;
        unsupported(self.backend_name(), "workflows")
    }
}

/// Where a page of [`Backend::list_page`] starts, checked against its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// At the first match (skipping `filter.offset` of them, if any).
    First,
    /// Just after this cursor of a keyset backend.
    After(JobCursor),
    /// After this many matches (a backend without keyset paging).
    Offset(u64),
}

/// Checks `filter.after` for a backend that pages by key (`keyset`) or by
/// offset: [`Error::InvalidFilter`] for a cursor of another order or kind, or
/// for a cursor together with an offset.
pub fn page_start(filter: &JobFilter, keyset: bool) -> Result<PageStart> {
    let Some(cursor) = filter.after else {
        return Ok(PageStart::First);
    };
    if filter.offset > 0 {
        return Err(Error::InvalidFilter(
            "a cursor and an offset cannot be combined; page with one or the other".into(),
        ));
    }
    cursor.check(filter.sort, keyset)?;
    Ok(match cursor.as_offset() {
        Some(n) => PageStart::Offset(n),
        None => PageStart::After(cursor),
    })
}

/// [`page_start`] for a backend that pages by key: the cursor the page
/// starts just after, `None` for the first page.
pub fn keyset_start(filter: &JobFilter) -> Result<Option<JobCursor>> {
    Ok(match page_start(filter, true)? {
        PageStart::After(cursor) => Some(cursor),
        PageStart::First | PageStart::Offset(_) => None,
    })
}

/// Cuts the matches a keyset page found (at most `limit + 1`, in order) to a
/// [`JobPage`]: `key` makes the cursor of a job, `last_examined` is the
/// cursor of the last row the page looked at when it stopped at the scan
/// limit (`None` if it ran out of rows first).
pub fn finish_page(
    mut jobs: Vec<Job>,
    limit: usize,
    last_examined: Option<JobCursor>,
    key: impl Fn(&Job) -> JobCursor,
) -> JobPage {
    if jobs.len() > limit {
        jobs.truncate(limit);
        let next = jobs.last().map(&key);
        return JobPage::new(jobs, next, false);
    }
    match last_examined {
        Some(c) => {
            let short = jobs.len() < limit;
            JobPage::new(jobs, Some(c), short)
        }
        None => JobPage::new(jobs, None, false),
    }
}

fn unsupported<T: Send + 'static>(
    backend: &'static str,
    feature: &'static str,
) -> BoxFuture<'static, Result<T>> {
    Box::pin(async move { Err(Error::Unsupported { backend, feature }) })
}

/// Enqueue inside the caller's own database transaction: a capability of the
/// SQL backends only.
///
/// A job enqueued through it is written with the caller's own connection,
/// inside the caller's own transaction, so it exists if and only if that
/// transaction commits — the outbox guarantee. Backends that cannot honour it
/// (memory, Redis) do not implement it, and the [`Queue`](crate::Queue) handle
/// does not offer it, so a call that could not keep the promise does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot enqueue inside your own transaction",
    label = "no transactional enqueue",
    note = "only the SQLite and PostgreSQL backends can (`SqliteBackend`, `PostgresBackend`, with their `sqlx` transaction); the memory and Redis backends cannot keep the promise"
)]
pub trait TransactionalEnqueue: Backend {
    /// The connection type a transaction derefs to (`sqlx::PgConnection`, ...).
    type Connection: ?Sized + Send;

    /// Stores the jobs with `conn` (usually `&mut *tx`), all or none. They become
    /// visible to workers when, and only if, the caller's transaction commits.
    /// Implementations check every job with [`check_new_job`] first.
    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<Enqueued>>>;

    /// Stores one prepared job with `conn`; see [`enqueue_many_in`](Self::enqueue_many_in).
    fn enqueue_in<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        job: NewJob,
    ) -> BoxFuture<'a, Result<Enqueued>> {
        Box::pin(async move {
            let mut ids = self.enqueue_many_in(conn, vec![job]).await?;
            Ok(ids.remove(0))
        })
    }

    /// Stores a typed payload with `conn`; job type and defaults come from the type.
    fn enqueue_payload_in<'a, P: JobPayload>(
        &'a self,
        conn: &'a mut Self::Connection,
        payload: P,
    ) -> BoxFuture<'a, Result<Enqueued>>
    where
        Self: Sized,
    {
        let job = crate::client::typed_job(&payload, &P::options());
        Box::pin(async move { self.enqueue_in(conn, job?).await })
    }
}

/// What every enqueue checks before a job is stored, whichever path it takes:
/// the job's names ([`NewJob::validate`]) and, when a handler for its job type
/// is registered in this process, that the payload fits that handler's payload
/// type. An error here means nothing was stored.
pub fn check_new_job(job: &NewJob) -> Result<()> {
    job.validate()?;
    if let Some(reg) = crate::registry::find_registration(&job.job_type) {
        (reg.check_payload)(&job.payload).map_err(|reason| Error::InvalidPayload {
            job_type: job.job_type.clone(),
            reason: format!("does not fit `{}`: {reason}", reg.payload_type),
        })?;
    }
    Ok(())
}

/// `url` with its password, if any, replaced by `***` — for every message and
/// `Debug` output that shows a connection URL.
///
/// ```
/// use jobs_core::backend::redact_url;
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
/// assert_eq!(redact_url("redis://:pw@cache"), "redis://:***@cache");
/// assert_eq!(redact_url("sqlite://jobs.db"), "sqlite://jobs.db");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first `/`, `?` or `#`; credentials end at its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host}{tail}"),
        None => url.to_owned(),
    }
}

/// Splits the query parameter `name` off `url`, for backends whose options
/// travel in the URL (`?schema=`, `?prefix=`) but whose driver does not know
/// them. Returns the URL without it, and its value if it was there.
///
/// ```
/// use jobs_core::backend::take_url_param;
/// assert_eq!(
///     take_url_param("postgres://db/app?sslmode=disable&schema=jobs", "schema"),
///     ("postgres://db/app?sslmode=disable".to_owned(), Some("jobs".to_owned()))
/// );
/// assert_eq!(take_url_param("redis://cache", "prefix"), ("redis://cache".to_owned(), None));
/// ```
pub fn take_url_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => {
                value = Some(v.to_owned());
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
    (url, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_only() {
        for (url, want) in [
            ("postgres://u:p@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://u:p%40x@h:1/db?x=@",
                "postgres://u:***@h:1/db?x=@",
            ),
            ("redis://:p@h:6379/0", "redis://:***@h:6379/0"),
            ("rediss://u:p:q@h", "rediss://u:***@h"),
            ("memory://", "memory://"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
