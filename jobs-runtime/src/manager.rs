//! `WorkerManager`: claims jobs from ordered queues, routes each to its handler,
//! retries, dead-letters, and shuts down without losing work. This file starts
//! and stops the manager's loops; the builder that makes one is in `builder.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{CancelReason, Error, Queue, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
// tokio's clock, not the system's: a test that paused and advanced time
// must not find the stop deadline already past.
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::claim::claim_loop;
use crate::health::Health;
use crate::maintainer::{self, maintainer_loop};
use crate::maintenance::{self, Maintenance};
use crate::periodic::periodic_loop;
use crate::reaper::reaper_loop;
use crate::retention::retention_loop;
use crate::shared::{Handoff, Outcomes, Shared, RECORD_GRACE};
use crate::stats::ManagerStats;
use crate::supervise::supervise;

/// The longest `stop()` waits for aborted tasks, or a recorder told to give up.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Runs handlers for jobs claimed from a queue backend.
///
/// ```no_run
/// use jobs_core::{Job, JobError, JobHandler, JobResult};
/// use jobs_runtime::WorkerManager;
///
/// struct Hello;
/// impl JobHandler for Hello {
///     fn job_type(&self) -> &str { "hello" }
///     async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
///         Ok(JobResult::success())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> jobs_core::Result<()> {
/// let queue = jobs_runtime::connect("memory://").await?;
/// let manager = WorkerManager::builder(queue)
///     .handler(Hello)
///     .queues(["critical", "default"])
///     .concurrency(16)
///     .build()?;
/// manager.run_until(tokio::signal::ctrl_c()).await
/// # }
/// ```
pub struct WorkerManager {
    shared: Arc<Shared>,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl std::fmt::Debug for WorkerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerManager")
            .field("worker_id", &self.shared.worker_id)
            .field("queues", &self.shared.cfg.queues)
            .field("concurrency", &self.shared.cfg.concurrency)
            .field("handlers", &self.shared.handler_names())
            .finish()
    }
}

struct Running {
    stop_claiming: StopToken,
    claimer: JoinHandle<()>,
    reaper: JoinHandle<()>,
    periodic: JoinHandle<()>,
    retention: JoinHandle<()>,
    sampler: JoinHandle<()>,
    maintainer: JoinHandle<()>,
    workflow: JoinHandle<()>,
    workflow_stop: StopToken,
    tasks: TaskTracker,
    outcomes: Outcomes,
    maintenance: Maintenance,
}

impl WorkerManager {
    /// A manager over `shared`, not yet started (see the builder).
    pub(crate) fn from_shared(shared: Shared) -> WorkerManager {
        WorkerManager {
            shared: Arc::new(shared),
            running: tokio::sync::Mutex::new(None),
        }
    }

    /// What its tasks share (for the runtime's own tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This worker's id, as written to `locked_by`.
    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// The queue handle the manager works on.
    pub fn queue(&self) -> &Queue {
        &self.shared.queue
    }

    /// Counters of what this manager has done.
    pub fn stats(&self) -> ManagerStats {
        self.shared.counters.snapshot()
    }

    /// Whether the manager works: running, degraded (a loop's backend calls
    /// fail; the last error says which and why), or stopped. Cheap; poll it
    /// from a readiness probe. It does not need a `tracing` subscriber.
    pub fn health(&self) -> Health {
        self.shared.health.snapshot()
    }

    /// Whether this manager is the cluster's maintainer now: the one manager
    /// among those sharing the backend that recovers expired leases, prunes
    /// and fires periodic schedules.
    pub fn is_maintainer(&self) -> bool {
        self.shared.is_leader()
    }

    /// The workers registered in the backend (this one included while it runs).
    pub async fn workers(&self) -> Result<Vec<jobs_core::WorkerInfo>> {
        self.shared.backend().workers().await
    }

