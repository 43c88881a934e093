//! The job record, its id, and the errors of past attempts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::backend::LeaseToken;
use crate::{JobStatus, Timeout};

/// A job's identity: a UUID v7, so ids sort by creation time. Use it as the
/// idempotency key of a handler's side effects.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// Wraps an existing UUID (as read back from a backend).
    pub const fn from_uuid(uuid: Uuid) -> Self {
        JobId(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(JobId)
    }
}

impl From<Uuid> for JobId {
    fn from(uuid: Uuid) -> Self {
        JobId(uuid)
    }
}

/// What went wrong in one failed attempt; a job keeps the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttemptError {
    /// The job's `attempt` counter when it failed (1 for the first run).
    pub attempt: u32,
    /// The job's `retry_count` during that attempt.
    pub retry_count: u32,
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
    /// The error, as a person can read it.
    pub message: String,
    /// Whether the failure asked for a retry.
    pub retryable: bool,
    /// The worker that ran the attempt, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl AttemptError {
    /// The failure of attempt `attempt` (made at `retry_count`), recorded at `at`.
    pub fn new(
        attempt: u32,
        retry_count: u32,
        at: DateTime<Utc>,
        message: impl Into<String>,
        retryable: bool,
        worker: Option<String>,
    ) -> Self {
        AttemptError {
            attempt,
            retry_count,
            at,
            message: message.into(),
            retryable,
            worker,
        }
    }
}

/// A background job: what to run (`job_type` + `payload`), where (`queue_name`),
/// when (`run_at`, `priority`), and what happened to it so far.
///
/// Backends build one with [`Job::new`] and set the fields they read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// Its identity, chosen at enqueue.
    pub id: JobId,
    /// The queue it is routed by.
    pub queue_name: String,
    /// Which handler runs it (`"email.send"`).
    pub job_type: String,
    /// The handler's input, as JSON.
    pub payload: Value,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Higher runs first within a queue.
    pub priority: i32,
    /// Retries already made: 0 during the first attempt.
    pub retry_count: u32,
    /// Retries allowed after the first attempt; a job runs at most `max_retries + 1` times.
    pub max_retries: u32,
    /// The earliest time the job may be claimed (also readable as `scheduled_at`).
    #[serde(alias = "scheduled_at")]
    pub run_at: DateTime<Utc>,
    /// When it was enqueued (the backend's clock).
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached COMPLETED, FAILED or DEAD_LETTER.
    pub completed_at: Option<DateTime<Utc>>,
    /// The latest attempt's error.
    pub error_message: Option<String>,
    /// The last [`MAX_ERROR_HISTORY`] failed attempts, oldest first
    /// ([`error_count`](Job::error_count) counts them all).
    #[serde(default)]
    pub errors: Vec<AttemptError>,
    /// How many attempts failed in all, including those no longer in `errors`.
    #[serde(default)]
    pub error_count: u32,
    /// What the handler returned: on success, and with a failed `JobResult`
    /// that carried data.
    pub result_data: Option<Value>,
    /// Free-form data that travels with the job.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The worker holding the lease while RUNNING.
    pub locked_by: Option<String>,
    /// When the current lease runs out unless heartbeated.
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times the job has been claimed (1 during its first run).
    pub attempt: u32,
    /// The random token of the current lease while RUNNING: outcomes and
    /// heartbeats carry it, and one under any other token is refused. No later
    /// claim reuses it, even one that gets the same `attempt` after a database
    /// crash undid a claim.
    #[serde(default)]
    pub lease_token: Option<LeaseToken>,
    /// When an operator cancelled the job (it is then FAILED, with the reason
    /// as its error): tells a cancelled job apart from one that failed.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// This job's own time limit per attempt, over its handler's and the
    /// manager's (`None`: theirs).
    #[serde(default)]
    pub timeout: Option<Timeout>,
    /// How many times a handler snoozed the job ("not now").
    #[serde(default)]
    pub snoozes: u32,
    /// The latest progress its handler reported, while it runs and after.
    #[serde(default)]
    pub progress: Option<crate::Progress>,
    /// The unique key it holds, as stored (with its period's bucket).
    #[serde(default)]
    pub unique_key: Option<String>,
    /// The limits it is subject to (per-key concurrency and rate, sequence).
    #[serde(default)]
    pub limits: crate::JobLimits,
    /// Set by the runtime for `on_failure`: no retry follows this failure.
    #[serde(skip)]
    #[doc(hidden)]
    pub no_retry_follows: bool,
}

/// How many failed attempts a job keeps in [`Job::errors`]; older ones are
/// dropped (and still counted in [`Job::error_count`]), so a job with a huge
/// retry budget does not carry megabytes of history on every claim.
pub const MAX_ERROR_HISTORY: usize = 20;

impl Job {
    /// A PENDING job of `job_type` carrying `payload`, on the default queue,
    /// enqueued and due now, never claimed. Backends decoding a stored job
    /// start from this and set every field they read.
    pub fn new(id: JobId, job_type: impl Into<String>, payload: Value) -> Job {
        let now = Utc::now();
        Job {
            id,
            queue_name: crate::DEFAULT_QUEUE.to_owned(),
            job_type: job_type.into(),
            payload,
            status: JobStatus::Pending,
            priority: 0,
            retry_count: 0,
            max_retries: crate::DEFAULT_MAX_RETRIES,
            run_at: now,
            created_at: now,
            started_at: None,
            completed_at: None,
            error_message: None,
            errors: Vec::new(),
            result_data: None,
            metadata: Map::new(),
            locked_by: None,
            lease_until: None,
            attempt: 0,
            lease_token: None,
            cancelled_at: None,
            timeout: None,
            snoozes: 0,
            progress: None,
            unique_key: None,
            limits: crate::JobLimits::default(),
            error_count: 0,
            no_retry_follows: false,
        }
    }

