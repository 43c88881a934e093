//! `drain`: run what a queue holds to completion inside a test.

use std::collections::{BTreeSet, HashMap};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::registry::DynHandler;
use jobs_core::{
    Backoff, BoxFuture, CancellationToken, JobFilter, JobHandler, JobStatus, Queue, Result,
    Services, Timeout,
};
use tracing::warn;

use crate::attempt::{no_handler, Attempt};
use crate::failure::retry_follows;
use crate::shared::Config;

/// Attempts a drain makes at most unless told otherwise (`.limit(n)`).
const DEFAULT_LIMIT: usize = 10_000;

/// The worker id a drain claims jobs under.
const WORKER_ID: &str = "jobs-testing-drain";

/// Runs the jobs waiting in `queue` — on the memory backend or any other —
/// one at a time in this task, with every `#[job_handler]` of the binary (and
/// the hand-written handlers given with `.handler(..)`), each attempt exactly
/// as a manager runs it (time limit, panic guard, `on_failure`), and records
/// the outcomes. `.await` it for a [`Drained`] summary.
///
/// * By default one pass: the jobs due when it starts, once each.
/// * A workflow step that completes releases its children as a manager's
///   does; they are due at once, so `.with_recursion(true)` runs a whole
///   workflow.
/// * `.with_recursion(true)`: passes until nothing is due, so the jobs those
///   jobs enqueue, and retries due at once, run too.
/// * `.with_scheduled(true)`: also waits for jobs scheduled later and for
///   every retry's backoff, until no job in the queues is waiting — under
///   `tokio::time::pause()` on the memory backend that wait takes no time.
/// * `.limit(n)`: at most `n` attempts (default 10,000); [`Drained::limit_reached`]
///   says whether it stopped there.
///
/// ```
/// use jobs::prelude::*;
/// use jobs::testing::drain;
///
/// #[derive(Serialize, Deserialize)]
/// struct Flaky { fail_times: u32 }
///
/// #[job_handler("flaky", max_retries = 3)]
/// async fn flaky(job: Flaky, ctx: JobContext) -> Result<(), String> {
///     if ctx.retry_count() < job.fail_times { Err("not yet".into()) } else { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> jobs::Result<()> {
/// tokio::time::pause(); // backoff of 2 s, 4 s, 8 s: no time at all
/// let queue = jobs::connect("memory://").await?;
/// queue.enqueue(Flaky { fail_times: 2 }).await?;
/// queue.enqueue(Flaky { fail_times: 9 }).await?;
/// let drained = drain(&queue).with_scheduled(true).await?;
/// assert_eq!((drained.completed, drained.dead_lettered, drained.retried), (1, 1, 5));
/// # Ok(()) }
/// ```
pub fn drain(queue: &Queue) -> Drain<'_> {
    Drain {
        queue,
        handlers: Vec::new(),
        auto_register: true,
        services: Services::new(),
        cfg: Config::default(),
        queues: None,
        recursion: false,
        scheduled: false,
        limit: DEFAULT_LIMIT,
    }
}

/// A drain to run; see [`drain`]. `.await` it.
#[must_use = "nothing runs until the drain is `.await`ed"]
pub struct Drain<'a> {
    queue: &'a Queue,
    handlers: Vec<Arc<dyn DynHandler>>,
    auto_register: bool,
    services: Services,
    cfg: Config,
    queues: Option<Vec<String>>,
    recursion: bool,
    scheduled: bool,
    limit: usize,
}

impl std::fmt::Debug for Drain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("queues", &self.queues)
            .field("recursion", &self.recursion)
            .field("scheduled", &self.scheduled)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Drain<'_> {
    /// A service for `Data<T>` (as the builder's `.data(..)`).
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.services.insert(value);
        self
    }

    /// A shared service, also a trait object (as the builder's `.data_arc(..)`).
    pub fn data_arc<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.services.insert_arc(value);
        self
    }

    /// A hand-written handler (it wins over a `#[job_handler]` of the same job type).
    pub fn handler<H: JobHandler>(mut self, handler: H) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Whether every `#[job_handler]` linked into the binary runs its jobs
    /// (default: yes).
    pub fn auto_register(mut self, yes: bool) -> Self {
        self.auto_register = yes;
        self
    }

    /// Only these queues, in this order (default: every queue that has jobs).
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = Some(queues.into_iter().map(Into::into).collect());
        self
    }

    /// Also run what the drained jobs enqueue, and retries that are due at
    /// once: pass after pass until nothing is due.
    pub fn with_recursion(mut self, yes: bool) -> Self {
        self.recursion = yes;
        self
    }

    /// Also wait for jobs scheduled later and for retries' backoff, until
    /// no job of the queues is waiting (implies `with_recursion`). Instant
    /// under `tokio::time::pause()` on the memory backend.
    pub fn with_scheduled(mut self, yes: bool) -> Self {
        self.scheduled = yes;
        self
    }

    /// At most `n` attempts in all (default 10,000).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// The backoff for handlers without their own (as the builder's).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.cfg.backoff = backoff;
        self
    }

    /// The time limit of an attempt for jobs and handlers without their own
    /// (as the builder's; default 5 minutes).
    pub fn job_timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.cfg.job_timeout = timeout.into();
        self
    }
}

/// What a [`drain`] did: attempts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Attempts that completed their job.
    pub completed: usize,
    /// Attempts that failed with a retry to follow.
    pub retried: usize,
    /// Attempts that failed their job for good (permanent failures).
    pub failed: usize,
    /// Attempts that failed on the job's last allowed attempt.
    pub dead_lettered: usize,
    /// Attempts that snoozed ("not now").
    pub snoozed: usize,
    /// Whether it stopped at its attempt limit with work left.
    pub limit_reached: bool,
}

