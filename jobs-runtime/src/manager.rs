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
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::claim::claim_loop;
use crate::heartbeat::heartbeat_loop;
use crate::reaper::reaper_loop;
use crate::recorder::recorder_loop;
use crate::shared::Shared;
use crate::stats::ManagerStats;

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
    tasks: TaskTracker,
    outcomes: mpsc::UnboundedSender<OutcomeUpdate>,
    recorder: JoinHandle<()>,
    give_up_recording: StopToken,
    stop_maintenance: StopToken,
    maintenance: Vec<JoinHandle<()>>,
}

impl WorkerManager {
    /// A manager over `shared`, not yet started (see the builder).
    pub(crate) fn from_shared(shared: Shared) -> WorkerManager {
        WorkerManager {
            shared: Arc::new(shared),
            running: tokio::sync::Mutex::new(None),
        }
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

    /// Jobs this manager holds right now (running or being recorded).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.len()
    }

    /// Starts claiming and running jobs in the background; returns at once.
    pub async fn start(&self) -> Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Err(Error::Config(format!(
                "worker manager `{}` is already running",
                self.shared.worker_id
            )));
        }
        let shared = &self.shared;
        let listener = match shared.queue.backend().listener(&shared.cfg.queues).await {
            Ok(l) => Some(l),
            Err(e @ Error::Unsupported { .. }) => {
                info!(reason = %e, poll = ?shared.cfg.poll, "the backend sends no wake-up signals; polling for work");
                None
            }
            Err(e) => {
                warn!(error = %e, poll = ?shared.cfg.poll, "no wake-up signal from the backend; polling instead");
                None
            }
        };
        let stop_claiming = StopToken::new();
        let stop_maintenance = StopToken::new();
        let give_up_recording = StopToken::new();
        let tasks = TaskTracker::new();
        let (outcomes, rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(recorder_loop(shared.clone(), rx, give_up_recording.clone()));
        let claimer = tokio::spawn(claim_loop(
            shared.clone(),
            listener,
            stop_claiming.clone(),
            tasks.clone(),
            outcomes.clone(),
        ));
        let maintenance = vec![
            tokio::spawn(heartbeat_loop(shared.clone(), stop_maintenance.clone())),
            tokio::spawn(reaper_loop(
                shared.clone(),
                stop_claiming.clone(),
                tasks.clone(),
            )),
        ];
        info!(
            worker_id = %shared.worker_id,
            backend = shared.queue.backend().backend_name(),
            queues = ?shared.cfg.queues,
            concurrency = shared.cfg.concurrency,
            handlers = %shared.handler_names(),
            "worker manager started"
        );
        *running = Some(Running {
            stop_claiming,
            claimer,
            tasks,
            outcomes,
            recorder,
            give_up_recording,
            stop_maintenance,
            maintenance,
        });
        Ok(())
    }

    /// Graceful stop: stops claiming, fires every running job's cancellation
    /// token, lets in-flight jobs finish up to the shutdown timeout, then aborts
    /// the rest and releases them back to the queue, and records every outcome.
    /// Nothing is lost; a no-op when not running.
    pub async fn stop(&self) -> Result<()> {
        let Some(run) = self.running.lock().await.take() else {
            return Ok(());
        };
        let shared = &self.shared;
        info!(worker_id = %shared.worker_id, in_flight = self.in_flight(), "worker manager stopping");
        run.stop_claiming.cancel();
        if let Err(e) = run.claimer.await {
            error!(error = %e, "claim loop ended abnormally");
        }
        shared.in_flight.cancel_all(CancelReason::Shutdown);
        run.tasks.close();
        if tokio::time::timeout(shared.cfg.shutdown_timeout, run.tasks.wait())
            .await
            .is_err()
        {
            let released = shared.in_flight.release_running();
            warn!(
                jobs = released.len(),
                timeout = ?shared.cfg.shutdown_timeout,
                "jobs did not finish within the shutdown timeout; aborted and released back to the queue"
            );
            for fence in released {
                let _ = run
                    .outcomes
                    .send(OutcomeUpdate::new(fence, Outcome::Release));
            }
            if tokio::time::timeout(Duration::from_secs(5), run.tasks.wait())
                .await
                .is_err()
            {
                error!("some handlers ignore abort (blocking code?); their jobs stay leased until the lease expires");
            }
        }
        // The recorder ends once every sender is gone: ours, the claim loop's, the jobs'.
        drop(run.outcomes);
        let give_up = run.give_up_recording.clone();
        let deadline = shared.cfg.shutdown_timeout.max(Duration::from_secs(5));
        let mut recorder = run.recorder;
        if tokio::time::timeout(deadline, &mut recorder).await.is_err() {
            give_up.cancel();
            let _ = recorder.await;
        }
        run.stop_maintenance.cancel();
        for task in run.maintenance {
            let _ = task.await;
        }
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
            let counts = self.shared.queue.counts().await?;
            let busy = counts
                .iter()
                .any(|c| !c.status.is_terminal() && queues.contains(&c.queue));
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
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
                run.stop_maintenance.cancel();
                run.give_up_recording.cancel();
            }
        }
    }
}
