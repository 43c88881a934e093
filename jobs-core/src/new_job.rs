//! `NewJob`: a job about to be enqueued, with its options.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{ConcurrencyLimit, Error, JobId, JobLimits, RateLimit, Timeout, Uniqueness};

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
    /// Due at this time (wins over `delay`).
    pub run_at: Option<DateTime<Utc>>,
    /// Due this long after the backend stores it, by the backend's clock (so a
    /// producer's clock never decides). With neither: due now.
    pub delay: Option<Duration>,
    /// The job's own time limit per attempt (`None`: its handler's, or the
    /// manager's).
    pub timeout: Option<Timeout>,
    /// Free-form data that travels with the job.
    pub metadata: Map<String, Value>,
    /// Unique jobs: a key at most one job holds at a time (see [`Uniqueness`]).
    pub unique: Option<Uniqueness>,
    /// Limits across the cluster: per-key concurrency and rate, sequences
    /// (see [`JobLimits`]).
    pub limits: JobLimits,
}

/// The furthest in the future a job can be scheduled: longer delays are cut to
/// it (about 100 years), so time arithmetic never overflows anywhere.
pub const MAX_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

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
            delay: None,
            timeout: None,
            unique: None,
            limits: JobLimits::default(),
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
        self.delay = None;
        self
    }

    /// Not before `delay` from when the backend stores it (by the backend's
    /// clock); at most [`MAX_DELAY`].
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay.min(MAX_DELAY));
        self.run_at = None;
        self
    }

    /// This job's own time limit per attempt, over its handler's and the
    /// manager's ([`Timeout::Never`] for none).
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = Some(timeout.into());
        self
    }

    /// Subjects the job to `limits` (replacing any it had).
    pub fn limits(mut self, limits: JobLimits) -> Self {
        self.limits = limits;
        self
    }

    /// At most `max` jobs with `key` run at once, across every worker.
    pub fn concurrency(mut self, key: impl Into<String>, max: u32) -> Self {
        self.limits.concurrency = Some(ConcurrencyLimit::new(key, max));
        self
    }

    /// At most `max` jobs with `key` start per `per`, across every worker.
    pub fn rate_limit(mut self, key: impl Into<String>, max: u32, per: Duration) -> Self {
        self.limits.rate = Some(RateLimit::new(key, max, per));
        self
    }

    /// Jobs with `key` run one at a time, in enqueue order.
    pub fn sequence(mut self, key: impl Into<String>) -> Self {
        self.limits.sequence = Some(key.into());
        self
    }

    /// Makes the job unique as `unique` says.
    pub fn unique(mut self, unique: Uniqueness) -> Self {
        self.unique = Some(unique);
        self
    }

    /// When the job is due, given the backend's `now`: `run_at`, or `now +
    /// delay` (saturating), or `now`. For backends.
    pub fn due_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match (self.run_at, self.delay) {
            (Some(at), _) => at,
            (None, Some(delay)) => add_saturating(now, delay),
            (None, None) => now,
        }
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
        // Not every backend can store a NUL (PostgreSQL's jsonb cannot), so
        // every backend refuses one alike, before anything is stored.
        let nul = |what: &str, path: String| Error::InvalidPayload {
            job_type: self.job_type.clone(),
            reason: format!(
                "the {what} holds a NUL character (`\\u0000`) at `{path}`, which not every \
                 backend can store; remove it or encode the data (e.g. base64)"
            ),
        };
        if let Some(path) = find_nul(&self.payload) {
            return Err(nul("payload", path));
        }
        if let Some(path) = self
            .metadata
            .iter()
            .find_map(|(k, v)| find_nul_in(k, v).map(|p| format!("{k}{p}")))
        {
            return Err(nul("metadata", path));
        }
        self.limits
            .check()
            .map_err(|why| Error::InvalidJob(format!("job {}: {why}", self.id)))?;
        Ok(())
    }
}

/// `at + d`, saturating at the latest time chrono can represent.
pub fn add_saturating(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d.min(MAX_DELAY))
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - d`, saturating at the earliest representable time.
pub fn sub_saturating(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d.min(MAX_DELAY))
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The path of the first NUL character in a string or key of `v`, if any.
fn find_nul(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(".".to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item).map(|p| join(&i.to_string(), &p))),
        Value::Object(map) => map.iter().find_map(|(k, v)| find_nul_in(k, v)),
        _ => None,
    }
}

fn find_nul_in(key: &str, v: &Value) -> Option<String> {
    if key.contains('\0') {
        return Some(key.escape_default().to_string());
    }
    find_nul(v).map(|p| join(key, &p))
}

fn join(head: &str, rest: &str) -> String {
    if rest == "." {
        head.to_owned()
    } else {
        format!("{head}.{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        let err = NewJob::new("t", json!({"a": [1, {"b": "x\u{0}y"}]}))
            .validate()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPayload { .. }), "{err}");
        assert!(err.to_string().contains("`a.1.b`"), "{err}");
        assert!(!err.is_transient());
        assert!(NewJob::new("t", json!({"k\u{0}": 1})).validate().is_err());
        assert!(NewJob::new("t", json!("\u{0}")).validate().is_err());
        assert!(NewJob::new("t", json!({}))
            .metadata("m", "a\u{0}")
            .validate()
            .is_err());
        assert!(NewJob::new("t", json!({"ok": "ü ✓"})).validate().is_ok());
    }

    #[test]
    fn delays_saturate_and_are_resolved_against_the_backends_now() {
        let now = Utc::now();
        let job = NewJob::new("t", json!({})).delay(Duration::MAX);
        assert_eq!(job.delay, Some(MAX_DELAY));
        assert!(job.due_at(now) > now + chrono::Duration::days(365 * 99));
        let soon = NewJob::new("t", json!({})).delay(Duration::from_secs(5));
        assert_eq!(soon.due_at(now), now + chrono::Duration::seconds(5));
        assert_eq!(NewJob::new("t", json!({})).due_at(now), now);
        assert_eq!(
            add_saturating(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
