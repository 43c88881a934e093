//! One attempt of one job: the handler under its time limit, panic guard and
//! watchdog, `on_failure` after a failure, and the outcome handed to the
//! recorder — always exactly one outcome, whatever the handler does.
//!
//! [`Attempt`] runs one attempt without needing a manager: the manager makes
//! one per claimed job, and `jobs::testing` (`perform`, `drain`) makes its
//! own, so a test gets exactly the outcome the manager would record.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{AttemptFailure, Outcome, OutcomeUpdate};
use jobs_core::payload::json_size;
use jobs_core::registry::DynHandler;
use jobs_core::{
    CancelReason, CancellationToken, Job, JobContext, JobError, JobResult, ProgressSink, Queue,
    Services, Timeout,
};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, error, info, warn};

use crate::failure::{outcome_of_failure, retry_follows};
use crate::panic::{guarded, CatchUnwind};
use crate::shared::{Config, Handoff, Outcomes, Shared};
use crate::watchdog::{PollStart, Ticks, Watched};

/// One attempt in a manager: run the handler, call `on_failure` if it failed,
/// hand the outcome to the recorder. `slot` is the job's place among the
/// running ones; it is kept until the recorder has room for the outcome (its
/// window), so a worker never runs ahead of what it can record.
pub(crate) async fn run_job(
    shared: Arc<Shared>,
    job: Arc<Job>,
    cancel: CancellationToken,
    poll_start: PollStart,
    outcomes: Outcomes,
    slot: OwnedSemaphorePermit,
) {
    let mut guard = Guard {
        shared: &shared,
        job: &job,
        outcomes: &outcomes,
        sent: false,
    };
    // One lookup for both (`shared.handlers` holds the same handlers).
    let (handler, known) = shared.metric_keys.route(&job);
    // Boxed when built: the keys are large, and the task holds them.
    let built;
    let keys = match known {
        Some(keys) => keys,
        None => {
            built = crate::metrics::JobKeys::of(&job);
            &*built
        }
    };
    crate::metrics::started(keys, &job);
    let began = Instant::now();
    let attempted = match handler {
        Some(handler) => {
            let fence = job.fence();
            let table = shared.clone();
            let sink: ProgressSink = Arc::new(move |p| table.in_flight.set_progress(fence, p));
            let mut attempt = shared.attempt(Some(poll_start));
            attempt.progress = Some(sink);
            attempt.run(handler.as_ref(), &job, &cancel).await
        }
        None => no_handler(
            &shared.cfg,
            &job,
            &shared.worker_id,
            &shared.handler_names(),
        ),
    };
    crate::metrics::finished(keys, &attempted.outcome, began.elapsed());
    // A workflow step keeps its result: its children read it.
    let outcome = if crate::workflow::is_step(&job) {
        attempted.outcome
    } else {
        shared
            .cfg
            .retention
            .on_finish(&job.queue_name, attempted.outcome)
    };
    let window = shared.window.clone().acquire_owned().await.ok();
    drop(slot);
    guard.send(outcome, window);
}

/// Sends the attempt's outcome exactly once: if the attempt's task ends
/// without one (a bug of ours, or a runtime shutting down), its drop reports
/// a retryable failure, so no job stays RUNNING while its lease is renewed.
struct Guard<'a> {
    shared: &'a Shared,
    job: &'a Arc<Job>,
    outcomes: &'a Outcomes,
    sent: bool,
}

impl Guard<'_> {
    fn send(&mut self, outcome: Outcome, window: Option<OwnedSemaphorePermit>) {
        self.sent = true;
        let fence = self.job.fence();
        // A shutdown that gave up on this job has released it already.
        let keep_job = self.shared.limits_globally(&self.job.queue_name);
        if self.shared.in_flight.finish(fence, keep_job) {
            let _ = self.outcomes.send(Handoff {
                update: OutcomeUpdate::new(fence, outcome),
                _window: window,
                step: crate::workflow::is_step(self.job).then(|| self.job.clone()),
            });
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let error = JobError::msg(
            "the attempt ended without an outcome (its task was cancelled or panicked outside the handler)",
        );
        let cfg = &self.shared.cfg;
        let outcome = outcome_of_failure(self.job, &error, &cfg.backoff, cfg.max_error_bytes, None);
        self.send(outcome, None);
    }
}

