//! `JobQueue`: the backend port. Memory, SQLite, PostgreSQL and Redis implement it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{BoxFuture, Job, JobId, JobStatus, NewJob, Result};

/// Identifies one lease of a job: its id and the `attempt` counter of the claim.
/// Outcomes and heartbeats carry it, and a backend applies them only while the
/// job is RUNNING under that same attempt — a worker whose lease was taken over
/// can't overwrite the newer attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fence {
    pub id: JobId,
    pub attempt: u32,
}

/// A request to claim ready jobs.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// Who takes the lease (`locked_by`).
    pub worker_id: &'a str,
    /// Queues in priority order: a job of an earlier queue always goes first.
    pub queues: &'a [String],
    /// At most this many jobs.
    pub limit: usize,
    /// The lease runs until now + `lease`.
    pub lease: Duration,
}

/// What happened to an attempt, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// → COMPLETED, storing `result`.
    Complete { result: Option<Value> },
    /// → RETRYING, `retry_count + 1`, claimable after `delay` (the backend's clock).
    Retry {
        delay: Duration,
        error: AttemptFailure,
    },
    /// → FAILED (no retry).
    Fail { error: AttemptFailure },
    /// → DEAD_LETTER (retries exhausted).
    DeadLetter { error: AttemptFailure },
    /// → PENDING, due now, not counted as a failure (graceful shutdown).
    Release,
}

/// The error of a failed attempt, as stored in the job's history.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFailure {
    pub message: String,
    pub retryable: bool,
}

/// One outcome under one lease.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeUpdate {
    pub fence: Fence,
    pub outcome: Outcome,
}

/// A job whose lease expired, as recovered by [`JobQueue::recover_expired`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The job as it was during the lost attempt (RUNNING, its `retry_count` then).
    pub job: Job,
    /// RETRYING or DEAD_LETTER.
    pub now: JobStatus,
}

/// Which jobs to list, newest-enqueued last, paged by `offset`/`limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    pub queue: Option<String>,
    pub status: Option<JobStatus>,
    pub job_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            queue: None,
            status: None,
            job_type: None,
            limit: 100,
            offset: 0,
        }
    }
}

impl JobFilter {
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }
    pub fn job_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(job_type.into());
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Whether `job` passes the queue/status/type filters (paging aside).
    pub fn matches(&self, job: &Job) -> bool {
        self.queue.as_deref().is_none_or(|q| q == job.queue_name)
            && self.status.is_none_or(|s| s == job.status)
            && self.job_type.as_deref().is_none_or(|t| t == job.job_type)
    }
}

/// How many jobs of one queue are in one status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueCount {
    pub queue: String,
    pub status: JobStatus,
    pub count: u64,
}

/// Waits for a sign that jobs may be ready, so idle workers need not poll hard.
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
}

/// The backend port. Methods work in batches where it matters for speed; every
/// state change is atomic, and the state machine of [`JobStatus`] is enforced.
///
/// One conformance suite (`tests/conformance/`) defines the contract; a backend
/// is done when it passes it unchanged.
pub trait JobQueue: Send + Sync + 'static {
    /// `"memory"`, `"sqlite"`, `"postgres"`, `"redis"`.
    fn backend_name(&self) -> &'static str;

    /// Stores the jobs atomically (all or none), PENDING or SCHEDULED by `run_at`.
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>>;

    /// Claims up to `limit` due jobs in order — queue list order, then `priority`
    /// descending, then `run_at`, then enqueue order — marks them RUNNING under a
    /// lease, increments their `attempt`, and returns them. No job is returned to
    /// two claimers.
    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>>;

    /// Extends the leases of running jobs to now + `lease`; returns the ones that
    /// were lost (no longer RUNNING under that fence).
    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>>;

    /// Records outcomes; returns the ids whose update was refused because the
    /// lease behind it was lost.
    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>>;

    /// Turns RUNNING jobs whose lease expired into failed attempts: RETRYING
    /// (`retry_count + 1`, due now) or DEAD_LETTER when no retry is left.
    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>>;

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>>;

    /// Jobs matching `filter`, in enqueue order, paged.
    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>>;

    /// Cancels a waiting (PENDING, SCHEDULED, RETRYING) job: FAILED, never claimed.
    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>>;

    /// Puts a FAILED or DEAD_LETTER job back to PENDING, due now, with a fresh
    /// retry budget (`retry_count = 0`); its error history is kept.
    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>>;

    /// Counts by queue and status (statuses with no job are left out).
    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>>;

    /// Deletes up to `limit` terminal jobs that finished before `before`.
    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>>;

    /// A wake-up signal for workers of `queues`.
    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>>;
}
