//! The slot tasks: `concurrency` long-lived tasks that run the claimed jobs.
//!
//! The claim loop hands each claimed job, with its slot, to a queue the slot
//! tasks share, and wakes as many idle ones as it handed jobs; an idle slot
//! task takes the next job and runs its attempt, then the next, until none is
//! left. A task spawned per job cost an allocation and a spawn per job and,
//! with handlers that finish at once, woke the runtime's other thread for
//! nearly every job (it ran the new task and went back to sleep before the
//! next one came); a slot task that finds more jobs waiting runs them one after
//! another without being scheduled again (W1 on memory: see the README).
//!
//! Each job still runs in a task of its own for as long as it runs: a handler
//! that blocks its thread holds up its own slot only, and `stop()` aborts a job
//! that outlives the shutdown timeout by aborting its slot's task. A panic
//! outside the handler (the handler's own are caught in the attempt) ends that
//! one attempt, whose guard reports it failed, never the slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{CancellationToken, Job};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::task::AbortHandle;
use tokio_util::task::TaskTracker;
use tracing::{error, Instrument};

use crate::attempt::run_job;
use crate::panic::CatchUnwind;
use crate::shared::{Handoff, Outcomes, Shared};
use crate::watchdog::PollStart;

/// A claimed job on its way to a slot task, entered in the table of held jobs.
pub(crate) struct Claimed {
    job: Arc<Job>,
    cancel: CancellationToken,
    poll_start: PollStart,
    slot: OwnedSemaphorePermit,
}

/// The slot tasks of one claim loop, and the jobs waiting for them. Dropping
/// it (the claim loop ended: stopped, or panicked and about to be started
/// again) lets the slot tasks go once their current jobs end, and releases
/// the jobs none of them took, so nothing claimed is left behind.
pub(crate) struct Slots {
    shared: Arc<Shared>,
    outcomes: Outcomes,
    waiting: Arc<Waiting>,
}

/// What the claim loop and its slot tasks share.
#[derive(Default)]
struct Waiting {
    jobs: Mutex<VecDeque<Claimed>>,
    /// A job was handed over, or the slots were closed.
    ready: Notify,
    closed: AtomicBool,
}

impl Waiting {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Claimed>> {
        // Nothing panics while the lock is held.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slots {
    /// Starts `shared.cfg.concurrency` slot tasks on `tasks`.
    pub(crate) fn start(shared: &Arc<Shared>, tasks: &TaskTracker, outcomes: &Outcomes) -> Slots {
        let n = shared.cfg.concurrency;
        let waiting = Arc::new(Waiting {
            jobs: Mutex::new(VecDeque::with_capacity(n)),
            ..Waiting::default()
        });
        for _ in 0..n {
            // Each task learns its own abort handle, for `stop()` to abort the
            // job it runs; it is set before any job can reach the task.
            let me = Arc::new(OnceLock::new());
            let handle = tasks.spawn(slot_task(
                shared.clone(),
                waiting.clone(),
                outcomes.clone(),
                me.clone(),
            ));
            let _ = me.set(handle.abort_handle());
        }
        Slots {
            shared: shared.clone(),
            outcomes: outcomes.clone(),
            waiting,
        }
    }

    /// Enters a claimed job in the table of held jobs (it is heartbeated from
    /// now on); `renewed`: when its lease was known to be good.
    pub(crate) fn enter(
        &self,
        job: Job,
        slot: OwnedSemaphorePermit,
        renewed: std::time::Instant,
    ) -> Claimed {
        let job = Arc::new(job);
        let cancel = CancellationToken::new();
        let poll_start = PollStart::default();
        self.shared
            .in_flight
            .start(job.clone(), cancel.clone(), renewed, poll_start.clone());
        Claimed {
            job,
            cancel,
            poll_start,
            slot,
        }
    }

