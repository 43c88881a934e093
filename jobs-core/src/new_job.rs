//! `NewJob`: a job about to be enqueued, with its options.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{Error, JobId};

/// The queue a job goes to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";
/// Retries after the first attempt unless told otherwise.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Per-type defaults for jobs enqueued through the typed API (set by `#[job_handler]`).
/// `None` leaves the framework's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobOptions {
    /// The queue jobs of this type go to.
    pub queue: Option<String>,
    /// Their priority (higher runs first).
    pub priority: Option<i32>,
    /// Retries after the first attempt.
    pub max_retries: Option<u32>,
}

impl JobOptions {
    /// Jobs of this type go to `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Jobs of this type run at `priority` (higher first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Jobs of this type are retried up to `max_retries` times.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }
}

/// A job to enqueue: type, payload and options. The id is chosen up front, so
/// the caller knows it before the job is stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewJob {
    /// The job's id, chosen here (a fresh UUID v7 unless set).
    pub id: JobId,
    /// Which handler runs it.
    pub job_type: String,
    /// The handler's input.
    pub payload: Value,
    /// The queue it goes to (default `"default"`).
    pub queue_name: String,
    /// Higher runs first within a queue (default 0).
    pub priority: i32,
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// `None`: due now (the backend's clock decides what "now" is).
    pub run_at: Option<DateTime<Utc>>,
    /// Free-form data that travels with the job.
    pub metadata: Map<String, Value>,
}

impl NewJob {
    /// A job of `job_type` carrying `payload`, on the default queue with default options.
    pub fn new(job_type: impl Into<String>, payload: Value) -> Self {
        NewJob {
            id: JobId::new(),
            job_type: job_type.into(),
            payload,
            queue_name: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            max_retries: DEFAULT_MAX_RETRIES,
            run_at: None,
            metadata: Map::new(),
        }
    }

    /// Applies per-type defaults (only those that are set).
    pub fn with_options(mut self, options: &JobOptions) -> Self {
        if let Some(q) = &options.queue {
            self.queue_name.clone_from(q);
        }
        if let Some(p) = options.priority {
            self.priority = p;
        }
        if let Some(m) = options.max_retries {
            self.max_retries = m;
        }
        self
    }

    /// The queue the job goes to.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue_name = queue.into();
        self
    }

    /// Uses `id` instead of a fresh one (an enqueue with an id that exists fails
    /// with [`Error::DuplicateId`]).
    pub fn id(mut self, id: JobId) -> Self {
        self.id = id;
        self
    }

    /// Higher runs first within a queue.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Retries after the first attempt.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Not before `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Not before `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        self.run_at = Some(Utc::now() + delay);
        self
    }

    /// Adds one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Checks what every backend needs; an error here means nothing was stored.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str, v: &str| {
            Error::InvalidJob(format!(
                "{what} {v:?} of job {} must be 1 to 255 characters without whitespace or control characters",
                self.id
            ))
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if !ok(&self.job_type) {
            return Err(bad("job type", &self.job_type));
        }
        if !ok(&self.queue_name) {
            return Err(bad("queue name", &self.queue_name));
        }
        Ok(())
    }
}
