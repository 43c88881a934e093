//! The loops that keep leases and outcomes moving — heartbeat, recorder and
//! watchdog — on a thread of their own.
//!
//! A handler that blocks its thread (`std::thread::sleep`, a synchronous
//! client, heavy CPU) stalls every task on that runtime thread. If lease
//! renewal and outcome recording ran there too, a few blocked handlers would
//! let the leases of healthy jobs expire, and other workers would run those
//! jobs a second time. So these loops run on a single-threaded runtime of
//! their own, talking to the backend through connections of their own
//! (`Backend::detached`; a backend may route some calls of that handle
//! elsewhere — Redis records through the main connection, which blocked
//! threads can delay but which costs no lease: the heartbeat renews a job
//! until its outcome is written). With `isolate_maintenance(false)` they run
//! as ordinary tasks instead.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::sync::CancellationToken as StopToken;

use crate::heartbeat::heartbeat_loop;
use crate::recorder::recorder_loop;
use crate::registry::{progress_loop, registry_loop};
use crate::shared::{Handoff, Shared};
use crate::supervise::supervise;
use crate::watchdog::watchdog_loop;

/// The running maintenance loops.
#[derive(Debug)]
pub(crate) struct Maintenance {
    /// Stops the heartbeat and the watchdog.
    pub(crate) stop: StopToken,
    /// Makes the recorder give up on what it could not write yet.
    pub(crate) give_up: StopToken,
    /// Fires once the recorder has written everything it was handed (every
    /// sender of outcomes being gone) or given up.
    pub(crate) recorded: oneshot::Receiver<()>,
    /// Fires once every loop has ended.
    pub(crate) ended: oneshot::Receiver<()>,
}

/// Starts the loops, on a thread of their own if `shared.cfg.isolate_maintenance`.
pub(crate) fn start(
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<Handoff>,
) -> std::io::Result<Maintenance> {
    let stop = StopToken::new();
    let give_up = StopToken::new();
    let (recorded_tx, recorded) = oneshot::channel();
    let (ended_tx, ended) = oneshot::channel();
    let run = run(
        shared.clone(),
        outcomes,
        stop.clone(),
        give_up.clone(),
        recorded_tx,
    );
    if shared.cfg.isolate_maintenance {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("jobs-maintenance-{}", shared.worker_id))
            .spawn(move || {
                rt.block_on(run);
                let _ = ended_tx.send(());
            })?;
    } else {
        tokio::spawn(async move {
            run.await;
            let _ = ended_tx.send(());
        });
    }
    Ok(Maintenance {
        stop,
        give_up,
        recorded,
        ended,
    })
}

async fn run(
    shared: Arc<Shared>,
    outcomes: mpsc::UnboundedReceiver<Handoff>,
    stop: StopToken,
    give_up: StopToken,
    recorded: oneshot::Sender<()>,
) {
    let heartbeat = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            supervise(&shared.health, "heartbeat", || {
                heartbeat_loop(shared.clone(), stop.clone())
            })
            .await
        })
    };
    let watchdog = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            supervise(&shared.health, "watchdog", || {
                watchdog_loop(shared.clone(), stop.clone())
            })
            .await
        })
    };
    let registry = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            supervise(&shared.health, "registry", || {
                registry_loop(shared.clone(), stop.clone())
            })
            .await
        })
    };
    let progress = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            supervise(&shared.health, "progress", || {
                progress_loop(shared.clone(), stop.clone())
            })
            .await
        })
    };
    // The receiver outlives a recorder that panicked, so a new one takes over.
    let outcomes = Arc::new(Mutex::new(outcomes));
    supervise(&shared.health, "record", || {
        let (shared, outcomes, give_up) = (shared.clone(), outcomes.clone(), give_up.clone());
        async move {
            let mut rx = outcomes.lock().await;
            recorder_loop(shared, &mut rx, give_up).await
        }
    })
    .await;
    let _ = recorded.send(());
    stop.cancelled().await;
    for task in [heartbeat, watchdog, registry, progress] {
        let _ = task.await;
    }
}
