//! The claim loop: claims jobs while slots are free, spawns an attempt for
//! each, and waits for a wake-up signal when there is nothing to claim.

use std::sync::Arc;

use jobs_core::backend::{ClaimRequest, JobListener, Outcome, OutcomeUpdate};
use jobs_core::{CancellationToken, Job};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{warn, Instrument};

use crate::attempt::run_job;
use crate::backend_retry::backend_retry_delay;
use crate::shared::Shared;
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
        let req = ClaimRequest::new(
            &shared.worker_id,
            &shared.cfg.queues,
            permits.len(),
            shared.cfg.lease,
        );
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
    shared.in_flight.hand_back(fence);
    OutcomeUpdate::new(fence, Outcome::Release)
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
    shared.in_flight.start(fence, cancel.clone());
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
    shared.in_flight.set_abort(fence, handle.abort_handle());
}
