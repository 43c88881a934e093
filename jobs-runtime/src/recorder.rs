//! The recorder loop: writes outcomes to the backend in batches.

use std::sync::Arc;

use jobs_core::backend::{Outcome, OutcomeUpdate};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{error, warn};

use crate::backend_retry::backend_retry_delay;
use crate::shared::Shared;
use crate::stats::Counters;

/// Most outcomes written in one backend call.
const MAX_BATCH: usize = 512;

/// Takes outcomes as they come and records whatever has piled up in one backend
/// call, so a busy worker writes in batches and an idle one without delay.
/// Returns when every sender is gone and everything is recorded (or, after
/// `give_up` fires, could not be: those jobs' leases expire and they run again).
pub(crate) async fn recorder_loop(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<OutcomeUpdate>,
    give_up: StopToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        record(&shared, &batch, &give_up).await;
        batch.clear();
    }
}

async fn record(shared: &Shared, batch: &[OutcomeUpdate], give_up: &StopToken) {
    let mut failures = 0u32;
    let lost = loop {
        match shared
            .queue
            .backend()
            .record(&shared.worker_id, batch)
            .await
        {
            Ok(lost) => break lost,
            Err(e) if give_up.is_cancelled() => {
                error!(error = %e, jobs = batch.len(), "could not record outcomes before shutdown; these jobs will run again once their leases expire");
                break Vec::new();
            }
            Err(e) => {
                let delay = backend_retry_delay(failures);
                failures += 1;
                warn!(error = %e, jobs = batch.len(), retry_in = ?delay, "recording outcomes failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = give_up.cancelled() => {}
                }
            }
        }
    };
    let c = &shared.counters;
    for u in batch {
        if lost.contains(&u.fence.id) {
            Counters::bump(&c.lost, 1);
            warn!(job_id = %u.fence.id, attempt = u.fence.attempt, "outcome discarded: the lease was lost and the job belongs to a newer attempt");
            continue;
        }
        let counter = match u.outcome {
            Outcome::Complete { .. } => &c.completed,
            Outcome::Fail { .. } => &c.failed,
            Outcome::Retry { .. } => &c.retried,
            Outcome::DeadLetter { .. } => &c.dead_lettered,
            Outcome::Release => &c.released,
        };
        Counters::bump(counter, 1);
    }
    shared.in_flight.remove(batch.iter().map(|u| &u.fence));
}
