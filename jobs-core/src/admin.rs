//! What the admin side of a queue takes and returns: job filters and counts.

use crate::{Job, JobStatus};

/// Which jobs to list, in enqueue order, paged by `offset`/`limit`.
///
/// `JobFilter::default()` matches every job and returns **at most 100** of
/// them (the first page); raise it with [`limit`](JobFilter::limit), or page
/// with [`offset`](JobFilter::offset).
///
/// ```
/// use jobs_core::{JobFilter, JobStatus};
/// let dead = JobFilter::default().queue("emails").status(JobStatus::DeadLetter).limit(500);
/// assert_eq!(dead.limit, 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this type.
    pub job_type: Option<String>,
    /// Only cancelled jobs (`Some(true)`), or only jobs that were not
    /// cancelled (`Some(false)`).
    pub cancelled: Option<bool>,
    /// At most this many (default 100).
    pub limit: usize,
    /// Skip this many matches first (default 0).
    pub offset: usize,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            queue: None,
            status: None,
            job_type: None,
            cancelled: None,
            limit: 100,
            offset: 0,
        }
    }
}

impl JobFilter {
    /// Only jobs of `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    /// Only jobs in `status`.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Only jobs of `job_type`.
    pub fn job_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(job_type.into());
        self
    }
    /// Only cancelled jobs (`true`), or only those not cancelled (`false`).
    pub fn cancelled(mut self, cancelled: bool) -> Self {
        self.cancelled = Some(cancelled);
        self
    }

    /// At most `limit` jobs.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    /// Skip the first `offset` matches.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Whether `job` passes the queue/status/type filters (paging aside).
    pub fn matches(&self, job: &Job) -> bool {
        self.queue.as_deref().is_none_or(|q| q == job.queue_name)
            && self.status.is_none_or(|s| s == job.status)
            && self.job_type.as_deref().is_none_or(|t| t == job.job_type)
            && self
                .cancelled
                .is_none_or(|c| c == job.cancelled_at.is_some())
    }
}

/// How many jobs of one queue are in one status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct QueueCount {
    /// The queue.
    pub queue: String,
    /// The status.
    pub status: JobStatus,
    /// How many of its jobs are in it.
    pub count: u64,
}

impl QueueCount {
    /// `count` jobs of `queue` are in `status`.
    pub fn new(queue: impl Into<String>, status: JobStatus, count: u64) -> Self {
        QueueCount {
            queue: queue.into(),
            status,
            count,
        }
    }
}
