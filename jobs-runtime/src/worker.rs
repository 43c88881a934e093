//! Running claimed jobs: the claim loop and one attempt of one job.

use std::sync::Arc;
use std::time::Instant;

use jobs_core::{
    CancelReason, CancellationToken, ClaimRequest, Fence, Job, JobContext, JobError, JobListener,
    Outcome, OutcomeUpdate,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use crate::manager::{InFlight, Shared};
use crate::panic::CatchUnwind;
use crate::retry::{backend_retry_delay, outcome_of_failure};
use crate::stats::Counters;

/// The longest a worker draining a backlog waits for more free slots before claiming.
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Claims jobs while slots are free, and waits on the backend's wake-up signal
/// (or the poll interval) when there is nothing to claim.
pub(crate) async fn claim_loop(
    shared: Arc<Shared>,
    mut listener: Option<Box<dyn JobListener>>,
    stop: StopToken,
    tasks: TaskTracker,
    outcomes: mpsc::UnboundedSender<OutcomeUpdate>,
) {
    let slots = Arc::new(Semaphore::new(shared.cfg.concurrency));
    let mut failures = 0u32;
    // The last claim filled every slot it asked for: there is likely more waiting.
    let mut backlog = false;
    loop {
        // One free slot at least, then as many more as are free right now:
        // prefetch never exceeds the concurrency.
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        // Draining a backlog, claiming for one or two free slots at a time costs a
        // round trip per job or two; waiting a moment (at most BATCH_WAIT) for every
        // slot to free up makes full batches. An idle worker never waits here, so
        // pickup of new work stays immediate.
        let all = shared.cfg.concurrency;
        if backlog && permits.len() < all {
            let deadline = tokio::time::Instant::now() + BATCH_WAIT;
            while permits.len() < all {
                tokio::select! {
                    p = slots.clone().acquire_owned() => permits.push(p.expect("semaphore never closed")),
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
        }
        let req = ClaimRequest {
            worker_id: &shared.worker_id,
            queues: &shared.cfg.queues,
            limit: permits.len(),
            lease: shared.cfg.lease,
        };
        // A claim is never abandoned half-way: dropping it could strand jobs
        // under a lease until it expires.
        let jobs = match shared.queue.backend().claim(req).await {
            Ok(jobs) => {
                failures = 0;
                backlog = jobs.len() == req.limit;
                jobs
            }
            Err(e) => {
                backlog = false;
                let delay = backend_retry_delay(failures);
                failures += 1;
                warn!(error = %e, retry_in = ?delay, "claiming jobs failed; retrying");
                drop(permits);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if jobs.is_empty() {
            drop(permits);
            let poll = idle_poll(&listener, shared.cfg.poll);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wait_for_work(&mut listener, poll) => {}
            }
            continue;
        }
        Counters::bump(&shared.counters.claimed, jobs.len() as u64);
        if stop.is_cancelled() {
            // Stopped while claiming: hand them straight back.
            for job in jobs {
                let _ = outcomes.send(release(&shared, &job));
            }
            break;
        }
        for (job, permit) in jobs.into_iter().zip(permits) {
            spawn_job(&shared, &tasks, &outcomes, job, permit);
        }
    }
}

/// How long an idle worker waits for a signal before looking anyway: the poll
/// interval, or five times it where the listener signals all work (PostgreSQL,
/// Redis, memory), so an idle worker costs its database almost nothing.
fn idle_poll(
    listener: &Option<Box<dyn JobListener>>,
    poll: std::time::Duration,
) -> std::time::Duration {
    match listener {
        Some(l) if l.signals_all_work() => poll.saturating_mul(IDLE_POLL_FACTOR),
        _ => poll,
    }
}

/// See [`idle_poll`].
const IDLE_POLL_FACTOR: u32 = 5;

async fn wait_for_work(listener: &mut Option<Box<dyn JobListener>>, poll: std::time::Duration) {
    match listener {
        Some(l) => l.wait(poll).await,
        None => tokio::time::sleep(poll).await,
    }
}

fn release(shared: &Shared, job: &Job) -> OutcomeUpdate {
    let fence = job.fence();
    shared.in_flight_lock().insert(fence, InFlight::finished());
    OutcomeUpdate {
        fence,
        outcome: Outcome::Release,
    }
}

fn spawn_job(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    outcomes: &mpsc::UnboundedSender<OutcomeUpdate>,
    job: Job,
    permit: OwnedSemaphorePermit,
) {
    let fence = job.fence();
    let cancel = CancellationToken::new();
    shared
        .in_flight_lock()
        .insert(fence, InFlight::running(cancel.clone()));
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        job_type = %job.job_type,
        queue = %job.queue_name,
        attempt = job.attempt,
        retry_count = job.retry_count,
    );
    let fut = run_job(
        shared.clone(),
        Arc::new(job),
        cancel,
        outcomes.clone(),
        permit,
    )
    .instrument(span);
    let handle = tasks.spawn(fut);
    if let Some(entry) = shared.in_flight_lock().get_mut(&fence) {
        entry.abort = Some(handle.abort_handle());
    }
}

/// One attempt: run the handler, call `on_failure` if it failed, report the outcome.
async fn run_job(
    shared: Arc<Shared>,
    job: Arc<Job>,
    cancel: CancellationToken,
    outcomes: mpsc::UnboundedSender<OutcomeUpdate>,
    permit: OwnedSemaphorePermit,
) {
    let fence = job.fence();
    let outcome = execute(&shared, &job, &cancel).await;
    drop(permit);
    // Under the in-flight lock, so a shutdown that gave up on this job and
    // released it cannot race with its own outcome.
    {
        let mut in_flight = shared.in_flight_lock();
        match in_flight.get_mut(&fence) {
            Some(entry) if !entry.released => entry.running = false,
            _ => return,
        }
    }
    let _ = outcomes.send(OutcomeUpdate { fence, outcome });
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
    handler: &dyn jobs_core::DynHandler,
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

/// Fences of the jobs this manager still holds a lease on.
pub(crate) fn held_fences(shared: &Shared) -> Vec<Fence> {
    shared.in_flight_lock().keys().copied().collect()
}
