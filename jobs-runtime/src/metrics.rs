//! What a manager reports through the `metrics` facade (the names and
//! labels are listed in `jobs_core::metrics`).

use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::{Job, QueueCount};
use metrics::{counter, gauge, histogram};

fn labels(job: &Job) -> [(&'static str, String); 2] {
    [
        ("queue", job.queue_name.clone()),
        ("job_type", job.job_type.clone()),
    ]
}

/// An attempt starts: counted, and how long it waited since it was due.
pub(crate) fn started(job: &Job) {
    let labels = labels(job);
    counter!("jobs_claimed_total", &labels).increment(1);
    if let Some(started) = job.started_at {
        let waited = (started - job.run_at).to_std().unwrap_or(Duration::ZERO);
        histogram!("jobs_queue_latency_seconds", &labels).record(waited.as_secs_f64());
    }
}

/// The name of an outcome, as the `outcome` label and counter say it.
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Complete { .. } | Outcome::CompleteAndDelete => "completed",
        Outcome::Retry { .. } => "retried",
        Outcome::Fail { .. } => "failed",
        Outcome::DeadLetter { .. } => "dead_lettered",
        Outcome::Release => "released",
        Outcome::Snooze { .. } => "snoozed",
        Outcome::Cancel { .. } => "cancelled",
    }
}

/// An attempt ended with `outcome` after `ran`.
pub(crate) fn finished(job: &Job, outcome: &Outcome, ran: Duration) {
    let name = outcome_name(outcome);
    let counter_name = match outcome {
        Outcome::Complete { .. } | Outcome::CompleteAndDelete => "jobs_completed_total",
        Outcome::Retry { .. } => "jobs_retried_total",
        Outcome::Fail { .. } => "jobs_failed_total",
        Outcome::DeadLetter { .. } => "jobs_dead_lettered_total",
        Outcome::Release => "jobs_released_total",
        Outcome::Snooze { .. } => "jobs_snoozed_total",
        Outcome::Cancel { .. } => "jobs_cancelled_total",
    };
    let labels = labels(job);
    counter!(counter_name, &labels).increment(1);
    if let Outcome::Cancel { .. } = outcome {
        // A cancelled job ends FAILED: counted there too, as its status says.
        counter!("jobs_failed_total", &labels).increment(1);
    }
    let [queue, job_type] = labels;
    histogram!(
        "jobs_run_seconds",
        &[queue, job_type, ("outcome", name.to_owned())]
    )
    .record(ran.as_secs_f64());
}

/// A job whose lease expired was recovered by this manager.
pub(crate) fn recovered(job: &Job) {
    counter!("jobs_recovered_total", &labels(job)).increment(1);
}

/// Outcomes refused because their lease was lost.
pub(crate) fn lost(n: u64) {
    counter!("jobs_outcomes_lost_total").increment(n);
}

/// How many jobs this manager runs now.
pub(crate) fn running(worker: &str, n: usize) {
    gauge!("jobs_running", "worker" => worker.to_owned()).set(n as f64);
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
