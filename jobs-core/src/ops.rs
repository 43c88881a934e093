//! What the operations beyond enqueue-claim-record take and return: how an
//! enqueue went, a cancellation, progress, pruning, the registry of running
//! workers, leadership and periodic schedules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JobId, JobStatus};

/// How one job of an enqueue went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Enqueued {
    /// Stored as a new job, with this id.
    Inserted(JobId),
    /// Not stored: a job with the same unique key holds it (its id).
    Duplicate(JobId),
    /// Not stored: the waiting job that holds the unique key (its id) took
    /// this one's payload and due time (debounce).
    Replaced(JobId),
}

impl Enqueued {
    /// The id of the job that now stands for this enqueue: the new one, or
    /// the one that holds the key.
    pub const fn id(self) -> JobId {
        match self {
            Enqueued::Inserted(id) | Enqueued::Duplicate(id) | Enqueued::Replaced(id) => id,
        }
    }

    /// Whether a new job was stored.
    pub const fn is_inserted(self) -> bool {
        matches!(self, Enqueued::Inserted(_))
    }

    /// Whether the enqueue was refused as a duplicate.
    pub const fn is_duplicate(self) -> bool {
        matches!(self, Enqueued::Duplicate(_))
    }

    /// Whether a waiting job was updated instead.
    pub const fn is_replaced(self) -> bool {
        matches!(self, Enqueued::Replaced(_))
    }
}

impl std::fmt::Display for Enqueued {
    /// The job's id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.id(), f)
    }
}

impl From<Enqueued> for JobId {
    fn from(e: Enqueued) -> JobId {
        e.id()
    }
}

/// Who cancels a job, and why: shown on the job (`error_message`) and in
/// the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelRequest {
    /// Who asked (a user, `cli`, `dashboard`).
    pub by: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

impl CancelRequest {
    /// A cancellation by `by`.
    pub fn by(by: impl Into<String>) -> Self {
        CancelRequest {
            by: Some(by.into()),
            reason: None,
        }
    }

    /// With a reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The job's error message once cancelled: `cancelled`, `cancelled by
    /// alice`, `cancelled by alice: duplicate order`.
    pub fn message(&self) -> String {
        let mut m = String::from("cancelled");
        if let Some(by) = &self.by {
            m.push_str(" by ");
            m.push_str(by);
        }
        if let Some(reason) = &self.reason {
            m.push_str(": ");
            m.push_str(reason);
        }
        m
    }
}

/// How far a running job has come, as its handler reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// 0 to 100, if the handler knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f32>,
    /// A small JSON value (a step name, counts…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// When it was reported (the worker's clock).
    pub at: DateTime<Utc>,
}

impl Progress {
    /// Progress at `percent` (clamped to 0..=100) and/or with `data`, now.
    pub fn new(percent: Option<f32>, data: Option<Value>) -> Self {
        Progress {
            percent: percent.map(|p| if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) }),
            data,
            at: Utc::now(),
        }
    }
}

/// Which finished jobs to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneRequest {
    /// Jobs that finished before this time.
    pub before: DateTime<Utc>,
    /// In these statuses (terminal ones only; default all three).
    pub statuses: Vec<JobStatus>,
    /// Of this queue only, if set.
    pub queue: Option<String>,
    /// At most this many in one call.
    pub limit: usize,
}

impl PruneRequest {
    /// Up to `limit` COMPLETED, FAILED or DEAD_LETTER jobs of any queue that
    /// finished before `before`.
    pub fn new(before: DateTime<Utc>, limit: usize) -> Self {
        PruneRequest {
            before,
            statuses: vec![
                JobStatus::Completed,
                JobStatus::Failed,
                JobStatus::DeadLetter,
            ],
            queue: None,
            limit,
        }
    }

    /// Only these statuses (non-terminal ones are ignored).
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = JobStatus>) -> Self {
        self.statuses = statuses.into_iter().filter(|s| s.is_terminal()).collect();
        self
    }

    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
}

/// A running worker, as it registers itself with the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker id (`locked_by` of its jobs).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The program's version, as it says.
    pub version: String,
    /// The queues it works, in order.
    pub queues: Vec<String>,
    /// How many jobs it runs at most at once.
    pub concurrency: u32,
    /// How many it runs now.
    pub running: u32,
    /// Its health (`running`, `degraded: …`).
    pub health: String,
    /// Whether it is the cluster's maintainer.
    #[serde(default)]
    pub leader: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When the backend last heard from it (set by the backend).
    pub last_seen: DateTime<Utc>,
}

impl WorkerInfo {
    /// A worker `id`, started now, with nothing else known yet.
    pub fn new(id: impl Into<String>) -> Self {
        let now = Utc::now();
        WorkerInfo {
            id: id.into(),
            host: String::new(),
            pid: std::process::id(),
            version: String::new(),
            queues: Vec::new(),
            concurrency: 0,
            running: 0,
            health: String::new(),
            leader: false,
            started_at: now,
            last_seen: now,
        }
    }
}

/// Who holds a role (the cluster's maintainer, say), and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leader {
    /// The holder's id.
    pub holder: String,
    /// When its lease on the role runs out unless renewed (backend clock).
    pub until: DateTime<Utc>,
}

impl Leader {
    /// `holder` holds the role until `until`.
    pub fn new(holder: impl Into<String>, until: DateTime<Utc>) -> Self {
        Leader {
            holder: holder.into(),
            until,
        }
    }
}

/// What the backend remembers of a periodic schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScheduleState {
    /// The schedule's name (unique).
    pub name: String,
    /// Its cron expression, for display.
    pub cron: String,
    /// Its time zone, for display.
    pub timezone: String,
    /// The last tick a job was enqueued for.
    pub last_tick: Option<DateTime<Utc>>,
    /// The job enqueued for it.
    pub last_job: Option<JobId>,
    /// The next tick.
    pub next_tick: Option<DateTime<Utc>>,
    /// When a manager last wrote this (backend clock).
    pub updated_at: DateTime<Utc>,
}

impl ScheduleState {
    /// A schedule `name` on `cron` in `timezone`, never run.
    pub fn new(
        name: impl Into<String>,
        cron: impl Into<String>,
        timezone: impl Into<String>,
    ) -> Self {
        ScheduleState {
            name: name.into(),
            cron: cron.into(),
            timezone: timezone.into(),
            last_tick: None,
            last_job: None,
            next_tick: None,
            updated_at: Utc::now(),
        }
    }
}
