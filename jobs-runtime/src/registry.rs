//! The registry loop: keeps this manager's entry in the backend's registry of
//! running workers fresh (host, pid, version, queues, concurrency, running
//! jobs, health, leadership), so the CLI and the dashboard can list every
//! worker of the cluster. An entry not refreshed for a lease disappears.

use std::sync::Arc;

use jobs_core::{Error, WorkerInfo};
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{debug, warn};

use crate::health::HealthState;
use crate::shared::Shared;

/// This manager as the registry shows it.
pub(crate) fn info(shared: &Shared) -> WorkerInfo {
    let health = shared.health.snapshot();
    let mut info = WorkerInfo::new(shared.worker_id.to_string());
    info.host = crate::shared::host_name();
    info.version.clone_from(&shared.cfg.version);
    info.queues.clone_from(&shared.cfg.queues);
    info.concurrency = u32::try_from(shared.cfg.concurrency).unwrap_or(u32::MAX);
    info.running = u32::try_from(shared.in_flight.running()).unwrap_or(u32::MAX);
    info.health = match (&health.state, &health.last_error) {
        (HealthState::Degraded, Some(e)) => format!("degraded: {}: {}", e.part, e.message),
        (state, _) => format!("{state:?}").to_lowercase(),
    };
    info.leader = shared.is_leader();
    info.started_at = shared.started_at;
    info
}

/// Every heartbeat interval, refreshes this manager's registry entry for a
/// lease. Ends quietly if the backend keeps no registry.
pub(crate) async fn registry_loop(shared: Arc<Shared>, stop: StopToken) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let entry = info(&shared);
        let call = shared.maintenance.register_worker(&entry, shared.cfg.lease);
        match shared.call("register", call).await {
            Ok(()) => {}
            Err(e @ Error::Unsupported { .. }) => {
                debug!(reason = %e, "the backend keeps no worker registry");
                return;
            }
            Err(e) => warn!(error = %e, "could not refresh this worker's registry entry"),
        }
    }
}

/// Every quarter of a second, writes the progress the running jobs reported
/// since (only the latest of each). Ends quietly if the backend keeps none.
pub(crate) async fn progress_loop(shared: Arc<Shared>, stop: StopToken) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let updates = shared.in_flight.take_progress();
        if updates.is_empty() {
            continue;
        }
        let call = shared.maintenance.record_progress(&updates);
        match shared.call("progress", call).await {
            Ok(()) => {}
            Err(e @ Error::Unsupported { .. }) => {
                debug!(reason = %e, "the backend keeps no progress");
                return;
            }
            Err(e) => debug!(error = %e, "could not write progress (the next report will)"),
        }
    }
}

/// How often progress reports are written, at most.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
