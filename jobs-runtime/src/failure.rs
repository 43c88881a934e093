//! Deciding what a failed attempt leads to: retry with backoff, FAILED, or DEAD_LETTER.

use jobs_core::backend::{AttemptFailure, Outcome};
use jobs_core::{Backoff, Job, JobError};

/// The outcome of a failed attempt, by the job state machine:
/// permanent → FAILED; retryable with `retry_count < max_retries` → RETRYING
/// after the backoff; retryable with none left → DEAD_LETTER.
pub(crate) fn outcome_of_failure(job: &Job, error: &JobError, backoff: &Backoff) -> Outcome {
    let failure = AttemptFailure::new(error.message(), error.is_retryable());
    if error.is_permanent() {
        Outcome::Fail { error: failure }
    } else if job.retry_count < job.max_retries {
        Outcome::Retry {
            delay: backoff.delay(job.retry_count, fastrand::f64()),
            error: failure,
        }
    } else {
        Outcome::DeadLetter { error: failure }
    }
}
