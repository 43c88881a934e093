//! The framework's own error: what went wrong talking to a backend or building a manager.

use crate::{JobId, JobStatus};

/// Result with the framework's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from enqueueing, backends, connecting and building a manager. Each one
/// names the job (type and id) where there is one, and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No job with this id.
    #[error("job {0} not found")]
    NotFound(JobId),

    /// The state machine does not allow this move.
    #[error("job {id} is {from}; it cannot be {action} (only {allowed} jobs can)")]
    InvalidState {
        id: JobId,
        from: JobStatus,
        action: &'static str,
        allowed: &'static str,
    },

    /// The payload does not fit the handler registered for this job type; nothing was stored.
    #[error("invalid payload for job type `{job_type}`: {reason}")]
    InvalidPayload { job_type: String, reason: String },

    /// The job type or options are unusable; nothing was stored.
    #[error("invalid job: {0}")]
    InvalidJob(String),

    /// `connect(url)` got a URL it cannot use.
    #[error("cannot connect to `{url}`: {reason}")]
    Connect { url: String, reason: String },

    /// The backend failed (I/O, database, protocol). Usually transient.
    #[error("{backend} backend error: {message}")]
    Backend {
        backend: &'static str,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A job stored in the backend could not be read back.
    #[error("job {id} is corrupt in the {backend} backend: {reason}")]
    Corrupt {
        backend: &'static str,
        id: String,
        reason: String,
    },

    /// The manager's configuration is inconsistent.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// A backend error wrapping its cause.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let source = source.into();
        Error::Backend {
            backend,
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// Refusal of a cancel: only waiting jobs (PENDING, SCHEDULED, RETRYING) can be cancelled.
    pub fn cannot_cancel(id: JobId, from: JobStatus) -> Self {
        Error::InvalidState {
            id,
            from,
            action: "cancelled",
            allowed: "PENDING, SCHEDULED or RETRYING",
        }
    }

    /// Refusal of a requeue: only FAILED and DEAD_LETTER jobs can be requeued.
    pub fn cannot_requeue(id: JobId, from: JobStatus) -> Self {
        Error::InvalidState {
            id,
            from,
            action: "requeued",
            allowed: "FAILED or DEAD_LETTER",
        }
    }

    /// Whether retrying the same call later may succeed (backend trouble).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }
}
