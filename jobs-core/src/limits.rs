//! Limits across the cluster, enforced by the backend when it hands out
//! jobs: at most N running per key, at most N started per period per key,
//! one at a time in enqueue order per key, and per queue a cap on running
//! jobs and on starts.
//!
//! A job's own limits travel with it (computed from its payload at enqueue,
//! e.g. `#[job_handler(.., concurrency(by = [account_id], max = 1))]`); a
//! queue's limits are the managers' settings, sent with every claim. A job
//! that a limit holds back is not claimed at all — it stays waiting — so
//! there is no claim-then-give-back churn.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Job;

/// At most `max` jobs with `key` run at once, across every worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConcurrencyLimit {
    /// The key (a [`UniqueKey`](crate::UniqueKey) of the fields, or text of yours).
    pub key: String,
    /// How many may run at once (at least 1).
    pub max: u32,
}

impl ConcurrencyLimit {
    /// At most `max` running jobs with `key`.
    pub fn new(key: impl Into<String>, max: u32) -> Self {
        ConcurrencyLimit {
            key: key.into(),
            max,
        }
    }
}

/// At most `max` jobs with `key` start in any window of length `per`
/// (a sliding window over the start times, by the backend's clock), across
/// every worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// The key.
    pub key: String,
    /// How many may start per window (at least 1).
    pub max: u32,
    /// The window.
    #[serde(with = "millis")]
    pub per: Duration,
}

impl RateLimit {
    /// At most `max` starts of jobs with `key` per `per`.
    pub fn new(key: impl Into<String>, max: u32, per: Duration) -> Self {
        RateLimit {
            key: key.into(),
            max,
            per,
        }
    }
}

/// The limits a job is subject to, stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobLimits {
    /// At most N running at once per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencyLimit>,
    /// At most N started per period per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateLimit>,
    /// Jobs with this key run one at a time, in enqueue order (by creation
    /// time, then id): only the oldest unfinished job of the key can be
    /// claimed, and only while no other job of the key runs. A job that
    /// waits for a retry keeps its place; once it finishes (completed,
    /// failed or dead-lettered) the next one goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
}

impl JobLimits {
    /// No limits.
    pub fn none() -> Self {
        JobLimits::default()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none() && self.sequence.is_none()
    }

    /// With a concurrency limit.
    pub fn concurrency(mut self, limit: ConcurrencyLimit) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// With a rate limit.
    pub fn rate(mut self, limit: RateLimit) -> Self {
        self.rate = Some(limit);
        self
    }

    /// In a sequence.
    pub fn sequence(mut self, key: impl Into<String>) -> Self {
        self.sequence = Some(key.into());
        self
    }

    /// What is wrong with these limits, if anything.
    pub fn check(&self) -> Result<(), String> {
        let key_ok = |k: &str| !k.is_empty() && k.len() <= 255;
        if let Some(c) = &self.concurrency {
            if !key_ok(&c.key) || c.max == 0 {
                return Err(format!(
                    "a concurrency limit needs a key of 1 to 255 bytes and a max of at least 1, got {:?} / {}",
                    c.key, c.max
                ));
            }
        }
        if let Some(r) = &self.rate {
            if !key_ok(&r.key) || r.max == 0 || r.per < Duration::from_millis(1) {
                return Err(format!(
                    "a rate limit needs a key of 1 to 255 bytes, a max of at least 1 and a period of at least 1 ms, got {:?} / {} per {:?}",
                    r.key, r.max, r.per
                ));
            }
        }
        if let Some(s) = &self.sequence {
            if !key_ok(s) {
                return Err(format!("a sequence key is 1 to 255 bytes, got {s:?}"));
            }
        }
        Ok(())
    }
}

/// A queue's limits, as a manager is configured with them
/// (`.queue_limit("emails", QueueLimit::new().global(16))`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueLimit {
    /// At most this many of the queue's jobs run at once across every
    /// worker (enforced by the backend).
    pub global: Option<u32>,
    /// At most this many run at once in this manager.
    pub local: Option<u32>,
    /// At most `.0` of the queue's jobs start per `.1`, across every worker.
    pub rate: Option<(u32, Duration)>,
}

impl QueueLimit {
    /// No limit yet.
    pub fn new() -> Self {
        QueueLimit::default()
    }

    /// At most `n` running across the cluster.
    pub fn global(mut self, n: u32) -> Self {
        self.global = Some(n);
        self
    }

    /// At most `n` running in this manager.
    pub fn local(mut self, n: u32) -> Self {
        self.local = Some(n);
        self
    }

