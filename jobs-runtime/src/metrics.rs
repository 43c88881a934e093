//! What a manager reports through the `metrics` facade (the names and
//! labels are listed in `jobs_core::metrics`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::registry::DynHandler;
use jobs_core::{Job, QueueCount};
use metrics::{counter, gauge, Key, Label, Level, Metadata};

/// What the `counter!`/`histogram!` macros pass for this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

fn labels(job: &Job) -> [(&'static str, String); 2] {
    [
        ("queue", job.queue_name.clone()),
        ("job_type", job.job_type.clone()),
    ]
}

/// The outcomes, in the order of [`JobKeys`]' arrays.
const OUTCOMES: [(&str, &str); 7] = [
    ("completed", "jobs_completed_total"),
    ("retried", "jobs_retried_total"),
    ("failed", "jobs_failed_total"),
    ("dead_lettered", "jobs_dead_lettered_total"),
    ("released", "jobs_released_total"),
    ("snoozed", "jobs_snoozed_total"),
    ("cancelled", "jobs_cancelled_total"),
];

/// Where FAILED is in [`OUTCOMES`].
const FAILED: usize = 2;

/// Where an outcome is in [`OUTCOMES`].
fn outcome_index(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::Complete { .. } | Outcome::CompleteAndDelete => 0,
        Outcome::Retry { .. } => 1,
        Outcome::Fail { .. } => 2,
        Outcome::DeadLetter { .. } => 3,
        Outcome::Release => 4,
        Outcome::Snooze { .. } => 5,
        Outcome::Cancel { .. } => 6,
    }
}

/// The keys of one (queue, job type)'s series, built once.
///
/// Building a key per update (its labels copied into a new vector, then
/// hashed) cost more than the rest of a job's bookkeeping. Keys are kept, not
/// handles: every update still registers with the recorder in effect, as the
/// macros do, so a recorder installed later, or an exporter that drops idle
/// series, sees every update.
#[derive(Debug)]
pub(crate) struct JobKeys {
    claimed: Key,
    latency: Key,
    /// The counter of each outcome, in [`OUTCOMES`]' order.
    outcomes: [Key; 7],
    /// `jobs_run_seconds` by outcome, in [`OUTCOMES`]' order.
    run: [Key; 7],
}

impl JobKeys {
    /// The keys of `job`'s series, built now (for a job the table does not know).
    pub(crate) fn of(job: &Job) -> Box<JobKeys> {
        Box::new(JobKeys::new(&job.queue_name, &job.job_type))
    }

    fn new(queue: &str, job_type: &str) -> JobKeys {
        let labels = || {
            vec![
                Label::new("queue", queue.to_owned()),
                Label::new("job_type", job_type.to_owned()),
            ]
        };
        JobKeys {
            claimed: Key::from_parts("jobs_claimed_total", labels()),
            latency: Key::from_parts("jobs_queue_latency_seconds", labels()),
            outcomes: OUTCOMES.map(|(_, name)| Key::from_parts(name, labels())),
            run: OUTCOMES.map(|(outcome, _)| {
                let mut l = labels();
                l.push(Label::new("outcome", outcome));
                Key::from_parts("jobs_run_seconds", l)
            }),
        }
    }
}

/// How a manager runs each job type it handles: the handler, and the metric
/// keys of its series in each of the manager's queues, built once. Read
/// without a lock; one lookup (with a fast hasher) per attempt finds both.
#[derive(Default)]
pub(crate) struct KeyTable {
    /// By job type.
    routes: HashMap<String, Route, crate::id_hash::IdHashState>,
    queues: Vec<String>,
}

/// A job type's handler and keys (see [`KeyTable`]).
struct Route {
    handler: Arc<dyn DynHandler>,
    /// In the order of the manager's queues.
    keys: Vec<JobKeys>,
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTable")
            .field("job_types", &self.routes.keys().collect::<Vec<_>>())
            .field("queues", &self.queues)
            .finish()
    }
}

impl KeyTable {
    pub(crate) fn new(queues: &[String], handlers: &HashMap<String, Arc<dyn DynHandler>>) -> Self {
        let routes = handlers
            .iter()
            .map(|(t, handler)| {
                let keys = queues.iter().map(|q| JobKeys::new(q, t)).collect();
                let route = Route {
                    handler: handler.clone(),
                    keys,
                };
                (t.clone(), route)
            })
            .collect();
        KeyTable {
            routes,
            queues: queues.to_vec(),
        }
    }

