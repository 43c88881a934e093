//! What the admin side of a queue takes and returns: job filters and counts.

use crate::{Job, JobCursor, JobSort, JobStatus};

/// Which jobs to list, in which order, and which page.
///
/// `JobFilter::default()` matches every job and returns **at most 100** of
/// them (the first page) in enqueue order; raise it with
/// [`limit`](JobFilter::limit). Page with a cursor: pass the
/// [`next`](crate::JobPage::next) of one page of
/// [`list_page`](crate::Queue::list_page) as [`after`](JobFilter::after) of
/// the next (each page costs the same however deep), or — the older way, in
/// enqueue order without search — with [`offset`](JobFilter::offset).
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
    /// Skip this many matches first (default 0). Offset paging costs a
    /// backend the skipped rows; it cannot be combined with `after`.
    pub offset: usize,
    /// Only jobs whose text contains this (ASCII letters in any case): the job
    /// type, the payload's JSON text as stored, the latest error message, and
    /// the messages of the kept error history. Not the result, metadata or
    /// queue. Empty: no search.
    pub search: Option<String>,
    /// The order (default [`JobSort::Oldest`], enqueue order).
    pub sort: JobSort,
    /// Start just after this position (from [`JobPage::next`](crate::JobPage::next)).
    pub after: Option<JobCursor>,
    /// A page of [`list_page`](crate::Backend::list_page) looks at no more
    /// than this many jobs (default 10,000) in its order, past those that its
    /// index skips anyway, and ends early, saying so, when it got there: this
    /// bounds the cost of a search or of a rare type, whatever the table's size.
    pub scan_limit: usize,
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
            search: None,
            sort: JobSort::Oldest,
            after: None,
            scan_limit: crate::listing::DEFAULT_SCAN_LIMIT,
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

    /// Only jobs whose text contains `search` (see [`JobFilter::search`]).
    pub fn search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }
    /// In this order.
    pub fn sort(mut self, sort: JobSort) -> Self {
        self.sort = sort;
        self
    }
    /// Start just after `cursor` (the `next` of the page before).
    pub fn after(mut self, cursor: JobCursor) -> Self {
        self.after = Some(cursor);
        self
    }
    /// Look at no more than `scan_limit` jobs per page (at least 1).
    pub fn scan_limit(mut self, scan_limit: usize) -> Self {
        self.scan_limit = scan_limit.max(1);
        self
    }

    /// Whether this filter needs [`list_page`](crate::Backend::list_page):
    /// it searches, sorts other than by enqueue order, or starts at a cursor.
    pub fn is_keyset(&self) -> bool {
        self.search.as_deref().is_some_and(|s| !s.is_empty())
            || self.sort != JobSort::Oldest
            || self.after.is_some()
    }

    /// Whether `job` passes the queue/status/type/cancelled filters, the
    /// search, and the statuses its sort order lists (paging aside).
    pub fn matches(&self, job: &Job) -> bool {
        let in_order = match self.sort {
            JobSort::DueSoonest => job.status.is_waiting(),
            JobSort::RecentlyFinished => job.status.is_terminal() && job.completed_at.is_some(),
            _ => true,
        };
        in_order
            && crate::listing::search_needle(self.search.as_deref())
                .is_none_or(|n| crate::listing::search_hits(job, &n))
            && self.queue.as_deref().is_none_or(|q| q == job.queue_name)
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
