//! The recorder loop: writes outcomes to the backend in batches, and makes
//! sure one outcome the backend cannot store never holds up the others.

use std::sync::Arc;

use jobs_core::backend::{AttemptFailure, Outcome, OutcomeUpdate};
use jobs_core::{BoxFuture, Error, JobId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{error, warn};

use crate::backend_retry::backend_retry_delay;
use crate::limits::truncate_message;
use crate::shared::{Handoff, Shared};
use crate::stats::Counters;

/// Most outcomes written in one backend call.
const MAX_BATCH: usize = 512;

/// Takes outcomes as they come and records whatever has piled up in one backend
/// call, so a busy worker writes in batches and an idle one without delay.
/// Returns when every sender is gone and everything is recorded (or, after
/// `give_up` fires, could not be: those jobs' leases expire and they run again).
pub(crate) async fn recorder_loop(
    shared: Arc<Shared>,
    rx: &mut mpsc::UnboundedReceiver<Handoff>,
    give_up: StopToken,
) {
    let mut batch: Vec<Handoff> = Vec::with_capacity(MAX_BATCH);
    // Kept from batch to batch (emptied after each): no allocation per batch.
    let mut updates: Vec<OutcomeUpdate> = Vec::with_capacity(MAX_BATCH);
    let mut window = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Moved, not copied: a result may be large.
        let steps: Vec<Arc<jobs_core::Job>> = batch
            .iter_mut()
            .filter_map(|h| {
                let job = h.step.take()?;
                crate::workflow::finished(&job, &h.update.outcome).map(Arc::new)
            })
            .collect();
        for h in batch.drain(..) {
            updates.push(h.update);
            window.push(h._window);
        }
        let lost = record(&shared, &updates, &give_up).await;
        count(&shared, &updates, &lost);
        for job in steps {
            let id = job.id;
            let written = !lost.lost.contains(&id) && !lost.unwritten.contains(&id);
            // Recorded as failed instead of its outcome.
            if written && lost.failed_instead.contains(&id) {
                let mut job = jobs_core::Job::clone(&job);
                job.status = jobs_core::JobStatus::Failed;
                let _ = shared.steps_tx.send(Arc::new(job));
            } else if written {
                let _ = shared.steps_tx.send(job);
            }
        }
        shared.in_flight.remove(updates.iter().map(|u| &u.fence));
        crate::metrics::running(&shared.running_key, shared.in_flight.running());
        updates.clear();
        // The window permits go back only now: the outcomes are written.
        window.clear();
        shared.recorded.notify_one();
    }
}

/// What became of a batch: the ids refused because their lease was lost, and
/// those that could not be written at all.
#[derive(Debug, Default)]
struct Recorded {
    lost: Vec<JobId>,
    unwritten: Vec<JobId>,
    /// Recorded as failed because their own outcome could not be stored.
    failed_instead: Vec<JobId>,
}

/// Records `updates`, retrying transient failures (until `give_up`), and
/// splitting a batch the backend refuses for good until the outcome it cannot
/// store is found: that job is recorded as failed, saying why, and the others
/// normally.
async fn record(shared: &Shared, updates: &[OutcomeUpdate], give_up: &StopToken) -> Recorded {
    let mut out = Recorded::default();
    // The first write is not boxed (most batches need no other): only a
    // refused batch's halves are, being recursive.
    let written = write(shared, updates, give_up).await;
    settle(shared, updates, give_up, &mut out, written).await;
    out
}

fn record_split<'a>(
    shared: &'a Shared,
    updates: &'a [OutcomeUpdate],
    give_up: &'a StopToken,
    out: &'a mut Recorded,
) -> BoxFuture<'a, ()> {
    Box::pin(async move {
        let written = write(shared, updates, give_up).await;
        settle(shared, updates, give_up, out, written).await;
    })
}