    /// The job as its first attempt sees it (RUNNING, attempt 1, no retries
    /// yet), without a queue: for calling handlers in tests.
    ///
    /// ```
    /// use jobs_core::{Job, JobContext, NewJob, Services};
    ///
    /// let job = Job::from_new(NewJob::new("email.send", serde_json::json!({"to": "a@b.c"})));
    /// let ctx = JobContext::for_job(job, Services::new());
    /// assert_eq!((ctx.attempt(), ctx.retry_count()), (1, 0));
    /// ```
    pub fn from_new(new: crate::NewJob) -> Job {
        let now = Utc::now();
        Job {
            id: new.id,
            queue_name: new.queue_name,
            job_type: new.job_type,
            payload: new.payload,
            status: JobStatus::Running,
            priority: new.priority,
            retry_count: 0,
            max_retries: new.max_retries,
            run_at: new.run_at.unwrap_or(now),
            created_at: now,
            started_at: Some(now),
            completed_at: None,
            error_message: None,
            errors: Vec::new(),
            result_data: None,
            metadata: new.metadata,
            locked_by: None,
            lease_until: None,
            attempt: 1,
            lease_token: None,
            cancelled_at: None,
            timeout: new.timeout,
            snoozes: 0,
            progress: None,
            unique_key: None,
            limits: new.limits,
            error_count: 0,
            no_retry_follows: false,
        }
    }

    /// Another name for `run_at`.
    pub fn scheduled_at(&self) -> DateTime<Utc> {
        self.run_at
    }

    /// Whether no retry follows this attempt.
    ///
    /// In `on_failure` it is exact: true when the failure was permanent (a
    /// failed `JobResult`, `JobError::permanent`, a bad payload) and when the
    /// retries are exhausted — while `retry_count` stays truthful (0 after a
    /// first attempt). During `handle` it can only say whether this is the
    /// last attempt the retry budget allows.
    pub fn is_last_attempt(&self) -> bool {
        self.no_retry_follows || self.retry_count >= self.max_retries
    }

    /// The fence of the current lease, for outcomes and heartbeats.
    pub fn fence(&self) -> crate::backend::Fence {
        crate::backend::Fence::new(self.id, self.attempt, self.lease_token.unwrap_or_default())
    }

    /// Appends a failed attempt to the history, keeping the last
    /// [`MAX_ERROR_HISTORY`] and counting it in [`error_count`](Job::error_count),
    /// and makes it the job's `error_message` (for backends).
    pub fn push_error(&mut self, error: AttemptError) {
        self.error_message = Some(error.message.clone());
        self.errors.push(error);
        if self.errors.len() > MAX_ERROR_HISTORY {
            let extra = self.errors.len() - MAX_ERROR_HISTORY;
            self.errors.drain(..extra);
        }
        self.error_count = self.error_count.saturating_add(1);
    }

    /// Deserializes the payload into `T`; the error names the job type and the field.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::JobError> {
        crate::payload::decode_payload(&self.job_type, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_parse() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
    }

    #[test]
    fn job_round_trips_through_serde() {
        let now = Utc::now();
        let job = Job {
            id: JobId::new(),
            queue_name: "emails".into(),
            job_type: "email.send".into(),
            payload: serde_json::json!({"to": "ü@example.com", "nested": {"a": [1, 2]}}),
            status: JobStatus::Retrying,
            priority: 5,
            retry_count: 1,
            max_retries: 3,
            run_at: now,
            created_at: now,
            started_at: Some(now),
            completed_at: None,
            error_message: Some("smtp down".into()),
            errors: vec![AttemptError {
                attempt: 1,
                retry_count: 0,
                at: now,
                message: "smtp down".into(),
                retryable: true,
                worker: Some("w1".into()),
            }],
            result_data: None,
            metadata: Map::from_iter([("tenant".to_string(), Value::from(7))]),
            locked_by: None,
            lease_until: None,
            attempt: 1,
            lease_token: Some(LeaseToken::from_u64(42)),
            cancelled_at: Some(now),
            timeout: Some(Timeout::Never),
            snoozes: 2,
            limits: crate::JobLimits::none().sequence("acct-1"),
            progress: Some(crate::Progress::new(Some(50.0), None)),
            unique_key: Some("k:1".into()),
            error_count: 1,
            no_retry_follows: false,
        };
        let json = serde_json::to_string(&job).unwrap();
        let back: Job = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job);
    }

    #[test]
    fn the_error_history_keeps_the_last_entries_and_counts_all() {
        let mut job = Job::new(JobId::new(), "t", Value::Null);
        for i in 0..(MAX_ERROR_HISTORY as u32 + 5) {
            job.push_error(AttemptError::new(
                i + 1,
                i,
                Utc::now(),
                format!("e{i}"),
                true,
                None,
            ));
        }
        assert_eq!(job.errors.len(), MAX_ERROR_HISTORY);
        assert_eq!(job.error_count, MAX_ERROR_HISTORY as u32 + 5);
        assert_eq!(job.errors[0].message, "e5");
        assert_eq!(job.error_message.as_deref(), Some("e24"));
    }
}
