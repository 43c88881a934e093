//! The metrics `jobs` reports, through the [`metrics`](https://docs.rs/metrics)
//! facade: install any exporter (`metrics-exporter-prometheus`,
//! `metrics-exporter-statsd`, OpenTelemetry's bridge, ...) and they appear;
//! without one they cost next to nothing.
//!
//! Why the `metrics` facade rather than OpenTelemetry's API: it is the one
//! crate a library can depend on without choosing an SDK, a runtime or a wire
//! format for its users, and every common exporter (OpenTelemetry's among
//! them) plugs into it.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `jobs_enqueued_total` | counter | `queue`, `job_type`, `result` | enqueues through a [`Queue`](crate::Queue): `result` is `inserted`, `duplicate` or `replaced` |
//! | `jobs_claimed_total` | counter | `queue`, `job_type` | attempts started by a manager |
//! | `jobs_completed_total` | counter | `queue`, `job_type` | attempts that completed |
//! | `jobs_failed_total` | counter | `queue`, `job_type` | attempts that failed for good (cancelled ones included) |
//! | `jobs_retried_total` | counter | `queue`, `job_type` | failed attempts with a retry to follow |
//! | `jobs_dead_lettered_total` | counter | `queue`, `job_type` | failed attempts that exhausted the retries |
//! | `jobs_snoozed_total` | counter | `queue`, `job_type` | attempts that snoozed |
//! | `jobs_cancelled_total` | counter | `queue`, `job_type` | running jobs stopped by a cancellation |
//! | `jobs_released_total` | counter | `queue`, `job_type` | jobs handed back on shutdown |
//! | `jobs_recovered_total` | counter | `queue`, `job_type` | expired leases recovered by the maintainer |
//! | `jobs_outcomes_lost_total` | counter | | outcomes refused because the lease had been lost |
//! | `jobs_run_seconds` | histogram | `queue`, `job_type`, `outcome` | how long an attempt ran (handler and `on_failure`) |
//! | `jobs_queue_latency_seconds` | histogram | `queue`, `job_type` | from when a job was due (`run_at`) to its start, by the backend's clock |
//! | `jobs_running` | gauge | `worker` | jobs this manager runs now |
//! | `jobs_queue_jobs` | gauge | `queue`, `status` | jobs per queue and status (`pending`, `scheduled`, `running`, `retrying`, `completed`, `failed`, `dead_letter`), sampled by the cluster's maintainer (only there, so a sum over processes does not count twice) |

use crate::Enqueued;

/// Counts one enqueue.
pub(crate) fn enqueued(queue: String, job_type: String, result: &Enqueued) {
    let result = match result {
        Enqueued::Inserted(_) => "inserted",
        Enqueued::Duplicate(_) => "duplicate",
        Enqueued::Replaced(_) => "replaced",
    };
    metrics::counter!("jobs_enqueued_total", "queue" => queue, "job_type" => job_type, "result" => result)
        .increment(1);
}
