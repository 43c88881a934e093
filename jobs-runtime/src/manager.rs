//! `WorkerManager`: claims jobs from ordered queues, routes each to its handler,
//! retries, dead-letters, and shuts down without losing work.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jobs_core::{
    Backoff, CancelReason, CancellationToken, DynHandler, Error, Fence, HandlerRegistration,
    JobHandler, Outcome, OutcomeUpdate, Queue, Result, ServiceRequirement, Services,
};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::lease::{heartbeat_loop, reaper_loop};
use crate::outcome::recorder_loop;
use crate::stats::{Counters, ManagerStats};
use crate::worker::claim_loop;

/// Settings of a manager; see the builder's methods for defaults.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) poll: Duration,
    pub(crate) reap: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) job_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queues: vec![jobs_core::DEFAULT_QUEUE.to_owned()],
            concurrency: 10,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            reap: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            job_timeout: None,
        }
    }
}

/// A job this manager holds a lease on.
pub(crate) struct InFlight {
    pub(crate) cancel: CancellationToken,
    pub(crate) abort: Option<AbortHandle>,
    /// The handler (or its `on_failure`) is still running.
    pub(crate) running: bool,
    /// Shutdown gave up on it and released it; its own outcome must not be sent.
    pub(crate) released: bool,
}

impl InFlight {
    pub(crate) fn running(cancel: CancellationToken) -> Self {
        InFlight {
            cancel,
            abort: None,
            running: true,
            released: false,
        }
    }

    pub(crate) fn finished() -> Self {
        InFlight {
            running: false,
            ..InFlight::running(CancellationToken::new())
        }
    }
}

/// What the manager's tasks share.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    pub(crate) handlers: HashMap<String, Arc<dyn DynHandler>>,
    pub(crate) services: Services,
    pub(crate) cfg: Config,
    pub(crate) worker_id: Arc<str>,
    pub(crate) counters: Counters,
    in_flight: Mutex<HashMap<Fence, InFlight>>,
}

