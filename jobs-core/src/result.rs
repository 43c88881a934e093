//! `JobResult`: what a handler reports back.

use serde::Serialize;
use serde_json::Value;

use crate::{BoxError, JobError};

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
    /// "Not now": run the job again after this long, without spending a
    /// retry or calling `on_failure` (see [`JobResult::snooze`]).
    pub snooze: Option<std::time::Duration>,
}

impl JobResult {
    /// Success with nothing to store.
    pub fn success() -> Self {
        JobResult {
            success: true,
            result_data: None,
            error: None,
            snooze: None,
        }
    }

    /// Success storing `data` as the job's `result_data`.
    pub fn with_data(data: Value) -> Self {
        JobResult {
            success: true,
            result_data: Some(data),
            error: None,
            snooze: None,
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
            snooze: None,
        }
    }

    /// Not now: the job goes back to waiting and runs again after `delay`
    /// (the backend's clock) — a rate-limited upstream, a resource not ready.
    /// It spends no retry, is no failure and calls no `on_failure`; the
    /// job's `snoozes` counts it, and a manager refuses more than
    /// `max_snoozes` of them (then it is a retryable failure).
    pub fn snooze(delay: std::time::Duration) -> Self {
        JobResult {
            success: true,
            result_data: None,
            error: None,
            snooze: Some(delay),
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
/// * `Result<T, E>` where `T` is [`IntoJobOutput`] (any `Serialize` value,
///   stored as `result_data` — `()` stores nothing — or a `JobResult`) and `E`
///   is [`IntoJobError`] (`JobError`, any `std::error::Error + Send + Sync +
///   'static`, `BoxError`, `anyhow::Error`, `String`, `&'static str`). An `Err`
///   is a retryable failure unless it is `JobError::permanent(..)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported job handler return type",
    label = "unsupported return type",
    note = "a `#[job_handler]` function returns `()`, `JobResult`, or `Result<T, E>` where `T` is `Serialize` (or `JobResult`) and `E` is `JobError`, any `std::error::Error + Send + Sync + 'static`, `BoxError`, `anyhow::Error`, `String` or `&'static str`"
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

impl<T: IntoJobOutput, E: IntoJobError> IntoJobResult for Result<T, E> {
    fn into_job_result(self) -> Result<JobResult, JobError> {
        match self {
            Ok(value) => Ok(value.into_job_output()),
            Err(error) => Err(error.into_job_error()),
        }
    }
}

/// What the `Ok` of a handler's `Result` may hold: any `Serialize` value
/// (stored as the job's `result_data`; `()` and `null` store nothing), or a
/// [`JobResult`] as the hand-written handlers return it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored as a job's result",
    label = "not `Serialize`",
    note = "the `Ok` value of a job handler is stored as the job's `result_data`: derive `Serialize` for `{Self}` (`#[derive(Serialize)]`), return a `serde_json::Value`, or return `JobResult`"
)]
pub trait IntoJobOutput {
    /// The successful attempt's result.
    fn into_job_output(self) -> JobResult;
}

impl IntoJobOutput for JobResult {
    fn into_job_output(self) -> JobResult {
        self
    }
}

#[diagnostic::do_not_recommend]
impl<T: Serialize> IntoJobOutput for T {
    fn into_job_output(self) -> JobResult {
        match serde_json::to_value(&self) {
            Ok(Value::Null) => JobResult::success(),
            Ok(data) => JobResult::with_data(data),
            // A value that cannot be stored is a bug in the handler, not a
            // transient condition: retrying would redo the work for nothing.
            Err(e) => JobResult::failure(JobError::permanent(format!(
                "the handler succeeded but its result could not be serialized: {e}"
            ))),
        }
    }
}

/// What the `Err` of a handler's `Result` may hold: a [`JobError`] (kept as
/// it is, so `JobError::permanent(..)` stays permanent), or anything that
/// converts into a [`BoxError`] — any `std::error::Error + Send + Sync +
/// 'static`, `BoxError` itself, `anyhow::Error`, `String`, `&'static str` —
/// which becomes a retryable failure.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned as a job's error",
    label = "not an error type a job handler can return",
    note = "a job handler's error is `JobError`, any `std::error::Error + Send + Sync + 'static`, `BoxError` (`Box<dyn Error + Send + Sync>`: a `Box<dyn Error>` without `Send + Sync` cannot leave the worker's thread), `anyhow::Error`, `String` or `&'static str`; implement `std::error::Error` for your error type, or map the error into one of these"
)]
pub trait IntoJobError {
    /// The failure of the attempt.
    fn into_job_error(self) -> JobError;
}

impl IntoJobError for JobError {
    fn into_job_error(self) -> JobError {
        self
    }
}

#[diagnostic::do_not_recommend]
impl<E: Into<BoxError>> IntoJobError for E {
    fn into_job_error(self) -> JobError {
        JobError::retryable(self)
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

    #[test]
    fn every_reasonable_error_type_is_accepted() {
        let boxed: Result<(), BoxError> = Err("boxed".into());
        assert_eq!(boxed.into_job_result().unwrap_err().message(), "boxed");
        let string: Result<(), String> = Err("a string".to_owned());
        let err = string.into_job_result().unwrap_err();
        assert!(err.is_retryable() && err.message() == "a string");
        let s: Result<(), &'static str> = Err("a str");
        assert_eq!(s.into_job_result().unwrap_err().message(), "a str");
        // Like `anyhow::Error`: not an `Error` itself, but `Into<BoxError>`.
        struct Anyhow;
        impl From<Anyhow> for BoxError {
            fn from(_: Anyhow) -> Self {
                "anyhow".into()
            }
        }
        let any: Result<u8, Anyhow> = Err(Anyhow);
        assert_eq!(any.into_job_result().unwrap_err().message(), "anyhow");
    }
}