    /// Hands entered jobs to the slot tasks.
    pub(crate) fn run(&self, jobs: impl IntoIterator<Item = Claimed>) {
        let handed = {
            let mut waiting = self.waiting.lock();
            let before = waiting.len();
            waiting.extend(jobs);
            waiting.len() - before
        };
        // One idle task woken per job at most: a task that finds more jobs
        // after its own takes them too, and one woken for nothing goes back
        // to waiting.
        for _ in 0..handed {
            self.waiting.ready.notify_one();
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        self.waiting.closed.store(true, Ordering::SeqCst);
        self.waiting.ready.notify_waiters();
        let left: Vec<Claimed> = self.waiting.lock().drain(..).collect();
        for c in left {
            release(&self.shared, &self.outcomes, &c.job);
        }
    }
}

/// Hands a claimed job straight back to the queue, unrun.
pub(crate) fn release(shared: &Shared, outcomes: &Outcomes, job: &Job) {
    let fence = job.fence();
    shared.in_flight.hand_back(fence);
    let _ = outcomes.send(Handoff {
        update: OutcomeUpdate::new(fence, Outcome::Release),
        _window: None,
        step: None,
    });
}

/// One slot: takes the next waiting job and runs it, until the slots close.
async fn slot_task(
    shared: Arc<Shared>,
    waiting: Arc<Waiting>,
    outcomes: Outcomes,
    me: Arc<OnceLock<AbortHandle>>,
) {
    loop {
        let next = waiting.lock().pop_front();
        match next {
            Some(claimed) => {
                run_claimed(&shared, &outcomes, &me, claimed).await;
                // Jobs that end at once can follow each other here without
                // the task ever waiting: it yields to the runtime's other
                // tasks when its share of the runtime's time is used up.
                tokio::task::coop::consume_budget().await;
            }
            None => {
                // Registered before looking again, so a job handed over (or a
                // close) in between is not missed.
                let ready = waiting.ready.notified();
                tokio::pin!(ready);
                ready.as_mut().enable();
                if waiting.closed.load(Ordering::SeqCst) {
                    return;
                }
                if waiting.lock().is_empty() {
                    ready.await;
                }
            }
        }
        if waiting.closed.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Runs one claimed job's attempt in this slot's task.
async fn run_claimed(
    shared: &Arc<Shared>,
    outcomes: &Outcomes,
    me: &OnceLock<AbortHandle>,
    claimed: Claimed,
) {
    let Claimed {
        job,
        cancel,
        poll_start,
        slot,
    } = claimed;
    if let Some(me) = me.get() {
        shared.in_flight.set_abort(job.fence(), me.clone());
    }
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        job_type = %job.job_type,
        queue = %job.queue_name,
        attempt = job.attempt,
        retry_count = job.retry_count,
    );
    #[cfg(feature = "otel")]
    if let Some(parent) = jobs_core::trace::parent_context(&job.metadata) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        // Fails only when no OpenTelemetry layer is installed: nothing to link.
        let _ = span.set_parent(parent);
    }
    let id = job.id;
    let attempt = run_job(
        shared.clone(),
        job,
        cancel,
        poll_start,
        outcomes.clone(),
        slot,
    )
    .instrument(span);
    let attempt = std::pin::pin!(attempt);
    // The attempt's guard has reported it failed by the time this returns.
    if let Err(panic) = CatchUnwind(attempt).await {
        error!(job_id = %id, panic = %panic, "an attempt panicked outside its handler; it is recorded as failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::WorkerManager;
    use jobs_core::backend::ClaimRequest;
    use jobs_core::{JobError, JobHandler, JobResult, NewJob, Queue};
    use serde_json::json;
    use std::time::Instant;
    use tokio::sync::{mpsc, Semaphore};

    struct Noop;
    impl JobHandler for Noop {
        fn job_type(&self) -> &str {
            "noop"
        }
        async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
            Ok(JobResult::success())
        }
    }

    /// A manager (not started) over a memory backend holding `n` noop jobs,
    /// and those jobs claimed under its id.
    async fn claimed(n: usize, concurrency: usize) -> (Arc<Shared>, Vec<Job>) {
        let queue = Queue::new(MemoryBackend::new());
        for i in 0..n {
            queue
                .enqueue_job(NewJob::new("noop", json!({ "i": i })))
                .await
                .unwrap();
        }
        let manager = WorkerManager::builder(queue.clone())
            .auto_register(false)
            .handler(Noop)
            .concurrency(concurrency)
            .build()
            .unwrap();
        let shared = manager.shared().clone();
        let req = ClaimRequest::new(&shared.worker_id, &shared.cfg.queues, n, shared.cfg.lease);
        let jobs = queue.backend().claim(req).await.unwrap().jobs;
        assert_eq!(jobs.len(), n);
        (shared, jobs)
    }

    /// `jobs` entered in `slots`, each with a slot of `permits`.
    fn enter(slots: &Slots, jobs: Vec<Job>, permits: &Arc<Semaphore>) -> Vec<Claimed> {
        jobs.into_iter()
            .map(|job| {
                let slot = permits.clone().try_acquire_owned().unwrap();
                slots.enter(job, slot, Instant::now())
            })
            .collect()
    }

    #[tokio::test]
    async fn jobs_no_slot_task_took_are_released_when_the_slots_close() {
        let (shared, jobs) = claimed(3, 3).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let tasks = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(3));
        // On this test's one thread the slot tasks run only once it waits:
        // none of them takes a job before the slots close.
        let slots = Slots::start(&shared, &tasks, &tx);
        let entered = enter(&slots, jobs, &permits);
        let fences: Vec<_> = entered.iter().map(|c| c.job.fence()).collect();
        slots.run(entered);
        drop(slots);
        tasks.close();
        tasks.wait().await;
        for fence in &fences {
            assert_eq!(shared.in_flight.state(*fence), Some("recording"));
        }
        let mut released = Vec::new();
        while let Ok(h) = rx.try_recv() {
            assert!(
                matches!(h.update.outcome, Outcome::Release),
                "{:?}",
                h.update
            );
            released.push(h.update.fence);
        }
        released.sort_by_key(|f| f.id);
        let mut fences = fences;
        fences.sort_by_key(|f| f.id);
        assert_eq!(released, fences, "each job released once, none run");
        assert_eq!(permits.available_permits(), 3, "their slots are free");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_slot_task_runs_the_jobs_handed_to_it_one_after_another() {
        let (shared, jobs) = claimed(5, 1).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let tasks = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(5));
        let slots = Slots::start(&shared, &tasks, &tx);
        let entered = enter(&slots, jobs, &permits);
        slots.run(entered);
        let mut completed = 0;
        while completed < 5 {
            let h = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("the slot task takes every job handed to it")
                .expect("an outcome");
            assert!(
                matches!(h.update.outcome, Outcome::Complete { .. }),
                "{:?}",
                h.update
            );
            assert_eq!(shared.in_flight.state(h.update.fence), Some("recording"));
            completed += 1;
        }
        drop(slots);
        tasks.close();
        tasks.wait().await;
        assert_eq!(tasks.len(), 0, "the slot task ended once the slots closed");
        assert_eq!(permits.available_permits(), 5);
        assert!(rx.try_recv().is_err(), "nothing released: every job ran");
    }
}
