//! What the manager's tasks share: its settings, its handlers and services,
//! the table of held jobs, the slots, the health board and the counters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::registry::DynHandler;
use jobs_core::{Backend, BackendErrorKind, Backoff, Error, Queue, Result, Services, Timeout};
use tokio::sync::Semaphore;

use crate::health::HealthBoard;
use crate::in_flight::InFlight;
use crate::stats::Counters;
use crate::watchdog::Ticks;

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
    pub(crate) job_timeout: Timeout,
    pub(crate) backend_timeout: Duration,
    /// Outcomes produced but not yet recorded, at most (0: twice the
    /// concurrency).
    pub(crate) recording_window: usize,
    pub(crate) blocking_warning: Duration,
    pub(crate) max_result_bytes: usize,
    pub(crate) max_error_bytes: usize,
    pub(crate) isolate_maintenance: bool,
    /// How long a cancelled handler may go on before it is cut off.
    pub(crate) cancel_grace: Duration,
    /// How often one job may snooze before a snooze counts as a failure.
    pub(crate) max_snoozes: u32,
    /// Whether this manager stands for the cluster's maintainer.
    pub(crate) maintainer: bool,
    /// The program's version, for the worker registry.
    pub(crate) version: String,
    /// What the maintainer prunes.
    pub(crate) retention: crate::retention::Retention,
    /// How often the maintainer samples queue counts into metrics (`None`: never).
    pub(crate) metrics_interval: Option<Duration>,
    /// Limits per queue (local, global, rate).
    pub(crate) queue_limits: Vec<(String, jobs_core::QueueLimit)>,
    /// How soon a claim is tried again after limits held jobs back.
    pub(crate) limit_poll: Duration,
}

/// How long `stop()` gives the recorder after the handlers' shutdown timeout.
pub(crate) const RECORD_GRACE: Duration = Duration::from_secs(5);

impl Default for Config {
    fn default() -> Self {
        Config {
            queues: vec![jobs_core::DEFAULT_QUEUE.to_owned()],
            concurrency: 10,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            reap: Duration::from_secs(5),
            // With RECORD_GRACE, stop() ends within 25 s: inside the 30 s a
            // Kubernetes pod gets between SIGTERM and SIGKILL by default.
            shutdown_timeout: Duration::from_secs(20),
            backoff: Backoff::default(),
            job_timeout: Timeout::DEFAULT,
            backend_timeout: Duration::from_secs(10),
            recording_window: 0,
            blocking_warning: Duration::from_millis(500),
            max_result_bytes: 16 << 20,
            max_error_bytes: 16 << 10,
            isolate_maintenance: true,
            cancel_grace: Duration::from_secs(10),
            max_snoozes: 100,
            maintainer: true,
            version: String::new(),
            retention: crate::retention::Retention::default(),
            metrics_interval: Some(Duration::from_secs(15)),
            queue_limits: Vec::new(),
            limit_poll: Duration::from_millis(250),
        }
    }
}

impl Config {
    /// The recording window in effect: by default room for two claims'
    /// worth of outcomes, one batch being written while the next one ends.
    /// With room for one, a claim's jobs could not hand over their outcomes
    /// (nor free their slots) until the call recording the claim before had
    /// returned, so claims waited on the recorder: W1 at concurrency 16 went
    /// 1.4× on PostgreSQL and 1.45× on SQLite with twice the room (README).
    pub(crate) fn window(&self) -> usize {
        if self.recording_window == 0 {
            self.concurrency.saturating_mul(2)
        } else {
            self.recording_window
        }
    }
}

/// This machine's name (`$HOSTNAME`, `/etc/hostname`), or `worker`.
pub(crate) fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// What the manager's tasks share.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    /// The backend the heartbeat and the recorder use: one with connections of
    /// their own (see `Backend::detached`) when they run on a thread of their own.
    pub(crate) maintenance: Arc<dyn Backend>,
    pub(crate) handlers: HashMap<String, Arc<dyn DynHandler>>,
    pub(crate) services: Services,
    pub(crate) cfg: Config,
    pub(crate) worker_id: Arc<str>,
    pub(crate) counters: Counters,
    pub(crate) in_flight: InFlight,
    pub(crate) health: HealthBoard,
    /// One permit per job that may run at once.
    pub(crate) slots: Arc<Semaphore>,
    /// One permit per outcome produced but not yet recorded: a job whose
    /// attempt ended holds its slot until it gets one, so a worker never
    /// outruns its recorder.
    pub(crate) window: Arc<Semaphore>,
    pub(crate) ticks: Ticks,
    /// Asks the heartbeat loop to beat now (a cancellation was signalled).
    pub(crate) heartbeat_now: tokio::sync::Notify,
    /// Outcomes were written: running counts in the backend went down, so a
    /// claim that a limit held back may succeed now.
    pub(crate) recorded: tokio::sync::Notify,
    /// Whether this manager is the cluster's maintainer right now.
    pub(crate) leader: std::sync::atomic::AtomicBool,
    /// When the manager started, for the worker registry.
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    /// The periodic schedules it fires.
    pub(crate) schedules: Vec<crate::periodic::Schedule>,
    /// Its handlers again, with the metric keys of their jobs in its queues
    /// (an attempt finds both with one lookup).
    pub(crate) metric_keys: crate::metrics::KeyTable,
    /// The key of its `jobs_running` gauge.
    pub(crate) running_key: metrics::Key,
    /// Where the recorder hands workflow steps whose final outcome it wrote.
    pub(crate) steps_tx: tokio::sync::mpsc::UnboundedSender<Arc<jobs_core::Job>>,
    /// The other end, taken by the workflow loop.
    pub(crate) steps_rx:
        Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Arc<jobs_core::Job>>>>,
}

impl Shared {
    /// The job types this manager handles, for messages.
    pub(crate) fn handler_names(&self) -> String {
        let mut names: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Whether this manager is the cluster's maintainer right now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `queue` has a cluster-wide limit: the claim then names the
    /// jobs of the queue whose outcomes are being recorded.
    pub(crate) fn limits_globally(&self, queue: &str) -> bool {
        self.cfg
            .queue_limits
            .iter()
            .any(|(q, l)| l.global.is_some() && q == queue)
    }

    /// The user's backend.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        self.queue.backend()
    }

    /// Runs a backend call under the backend timeout: a call that does not
    /// answer in time fails as "unavailable" instead of hanging the loop.
    pub(crate) async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = self.cfg.backend_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::backend_msg(
                self.backend().backend_name(),
                BackendErrorKind::Unavailable,
                format!("{what} did not answer within {limit:?}"),
            )),
        }
    }
}

/// An outcome on its way to the recorder, with the recording-window permit
/// it holds until it is written (none for releases on shutdown).
#[derive(Debug)]
pub(crate) struct Handoff {
    pub(crate) update: jobs_core::backend::OutcomeUpdate,
    pub(crate) _window: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The job, if it is a workflow step: its follow-up runs once the
    /// outcome is written.
    pub(crate) step: Option<Arc<jobs_core::Job>>,
}

/// Where attempts hand their outcomes to the recorder.
pub(crate) type Outcomes = tokio::sync::mpsc::UnboundedSender<Handoff>;
