//! One attempt of one job: the handler under its time limit, panic guard and
//! watchdog, `on_failure` after a failure, and the outcome handed to the
//! recorder — always exactly one outcome, whatever the handler does.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::payload::json_size;
use jobs_core::registry::DynHandler;
use jobs_core::{CancelReason, CancellationToken, Job, JobContext, JobError, JobResult, Timeout};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, error, info, warn};

use crate::failure::{outcome_of_failure, retry_follows};
use crate::panic::{guarded, CatchUnwind};
use crate::shared::{Handoff, Outcomes, Shared};
use crate::watchdog::{PollStart, Watched};

/// One attempt: run the handler, call `on_failure` if it failed, hand the
/// outcome to the recorder. `slot` is the job's place among the running ones;
/// it is kept until the recorder has room for the outcome (its window), so a
/// worker never runs ahead of what it can record.
pub(crate) async fn run_job(
    shared: Arc<Shared>,
    job: Arc<Job>,
    cancel: CancellationToken,
    poll_start: PollStart,
    outcomes: Outcomes,
    slot: OwnedSemaphorePermit,
) {
    let mut guard = Guard {
        shared: &shared,
        job: &job,
        outcomes: &outcomes,
        sent: false,
    };
    let outcome = execute(&shared, &job, &cancel, poll_start).await;
    let window = shared.window.clone().acquire_owned().await.ok();
    drop(slot);
    guard.send(outcome, window);
}

/// Sends the attempt's outcome exactly once: if the attempt's task ends
/// without one (a bug of ours, or a runtime shutting down), its drop reports
/// a retryable failure, so no job stays RUNNING while its lease is renewed.
struct Guard<'a> {
    shared: &'a Shared,
    job: &'a Arc<Job>,
    outcomes: &'a Outcomes,
    sent: bool,
}

impl Guard<'_> {
    fn send(&mut self, outcome: Outcome, window: Option<OwnedSemaphorePermit>) {
        self.sent = true;
        let fence = self.job.fence();
        // A shutdown that gave up on this job has released it already.
        if self.shared.in_flight.finish(fence) {
            let _ = self.outcomes.send(Handoff {
                update: OutcomeUpdate::new(fence, outcome),
                _window: window,
            });
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let error = JobError::msg(
            "the attempt ended without an outcome (its task was cancelled or panicked outside the handler)",
        );
        let cfg = &self.shared.cfg;
        let outcome = outcome_of_failure(self.job, &error, &cfg.backoff, cfg.max_error_bytes, None);
        self.send(outcome, None);
    }
}

async fn execute(
    shared: &Shared,
    job: &Arc<Job>,
    cancel: &CancellationToken,
    poll_start: PollStart,
) -> Outcome {
    let cfg = &shared.cfg;
    let started = Instant::now();
    let Some(handler) = shared.handlers.get(&job.job_type) else {
        let error = JobError::msg(format!(
            "no handler for job type `{}` in worker `{}` (it handles: {}); it will be retried, so a worker that has one can run it",
            job.job_type,
            shared.worker_id,
            shared.handler_names()
        ));
        warn!(error = %error, "no handler for job type");
        return outcome_of_failure(job, &error, &cfg.backoff, cfg.max_error_bytes, None);
    };
    let handler = handler.as_ref();
    debug!("job started");
    let limit = time_limit(shared, handler, job);
    let ctx = JobContext::new(
        job.clone(),
        shared.services.clone(),
        cancel.clone(),
        shared.worker_id.clone(),
    );
    let result = match guarded(|| handler.handle(job)) {
        Err(panic) => Ran::PanickedEarly(panic),
        Ok(fut) => {
            let watched = Watched::new(CatchUnwind(fut), shared.ticks.clone(), poll_start);
            match limited(limit, ctx.scope(watched)).await {
                Some(Ok(result)) => Ran::Returned(result),
                Some(Err(panic)) => Ran::Panicked(panic),
                None => Ran::TimedOut,
            }
        }
    };
    let (error, data) = match result {
        Ran::Returned(Ok(r)) if r.success => match too_large(shared, &r) {
            None => {
                debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "job completed"
                );
                return Outcome::Complete {
                    result: r.result_data,
                };
            }
            Some(error) => (error, None),
        },
        Ran::Returned(Ok(r)) => {
            let data = r
                .result_data
                .filter(|d| json_size(d) <= cfg.max_result_bytes);
            let error = r
                .error
                .unwrap_or_else(|| JobError::msg("handler returned a failed JobResult"))
                .into_permanent();
            (error, data)
        }
        Ran::Returned(Err(e)) => (e, None),
        Ran::Panicked(panic) => (JobError::msg(format!("handler panicked: {panic}")), None),
        Ran::PanickedEarly(panic) => (
            JobError::msg(format!(
                "handler panicked before its future existed: {panic}"
            )),
            None,
        ),
        Ran::TimedOut => {
            cancel.cancel(CancelReason::Timeout);
            let limit = limit.unwrap_or_default();
            (JobError::msg(format!("timed out after {limit:?}")), None)
        }
    };
    if error.is_retryable() && cancel.reason() == Some(CancelReason::Shutdown) {
        info!(error = %error, "job stopped for shutdown; releasing it back to the queue");
        return Outcome::Release;
    }
    let backoff = match guarded(|| handler.backoff()) {
        Ok(b) => b.unwrap_or(cfg.backoff),
        Err(panic) => {
            error!(panic = %panic, "the handler's backoff() panicked; using the manager's backoff");
            cfg.backoff
        }
    };
    let outcome = outcome_of_failure(job, &error, &backoff, cfg.max_error_bytes, data);
    match &outcome {
        Outcome::Retry { delay, .. } => {
            warn!(error = %error, retry_in = ?delay, "job failed; will retry")
        }
        Outcome::Fail { .. } => warn!(error = %error, "job failed permanently"),
        _ => {
            error!(error = %error, max_retries = job.max_retries, "job failed on its last attempt; dead-lettered")
        }
    }
    // `on_failure` learns whether a retry follows from the job it is given.
    let mut seen = Job::clone(job);
    seen.no_retry_follows = !retry_follows(&outcome);
    call_on_failure(shared, handler, &Arc::new(seen), &error, cancel, limit).await;
    outcome
}

