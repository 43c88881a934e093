//! Throughput history: per minute and per queue, how many jobs completed,
//! failed, were dead-lettered and retried — kept by the backend from the same
//! writes that change the jobs, so it covers every worker of the cluster and
//! is there as soon as anyone asks (a dashboard opened just now shows the
//! last hour).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long backends keep throughput buckets at least (24 hours); older ones
/// are dropped when the maintainer prunes, or expire on their own.
pub const THROUGHPUT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What happened to the jobs of one queue in one minute (backend clock): how
/// many moves into each of the statuses that end an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThroughputBucket {
    /// The start of the minute (seconds `:00`, UTC).
    pub minute: DateTime<Utc>,
    /// The queue.
    pub queue: String,
    /// Jobs that became COMPLETED.
    pub completed: u64,
    /// Jobs that became FAILED: permanent failures and cancellations.
    pub failed: u64,
    /// Jobs that became DEAD_LETTER (retries exhausted).
    pub dead: u64,
    /// Failed attempts followed by a retry (jobs that became RETRYING).
    pub retried: u64,
}

impl ThroughputBucket {
    /// An empty bucket of `queue` for the minute that holds `at`.
    pub fn new(minute: DateTime<Utc>, queue: impl Into<String>) -> Self {
        ThroughputBucket {
            minute: minute_of(minute),
            queue: queue.into(),
            ..ThroughputBucket::default()
        }
    }

    /// With these counts: completed, failed, dead, retried.
    pub fn with_counts(mut self, completed: u64, failed: u64, dead: u64, retried: u64) -> Self {
        self.completed = completed;
        self.failed = failed;
        self.dead = dead;
        self.retried = retried;
        self
    }

    /// Every attempt that ended in the minute: `completed + failed + dead + retried`.
    pub fn finished(&self) -> u64 {
        self.completed + self.failed + self.dead + self.retried
    }

    /// The failed attempts among them: `failed + dead + retried`.
    pub fn failures(&self) -> u64 {
        self.failed + self.dead + self.retried
    }
}

/// The start of the minute that holds `at`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let at = Utc.with_ymd_and_hms(2026, 12, 3, 16, 38, 52).unwrap();
/// assert_eq!(jobs_core::minute_of(at), Utc.with_ymd_and_hms(2026, 12, 3, 16, 38, 0).unwrap());
/// ```
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let s = at.timestamp().div_euclid(60) * 60;
    DateTime::from_timestamp(s, 0).unwrap_or(at)
}
