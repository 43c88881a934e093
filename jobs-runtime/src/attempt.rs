//! One attempt of one job: the handler under its timeout and panic guard,
//! `on_failure` after a failure, and the outcome handed to the recorder.

use std::sync::Arc;
use std::time::Instant;

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{CancelReason, CancellationToken, Job, JobContext, JobError};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::{debug, error, info, warn};

use crate::failure::outcome_of_failure;
use crate::panic::CatchUnwind;
use crate::shared::Shared;

/// One attempt: run the handler, call `on_failure` if it failed, report the outcome.
pub(crate) async fn run_job(
    shared: Arc<Shared>,
    job: Arc<Job>,
    cancel: CancellationToken,
    outcomes: mpsc::UnboundedSender<OutcomeUpdate>,
    permit: OwnedSemaphorePermit,
) {
    let fence = job.fence();
    let outcome = execute(&shared, &job, &cancel).await;
    drop(permit);
    // A shutdown that gave up on this job has released it already.
    if shared.in_flight.finish(fence) {
        let _ = outcomes.send(OutcomeUpdate::new(fence, outcome));
    }
}

async fn execute(shared: &Shared, job: &Arc<Job>, cancel: &CancellationToken) -> Outcome {
    let started = Instant::now();
    let Some(handler) = shared.handlers.get(&job.job_type) else {
        let error = JobError::msg(format!(
            "no handler for job type `{}` in worker `{}` (it handles: {}); it will be retried, so a worker that has one can run it",
            job.job_type,
            shared.worker_id,
            shared.handler_names()
        ));
        warn!(error = %error, "no handler for job type");
        return outcome_of_failure(job, &error, &shared.cfg.backoff);
    };
    debug!("job started");
    let ctx = JobContext::new(
        job.clone(),
        shared.services.clone(),
        cancel.clone(),
        shared.worker_id.clone(),
    );
    let attempt = ctx.clone().scope(CatchUnwind(handler.handle(job)));
    let timeout = handler.timeout().or(shared.cfg.job_timeout);
    let result = match timeout {
        None => attempt.await,
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(r) => r,
            Err(_) => {
                cancel.cancel(CancelReason::Timeout);
                Ok(Err(JobError::msg(format!("timed out after {limit:?}"))))
            }
        },
    };
    let error = match result {
        Ok(Ok(r)) if r.success => {
            debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "job completed"
            );
            return Outcome::Complete {
                result: r.result_data,
            };
        }
        Ok(Ok(r)) => r
            .error
            .unwrap_or_else(|| JobError::msg("handler returned a failed JobResult"))
            .into_permanent(),
        Ok(Err(e)) => e,
        Err(panic) => JobError::msg(format!("handler panicked: {panic}")),
    };
    if error.is_retryable() && cancel.reason() == Some(CancelReason::Shutdown) {
        info!(error = %error, "job stopped for shutdown; releasing it back to the queue");
        return Outcome::Release;
    }
    let backoff = handler.backoff().unwrap_or(shared.cfg.backoff);
    let outcome = outcome_of_failure(job, &error, &backoff);
    match &outcome {
        Outcome::Retry { delay, .. } => {
            warn!(error = %error, retry_in = ?delay, "job failed; will retry")
        }
        Outcome::Fail { .. } => warn!(error = %error, "job failed permanently"),
        _ => {
            error!(error = %error, max_retries = job.max_retries, "job failed on its last attempt; dead-lettered")
        }
    }
    call_on_failure(shared, handler.as_ref(), job, &error, cancel).await;
    outcome
}

/// Calls `on_failure`, logging (and otherwise ignoring) its error or panic.
pub(crate) async fn call_on_failure(
    shared: &Shared,
    handler: &dyn jobs_core::registry::DynHandler,
    job: &Arc<Job>,
    error: &JobError,
    cancel: &CancellationToken,
) {
    let ctx = JobContext::new(
        job.clone(),
        shared.services.clone(),
        cancel.clone(),
        shared.worker_id.clone(),
    );
    match ctx.scope(CatchUnwind(handler.on_failure(job, error))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(error = %e, "on_failure returned an error (ignored)"),
        Err(panic) => error!(panic = %panic, "on_failure panicked (ignored)"),
    }
}
