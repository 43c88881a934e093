//! Not public API: what `#[job_handler]` output names, through
//! `::jobs::__private` (or `<crate = path>::__private`). Everything the expansion
//! needs is re-exported here so users never depend on `inventory` or
//! `serde_json` themselves, and shadowing `Result`, `Option`, `serde`, ... in
//! their crate cannot change what the expansion means.

pub use core::future::Future;
pub use core::option::Option;
pub use core::result::Result;
pub use core::time::Duration;
pub use std::string::String;
pub use std::sync::Arc;
pub use std::vec::Vec;

pub use inventory;
pub use serde_json::Value;

pub use crate::on_failure::{IntoFailureResult, OnFailureEntry, OnFailureFn};
pub use crate::registry::DynHandler;
pub use crate::workflow::NoInput;
pub use crate::{
    Backoff, BoxError, BoxFuture, FromJobContext, FromJobContextRef, HandlerRegistration,
    IntoJobError, IntoJobOutput, IntoJobResult, Job, JobContext, JobError, JobHandler, JobInput,
    JobOptions, JobOutput, JobPayload, JobResult, PayloadOf, ServiceRequirement, Services, Timeout,
    Validate,
};
pub use crate::{GeneratedHandler, HandledBy};

/// The context of the attempt being handled: the manager's if `handle` runs
/// under it, else (a direct call in a test) one with no services.
pub fn context_for(job: &Job) -> JobContext {
    match JobContext::current() {
        Some(ctx) if ctx.id() == job.id => ctx,
        _ => JobContext::for_job(job.clone(), Services::new()),
    }
}

// The payload helpers are bounded by `JobPayload`, not `DeserializeOwned`: the
// expansion implements `JobPayload` for the payload, so a payload that is not
// `Deserialize` is reported once, at that impl, rather than at every use.

/// Deserializes a job's payload: a mismatch is a permanent failure naming the
/// job type, the field and what was wrong.
pub fn decode<P: JobPayload>(job: &Job) -> Result<P, JobError> {
    crate::payload::decode_payload::<P>(P::JOB_TYPE, &job.payload)
}

/// Deserializes a payload; the error names the field path and what was wrong.
pub fn parse_payload<P: JobPayload>(payload: &Value) -> Result<P, String> {
    crate::payload::parse_payload::<P>(payload)
}

/// Turns a `Validate` verdict into the permanent failure of the attempt.
pub fn validated(job_type: &str, verdict: Result<(), String>) -> Result<(), JobError> {
    verdict.map_err(|reason| {
        JobError::permanent(format!(
            "payload of job type `{job_type}` failed validation: {reason}"
        ))
    })
}

/// A `Validate` verdict as the reason `enqueue_raw` refuses a payload.
pub fn check_verdict(verdict: Result<(), String>) -> Result<(), String> {
    verdict.map_err(|reason| format!("failed validation: {reason}"))
}

/// Runs `Validate::validate` when the payload type implements it and does
/// nothing otherwise, without the user opting in: autoref specialization on a
/// concrete type. `(&&ValidateProbe(&payload)).__jobs_validate()` finds
/// [`ViaValidate`] first (receiver `&&Probe`) if `T: Validate`, and falls back
/// to [`ViaNoValidate`] (receiver `&Probe`) after one auto-deref.
#[derive(Debug)]
pub struct ValidateProbe<'a, T>(pub &'a T);

pub trait ViaValidate {
    fn __jobs_validate(&self) -> Result<(), String>;
}

impl<T: Validate> ViaValidate for &ValidateProbe<'_, T> {
    fn __jobs_validate(&self) -> Result<(), String> {
        self.0.validate()
    }
}

pub trait ViaNoValidate {
    fn __jobs_validate(&self) -> Result<(), String>;
}

impl<T> ViaNoValidate for ValidateProbe<'_, T> {
    fn __jobs_validate(&self) -> Result<(), String> {
        Ok(())
    }
}

pub use crate::{
    limit_key, ConcurrencyLimit, JobLimits, MissedRuns, Periodic, RateLimit, UniqueKey, Uniqueness,
};

/// A payload field as JSON, for a unique key (`unique(by = [field])`). A
/// field that does not serialize keys as `null` (its payload would not
/// serialize either, and the enqueue reports that).
pub fn unique_field<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The payload every tick of `#[job_handler(.., cron = "..")]` enqueues.
#[diagnostic::on_unimplemented(
    message = "`{Self}` needs `Default` for `cron = ..`",
    label = "each tick enqueues `{Self}::default()`",
    note = "derive or implement `Default` for `{Self}`, or drop `cron` from the attribute and add the schedule with its payload on the builder: `.periodic(Periodic::cron(\"..\").payload(..))`"
)]
pub trait CronPayload: JobPayload {
    /// The payload of a tick.
    fn tick_payload() -> Self;
}

impl<P: JobPayload + Default> CronPayload for P {
    fn tick_payload() -> Self {
        P::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Checked(i64);
    impl Validate for Checked {
        fn validate(&self) -> Result<(), String> {
            if self.0 > 0 {
                Ok(())
            } else {
                Err("amount must be positive".into())
            }
        }
    }
    struct Unchecked;

    #[test]
    #[allow(clippy::needless_borrow)] // the double borrow is the mechanism under test
    fn validate_runs_only_where_implemented() {
        assert!((&&ValidateProbe(&Checked(1))).__jobs_validate().is_ok());
        assert_eq!(
            (&&ValidateProbe(&Checked(0))).__jobs_validate(),
            Err("amount must be positive".to_string())
        );
        assert!((&&ValidateProbe(&Unchecked)).__jobs_validate().is_ok());
        let err = validated("pay", Err("no".into())).unwrap_err();
        assert!(err.is_permanent() && err.to_string().contains("`pay`"));
    }
}
