//! The maintainer election: the managers sharing a backend elect one among
//! them to do the cluster's chores — recovering expired leases, pruning
//! finished jobs, firing periodic schedules — so N managers do not do them N
//! times. Every manager still works jobs. A maintainer that dies is replaced
//! once its lease on the role runs out (a lease of the manager's own length).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use jobs_core::Error;
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{info, warn};

use crate::shared::Shared;

/// The role's name in the backend.
pub(crate) const ROLE: &str = "maintainer";

/// Takes or renews the maintainer role every third of a lease, and says in
/// `shared.leader` whether this manager holds it. A backend without leader
/// election makes every manager its own maintainer (as before elections).
pub(crate) async fn maintainer_loop(shared: Arc<Shared>, stop: StopToken) {
    if !shared.cfg.maintainer {
        return;
    }
    let every = (shared.cfg.lease / 3).max(std::time::Duration::from_millis(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let call = shared
            .backend()
            .try_lead(ROLE, &shared.worker_id, shared.cfg.lease);
        let leads = match shared.call("lead", call).await {
            Ok(leads) => leads,
            Err(Error::Unsupported { .. }) => true,
            Err(e) => {
                // Unsure whether the lease still holds: step down, as another
                // manager may take the role once it runs out.
                warn!(error = %e, "could not renew the maintainer role; stepping down");
                false
            }
        };
        let was = shared.leader.swap(leads, Ordering::Relaxed);
        if leads != was {
            info!(worker_id = %shared.worker_id, leads, "maintainer role changed hands");
        }
    }
}

/// Gives the role up (on stop), so another manager takes it at once.
pub(crate) async fn resign(shared: &Shared) {
    if shared.leader.swap(false, Ordering::Relaxed) {
        let call = shared.backend().resign(ROLE, &shared.worker_id);
        if let Err(e) = shared.call("resign", call).await {
            warn!(error = %e, "could not give up the maintainer role; it passes on when its lease runs out");
        }
    }
}
