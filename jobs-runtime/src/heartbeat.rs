//! The heartbeat loop: keeps the leases of held jobs alive — running, or
//! waiting for their outcomes to be recorded. (A running job whose lease
//! could not be renewed in time is cancelled by the watchdog loop.)

use std::sync::Arc;
use std::time::Instant;

use jobs_core::CancelReason;
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{info, warn};

use crate::shared::Shared;

/// Every heartbeat interval, extends the lease of every held job (running,
/// or its outcome not yet written) in one backend call. A running job whose
/// lease turns out lost has its token fired with
/// [`CancelReason::LeaseLost`]: another worker may run it now.
pub(crate) async fn heartbeat_loop(shared: Arc<Shared>, stop: StopToken) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            // A cancellation was signalled: learn at once which jobs it is for.
            _ = shared.heartbeat_now.notified() => {}
        }
        let fences = shared.in_flight.leased_fences();
        if !fences.is_empty() {
            let sent_at = Instant::now();
            let beat = shared
                .maintenance
                .heartbeat(&shared.worker_id, &fences, shared.cfg.lease);
            match shared.call("heartbeat", beat).await {
                Ok(reply) => {
                    shared.health.ok("heartbeat");
                    let kept: Vec<_> = fences
                        .into_iter()
                        .filter(|f| !reply.lost.contains(&f.id))
                        .collect();
                    shared.in_flight.renewed(&kept, sent_at);
                    for fence in shared
                        .in_flight
                        .cancel_ids(&reply.lost, CancelReason::LeaseLost)
                    {
                        warn!(job_id = %fence.id, attempt = fence.attempt, "lease lost; another worker may run this job now");
                    }
                    for fence in shared
                        .in_flight
                        .cancel_ids(&reply.cancel, CancelReason::Cancelled)
                    {
                        info!(job_id = %fence.id, attempt = fence.attempt, "job cancelled; stopping it");
                    }
                }
                Err(e) => {
                    shared.health.failed("heartbeat", &e);
                    warn!(error = %e, jobs = fences.len(), "heartbeat failed; leases may expire if this persists");
                }
            }
        }
    }
}
