//! Bulk requeue: every FAILED or DEAD_LETTER job of a queue (or matching a
//! filter) back to PENDING, in batches the backend applies atomically.

use serde::{Deserialize, Serialize};

use crate::{Error, JobId, JobStatus, Result};

/// Which jobs [`Backend::requeue_many`](crate::Backend::requeue_many) puts
/// back: those in `status` (FAILED or DEAD_LETTER), of `queue` and `job_type`
/// when set, at most `limit` of them, in enqueue order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequeueFilter {
    /// FAILED or DEAD_LETTER.
    pub status: JobStatus,
    /// Of this queue only, if set.
    pub queue: Option<String>,
    /// Of this job type only, if set.
    pub job_type: Option<String>,
    /// At most this many jobs are requeued (those skipped do not count).
    pub limit: usize,
}

impl RequeueFilter {
    /// Every job in `status` (FAILED or DEAD_LETTER), of any queue and type.
    pub fn new(status: JobStatus) -> Self {
        RequeueFilter {
            status,
            queue: None,
            job_type: None,
            limit: usize::MAX,
        }
    }

    /// Every DEAD_LETTER job of `queue`.
    pub fn dead_in(queue: impl Into<String>) -> Self {
        RequeueFilter::new(JobStatus::DeadLetter).queue(queue)
    }

    /// Of `queue` only.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Of `job_type` only.
    pub fn job_type(mut self, job_type: impl Into<String>) -> Self {
        self.job_type = Some(job_type.into());
        self
    }

    /// At most `n` jobs.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Refuses a status that cannot be requeued; what backends check first.
    pub fn validate(&self) -> Result<()> {
        match self.status {
            JobStatus::Failed | JobStatus::DeadLetter => Ok(()),
            other => Err(Error::InvalidJob(format!(
                "only FAILED or DEAD_LETTER jobs can be requeued, not {other}; \
                 nothing was requeued"
            ))),
        }
    }

    /// A description for logs and the audit trail: `DEAD_LETTER jobs of
    /// queue emails, type email.send`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} jobs", self.status);
        if let Some(q) = &self.queue {
            s.push_str(&format!(" of queue {q}"));
        }
        if let Some(t) = &self.job_type {
            s.push_str(&format!(
                "{} type {t}",
                if self.queue.is_some() { "," } else { " of" }
            ));
        }
        if self.limit != usize::MAX {
            s.push_str(&format!(" (at most {})", self.limit));
        }
        s
    }

    /// Whether `job` is one this filter takes (for backends that test jobs
    /// one by one in memory or in a script).
    pub fn matches(&self, job: &crate::Job) -> bool {
        job.status == self.status
            && self.queue.as_deref().is_none_or(|q| q == job.queue_name)
            && self.job_type.as_deref().is_none_or(|t| t == job.job_type)
    }
}

/// How a bulk requeue went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequeueReport {
    /// How many jobs are PENDING again.
    pub requeued: u64,
    /// Jobs left as they were because another job holds their unique key
    /// now (a single requeue of them fails with
    /// [`Error::UniqueKeyTaken`]).
    pub skipped_unique: Vec<JobId>,
}

impl RequeueReport {
    /// A summary for people and the audit trail: `12 jobs requeued, 1
    /// skipped (unique key taken)`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} jobs requeued", self.requeued);
        if !self.skipped_unique.is_empty() {
            s.push_str(&format!(
                ", {} skipped (unique key taken)",
                self.skipped_unique.len()
            ));
        }
        s
    }
}
