//! The framework's own error: what went wrong talking to a backend or building a manager.

use std::error::Error as StdError;
use std::fmt;

use crate::{JobId, JobStatus};

/// Result with the framework's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from enqueueing, backends, connecting and building a manager. Each one
/// names the job (type and id) where there is one, and says what to do.
///
/// Match on the variant to react to a kind of failure; [`Error::is_transient`]
/// says whether the same call may succeed if retried later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No job with this id.
    #[error("job {0} not found")]
    NotFound(JobId),

    /// The state machine does not allow this move.
    #[error("job {id} is {from}; it cannot be {action} (only {allowed} jobs can)")]
    InvalidState {
        /// The job.
        id: JobId,
        /// Its status when the move was refused.
        from: JobStatus,
        /// What was asked (`"cancelled"`, `"requeued"`).
        action: &'static str,
        /// The statuses from which the move is allowed.
        allowed: &'static str,
    },

    /// The payload does not fit the handler registered for this job type; nothing was stored.
    #[error("invalid payload for job type `{job_type}`: {reason}")]
    InvalidPayload {
        /// The job type the payload was meant for.
        job_type: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The job type or options are unusable; nothing was stored.
    #[error("invalid job: {0}")]
    InvalidJob(String),

    /// A job with this id already exists (ids are chosen by the producer, see
    /// `NewJob::id`); nothing of the batch was stored.
    #[error(
        "a job with id {0} already exists (or the id repeats in one batch); nothing was stored"
    )]
    DuplicateId(JobId),

    /// A job cannot go back to waiting because another job holds its unique
    /// key now (a requeue of a unique job whose key was taken meanwhile).
    #[error("job {id} cannot wait again: job {holder} holds its unique key now")]
    UniqueKeyTaken {
        /// The job that was to be requeued.
        id: JobId,
        /// The job holding the key.
        holder: JobId,
    },

    /// `connect(url)` got a URL it cannot use. The URL is shown without its password.
    #[error("cannot connect to `{url}`: {reason}")]
    Connect {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The backend failed; [`BackendError::kind`] says how.
    #[error(transparent)]
    Backend(#[from] BackendError),

    /// A job stored in the backend could not be read back.
    #[error("job {id} is corrupt in the {backend} backend: {reason}")]
    Corrupt {
        /// The backend's name.
        backend: &'static str,
        /// The job's id as stored (it may not even parse as an id).
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The backend does not offer this capability.
    #[error("the {backend} backend does not support {feature}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// What was asked of it.
        feature: &'static str,
    },

    /// The manager's configuration is inconsistent.
    #[error("{0}")]
    Config(String),

    /// A job list was asked for something it cannot do: a malformed cursor,
    /// a cursor of another order, a cursor together with an offset.
    #[error("invalid job list request: {0}")]
    InvalidFilter(String),
}

impl Error {
    /// A backend error of `kind` wrapping its cause (a driver's error, usually).
    pub fn backend(
        backend: &'static str,
        kind: BackendErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Error::Backend(BackendError::new(backend, kind, source))
    }

    /// A backend error of `kind` described by a message alone.
    pub fn backend_msg(
        backend: &'static str,
        kind: BackendErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Error::Backend(BackendError::msg(backend, kind, message))
    }

    /// A `connect` refusal; the password in `url`, if any, is never shown.
    pub fn connect(url: &str, reason: impl Into<String>) -> Self {
        Error::Connect {
            url: crate::backend::redact_url(url),
            reason: reason.into(),
        }
    }

    /// Refusal of a cancel: only waiting and running jobs can be cancelled.
    pub fn cannot_cancel(id: JobId, from: JobStatus) -> Self {
        Error::InvalidState {
            id,
            from,
            action: "cancelled",
            allowed: "PENDING, SCHEDULED, RETRYING or RUNNING",
        }
    }

    /// Refusal of a delete: a running job cannot be deleted (cancel it first).
    pub fn cannot_delete(id: JobId, from: JobStatus) -> Self {
        Error::InvalidState {
            id,
            from,
            action: "deleted",
            allowed: "any status but RUNNING (cancel a running job first)",
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

    /// Whether retrying the same call later may succeed (the backend was
    /// unavailable, or the failure was transient).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend(e) if e.kind().is_transient())
    }

    /// The backend error inside, if this is one.
    pub fn as_backend(&self) -> Option<&BackendError> {
        match self {
            Error::Backend(e) => Some(e),
            _ => None,
        }
    }
}

/// What kind of trouble a backend had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The backend could not be reached: connection refused or lost, a
    /// timeout, no free connection. Retrying later may succeed.
    Unavailable,
    /// The backend refused this time but may accept the same call again:
    /// a serialization failure, a deadlock, a lock timeout.
    Transient,
    /// The backend cannot store a value as given (too large, a character it
    /// does not accept, out of range). Retrying the same call fails again.
    Data,
    /// The call conflicts with what is stored (a unique constraint).
    Conflict,
    /// Anything else; treated as permanent.
    Other,
}

impl BackendErrorKind {
    /// Unavailable and Transient: the same call may succeed later.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            BackendErrorKind::Unavailable | BackendErrorKind::Transient
        )
    }

    const fn describe(self) -> &'static str {
        match self {
            BackendErrorKind::Unavailable => "unavailable",
            BackendErrorKind::Transient => "transient error",
            BackendErrorKind::Data => "cannot store the data",
            BackendErrorKind::Conflict => "conflict",
            BackendErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failure of a backend, with its kind and the driver's error, if any.
///
/// Like `std::io::Error`, it shows the driver's message as its own and
/// [`source`](StdError::source) returns what lies *under* the driver's error,
/// so a chain of causes never prints the same text twice. The driver's error
/// itself is reachable with [`get_ref`](BackendError::get_ref).
pub struct BackendError {
    backend: &'static str,
    kind: BackendErrorKind,
    message: String,
    inner: Option<Box<dyn StdError + Send + Sync>>,
}

impl BackendError {
    /// An error of `kind` wrapping the driver's error.
    pub fn new(
        backend: &'static str,
        kind: BackendErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        let inner = source.into();
        BackendError {
            backend,
            kind,
            message: inner.to_string(),
            inner: Some(inner),
        }
    }

    /// An error of `kind` described by a message alone.
    pub fn msg(backend: &'static str, kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            backend,
            kind,
            message: message.into(),
            inner: None,
        }
    }

    /// The backend's name (`"postgres"`, ...).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// What kind of trouble it was.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The message, as shown.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The driver's error, if one was wrapped (downcast it to e.g. `sqlx::Error`).
    pub fn get_ref(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.inner.as_deref()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} backend {}: {}",
            self.backend, self.kind, self.message
        )
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("backend", &self.backend)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // The driver's own message is ours already; its causes are not.
        self.inner.as_deref()?.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Driver(#[source] std::io::Error);

    #[test]
    fn a_backend_error_never_prints_its_message_twice() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::backend("postgres", BackendErrorKind::Unavailable, Driver(io));
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "postgres backend unavailable: query failed"
        );
        let mut chain = Vec::new();
        let mut cur: Option<&dyn StdError> = StdError::source(&err);
        while let Some(e) = cur {
            chain.push(e.to_string());
            cur = e.source();
        }
        assert_eq!(chain, ["refused"]);
        let inner = err.as_backend().unwrap().get_ref().unwrap();
        assert!(inner.downcast_ref::<Driver>().is_some());
    }

    #[test]
    fn kinds_say_whether_to_retry() {
        let data = Error::backend_msg("postgres", BackendErrorKind::Data, "value too long");
        assert!(!data.is_transient());
        assert_eq!(
            data.to_string(),
            "postgres backend cannot store the data: value too long"
        );
        assert!(!Error::DuplicateId(JobId::new()).is_transient());
    }

    #[test]
    fn connect_errors_hide_the_password() {
        let err = Error::connect("postgres://app:s3cret@db/app", "refused");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("app:***@db"), "{err}");
    }
}