/// What follows a write of `updates` that ended with `written`.
async fn settle(
    shared: &Shared,
    updates: &[OutcomeUpdate],
    give_up: &StopToken,
    out: &mut Recorded,
    written: Result<Vec<JobId>, Error>,
) {
    match written {
        Ok(lost) => out.lost.extend(lost),
        Err(e) if e.is_transient() => {
            // Only after `give_up`: the stop deadline passed.
            error!(error = %e, jobs = updates.len(), "could not record outcomes before shutdown; these jobs will run again once their leases expire");
            out.unwritten.extend(updates.iter().map(|u| u.fence.id));
        }
        Err(e) if updates.len() > 1 => {
            warn!(error = %e, jobs = updates.len(), "the backend refused a batch of outcomes; recording them in halves to find the one it cannot store");
            let (a, b) = updates.split_at(updates.len() / 2);
            record_split(shared, a, give_up, out).await;
            record_split(shared, b, give_up, out).await;
        }
        Err(e) => {
            let update = &updates[0];
            let fallback = unstorable(update, &e, shared.cfg.max_error_bytes);
            error!(job_id = %update.fence.id, error = %e, "the backend cannot store this job's outcome; recording the job as failed instead");
            match write(shared, std::slice::from_ref(&fallback), give_up).await {
                Ok(lost) => {
                    out.lost.extend(lost);
                    out.failed_instead.push(update.fence.id);
                }
                Err(e2) => {
                    error!(job_id = %update.fence.id, error = %e2, "could not record the job as failed either; it will run again once its lease expires");
                    shared.health.failed("record", &e2);
                    out.unwritten.push(update.fence.id);
                }
            }
        }
    }
}

/// One backend call for `updates`, retried while the failure is transient
/// and `give_up` has not fired; a permanent failure is returned at once.
async fn write(
    shared: &Shared,
    updates: &[OutcomeUpdate],
    give_up: &StopToken,
) -> Result<Vec<JobId>, Error> {
    let mut failures = 0u32;
    loop {
        let call = shared.call(
            "record",
            shared.maintenance.record(&shared.worker_id, updates),
        );
        // Past the stop deadline, even a call in progress is abandoned.
        let result = tokio::select! {
            r = call => r,
            _ = give_up.cancelled() => return Err(Error::backend_msg(
                shared.backend().backend_name(),
                jobs_core::BackendErrorKind::Unavailable,
                "gave up recording: the stop deadline passed",
            )),
        };
        match result {
            Ok(lost) => {
                shared.health.ok("record");
                return Ok(lost);
            }
            Err(e) if e.is_transient() && !give_up.is_cancelled() => {
                let delay = backend_retry_delay(failures);
                failures += 1;
                shared.health.failed("record", &e);
                warn!(error = %e, jobs = updates.len(), retry_in = ?delay, "recording outcomes failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = give_up.cancelled() => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The outcome recorded instead of one the backend cannot store: the job
/// fails for good (retrying would produce the same outcome), saying why.
fn unstorable(update: &OutcomeUpdate, e: &Error, max_error_bytes: usize) -> OutcomeUpdate {
    let what = match &update.outcome {
        Outcome::Complete { .. } | Outcome::CompleteAndDelete => {
            "the handler succeeded, but its result"
        }
        _ => "the outcome of the attempt",
    };
    let message = truncate_message(
        &format!("{what} could not be stored, so the job is recorded as failed: {e}"),
        max_error_bytes,
    );
    OutcomeUpdate::new(
        update.fence,
        Outcome::Fail {
            error: AttemptFailure::new(message, false),
            result: None,
        },
    )
}

fn count(shared: &Shared, updates: &[OutcomeUpdate], recorded: &Recorded) {
    let c = &shared.counters;
    for u in updates {
        if recorded.lost.contains(&u.fence.id) {
            Counters::bump(&c.lost, 1);
            crate::metrics::lost(1);
            warn!(job_id = %u.fence.id, attempt = u.fence.attempt, "outcome discarded: the lease was lost and the job belongs to a newer attempt");
            continue;
        }
        if recorded.unwritten.contains(&u.fence.id) {
            continue;
        }
        if recorded.failed_instead.contains(&u.fence.id) {
            Counters::bump(&c.failed, 1);
            continue;
        }
        let counter = match u.outcome {
            Outcome::Complete { .. } | Outcome::CompleteAndDelete => &c.completed,
            Outcome::Fail { .. } => &c.failed,
            Outcome::Retry { .. } => &c.retried,
            Outcome::DeadLetter { .. } => &c.dead_lettered,
            Outcome::Release => &c.released,
            Outcome::Snooze { .. } => &c.snoozed,
            Outcome::Cancel { .. } => &c.cancelled,
        };
        Counters::bump(counter, 1);
    }
}
