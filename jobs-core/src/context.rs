//! `JobContext`: what a running job can know about itself, and its cancellation token.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use serde_json::{Map, Value};

use crate::{Job, JobId, Services};

/// Why a running job was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The manager is shutting down; the job will be released back to the queue
    /// unless it finishes successfully.
    Shutdown,
    /// The handler ran past its timeout.
    Timeout,
    /// The worker lost the job's lease (another worker may run it now).
    LeaseLost,
}

/// Fires when a running job should stop: on shutdown, on timeout, or when its
/// lease is lost. Cooperative: long handlers check it between steps.
#[derive(Clone, Default)]
pub struct CancellationToken {
    inner: Arc<TokenInner>,
}

#[derive(Default)]
struct TokenInner {
    cancelled: AtomicBool,
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    reason: Option<CancelReason>,
    wakers: Vec<Waker>,
}

impl CancellationToken {
    /// A token nobody has fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the token; the first reason given is kept.
    pub fn cancel(&self, reason: CancelReason) {
        let wakers = {
            let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.reason.is_none() {
                st.reason = Some(reason);
            }
            self.inner.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether it has fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Why it fired, if it has.
    pub fn reason(&self) -> Option<CancelReason> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reason
    }

    /// Completes once the token fires.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled { token: self }
    }
}

impl std::fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancellationToken")
            .field("reason", &self.reason())
            .finish()
    }
}

/// Future of [`CancellationToken::cancelled`].
#[derive(Debug)]
pub struct Cancelled<'a> {
    token: &'a CancellationToken,
}

impl Future for Cancelled<'_> {
    type Output = CancelReason;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        let mut st = self
            .token
            .inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = st.reason {
            return Poll::Ready(reason);
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// What a running job can see: the job, the attempt, injected services and a
/// cancellation token. Cheap to clone.
///
/// Inside a handler run by a `WorkerManager`, [`JobContext::current`] returns it,
/// so hand-written handlers get it without an extra parameter.
#[derive(Clone)]
pub struct JobContext {
    job: Arc<Job>,
    services: Services,
    cancel: CancellationToken,
    worker_id: Arc<str>,
}

impl JobContext {
    /// The context the runtime builds for one attempt.
    pub fn new(
        job: Arc<Job>,
        services: Services,
        cancel: CancellationToken,
        worker_id: Arc<str>,
    ) -> Self {
        JobContext {
            job,
            services,
            cancel,
            worker_id,
        }
    }

    /// A context for calling a handler directly (in a unit test): no worker, the
    /// given services, a token nobody fires.
    pub fn for_job(job: Job, services: Services) -> Self {
        JobContext::new(
            Arc::new(job),
            services,
            CancellationToken::new(),
            Arc::from("test"),
        )
    }

    /// The job being run.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The shared job, for handlers that move it into spawned tasks.
    pub fn job_arc(&self) -> &Arc<Job> {
        &self.job
    }

    /// The job's id (its idempotency key).
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// The job's type.
    pub fn job_type(&self) -> &str {
        &self.job.job_type
    }

    /// Times the job has been claimed, this attempt included (1 on the first run).
    pub fn attempt(&self) -> u32 {
        self.job.attempt
    }

    /// Retries already made (0 on the first attempt).
    pub fn retry_count(&self) -> u32 {
        self.job.retry_count
    }

    /// Retries allowed after the first attempt.
    pub fn max_retries(&self) -> u32 {
        self.job.max_retries
    }

    /// No retry follows if this attempt fails.
    pub fn is_last_attempt(&self) -> bool {
        self.job.is_last_attempt()
    }

    /// The job's metadata.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.job.metadata
    }

    /// The services given to the manager.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The id of the worker running the job (`"test"` outside a manager).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The attempt's cancellation token.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the job should stop (shutdown, timeout, lost lease).
    pub fn cancelled(&self) -> Cancelled<'_> {
        self.cancel.cancelled()
    }

    /// The context of the job being handled on this task, if any.
    pub fn current() -> Option<JobContext> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Runs `fut` with `self` as [`JobContext::current`] during every poll.
    pub fn scope<F: Future + Unpin>(self, fut: F) -> Scoped<F> {
        Scoped {
            ctx: Some(self),
            fut,
        }
    }
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.job.id)
            .field("job_type", &self.job.job_type)
            .field("attempt", &self.job.attempt)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<JobContext>> = const { RefCell::new(None) };
}

/// Future of [`JobContext::scope`].
#[derive(Debug)]
pub struct Scoped<F> {
    ctx: Option<JobContext>,
    fut: F,
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Swap the context in for this poll and back out after, restoring on panic too.
        struct Restore(Option<JobContext>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let prev = CURRENT.with(|c| c.replace(this.ctx.clone()));
        let _restore = Restore(prev);
        Pin::new(&mut this.fut).poll(cx)
    }
}
