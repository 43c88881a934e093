//! `WorkerManagerBuilder`: configures a [`WorkerManager`] and checks
//! everything before it runs — handlers, the services they need, settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::registry::DynHandler;
use jobs_core::{
    Backoff, Error, HandlerRegistration, JobHandler, Periodic, Queue, Result, ServiceRequirement,
    Services, Timeout,
};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::health::HealthBoard;
use crate::in_flight::InFlight;
use crate::manager::WorkerManager;
use crate::periodic::Schedule;
use crate::retention::Retention;
use crate::shared::{Config, Shared};
use crate::stats::Counters;
use crate::watchdog::Ticks;

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
            check_workflows: true,
            strict: false,
            periodic: Vec::new(),
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
    check_workflows: bool,
    strict: bool,
    periodic: Vec<Periodic>,
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
    /// Adds a hand-written handler (its services given to its constructor).
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
            name: readable(name),
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

    /// Whether `build()` refuses a manager that lacks a handler for a step of
    /// a workflow declared with `jobs::workflow_steps!` whose queue it works
    /// (default `true`).
    pub fn check_workflows(mut self, yes: bool) -> Self {
        self.check_workflows = yes;
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

    /// How often the leases of held jobs (running, or with their outcomes
    /// not yet written) are extended (default 10 s).
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

    /// How long `stop()` lets in-flight jobs finish before releasing them
    /// (default 20 s). Recording what they produced gets at most 5 s more, so
    /// `stop()` returns within 25 s by default — inside the 30 s Kubernetes
    /// gives a pod between SIGTERM and SIGKILL.
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

    /// The time limit of an attempt (and of its `on_failure`) for jobs and
    /// handlers that don't set their own (default [`Timeout::DEFAULT`], 5
    /// minutes). An attempt past it is cut off as a retryable failure.
    /// [`Timeout::Never`] turns it off: then a handler stuck on a socket with
    /// no timeout of its own holds its job for as long as the worker lives.
    pub fn job_timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.cfg.job_timeout = timeout.into();
        self
    }

    /// How long any one backend call of the manager (claim, heartbeat,
    /// record, recover) may take before it counts as failed (default 10 s),
    /// so a hung database cannot hang the manager.
    pub fn backend_timeout(mut self, d: Duration) -> Self {
        self.cfg.backend_timeout = d;
        self
    }

    /// How many outcomes may be produced but not yet recorded (default:
    /// twice the concurrency, so that one claim's outcomes are written while
    /// the next claim's jobs end). A job whose attempt ended keeps its slot
    /// until there is room, so at most `concurrency + recording_window` jobs
    /// are ever claimed but not recorded (what a crash of the worker can make
    /// run again), and a worker never runs ahead of its recorder.
    pub fn recording_window(mut self, n: usize) -> Self {
        self.cfg.recording_window = n;
        self
    }

    /// How long a handler may block its thread without yielding before the
    /// manager logs a warning naming the job (default 500 ms).
    pub fn blocking_warning(mut self, d: Duration) -> Self {
        self.cfg.blocking_warning = d;
        self
    }

    /// The largest result (as JSON) a job may store (default 16 MiB). A
    /// handler that returns more fails permanently, saying so.
    pub fn max_result_bytes(mut self, n: usize) -> Self {
        self.cfg.max_result_bytes = n;
        self
    }

    /// The longest error message stored per failed attempt (default 16 KiB);
    /// longer ones are cut, saying how long they were.
    pub fn max_error_bytes(mut self, n: usize) -> Self {
        self.cfg.max_error_bytes = n;
        self
    }

    /// How long a cancelled job's handler may go on before it is cut off
    /// (default 10 s). Its cancellation token fires at once; a handler that
    /// ignores it is aborted after this long.
    pub fn cancel_grace(mut self, d: Duration) -> Self {
        self.cfg.cancel_grace = d;
        self
    }

    /// How often one job may snooze (`JobResult::snooze`) before a snooze
    /// counts as a retryable failure (default 100), so a job cannot snooze
    /// for ever unnoticed.
    pub fn max_snoozes(mut self, n: u32) -> Self {
        self.cfg.max_snoozes = n;
        self
    }

    /// Whether this manager may be elected the cluster's maintainer (default
    /// yes): the one manager among those sharing a backend that recovers
    /// expired leases, prunes finished jobs and fires periodic schedules.
    /// At least one manager of a cluster must be able to.
    pub fn maintainer(mut self, yes: bool) -> Self {
        self.cfg.maintainer = yes;
        self
    }

    /// Adds a periodic schedule: its job is enqueued at every tick of its
    /// cron expression, once across all managers sharing the backend (see
    /// [`Periodic`]). `#[job_handler(.., cron = "..")]` adds one for its
    /// handler. An invalid expression or time zone fails `build()`.
    pub fn periodic(mut self, periodic: Periodic) -> Self {
        self.periodic.push(periodic);
        self
    }

    /// How often the cluster's maintainer samples the jobs per queue and
    /// status into the `jobs_queue_jobs` gauge (one `counts()` call; default
    /// 15 s; `None`: never). The other metrics need no setting: see
    /// `jobs::metrics`.
    pub fn metrics_interval(mut self, every: Option<Duration>) -> Self {
        self.cfg.metrics_interval = every;
        self
    }

    /// How long finished jobs are kept before the maintainer deletes them
    /// (default: COMPLETED a day, FAILED and DEAD_LETTER a week; see
    /// [`Retention`]). `Retention::keep_all()` turns pruning off.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.cfg.retention = retention;
        self
    }

    /// Limits for `queue`: at most `global` of its jobs running across every
    /// manager (enforced by the backend), at most `local` in this one, at
    /// most `rate` started per period across every manager. Jobs held back
    /// stay waiting, unclaimed. Every manager working the queue should be
    /// given the same global and rate limits.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use jobs_core::QueueLimit;
    /// # let queue = jobs_core::Queue::new(jobs_runtime::backend::memory::MemoryBackend::new());
    /// let manager = jobs_runtime::WorkerManager::builder(queue)
    ///     .queues(["emails"])
    ///     .queue_limit("emails", QueueLimit::new().global(16).rate(100, Duration::from_secs(60)))
    ///     .build();
    /// # let _ = manager;
    /// ```
    pub fn queue_limit(mut self, queue: impl Into<String>, limit: jobs_core::QueueLimit) -> Self {
        let queue = queue.into();
        self.cfg.queue_limits.retain(|(q, _)| *q != queue);
        self.cfg.queue_limits.push((queue, limit));
        self
    }

    /// How soon a manager asks again when limits held due jobs back (default
    /// 250 ms): how late a job starts after its rate window moves on.
    pub fn limit_poll(mut self, d: Duration) -> Self {
        self.cfg.limit_poll = d.max(Duration::from_millis(10));
        self
    }

    /// The program's version, shown in the worker registry (`jobs workers`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.cfg.version = version.into();
        self
    }

    /// Whether heartbeats, recording and the watchdog run on a thread of
    /// their own, with their own backend connections (default: yes), so
    /// handlers that block their threads cannot stall lease renewal.
    pub fn isolate_maintenance(mut self, yes: bool) -> Self {
        self.cfg.isolate_maintenance = yes;
        self
    }

    /// Whether `build()` refuses what it otherwise only warns about (default:
    /// no): a handler whose jobs go to a queue this manager does not work
    /// (they would wait for another manager), and a manager with no handlers.
    pub fn strict(mut self, yes: bool) -> Self {
        self.strict = yes;
        self
    }

    /// This worker's id in `locked_by` (default: `hostname-pid-random`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Checks everything and builds the manager: two handlers for one job type,
    /// a `Data<T>` some handler needs but nobody provided, and inconsistent
    /// settings are errors here, never per job at run time. A handler whose
    /// jobs go to a queue this manager does not work (`#[job_handler(queue =
    /// "emails")]` with `.queues(["default"])`), and a manager without
    /// handlers, are warnings — errors with [`strict(true)`](Self::strict).
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
        for (queue, l) in &cfg.queue_limits {
            if l.global == Some(0)
                || l.local == Some(0)
                || l.rate.is_some_and(|(n, per)| n == 0 || per.is_zero())
            {
                return Err(Error::Config(format!(
                    "the limits of queue `{queue}` would never let a job run ({l:?}); limits are at least 1 (and a rate's period longer than zero)"
                )));
            }
        }
        if cfg.heartbeat >= cfg.lease {
            return Err(Error::Config(format!(
                "heartbeat interval ({:?}) must be shorter than the lease ({:?}), or leases expire between heartbeats",
                cfg.heartbeat, cfg.lease
            )));
        }
        if self.auto_register {
            for reg in jobs_core::registry::registered_handlers() {
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
                    return Err(Error::Config(missing_service(entry, &job_type, req)));
                }
            }
            handlers.insert(job_type.clone(), entry.handler.clone());
            seen.insert(job_type, entry);
        }
        if self.check_workflows {
            check_workflows(&handlers, &self.cfg.queues)?;
        }
        let mut warnings = Vec::new();
        if handlers.is_empty() {
            warnings.push("worker manager has no handlers: every job it claims will fail with `no handler`; register handlers with `.handler(..)`, or check that the crate with your #[job_handler]s is linked".to_owned());
        }
        for entry in seen.values() {
            let registration = entry
                .registration
                .or_else(|| jobs_core::registry::find_registration(entry.handler.job_type()));
            let Some(reg) = registration.filter(|r| r.job_type == entry.handler.job_type()) else {
                continue;
            };
            let queue = reg.default_queue();
            if !self.cfg.queues.contains(&queue) {
                warnings.push(format!(
                    "handler `{}` ({}) sends its `{}` jobs to queue `{queue}`, but this manager works {:?}: they will wait for a manager that works `{queue}`; add it with `.queues([..])`, or register only the handlers this manager runs (`.auto_register(false)` and `.register(..)`)",
                    entry.name, entry.origin, reg.job_type, self.cfg.queues
                ));
            }
        }
        let periodic = std::mem::take(&mut self.periodic);
        let schedules = schedules(periodic, &seen, &handlers, &mut warnings)?;
        warnings.sort();
        if self.strict && !warnings.is_empty() {
            return Err(Error::Config(format!(
                "the manager is built with `strict(true)`: {}",
                warnings.join("; ")
            )));
        }
        for w in &warnings {
            warn!("{w}");
        }
        let worker_id: Arc<str> =
            Arc::from(self.worker_id.take().unwrap_or_else(default_worker_id));
        let backend = self.queue.backend().clone();
        let maintenance = if self.cfg.isolate_maintenance {
            backend.detached().unwrap_or(backend)
        } else {
            backend
        };
        let metric_keys = crate::metrics::KeyTable::new(&self.cfg.queues, &handlers);
        let running_key = crate::metrics::running_key(&worker_id);
        let (steps_tx, steps_rx) = tokio::sync::mpsc::unbounded_channel();
        Ok(WorkerManager::from_shared(Shared {
            queue: self.queue,
            maintenance,
            handlers,
            services: self.services,
            slots: Arc::new(Semaphore::new(self.cfg.concurrency)),
            window: Arc::new(Semaphore::new(self.cfg.window())),
            cfg: self.cfg,
            worker_id,
            counters: Counters::default(),
            in_flight: InFlight::default(),
            health: HealthBoard::default(),
            ticks: Ticks::default(),
            heartbeat_now: tokio::sync::Notify::new(),
            recorded: tokio::sync::Notify::new(),
            leader: std::sync::atomic::AtomicBool::new(false),
            started_at: chrono::Utc::now(),
            schedules,
            metric_keys,
            running_key,
            steps_tx,
            steps_rx: Arc::new(tokio::sync::Mutex::new(steps_rx)),
        }))
    }
}

