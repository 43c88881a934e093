//! Deciding what a failed attempt leads to: retry with backoff, FAILED, or DEAD_LETTER.

use std::time::Duration;

use jobs_core::{AttemptFailure, Backoff, Job, JobError, Outcome};

/// The outcome of a failed attempt, by DESIGN.md's state machine:
/// permanent → FAILED; retryable with `retry_count < max_retries` → RETRYING
/// after the backoff; retryable with none left → DEAD_LETTER.
pub(crate) fn outcome_of_failure(job: &Job, error: &JobError, backoff: &Backoff) -> Outcome {
    let failure = AttemptFailure {
        message: error.message().to_owned(),
        retryable: error.is_retryable(),
    };
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

/// Delay before retrying a failed backend call: doubling from 50 ms up to 5 s.
pub(crate) fn backend_retry_delay(failures: u32) -> Duration {
    let ms = 50u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(ms.min(5_000))
}