    /// At most `max` started per `per` across the cluster.
    pub fn rate(mut self, max: u32, per: Duration) -> Self {
        self.rate = Some((max, per));
        self
    }
}

/// A queue's limits as a claim carries them to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimLimit {
    /// The queue.
    pub queue: String,
    /// At most this many of its jobs RUNNING across the cluster after the
    /// claim (those running already count).
    pub global: Option<u32>,
    /// At most `.0` of its jobs started (claimed) in any window `.1`; the
    /// starts are logged under [`queue_rate_key`] alongside jobs' own keys.
    pub rate: Option<(u32, Duration)>,
    /// At most this many of its jobs in this claim (the manager's local cap).
    pub take: Option<u32>,
    /// The claimer's jobs of this queue whose attempts have ended and whose
    /// outcomes are on their way to the store: still RUNNING there, but no
    /// longer running anywhere. The backend does not count those still held
    /// under these leases against `global`, so a worker can claim for a slot
    /// the moment its handler returns, while the outcome is being written
    /// (with a global cap equal to the concurrency, waiting for the write
    /// would otherwise put a round trip between every job and the next).
    /// Counting them anyway is correct, only slower.
    pub recording: Vec<crate::backend::Fence>,
}

impl ClaimLimit {
    /// No limit on `queue` yet.
    pub fn new(queue: impl Into<String>) -> Self {
        ClaimLimit {
            queue: queue.into(),
            global: None,
            rate: None,
            take: None,
            recording: Vec::new(),
        }
    }

    /// At most `n` running across the cluster.
    pub fn global(mut self, n: u32) -> Self {
        self.global = Some(n);
        self
    }

    /// At most `max` starts per `per`.
    pub fn rate(mut self, max: u32, per: Duration) -> Self {
        self.rate = Some((max, per));
        self
    }

    /// At most `n` in this claim.
    pub fn take(mut self, n: u32) -> Self {
        self.take = Some(n);
        self
    }

    /// Jobs whose outcomes are being recorded (see [`ClaimLimit::recording`]).
    pub fn recording(mut self, fences: Vec<crate::backend::Fence>) -> Self {
        self.recording = fences;
        self
    }
}

/// The key of a job's limit derived from its type and some payload fields,
/// as `#[job_handler(.., concurrency(by = [account_id], max = 1))]` makes
/// it: `sync.account(account_id=42)` (the job type alone with no fields), or,
/// past 255 bytes, the type and a UUID of the values.
pub fn limit_key(job_type: &str, fields: &[(&str, serde_json::Value)]) -> String {
    if fields.is_empty() {
        return job_type.to_owned();
    }
    let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let key = format!("{job_type}({})", parts.join(","));
    if key.len() <= 255 {
        return key;
    }
    let mut k = crate::UniqueKey::new(job_type);
    for (n, v) in fields {
        k = k.field(n, v);
    }
    format!("{job_type}#{}", k.finish())
}

/// The key under which a queue's starts are logged for its rate limit.
pub fn queue_rate_key(queue: &str) -> String {
    format!("queue:{queue}")
}

/// What a claim handed out.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Claimed {
    /// The jobs, now RUNNING under a lease.
    pub jobs: Vec<Job>,
    /// Whether a due job was held back by a limit (so the manager asks
    /// again soon: a window moves on, a slot frees up).
    pub limited: bool,
}

impl Claimed {
    /// `jobs`, none held back.
    pub fn new(jobs: Vec<Job>) -> Self {
        Claimed {
            jobs,
            limited: false,
        }
    }

    /// `jobs`, and whether a limit held some back.
    pub fn limited(jobs: Vec<Job>, limited: bool) -> Self {
        Claimed { jobs, limited }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked() {
        assert!(JobLimits::none().check().is_ok());
        assert!(JobLimits::none()
            .concurrency(ConcurrencyLimit::new("a", 0))
            .check()
            .is_err());
        assert!(JobLimits::none()
            .rate(RateLimit::new("a", 5, Duration::ZERO))
            .check()
            .is_err());
        assert!(JobLimits::none().sequence("").check().is_err());
        let ok = JobLimits::none()
            .concurrency(ConcurrencyLimit::new("acct-1", 1))
            .rate(RateLimit::new("tenant-9", 100, Duration::from_secs(60)))
            .sequence("acct-1");
        assert!(ok.check().is_ok());
        let json = serde_json::to_value(&ok).unwrap();
        assert_eq!(json["rate"]["per"], 60_000);
        assert_eq!(serde_json::from_value::<JobLimits>(json).unwrap(), ok);
    }
}