/// How a handler's attempt went.
enum Ran {
    Returned(Result<JobResult, JobError>),
    Panicked(String),
    /// `handle` panicked while building its future.
    PanickedEarly(String),
    TimedOut,
}

/// The attempt's time limit: the job's own, else its handler's, else the manager's.
pub(crate) fn time_limit(shared: &Shared, handler: &dyn DynHandler, job: &Job) -> Option<Duration> {
    let handler_says = guarded(|| handler.timeout()).unwrap_or_else(|panic| {
        error!(panic = %panic, "the handler's timeout() panicked; using the manager's job timeout");
        None
    });
    let timeout: Timeout = job
        .timeout
        .or(handler_says)
        .unwrap_or(shared.cfg.job_timeout);
    timeout.limit()
}

/// `fut`, cut off after `limit` (`None` when it was).
async fn limited<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        None => Some(fut.await),
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// A successful result too large to store, as the failure it becomes.
fn too_large(shared: &Shared, r: &JobResult) -> Option<JobError> {
    let max = shared.cfg.max_result_bytes;
    let size = json_size(r.result_data.as_ref()?);
    (size > max).then(|| {
        JobError::permanent(format!(
            "the handler succeeded, but its result is too large to store: about {size} bytes, \
             the limit is {max} (`max_result_bytes` of the WorkerManager builder); store large \
             results elsewhere and return a reference"
        ))
    })
}

/// Calls `on_failure` under `limit`, logging (and otherwise ignoring) its
/// error, panic or timeout.
pub(crate) async fn call_on_failure(
    shared: &Shared,
    handler: &dyn DynHandler,
    job: &Arc<Job>,
    error: &JobError,
    cancel: &CancellationToken,
    limit: Option<Duration>,
) {
    let ctx = JobContext::new(
        job.clone(),
        shared.services.clone(),
        cancel.clone(),
        shared.worker_id.clone(),
    );
    let fut = match guarded(|| handler.on_failure(job, error)) {
        Ok(fut) => fut,
        Err(panic) => {
            error!(panic = %panic, "on_failure panicked (ignored)");
            return;
        }
    };
    match limited(limit, ctx.scope(CatchUnwind(fut))).await {
        Some(Ok(Ok(()))) => {}
        Some(Ok(Err(e))) => error!(error = %e, "on_failure returned an error (ignored)"),
        Some(Err(panic)) => error!(panic = %panic, "on_failure panicked (ignored)"),
        None => error!(
            limit = ?limit,
            "on_failure did not finish within the job's time limit; it was cut off"
        ),
    }
}
