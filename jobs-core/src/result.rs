//! `JobResult`: what a handler reports back.

use serde::Serialize;
use serde_json::Value;

use crate::JobError;

/// The outcome a handler returns: a success flag, data to store,
/// and for a failure the error. A failed `JobResult` is an *expected* failure:
/// the job goes to FAILED without retry.
#[derive(Debug)]
#[non_exhaustive]
pub struct JobResult {
    /// Whether the attempt succeeded.
    pub success: bool,
    /// What to store as the job's `result_data`, with either outcome.
    pub result_data: Option<Value>,
    /// Why it failed, for a failure.
    pub error: Option<JobError>,
}

impl JobResult {
    /// Success with nothing to store.
    pub fn success() -> Self {
        JobResult {
            success: true,
            result_data: None,
            error: None,
        }
    }

    /// Success storing `data` as the job's `result_data`.
    pub fn with_data(data: Value) -> Self {
        JobResult {
            success: true,
            result_data: Some(data),
            error: None,
        }
    }

    /// Success storing any serializable value (a serialization failure becomes
    /// a string describing it, so a result never loses the job).
    pub fn with(data: &impl Serialize) -> Self {
        match serde_json::to_value(data) {
            Ok(v) => JobResult::with_data(v),
            Err(e) => JobResult::with_data(Value::String(format!(
                "<result could not be serialized: {e}>"
            ))),
        }
    }

    /// An expected failure: no retry.
    pub fn failure(error: impl Into<JobError>) -> Self {
        JobResult {
            success: false,
            result_data: None,
            error: Some(error.into()),
        }
    }

    /// Adds data to store alongside either outcome.
    pub fn data(mut self, data: Value) -> Self {
        self.result_data = Some(data);
        self
    }
}

/// What a handler function may return; `#[job_handler]` turns it into the
/// outcome of the attempt.
///
/// * `()` — success, nothing stored;
/// * [`JobResult`] — as given (a failed one is permanent);
/// * `Result<T, E>` with `T: Serialize` — `Ok` stores `T` as `result_data` (`()`
///   stores nothing); `Err` becomes a [`JobError`] — retryable for any
///   `std::error::Error`, permanent if it already is `JobError::permanent(..)`;
/// * `Result<JobResult, E>` — the hand-written handler's shape.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported job handler return type",
    label = "unsupported return type",
    note = "a `#[job_handler]` function returns `()`, `JobResult`, `Result<JobResult, E>` or `Result<T, E>` where `T: Serialize` and `E: Into<JobError>` (any `std::error::Error`, or `JobError` itself)"
)]
pub trait IntoJobResult {
    /// The attempt's outcome.
    fn into_job_result(self) -> Result<JobResult, JobError>;
}

impl IntoJobResult for () {
    fn into_job_result(self) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

impl IntoJobResult for JobResult {
    fn into_job_result(self) -> Result<JobResult, JobError> {
        Ok(self)
    }
}

impl<E: Into<JobError>> IntoJobResult for Result<JobResult, E> {
    fn into_job_result(self) -> Result<JobResult, JobError> {
        self.map_err(Into::into)
    }
}

impl<T: Serialize, E: Into<JobError>> IntoJobResult for Result<T, E> {
    fn into_job_result(self) -> Result<JobResult, JobError> {
        let value = self.map_err(Into::into)?;
        Ok(match serde_json::to_value(&value) {
            Ok(Value::Null) => JobResult::success(),
            Ok(data) => JobResult::with_data(data),
            // A value that cannot be stored is a bug in the handler, not a
            // transient condition: retrying would redo the work for nothing.
            Err(e) => JobResult::failure(JobError::permanent(format!(
                "the handler succeeded but its result could not be serialized: {e}"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("smtp down")]
    struct Smtp;

    #[test]
    fn return_types_become_outcomes() {
        assert!(().into_job_result().unwrap().result_data.is_none());
        let ok: Result<u32, Smtp> = Ok(7);
        assert_eq!(
            ok.into_job_result().unwrap().result_data,
            Some(Value::from(7))
        );
        let unit: Result<(), Smtp> = Ok(());
        assert!(unit.into_job_result().unwrap().result_data.is_none());
        let err: Result<u32, Smtp> = Err(Smtp);
        assert!(err.into_job_result().unwrap_err().is_retryable());
        let perm: Result<u32, JobError> = Err(JobError::permanent("bad"));
        assert!(perm.into_job_result().unwrap_err().is_permanent());
        let jr: Result<JobResult, Smtp> = Ok(JobResult::failure(JobError::msg("no")));
        assert!(!jr.into_job_result().unwrap().success);
    }
}