/// What an attempt produced: the outcome to record, and the failure behind
/// it (none for a success or a release).
#[derive(Debug)]
pub(crate) struct Attempted {
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<JobError>,
}

/// The outcome for a job whose type has no handler here: a retryable
/// failure, so a worker that has one can run it later.
pub(crate) fn no_handler(cfg: &Config, job: &Job, worker_id: &str, handles: &str) -> Attempted {
    let error = JobError::msg(format!(
        "no handler for job type `{}` in worker `{worker_id}` (it handles: {handles}); it will be retried, so a worker that has one can run it",
        job.job_type,
    ));
    warn!(error = %error, "no handler for job type");
    Attempted {
        outcome: outcome_of_failure(job, &error, &cfg.backoff, cfg.max_error_bytes, None),
        error: Some(error),
    }
}

/// What one attempt needs besides the job and its handler: the settings, and
/// what its [`JobContext`] hands to extractors. A manager makes one per job
/// from what its tasks share; `jobs::testing` makes one with no manager.
pub(crate) struct Attempt<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) services: &'a Services,
    pub(crate) queue: &'a Queue,
    pub(crate) worker_id: &'a Arc<str>,
    /// The watchdog's view of the attempt's polls (none outside a manager).
    pub(crate) watch: Option<(Ticks, PollStart)>,
    /// Where the handler's progress reports go (none outside a manager).
    pub(crate) progress: Option<ProgressSink>,
    /// The parents' results to hand the handler instead of reading them
    /// (`jobs::testing::perform(..).parents(..)`).
    pub(crate) parents: Option<Arc<[jobs_core::workflow::ParentResult]>>,
}

impl Shared {
    /// An attempt in this manager (`poll_start`: the watchdog's slot for it).
    pub(crate) fn attempt(&self, poll_start: Option<PollStart>) -> Attempt<'_> {
        Attempt {
            cfg: &self.cfg,
            services: &self.services,
            queue: &self.queue,
            worker_id: &self.worker_id,
            watch: poll_start.map(|p| (self.ticks.clone(), p)),
            progress: None,
            parents: None,
        }
    }
}