    /// `job`'s handler, if this manager has one for its type, and its keys,
    /// if they are in the table (not for a type or queue it does not know:
    /// a job with no handler here; see [`JobKeys::of`]).
    pub(crate) fn route(&self, job: &Job) -> (Option<&Arc<dyn DynHandler>>, Option<&JobKeys>) {
        let Some(route) = self.routes.get(job.job_type.as_str()) else {
            return (None, None);
        };
        let keys = self
            .queues
            .iter()
            .position(|q| *q == job.queue_name)
            .and_then(|i| route.keys.get(i));
        (Some(&route.handler), keys)
    }
}

/// An attempt starts: counted, and how long it waited since it was due.
pub(crate) fn started(keys: &JobKeys, job: &Job) {
    metrics::with_recorder(|r| {
        r.register_counter(&keys.claimed, &METADATA).increment(1);
        if let Some(started) = job.started_at {
            let waited = (started - job.run_at).to_std().unwrap_or(Duration::ZERO);
            r.register_histogram(&keys.latency, &METADATA)
                .record(waited.as_secs_f64());
        }
    });
}

/// An attempt ended with `outcome` after `ran`.
pub(crate) fn finished(keys: &JobKeys, outcome: &Outcome, ran: Duration) {
    let i = outcome_index(outcome);
    metrics::with_recorder(|r| {
        r.register_counter(&keys.outcomes[i], &METADATA)
            .increment(1);
        if let Outcome::Cancel { .. } = outcome {
            // A cancelled job ends FAILED: counted there too, as its status says.
            r.register_counter(&keys.outcomes[FAILED], &METADATA)
                .increment(1);
        }
        r.register_histogram(&keys.run[i], &METADATA)
            .record(ran.as_secs_f64());
    });
}

/// A job whose lease expired was recovered by this manager.
pub(crate) fn recovered(job: &Job) {
    counter!("jobs_recovered_total", &labels(job)).increment(1);
}

/// Outcomes refused because their lease was lost.
pub(crate) fn lost(n: u64) {
    counter!("jobs_outcomes_lost_total").increment(n);
}

/// The key of this manager's `jobs_running` gauge (built once, as above).
pub(crate) fn running_key(worker: &str) -> Key {
    Key::from_parts(
        "jobs_running",
        vec![Label::new("worker", worker.to_owned())],
    )
}

/// How many jobs this manager runs now (`key`: its [`running_key`]).
pub(crate) fn running(key: &Key, n: usize) {
    metrics::with_recorder(|r| r.register_gauge(key, &METADATA).set(n as f64));
}

/// The cluster's counts per queue and status (sampled by the maintainer).
/// `previous` holds the series set last time: those gone now are set to 0.
pub(crate) fn queue_counts(counts: &[QueueCount], previous: &mut Vec<(String, String)>) {
    let now: Vec<(String, String)> = counts
        .iter()
        .map(|c| (c.queue.clone(), c.status.as_str().to_ascii_lowercase()))
        .collect();
    for series in previous.iter() {
        if !now.contains(series) {
            let (queue, status) = series.clone();
            gauge!("jobs_queue_jobs", "queue" => queue, "status" => status).set(0.0);
        }
    }
    for (c, (queue, status)) in counts.iter().zip(now.iter().cloned()) {
        gauge!("jobs_queue_jobs", "queue" => queue, "status" => status).set(c.count as f64);
    }
    *previous = now;
}

/// On the maintainer, samples the cluster's counts into `jobs_queue_jobs`
/// every `metrics_interval` (one `counts()` call).
pub(crate) async fn sample_loop(
    shared: std::sync::Arc<crate::shared::Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    let Some(every) = shared.cfg.metrics_interval else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !shared.is_leader() {
            continue;
        }
        match shared.call("counts", shared.backend().counts()).await {
            Ok(counts) => queue_counts(&counts, &mut previous),
            Err(e) => tracing::debug!(error = %e, "could not sample the queue counts for metrics"),
        }
    }
}