impl Shared {
    pub(crate) fn in_flight_lock(&self) -> MutexGuard<'_, HashMap<Fence, InFlight>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn handler_names(&self) -> String {
        let mut names: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }
}

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
    /// Starts configuring a manager over `queue` (a [`Queue`] from `connect`, or any backend).
    pub fn builder(queue: impl Into<Queue>) -> WorkerManagerBuilder {
        WorkerManagerBuilder {
            queue: queue.into(),
            handlers: Vec::new(),
            services: Services::new(),
            cfg: Config::default(),
            worker_id: None,
            auto_register: true,
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
        self.shared.in_flight_lock().len()
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
        for entry in shared.in_flight_lock().values() {
            entry.cancel.cancel(CancelReason::Shutdown);
        }
        run.tasks.close();
        if tokio::time::timeout(shared.cfg.shutdown_timeout, run.tasks.wait())
            .await
            .is_err()
        {
            let mut released = Vec::new();
            for (fence, entry) in shared.in_flight_lock().iter_mut() {
                if entry.running && !entry.released {
                    entry.released = true;
                    if let Some(abort) = &entry.abort {
                        abort.abort();
                    }
                    released.push(*fence);
                }
            }
            warn!(
                jobs = released.len(),
                timeout = ?shared.cfg.shutdown_timeout,
                "jobs did not finish within the shutdown timeout; aborted and released back to the queue"
            );
            for fence in released {
                let _ = run.outcomes.send(OutcomeUpdate {
                    fence,
                    outcome: Outcome::Release,
                });
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

/// Where a handler was registered, for error messages.
struct HandlerEntry {
    handler: Arc<dyn DynHandler>,
    origin: String,
    name: String,
    requirements: Vec<ServiceRequirement>,
    registration: Option<&'static HandlerRegistration>,
}

/// Configures a [`WorkerManager`]; see [`WorkerManager::builder`].
pub struct WorkerManagerBuilder {
    queue: Queue,
    handlers: Vec<HandlerEntry>,
    services: Services,
    cfg: Config,
    worker_id: Option<String>,
    auto_register: bool,
}

impl std::fmt::Debug for WorkerManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerManagerBuilder")
            .field("queue", &self.queue)
            .field("handlers", &self.handlers.len())
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl WorkerManagerBuilder {
    /// Adds a hand-written handler (the seed's constructor-injection style).
    #[track_caller]
    pub fn handler<H: JobHandler>(self, handler: H) -> Self {
        let caller = std::panic::Location::caller();
        self.push_handler(Arc::new(handler), std::any::type_name::<H>(), caller)
    }

    /// Adds a shared, type-erased handler.
    #[track_caller]
    pub fn handler_arc(self, handler: Arc<dyn DynHandler>) -> Self {
        let caller = std::panic::Location::caller();
        let name = std::any::type_name_of_val(&*handler);
        self.push_handler(handler, name, caller)
    }

    fn push_handler(
        mut self,
        handler: Arc<dyn DynHandler>,
        name: &str,
        caller: &std::panic::Location<'_>,
    ) -> Self {
        self.handlers.push(HandlerEntry {
            name: name.to_owned(),
            requirements: handler.requirements(),
            handler,
            origin: format!("{}:{}", caller.file(), caller.line()),
            registration: None,
        });
        self
    }

    /// Adds a `#[job_handler]` explicitly (for when link-time registration is
    /// unavailable or turned off with `auto_register(false)`).
    pub fn register(mut self, registration: &'static HandlerRegistration) -> Self {
        self.handlers.push(entry_of(registration));
        self
    }

    /// Whether every `#[job_handler]` linked into the binary is registered (default: yes).
    pub fn auto_register(mut self, yes: bool) -> Self {
        self.auto_register = yes;
        self
    }

    /// A service injected into handlers as `Data<T>`.
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.services.insert(value);
        self
    }

    /// A shared service (also a trait object: `Arc<dyn Mailer>` as `Data<dyn Mailer>`).
    pub fn data_arc<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.services.insert_arc(value);
        self
    }

    /// The queues to work, in priority order: a job of an earlier queue always
    /// goes before any job of a later one. Default: `["default"]`.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cfg.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The most jobs running at once (default 10). Jobs claimed but not started
    /// never exceed it either.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.cfg.concurrency = n;
        self
    }

    /// How long a claim holds a job without a heartbeat (default 30 s).
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.cfg.lease = d;
        self
    }

    /// How often leases of running jobs are extended (default 10 s).
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.cfg.heartbeat = d;
        self
    }

    /// The longest an idle manager waits before looking for work without a
    /// wake-up signal (default 1 s). Where the backend signals all work across
    /// processes (PostgreSQL, Redis, memory) it only polls every fifth interval,
    /// as a safety net.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.cfg.poll = d;
        self
    }

    /// How often expired leases of dead workers are recovered (default 5 s).
    pub fn reap_interval(mut self, d: Duration) -> Self {
        self.cfg.reap = d;
        self
    }

    /// How long `stop()` lets in-flight jobs finish before releasing them (default 30 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.cfg.shutdown_timeout = d;
        self
    }

    /// The backoff between retries for handlers that don't set their own
    /// (default: 2 s doubling, capped at 1 h, ±20 % jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.cfg.backoff = backoff;
        self
    }

    /// A time limit for attempts of handlers that don't set their own (default: none).
    pub fn job_timeout(mut self, d: Duration) -> Self {
        self.cfg.job_timeout = Some(d);
        self
    }

    /// This worker's id in `locked_by` (default: `hostname-pid-random`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Checks everything and builds the manager: two handlers for one job type,
    /// a `Data<T>` some handler needs but nobody provided, and inconsistent
    /// settings are errors here, never per job at run time.
    pub fn build(mut self) -> Result<WorkerManager> {
        let cfg = &self.cfg;
        if cfg.concurrency == 0 {
            return Err(Error::Config("concurrency must be at least 1".into()));
        }
        if cfg.queues.is_empty() || cfg.queues.iter().any(|q| q.is_empty()) {
            return Err(Error::Config(format!(
                "queues must be a non-empty list of non-empty names, got {:?}",
                cfg.queues
            )));
        }
        if cfg.heartbeat >= cfg.lease {
            return Err(Error::Config(format!(
                "heartbeat interval ({:?}) must be shorter than the lease ({:?}), or leases expire between heartbeats",
                cfg.heartbeat, cfg.lease
            )));
        }
        if self.auto_register {
            for reg in jobs_core::registered_handlers() {
                self.handlers.push(entry_of(reg));
            }
        }
        let mut handlers: HashMap<String, Arc<dyn DynHandler>> = HashMap::new();
        let mut seen: HashMap<String, &HandlerEntry> = HashMap::new();
        for entry in &self.handlers {
            let job_type = entry.handler.job_type().to_owned();
            if let Some(first) = seen.get(&job_type) {
                let same_registration = matches!(
                    (first.registration, entry.registration),
                    (Some(a), Some(b)) if a.is_same(b)
                );
                if same_registration {
                    continue;
                }
                return Err(Error::Config(format!(
                    "two handlers for job type `{job_type}`: `{}` at {} and `{}` at {}; keep one, or give one a different job type",
                    first.name, first.origin, entry.name, entry.origin
                )));
            }
            for req in &entry.requirements {
                if !self.services.contains(req.type_id) {
                    return Err(Error::Config(format!(
                        "handler `{}` for job type `{job_type}` ({}) needs `Data<{}>`, but the WorkerManager was given none; add `.data(..)` with a `{}` to the builder",
                        entry.name, entry.origin, req.type_name, req.type_name
                    )));
                }
            }
            handlers.insert(job_type.clone(), entry.handler.clone());
            seen.insert(job_type, entry);
        }
        if handlers.is_empty() {
            warn!("worker manager has no handlers: every job it claims will fail with `no handler`; register handlers with `.handler(..)`, or check that the crate with your #[job_handler]s is linked");
        }
        let worker_id: Arc<str> =
            Arc::from(self.worker_id.take().unwrap_or_else(default_worker_id));
        Ok(WorkerManager {
            shared: Arc::new(Shared {
                queue: self.queue,
                handlers,
                services: self.services,
                cfg: self.cfg,
                worker_id,
                counters: Counters::default(),
                in_flight: Mutex::new(HashMap::new()),
            }),
            running: tokio::sync::Mutex::new(None),
        })
    }
}

fn entry_of(reg: &'static HandlerRegistration) -> HandlerEntry {
    HandlerEntry {
        handler: (reg.make)(),
        origin: format!("{}:{}", reg.file, reg.line),
        name: reg.handler_name.to_owned(),
        requirements: (reg.requirements)(),
        registration: Some(reg),
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}