    /// Jobs this manager holds right now (running or being recorded).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.len()
    }

    /// Starts claiming and running jobs in the background; returns at once.
    /// Watch [`health`](Self::health) to learn whether it keeps working.
    pub async fn start(&self) -> Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err(Error::Config(format!(
                "worker manager `{}` is already running",
                self.shared.worker_id
            )));
        }
        let shared = &self.shared;
        let (outcomes, rx) = mpsc::unbounded_channel();
        let maintenance = maintenance::start(shared.clone(), rx).map_err(|e| {
            Error::Config(format!(
                "could not start the thread for heartbeats and recording: {e}"
            ))
        })?;
        let stop_claiming = StopToken::new();
        let tasks = TaskTracker::new();
        let claimer = {
            let (shared, stop, tasks, outcomes) = (
                shared.clone(),
                stop_claiming.clone(),
                tasks.clone(),
                outcomes.clone(),
            );
            tokio::spawn(async move {
                supervise(&shared.health, "claim", || {
                    claim_loop(
                        shared.clone(),
                        stop.clone(),
                        tasks.clone(),
                        outcomes.clone(),
                    )
                })
                .await
            })
        };
        let reaper = {
            let (shared, stop, tasks) = (shared.clone(), stop_claiming.clone(), tasks.clone());
            tokio::spawn(async move {
                supervise(&shared.health, "reap", || {
                    reaper_loop(shared.clone(), stop.clone(), tasks.clone())
                })
                .await
            })
        };
        let periodic = {
            let (shared, stop) = (shared.clone(), stop_claiming.clone());
            tokio::spawn(async move {
                supervise(&shared.health, "periodic", || {
                    periodic_loop(shared.clone(), stop.clone())
                })
                .await
            })
        };
        let retention = {
            let (shared, stop) = (shared.clone(), stop_claiming.clone());
            tokio::spawn(async move {
                supervise(&shared.health, "prune", || {
                    retention_loop(shared.clone(), stop.clone())
                })
                .await
            })
        };
        let sampler = {
            let (shared, stop) = (shared.clone(), stop_claiming.clone());
            tokio::spawn(crate::metrics::sample_loop(shared, stop))
        };
        let maintainer = {
            let (shared, stop) = (shared.clone(), stop_claiming.clone());
            tokio::spawn(async move {
                supervise(&shared.health, "maintainer", || {
                    maintainer_loop(shared.clone(), stop.clone())
                })
                .await
            })
        };
        let workflow_stop = StopToken::new();
        let workflow = {
            let (shared, stop) = (shared.clone(), workflow_stop.clone());
            tokio::spawn(async move {
                supervise(&shared.health, "workflow", || {
                    crate::workflow::workflow_loop(
                        shared.clone(),
                        shared.steps_rx.clone(),
                        stop.clone(),
                    )
                })
                .await
            })
        };
        shared.health.started();
        info!(
            worker_id = %shared.worker_id,
            backend = shared.backend().backend_name(),
            queues = ?shared.cfg.queues,
            concurrency = shared.cfg.concurrency,
            handlers = %shared.handler_names(),
            "worker manager started"
        );
        *running = Some(Running {
            stop_claiming,
            claimer,
            reaper,
            periodic,
            retention,
            sampler,
            maintainer,
            workflow,
            workflow_stop,
            tasks,
            outcomes,
            maintenance,
        });
        Ok(())
    }

    /// Graceful stop: stops claiming, fires every running job's cancellation
    /// token, lets in-flight jobs finish up to the shutdown timeout, then aborts
    /// the rest and releases them back to the queue, and records every outcome.
    /// Nothing is lost; a no-op when not running.
    ///
    /// It returns within the shutdown timeout plus 5 s for recording, whatever
    /// the backend does (25 s by default, inside Kubernetes' 30 s grace
    /// period): outcomes it could not record by then come back as failed
    /// attempts when their leases expire.
    pub async fn stop(&self) -> Result<()> {
        let Some(run) = self.running.lock().await.take() else {
            return Ok(());
        };
        let shared = &self.shared;
        let cfg = &shared.cfg;
        let deadline = Instant::now() + cfg.shutdown_timeout + RECORD_GRACE;
        info!(worker_id = %shared.worker_id, in_flight = self.in_flight(), "worker manager stopping");
        run.stop_claiming.cancel();
        let mut claimer = run.claimer;
        if timeout_at(deadline, &mut claimer).await.is_err() {
            // A claim stuck past every deadline: what it took comes back by lease expiry.
            claimer.abort();
        }
        run.reaper.abort();
        run.periodic.abort();
        run.retention.abort();
        run.sampler.abort();
        run.maintainer.abort();
        maintainer::resign(shared).await;
        shared.in_flight.cancel_all(CancelReason::Shutdown);
        run.tasks.close();
        if timeout(cfg.shutdown_timeout, run.tasks.wait())
            .await
            .is_err()
        {
            let released = shared.in_flight.release_running();
            warn!(
                jobs = released.len(),
                timeout = ?cfg.shutdown_timeout,
                "jobs did not finish within the shutdown timeout; aborted and released back to the queue"
            );
            for fence in released {
                let _ = run.outcomes.send(Handoff {
                    update: OutcomeUpdate::new(fence, Outcome::Release),
                    _window: None,
                    step: None,
                });
            }
            let grace = deadline
                .saturating_duration_since(Instant::now())
                .min(ABORT_GRACE);
            if timeout(grace, run.tasks.wait()).await.is_err() {
                error!("some handlers ignore abort (blocking code?); their jobs stay leased until the lease expires");
            }
        }
        // The recorder ends once every sender is gone: ours, the claim loop's, the jobs'.
        drop(run.outcomes);
        let Maintenance {
            stop,
            give_up,
            mut recorded,
            ended,
        } = run.maintenance;
        if timeout_at(deadline, &mut recorded).await.is_err() {
            give_up.cancel();
            let _ = timeout(ABORT_GRACE, recorded).await;
        }
        stop.cancel();
        let _ = timeout(ABORT_GRACE, ended).await;
        // The steps whose outcomes were just written are followed up now.
        run.workflow_stop.cancel();
        let _ = timeout(ABORT_GRACE, run.workflow).await;
        let bye = shared.backend().deregister_worker(&shared.worker_id);
        let _ = timeout_at(deadline, shared.call("deregister", bye)).await;
        shared.health.stopped();
        info!(worker_id = %shared.worker_id, stats = ?self.stats(), "worker manager stopped");
        Ok(())
    }

    /// Starts (if not running), runs until every job in this manager's queues
    /// has reached a terminal status — COMPLETED, FAILED or DEAD_LETTER, so
    /// retries and scheduled jobs are waited for too — then stops gracefully.
    /// For batch programs, scripts and tests; a service uses [`run_until`](Self::run_until).
    pub async fn run_until_drained(&self) -> Result<()> {
        if self.running.lock().await.is_none() {
            self.start().await?;
        }
        let queues = &self.shared.cfg.queues;
        loop {
            // While this manager holds jobs the queues are busy: no need to
            // count the whole table (which costs a database a scan) to know.
            if self.in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let counts = self
                .shared
                .call("counts", self.shared.backend().counts())
                .await?;
            let busy = counts
                .iter()
                .any(|c| !c.status.is_terminal() && queues.contains(&c.queue));
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop().await
    }

    /// Starts, runs until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then stops gracefully.
    pub async fn run_until<F: Future>(&self, signal: F) -> Result<()> {
        self.start().await?;
        signal.await;
        self.stop().await
    }
}

impl Drop for WorkerManager {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.try_lock() {
            if let Some(run) = running.take() {
                warn!(
                    worker_id = %self.shared.worker_id,
                    "WorkerManager dropped while running; call stop() to release in-flight jobs (their leases will expire)"
                );
                run.stop_claiming.cancel();
                run.maintenance.stop.cancel();
                run.maintenance.give_up.cancel();
            }
        }
    }
}