impl Attempt<'_> {
    fn context(&self, job: &Arc<Job>, cancel: &CancellationToken) -> JobContext {
        let ctx = JobContext::new(
            job.clone(),
            self.services.clone(),
            cancel.clone(),
            self.worker_id.clone(),
        )
        .with_queue(self.queue.clone());
        match &self.progress {
            Some(sink) => ctx.with_progress_sink(sink.clone()),
            None => ctx,
        }
    }

    /// `fut` under the attempt's context (with its parents' results, if any).
    fn scoped<F: Future + Unpin>(
        &self,
        job: &Arc<Job>,
        cancel: &CancellationToken,
        parents: Option<Arc<[jobs_core::workflow::ParentResult]>>,
        fut: F,
    ) -> impl Future<Output = F::Output> {
        let ctx = self.context(job, cancel);
        match parents {
            Some(parents) => ctx.with_parents(parents),
            None => ctx,
        }
        .scope(fut)
    }

    /// Runs the handler under its time limit, panic guard and watchdog, then
    /// `on_failure` after a failure; returns the outcome to record.
    pub(crate) async fn run(
        &self,
        handler: &dyn DynHandler,
        job: &Arc<Job>,
        cancel: &CancellationToken,
    ) -> Attempted {
        let cfg = self.cfg;
        let started = Instant::now();
        debug!("job started");
        let limit = time_limit(cfg, handler, job);
        let parents = match &self.parents {
            Some(parents) => Some(parents.clone()),
            None if crate::workflow::is_step(job) => {
                // Boxed: only workflow steps wait here, and every attempt's
                // task would otherwise carry room for this future (see
                // `call_on_failure`).
                let parents = Box::pin(crate::workflow::parent_results(
                    self.queue.backend().as_ref(),
                    job,
                ));
                match parents.await {
                    Ok(parents) => parents,
                    Err(e) => {
                        let error = JobError::msg(format!(
                            "could not read the results of this workflow step's parents: {e}"
                        ));
                        let outcome = outcome_of_failure(
                            job,
                            &error,
                            &cfg.backoff,
                            cfg.max_error_bytes,
                            None,
                        );
                        return Attempted {
                            outcome,
                            error: Some(error),
                        };
                    }
                }
            }
            None => None,
        };
        let result = match guarded(|| handler.handle(job)) {
            Err(panic) => Ran::PanickedEarly(panic),
            Ok(fut) => {
                let watched = Watched::new(CatchUnwind(fut), self.watch.clone());
                let grace = cfg.cancel_grace;
                // The handler first: one that finishes at its first poll (most
                // do) never registers with its token, which costs a lock and a
                // waker; a pending one is cut off as before. One `select!` per
                // case rather than one around an optional timeout: the task
                // holds room for the larger only (an `async fn` taking the
                // handler's future and awaiting a timeout around it held both).
                let ran = match limit {
                    None => tokio::select! {
                        biased;
                        ran = self.scoped(job, cancel, parents, watched) => Some(Some(ran)),
                        () = cut_off(cancel, grace) => None,
                    },
                    Some(limit) => tokio::select! {
                        biased;
                        ran = tokio::time::timeout(limit, self.scoped(job, cancel, parents, watched)) => {
                            Some(ran.ok())
                        }
                        () = cut_off(cancel, grace) => None,
                    },
                };
                match ran {
                    Some(Some(Ok(result))) => Ran::Returned(result),
                    Some(Some(Err(panic))) => Ran::Panicked(panic),
                    Some(None) => Ran::TimedOut,
                    None => Ran::CutOff,
                }
            }
        };
        // The atomic first: the reason is behind the token's lock.
        let cancelled = cancel.is_cancelled() && cancel.reason() == Some(CancelReason::Cancelled);
        let (error, data) = match result {
            Ran::Returned(Ok(r)) if r.success && r.snooze.is_some() && !cancelled => {
                let delay = r.snooze.unwrap_or_default();
                if job.snoozes < cfg.max_snoozes {
                    debug!(snooze = ?delay, snoozes = job.snoozes + 1, "job snoozed");
                    return Attempted {
                        outcome: Outcome::Snooze { delay },
                        error: None,
                    };
                }
                let error = JobError::msg(format!(
                    "snoozed {} times; the limit is {} (`max_snoozes` of the WorkerManager builder)",
                    job.snoozes, cfg.max_snoozes
                ));
                (error, None)
            }
            Ran::Returned(Ok(r)) if r.success => match too_large(cfg, &r) {
                None => {
                    debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "job completed"
                    );
                    return Attempted {
                        outcome: Outcome::Complete {
                            result: r.result_data,
                        },
                        error: None,
                    };
                }
                Some(error) => (error, None),
            },
            Ran::Returned(Ok(r)) => {
                let data = r
                    .result_data
                    .filter(|d| json_size(d) <= cfg.max_result_bytes);
                let error = r
                    .error
                    .unwrap_or_else(|| JobError::msg("handler returned a failed JobResult"))
                    .into_permanent();
                (error, data)
            }
            Ran::Returned(Err(e)) => (e, None),
            Ran::Panicked(panic) => (JobError::msg(format!("handler panicked: {panic}")), None),
            Ran::PanickedEarly(panic) => (
                JobError::msg(format!(
                    "handler panicked before its future existed: {panic}"
                )),
                None,
            ),
            Ran::TimedOut => {
                cancel.cancel(CancelReason::Timeout);
                let limit = limit.unwrap_or_default();
                (JobError::msg(format!("timed out after {limit:?}")), None)
            }
            Ran::CutOff => (
                JobError::msg(format!(
                    "the handler did not stop within {:?} of its cancellation and was cut off",
                    cfg.cancel_grace
                )),
                None,
            ),
        };
        if cancelled {
            info!(error = %error, "job cancelled while it ran");
            let message = format!("cancelled while running: {}", error.message());
            return Attempted {
                outcome: Outcome::Cancel {
                    error: AttemptFailure::new(
                        crate::limits::truncate_message(&message, cfg.max_error_bytes),
                        false,
                    ),
                },
                error: Some(error),
            };
        }
        if error.is_retryable() && cancel.reason() == Some(CancelReason::Shutdown) {
            info!(error = %error, "job stopped for shutdown; releasing it back to the queue");
            return Attempted {
                outcome: Outcome::Release,
                error: Some(error),
            };
        }
        let backoff = match guarded(|| handler.backoff()) {
            Ok(b) => b.unwrap_or(cfg.backoff),
            Err(panic) => {
                error!(panic = %panic, "the handler's backoff() panicked; using the manager's backoff");
                cfg.backoff
            }
        };
        let outcome = outcome_of_failure(job, &error, &backoff, cfg.max_error_bytes, data);
        match &outcome {
            Outcome::Retry { delay, .. } => {
                warn!(error = %error, retry_in = ?delay, "job failed; will retry")
            }
            Outcome::Fail { .. } => warn!(error = %error, "job failed permanently"),
            _ => {
                error!(error = %error, max_retries = job.max_retries, "job failed on its last attempt; dead-lettered")
            }
        }
        // `on_failure` learns whether a retry follows from the job it is given.
        let mut seen = Job::clone(job);
        seen.no_retry_follows = !retry_follows(&outcome);
        // Boxed: only a failed attempt gets here, and an unboxed future would
        // make every attempt larger, and with it every slot task, which holds
        // its current attempt's future.
        Box::pin(self.call_on_failure(handler, &Arc::new(seen), &error, cancel, limit)).await;
        Attempted {
            outcome,
            error: Some(error),
        }
    }

    /// Calls `on_failure` under `limit`, logging (and otherwise ignoring) its
    /// error, panic or timeout.
    pub(crate) async fn call_on_failure(
        &self,
        handler: &dyn DynHandler,
        job: &Arc<Job>,
        error: &JobError,
        cancel: &CancellationToken,
        limit: Option<Duration>,
    ) {
        let ctx = self.context(job, cancel);
        let fut = match guarded(|| handler.on_failure(job, error)) {
            Ok(fut) => fut,
            Err(panic) => {
                error!(panic = %panic, "on_failure panicked (ignored)");
                return;
            }
        };
        match limited(limit, ctx.scope(CatchUnwind(fut))).await {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => error!(error = %e, "on_failure returned an error (ignored)"),
            Some(Err(panic)) => error!(panic = %panic, "on_failure panicked (ignored)"),
            None => error!(
                limit = ?limit,
                "on_failure did not finish within the job's time limit; it was cut off"
            ),
        }
    }
}

