//! The heartbeat loop: keeps the leases of held jobs alive.

use std::sync::Arc;

use jobs_core::CancelReason;
use tokio_util::sync::CancellationToken as StopToken;
use tracing::warn;

use crate::shared::Shared;

/// Every heartbeat interval, extends the lease of every job this manager holds,
/// in one backend call; a job whose lease turns out lost has its token fired.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>, stop: StopToken) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let fences = shared.in_flight.fences();
        if fences.is_empty() {
            continue;
        }
        match shared
            .queue
            .backend()
            .heartbeat(&shared.worker_id, &fences, shared.cfg.lease)
            .await
        {
            Ok(lost) if !lost.is_empty() => {
                for fence in shared.in_flight.cancel_ids(&lost, CancelReason::LeaseLost) {
                    warn!(job_id = %fence.id, attempt = fence.attempt, "lease lost; another worker may run this job now");
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, jobs = fences.len(), "heartbeat failed; leases may expire if this persists")
            }
        }
    }
}
