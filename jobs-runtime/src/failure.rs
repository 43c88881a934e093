//! Deciding what a failed attempt leads to: retry with backoff, FAILED, or DEAD_LETTER.

use jobs_core::backend::{AttemptFailure, Outcome};
use jobs_core::{Backoff, Job, JobError};
use serde_json::Value;

use crate::limits::truncate_message;

/// The outcome of a failed attempt, by the job state machine:
/// permanent → FAILED (keeping `result`, data a failed `JobResult` carried);
/// retryable with `retry_count < max_retries` → RETRYING after the backoff;
/// retryable with none left → DEAD_LETTER. The message is cut to
/// `max_error_bytes`.
pub(crate) fn outcome_of_failure(
    job: &Job,
    error: &JobError,
    backoff: &Backoff,
    max_error_bytes: usize,
    result: Option<Value>,
) -> Outcome {
    let failure = AttemptFailure::new(
        truncate_message(error.message(), max_error_bytes),
        error.is_retryable(),
    );
    if error.is_permanent() {
        Outcome::Fail {
            error: failure,
            result,
        }
    } else if job.retry_count < job.max_retries {
        Outcome::Retry {
            delay: backoff.delay(job.retry_count, fastrand::f64()),
            error: failure,
        }
    } else {
        Outcome::DeadLetter { error: failure }
    }
}

/// Whether a retry follows this outcome (what `on_failure` is told).
pub(crate) fn retry_follows(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Retry { .. })
}