/// How a handler's attempt went.
enum Ran {
    Returned(Result<JobResult, JobError>),
    Panicked(String),
    /// `handle` panicked while building its future.
    PanickedEarly(String),
    TimedOut,
    /// Cancelled (or its lease lost), it did not stop within the grace period.
    CutOff,
}

/// Completes `grace` after the token fires for a cancellation or a lost
/// lease (a handler that ignores its token is then cut off); never for a
/// shutdown or a timeout, which have their own deadlines.
async fn cut_off(cancel: &CancellationToken, grace: Duration) {
    match cancel.cancelled().await {
        // Boxed: the grace period is rare, and a timer is large.
        CancelReason::Cancelled | CancelReason::LeaseLost => {
            Box::pin(tokio::time::sleep(grace)).await
        }
        _ => std::future::pending().await,
    }
}

/// The attempt's time limit: the job's own, else its handler's, else the manager's.
pub(crate) fn time_limit(cfg: &Config, handler: &dyn DynHandler, job: &Job) -> Option<Duration> {
    let handler_says = guarded(|| handler.timeout()).unwrap_or_else(|panic| {
        error!(panic = %panic, "the handler's timeout() panicked; using the manager's job timeout");
        None
    });
    let timeout: Timeout = job.timeout.or(handler_says).unwrap_or(cfg.job_timeout);
    timeout.limit()
}

/// `fut`, cut off after `limit` (`None` when it was).
async fn limited<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        None => Some(fut.await),
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// A successful result too large to store, as the failure it becomes.
fn too_large(cfg: &Config, r: &JobResult) -> Option<JobError> {
    let max = cfg.max_result_bytes;
    let size = json_size(r.result_data.as_ref()?);
    (size > max).then(|| {
        JobError::permanent(format!(
            "the handler succeeded, but its result is too large to store: about {size} bytes, \
             the limit is {max} (`max_result_bytes` of the WorkerManager builder); store large \
             results elsewhere and return a reference"
        ))
    })
}