impl Drained {
    /// Every attempt made.
    pub fn attempts(&self) -> usize {
        self.completed + self.retried + self.failed + self.dead_lettered + self.snoozed
    }
}

impl<'a> IntoFuture for Drain<'a> {
    type Output = Result<Drained>;
    type IntoFuture = BoxFuture<'a, Result<Drained>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl Drain<'_> {
    async fn run(self) -> Result<Drained> {
        let handlers = self.handlers();
        let handles = {
            let mut names: Vec<&str> = handlers.keys().map(String::as_str).collect();
            names.sort_unstable();
            names.join(", ")
        };
        let worker_id: Arc<str> = Arc::from(WORKER_ID);
        let attempt = Attempt {
            cfg: &self.cfg,
            services: &self.services,
            queue: self.queue,
            worker_id: &worker_id,
            watch: None,
            progress: None,
            parents: None,
        };
        let backend = self.queue.backend();
        let lease = self
            .cfg
            .job_timeout
            .limit()
            .unwrap_or(Duration::from_secs(3600))
            .saturating_mul(2)
            .max(Duration::from_secs(3600));
        let mut drained = Drained::default();
        loop {
            let queues = self.queues_now().await?;
            let left = self.limit - drained.attempts();
            if left == 0 {
                drained.limit_reached = self.waiting(&queues).await?.is_some();
                if drained.limit_reached {
                    warn!(
                        limit = self.limit,
                        "drain stopped at its attempt limit with jobs left"
                    );
                }
                return Ok(drained);
            }
            let claimed = if queues.is_empty() {
                Vec::new()
            } else {
                backend
                    .claim(ClaimRequest::new(WORKER_ID, &queues, left.min(1000), lease))
                    .await?
                    .jobs
            };
            if claimed.is_empty() {
                if !self.scheduled {
                    return Ok(drained);
                }
                // Nothing due: wait for the earliest scheduled job or retry.
                match self.waiting(&queues).await? {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Ok(drained),
                }
                continue;
            }
            for job in claimed {
                let job = Arc::new(job);
                let cancel = CancellationToken::new();
                let attempted = match handlers.get(&job.job_type) {
                    Some(handler) => attempt.run(handler.as_ref(), &job, &cancel).await,
                    None => no_handler(&self.cfg, &job, WORKER_ID, &handles),
                };
                let outcome = attempted.outcome;
                match &outcome {
                    Outcome::Complete { .. } | Outcome::CompleteAndDelete => drained.completed += 1,
                    Outcome::Snooze { .. } => drained.snoozed += 1,
                    o if retry_follows(o) => drained.retried += 1,
                    Outcome::Fail { .. } | Outcome::Cancel { .. } => drained.failed += 1,
                    _ => drained.dead_lettered += 1,
                }
                let finished = crate::workflow::is_step(&job)
                    .then(|| crate::workflow::finished(&job, &outcome))
                    .flatten();
                backend
                    .record(WORKER_ID, &[OutcomeUpdate::new(job.fence(), outcome)])
                    .await?;
                // A workflow step: release (or cancel) what waited for it,
                // as a manager's follow-up does.
                if let Some(step) = finished {
                    crate::workflow::advance_job(backend.as_ref(), &step).await?;
                }
            }
            if drained.attempts() == self.limit {
                continue; // the top of the loop says whether work is left
            }
            if !self.recursion && !self.scheduled {
                return Ok(drained);
            }
        }
    }

    /// The handlers by job type: the hand-written ones first, then every
    /// registered `#[job_handler]` (unless `auto_register(false)`).
    fn handlers(&self) -> HashMap<String, Arc<dyn DynHandler>> {
        let mut map: HashMap<String, Arc<dyn DynHandler>> = HashMap::new();
        for h in &self.handlers {
            map.entry(h.job_type().to_owned())
                .or_insert_with(|| h.clone());
        }
        if self.auto_register {
            for reg in jobs_core::registry::registered_handlers() {
                map.entry(reg.job_type.to_owned())
                    .or_insert_with(|| (reg.make)());
            }
        }
        map
    }

    /// The queues to claim from: the given ones, or every queue with jobs.
    async fn queues_now(&self) -> Result<Vec<String>> {
        if let Some(queues) = &self.queues {
            return Ok(queues.clone());
        }
        let counts = self.queue.counts().await?;
        let names: BTreeSet<String> = counts.into_iter().map(|c| c.queue).collect();
        Ok(names.into_iter().collect())
    }

    /// How long until the earliest waiting job of `queues` is due (zero if
    /// one is due now), or `None` when none is waiting.
    async fn waiting(&self, queues: &[String]) -> Result<Option<Duration>> {
        let mut earliest = None;
        for status in [
            JobStatus::Pending,
            JobStatus::Scheduled,
            JobStatus::Retrying,
        ] {
            let jobs = self
                .queue
                .list_all(&JobFilter::default().status(status).limit(1000))
                .await?;
            // A held workflow step waits for its parents, not for a time.
            earliest = jobs
                .iter()
                .filter(|j| queues.contains(&j.queue_name) && !jobs_core::workflow::is_held(j))
                .map(|j| j.run_at)
                .chain(earliest)
                .min();
        }
        // The memory backend keeps tokio's time; the others, the wall clock's.
        let now = if self.queue.backend().backend_name() == "memory" {
            crate::clock::now()
        } else {
            Utc::now()
        };
        Ok(earliest.map(|due| {
            (due - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                // A job due now that a claim did not get is held elsewhere
                // for a moment: look again shortly.
                .max(Duration::from_millis(1))
        }))
    }
}
