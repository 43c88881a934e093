//! The reaper loop: turns the expired leases of dead workers into failed attempts.

use std::sync::Arc;

use jobs_core::{JobError, JobStatus};
use tokio_util::sync::CancellationToken as StopToken;
use tokio_util::task::TaskTracker;
use tracing::{info_span, warn, Instrument};

use crate::attempt::time_limit;
use crate::shared::Shared;
use crate::stats::Counters;

/// Every reap interval, turns jobs whose lease expired (their worker died) into
/// failed attempts, and runs `on_failure` for those this manager has a handler for.
pub(crate) async fn reaper_loop(shared: Arc<Shared>, stop: StopToken, tasks: TaskTracker) {
    let mut tick = tokio::time::interval(shared.cfg.reap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // One manager of the cluster does it: the maintainer.
        if !shared.is_leader() {
            continue;
        }
        let recovered = match shared
            .call("reap", shared.backend().recover_expired())
            .await
        {
            Ok(r) => {
                shared.health.ok("reap");
                r
            }
            Err(e) => {
                shared.health.failed("reap", &e);
                warn!(error = %e, "recovering expired leases failed; will try again");
                continue;
            }
        };
        Counters::bump(&shared.counters.recovered, recovered.len() as u64);
        for r in recovered {
            if r.now.is_terminal() && crate::workflow::is_step(&r.job) {
                let mut job = r.job.clone();
                job.status = r.now;
                let _ = shared.steps_tx.send(Arc::new(job));
            }
            let mut job = r.job;
            crate::metrics::recovered(&job);
            job.no_retry_follows = r.now != JobStatus::Retrying;
            let job = Arc::new(job);
            let span = info_span!("job", job_id = %job.id, job_type = %job.job_type, queue = %job.queue_name, attempt = job.attempt);
            let error = JobError::msg(format!(
                "lease expired: worker `{}` stopped heartbeating",
                job.locked_by.as_deref().unwrap_or("?")
            ));
            warn!(
                parent: &span,
                error = %error,
                worker = job.locked_by.as_deref().unwrap_or("?"),
                now = %r.now,
                "lease expired; the attempt counts as failed and the job is back"
            );
            let Some(handler) = shared.handlers.get(&job.job_type).cloned() else {
                continue;
            };
            let shared = shared.clone();
            tasks.spawn(
                async move {
                    let cancel = jobs_core::CancellationToken::new();
                    let limit = time_limit(&shared.cfg, handler.as_ref(), &job);
                    shared
                        .attempt(None)
                        .call_on_failure(handler.as_ref(), &job, &error, &cancel, limit)
                        .await;
                }
                .instrument(span),
            );
        }
    }
}