/// Every declared workflow's steps in `queues` have a handler, or an error
/// that names what is missing.
fn check_workflows(
    handlers: &HashMap<String, Arc<dyn DynHandler>>,
    queues: &[String],
) -> Result<()> {
    let mut missing = Vec::new();
    for wf in jobs_core::workflow::declared() {
        for (job_type, queue) in (wf.steps)() {
            if queues.contains(&queue) && !handlers.contains_key(job_type) {
                missing.push(format!(
                    "`{job_type}` of workflow `{}` (queue `{queue}`)",
                    wf.name
                ));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "no handler in this manager for workflow step(s) {}: their jobs would wait forever; link the crate with their #[job_handler]s, register them with `.handler(..)`, or turn the check off with `.check_workflows(false)`",
        missing.join(", ")
    )))
}

/// The schedules given and those of the registered handlers, parsed; two
/// with one name are an error.
fn schedules(
    periodic: Vec<Periodic>,
    seen: &HashMap<String, &HandlerEntry>,
    handlers: &HashMap<String, Arc<dyn DynHandler>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Schedule>> {
    let mut declared: Vec<(Periodic, String)> = periodic
        .into_iter()
        .map(|p| (p, "`.periodic(..)`".to_owned()))
        .collect();
    let mut from_handlers: Vec<_> = seen
        .values()
        .filter_map(|e| Some(((e.registration?.periodic?)(), e.origin.clone())))
        .collect();
    from_handlers.sort_by(|a, b| a.1.cmp(&b.1));
    declared.extend(from_handlers);
    let mut names: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (periodic, origin) in declared {
        let schedule = Schedule::compile(periodic)
            .map_err(|e| Error::Config(format!("{e} (declared at {origin})")))?;
        if let Some(first) = names.insert(schedule.name().to_owned(), origin.clone()) {
            return Err(Error::Config(format!(
                    "two periodic schedules named `{}` (declared at {first} and {origin}); name one differently with `.name(..)`",
                    schedule.name()
                )));
        }
        let job_type = &schedule.periodic.job_template()?.job_type;
        if !handlers.contains_key(job_type) {
            warnings.push(format!(
                    "periodic schedule `{}` enqueues `{job_type}` jobs, which this manager has no handler for: they wait for a manager that has one",
                    schedule.name()
                ));
        }
        out.push(schedule);
    }
    Ok(out)
}

/// `build()`'s refusal of a handler that needs a service nobody gave: for a
/// trait object (`Data<dyn Mailer>`) the method that works is `.data_arc(..)`.
fn missing_service(entry: &HandlerEntry, job_type: &str, req: &ServiceRequirement) -> String {
    let fix = match req.type_name.strip_prefix("dyn ") {
        Some(name) => format!(
            "add `.data_arc(Arc::new(service) as Arc<dyn {name}>)` to the builder (`.data(..)` cannot take a trait object)"
        ),
        None => format!(
            "add `.data(..)` with a `{}` to the builder (or `.data_arc(..)` with an `Arc` of one)",
            req.type_name
        ),
    };
    format!(
        "handler `{}` for job type `{job_type}` ({}) needs `Data<{}>`, but the WorkerManager was given none; {fix}",
        entry.name, entry.origin, req.type_name
    )
}

/// A handler's type name as the user wrote it: without the module that
/// `#[job_handler]` defines its struct in (`app::__jobs_send_email::SendEmailHandler`
/// → `app::SendEmailHandler`).
fn readable(type_name: &str) -> String {
    type_name
        .split("::")
        .filter(|segment| !segment.starts_with("__jobs_"))
        .collect::<Vec<_>>()
        .join("::")
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
    let host = crate::shared::host_name();
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}
