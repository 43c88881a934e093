//! `JobContext`: what a running job can know about itself, and its cancellation token.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use serde_json::{Map, Value};

use crate::{Job, JobId, Queue, Services};

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
    /// Someone cancelled the job (`Queue::cancel`): it ends FAILED, marked
    /// cancelled. A handler that does not stop is cut off after a grace period.
    Cancelled,
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
    queue: Option<Queue>,
    progress: Option<ProgressSink>,
    parents: Option<Arc<[crate::workflow::ParentResult]>>,
}

/// Where a running job's progress reports go (the manager's in-flight table).
pub type ProgressSink = Arc<dyn Fn(crate::Progress) + Send + Sync>;

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
            queue: None,
            progress: None,
            parents: None,
        }
    }

    /// This context with a sink for [`progress`](Self::progress) reports
    /// (the manager sets one).
    pub fn with_progress_sink(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Reports how far the job has come: a percentage (0 to 100) and/or a
    /// small JSON value. Cheap: reports are coalesced and written at most a
    /// few times a second; `get`, the CLI and the dashboard show the latest
    /// while the job runs and after. Outside a manager it does nothing.
    pub fn progress(&self, percent: Option<f32>, data: Option<serde_json::Value>) {
        if let Some(sink) = &self.progress {
            sink(crate::Progress::new(percent, data));
        }
    }

    /// This context with the queue handle the job came from, which handlers
    /// take as a `Queue` extractor to enqueue more jobs (the manager and
    /// `jobs::testing` set it).
    pub fn with_queue(mut self, queue: Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// This context with the results of the job's workflow parents, in
    /// edge order (the runtime reads them before the handler runs), for the
    /// `Parent<T>`, `Parents<T>` and `BatchResults` extractors.
    pub fn with_parents(mut self, parents: Arc<[crate::workflow::ParentResult]>) -> Self {
        self.parents = Some(parents);
        self
    }

    /// The results of the job's workflow parents, if it has any.
    pub fn parents(&self) -> Option<&[crate::workflow::ParentResult]> {
        self.parents.as_deref()
    }

    /// A context for calling a handler directly (in a unit test): no worker, the
    /// given services, a token nobody fires, no queue handle (add one with
    /// [`with_queue`](Self::with_queue)). `jobs::testing::perform` builds all
    /// of this for you and runs the handler as a worker does.
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

    /// The queue handle the job came from, to enqueue more jobs (`None` for
    /// a context built by hand without [`with_queue`](Self::with_queue)).
    pub fn queue(&self) -> Option<&Queue> {
        self.queue.as_ref()
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
        // The context moves into the thread-local for this poll and back into
        // `self` after it (on panic too): no clone per poll.
        struct Restore<'a> {
            slot: &'a mut Option<JobContext>,
            prev: Option<JobContext>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                let prev = self.prev.take();
                *self.slot = CURRENT.with(|c| c.replace(prev));
            }
        }
        let prev = CURRENT.with(|c| c.replace(this.ctx.take()));
        let _restore = Restore {
            slot: &mut this.ctx,
            prev,
        };
        Pin::new(&mut this.fut).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewJob;

    #[test]
    fn a_scope_lends_its_context_to_each_poll_and_gets_it_back() {
        let job = Job::from_new(NewJob::new("t", serde_json::json!({})));
        let id = job.id;
        let ctx = JobContext::for_job(job, Services::new());
        let mut polls = 0;
        let fut = std::future::poll_fn(|cx| {
            polls += 1;
            assert_eq!(JobContext::current().map(|c| c.id()), Some(id));
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        });
        let mut scoped = ctx.scope(Box::pin(fut));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(Pin::new(&mut scoped).poll(&mut cx).is_pending());
        assert!(JobContext::current().is_none(), "only during a poll");
        assert!(scoped.ctx.is_some(), "back in the scope between polls");
        assert!(Pin::new(&mut scoped).poll(&mut cx).is_pending());
        assert_eq!(Pin::new(&mut scoped).poll(&mut cx), Poll::Ready(3));
    }
}
