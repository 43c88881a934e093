//! The claim loop: claims jobs while slots are free, hands each to a slot
//! task (`slots.rs`), and waits for a wake-up signal when there is nothing to
//! claim.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{ClaimRequest, JobListener};
use jobs_core::Error;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::backend_retry::backend_retry_delay;
use crate::shared::{Outcomes, Shared};
use crate::slots::{release, Claimed, Slots};
use crate::stats::Counters;

/// The longest a worker draining a backlog waits for more free slots before claiming.
const BATCH_WAIT: Duration = Duration::from_millis(1);

/// Claims jobs while slots are free, and waits on the backend's wake-up signal
/// (or the poll interval) when there is nothing to claim. Returns when `stop`
/// fires.
pub(crate) async fn claim_loop(
    shared: Arc<Shared>,
    stop: StopToken,
    tasks: TaskTracker,
    outcomes: Outcomes,
) {
    let mut listener = tokio::select! {
        _ = stop.cancelled() => return,
        l = listener(&shared) => l,
    };
    let slots = &shared.slots;
    // Dropped when the loop ends: releases what no slot task took.
    let runners = Slots::start(&shared, &tasks, &outcomes);
    let mut failures = 0u32;
    // The last claim filled every slot it asked for: there is likely more waiting.
    let mut backlog = false;
    // Both kept from claim to claim (emptied each time): no allocation per claim.
    let mut permits: Vec<OwnedSemaphorePermit> = Vec::with_capacity(shared.cfg.concurrency);
    let mut entered: Vec<Claimed> = Vec::with_capacity(shared.cfg.concurrency);
    loop {
        // One free slot at least, then as many more as are free right now:
        // prefetch never exceeds the concurrency.
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        permits.push(first);
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        // Draining a backlog, claiming for one or two free slots at a time costs a
        // round trip per job or two; waiting a moment (at most BATCH_WAIT) for every
        // slot to free up makes full batches. An idle worker never waits here, so
        // pickup of new work stays immediate.
        let all = shared.cfg.concurrency;
        if backlog && permits.len() < all {
            // One timer for the whole wait (a new one per permit registered
            // and cancelled a timer, under the timer wheel's lock, per job).
            let deadline = tokio::time::sleep(BATCH_WAIT);
            tokio::pin!(deadline);
            while permits.len() < all {
                tokio::select! {
                    p = slots.clone().acquire_owned() => permits.push(p.expect("semaphore never closed")),
                    _ = &mut deadline => break,
                }
            }
            while let Ok(p) = slots.clone().try_acquire_owned() {
                permits.push(p);
            }
        }
        let limits = claim_limits(&shared);
        let req = ClaimRequest::new(
            &shared.worker_id,
            &shared.cfg.queues,
            permits.len(),
            shared.cfg.lease,
        )
        .with_limits(&limits);
        // The lease is good from before the request: the worker's estimate of
        // when it runs out errs early, never late.
        let sent_at = Instant::now();
        // A claim that times out may have taken jobs that never reach us:
        // they come back when their lease expires.
        let (jobs, limited) = match shared.call("claim", shared.backend().claim(req)).await {
            Ok(claimed) => {
                failures = 0;
                shared.health.ok("claim");
                backlog = claimed.jobs.len() == req.limit;
                (claimed.jobs, claimed.limited)
            }
            Err(e) => {
                backlog = false;
                let delay = backend_retry_delay(failures);
                failures += 1;
                warn!(error = %e, retry_in = ?delay, "claiming jobs failed; retrying");
                shared.health.failed("claim", &e);
                permits.clear();
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        if jobs.is_empty() {
            permits.clear();
            let mut poll = idle_poll(&listener, shared.cfg.poll);
            if limited {
                // A limit held due jobs back: a window moves on, a slot frees
                // (here, the moment our own outcomes are written; elsewhere in
                // the cluster, found by polling).
                poll = poll.min(shared.cfg.limit_poll);
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wait_for_work(&mut listener, poll) => {}
                _ = shared.recorded.notified(), if limited => {}
            }
            signalled_cancels(&shared, &mut listener);
            continue;
        }
        Counters::bump(&shared.counters.claimed, jobs.len() as u64);
        if stop.is_cancelled() {
            // Stopped while claiming: hand them straight back.
            for job in jobs {
                release(&shared, &outcomes, &job);
            }
            break;
        }
        entered.extend(
            jobs.into_iter()
                .zip(permits.drain(..))
                .map(|(job, permit)| runners.enter(job, permit, sent_at)),
        );
        runners.run(entered.drain(..));
        crate::metrics::running(&shared.running_key, shared.in_flight.running());
        signalled_cancels(&shared, &mut listener);
    }
}

/// The queues' limits for this claim: the cluster-wide ones as configured,
/// and this manager's local cap minus what it runs of the queue now. A queue
/// with a global cap also names the jobs whose outcomes are being recorded:
/// they have stopped running, so they do not hold the cluster's slots.
fn claim_limits(shared: &Shared) -> Vec<jobs_core::ClaimLimit> {
    shared
        .cfg
        .queue_limits
        .iter()
        .map(|(queue, l)| {
            let mut c = jobs_core::ClaimLimit::new(queue.clone());
            c.global = l.global;
            c.rate = l.rate;
            c.take = l.local.map(|n| {
                let running = shared.in_flight.running_in(queue);
                n.saturating_sub(u32::try_from(running).unwrap_or(u32::MAX))
            });
            if l.global.is_some() {
                c.recording = shared.in_flight.recording_in(queue);
            }
            c
        })
        .collect()
}

/// A cancellation was signalled (some running job of the cluster was
/// cancelled): the heartbeat learns at once whether it is one of ours.
fn signalled_cancels(shared: &Shared, listener: &mut Option<Box<dyn JobListener>>) {
    if let Some(l) = listener {
        if l.take_cancel_signal() && shared.in_flight.running() > 0 {
            shared.heartbeat_now.notify_one();
        }
    }
}

/// The backend's wake-up signal, or none (then the loop polls).
async fn listener(shared: &Shared) -> Option<Box<dyn JobListener>> {
    let queues = &shared.cfg.queues;
    match shared
        .call("listener", shared.backend().listener(queues))
        .await
    {
        Ok(l) => Some(l),
        Err(e @ Error::Unsupported { .. }) => {
            info!(reason = %e, poll = ?shared.cfg.poll, "the backend sends no wake-up signals; polling for work");
            None
        }
        Err(e) => {
            warn!(error = %e, poll = ?shared.cfg.poll, "no wake-up signal from the backend; polling instead");
            None
        }
    }
}

/// How long an idle worker waits for a signal before looking anyway: the poll
/// interval, or five times it where the listener signals all work (PostgreSQL,
/// Redis, memory), so an idle worker costs its database almost nothing.
fn idle_poll(listener: &Option<Box<dyn JobListener>>, poll: Duration) -> Duration {
    match listener {
        Some(l) if l.signals_all_work() => poll.saturating_mul(IDLE_POLL_FACTOR),
        _ => poll,
    }
}

/// See [`idle_poll`].
const IDLE_POLL_FACTOR: u32 = 5;

async fn wait_for_work(listener: &mut Option<Box<dyn JobListener>>, poll: Duration) {
    match listener {
        Some(l) => l.wait(poll).await,
        None => tokio::time::sleep(poll).await,
    }
}
