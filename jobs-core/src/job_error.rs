//! `JobError`: why an attempt failed, and whether it may be retried.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error, as handlers and `on_failure` may return.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An attempt's failure. Retryable by default: return `Err(e.into())` (or use `?`)
/// for transient trouble, and [`JobError::permanent`] for an expected failure that
/// must not be retried (validation errors, business rules, a 4xx answer).
///
/// Any `std::error::Error` converts into a retryable `JobError` with `?`, which is
/// why `JobError` itself does not implement `std::error::Error` (as `anyhow::Error`).
pub struct JobError {
    permanent: bool,
    message: String,
    source: Option<BoxError>,
}

impl JobError {
    /// A failure that asks for a retry (while retries remain).
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        let source = error.into();
        JobError {
            permanent: false,
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// A failure that must not be retried: the job goes to FAILED.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        JobError {
            permanent: true,
            ..JobError::retryable(error)
        }
    }

    /// A retryable failure from a message alone.
    pub fn msg(message: impl Into<String>) -> Self {
        JobError {
            permanent: false,
            message: message.into(),
            source: None,
        }
    }

    /// Makes this failure permanent.
    pub fn into_permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// Whether a retry may follow.
    pub fn is_retryable(&self) -> bool {
        !self.permanent
    }

    /// Whether the job goes straight to FAILED.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The message a person reads.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if one was given.
    pub fn source_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// Looks for an error of type `E` inside.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.as_deref()?.downcast_ref::<E>()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("permanent", &self.permanent)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for JobError {
    fn from(error: E) -> Self {
        JobError::retryable(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("smtp down")]
    struct Smtp;

    #[test]
    fn errors_convert_as_retryable_and_keep_their_source() {
        fn run() -> Result<(), JobError> {
            Err(Smtp)?
        }
        let err = run().unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.to_string(), "smtp down");
        assert!(err.downcast_ref::<Smtp>().is_some());
        let p = JobError::permanent("amount must be positive");
        assert!(p.is_permanent());
        assert_eq!(p.message(), "amount must be positive");
    }
}
