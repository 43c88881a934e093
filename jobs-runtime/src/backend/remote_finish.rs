//! Completion signals sent by the store itself (PostgreSQL `NOTIFY`, Redis
//! `PUBLISH`) for [`Backend::wait_finished`], so a wait in any process wakes
//! when its job finishes, wherever it was recorded.
//!
//! One subscription per backend serves every wait of the process: a task,
//! started by the first wait, listens and wakes the waiters of the jobs a
//! signal names. A wait registers interest, makes sure the subscription is
//! active, reads its job, then sleeps until a signal, so a finish after the
//! read always wakes it. While the subscription is down, waits read their job
//! with a backoff from 20 ms to 1 s instead.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_core::{Backend, Job, JobId, Result};
use tokio::sync::{oneshot, watch};

use super::finished::FinishWaiters;

/// How often a subscribed wait reads its job without a signal: a signal is
/// never lost while subscribed, so this only bounds how long a wait on a
/// job deleted meanwhile (deletion sends no signal) lasts.
const SAFETY_READ: Duration = Duration::from_secs(30);

/// How a signal payload says "any job may have finished".
pub(crate) const ANY_JOB: &str = "*";

/// What the listening task and the waits share.
#[derive(Default)]
pub(crate) struct Shared {
    waiters: FinishWaiters,
    /// Whether the subscription is active: signals sent now arrive.
    listening: watch::Sender<bool>,
    /// Which listening task is current (0: none); a task that ends clears
    /// it only if it is still its own.
    task: AtomicU64,
    /// How many times waits read their job (see `reads`).
    reads: AtomicU64,
}

impl Shared {
    /// The subscription is active (`true`) or down (`false`). Every waiter
    /// reads its job again either way: a finish may have gone unheard.
    pub(crate) fn listening(&self, yes: bool) {
        self.listening.send_replace(yes);
        self.waiters.finished_all();
    }

    /// A signal arrived: `payload` lists the ids of jobs that finished,
    /// separated by spaces, or is [`ANY_JOB`] (or empty) for any job.
    pub(crate) fn heard(&self, payload: &str) {
        let payload = payload.trim();
        if payload.is_empty() || payload == ANY_JOB {
            self.waiters.finished_all();
            return;
        }
        let ids: Vec<JobId> = payload
            .split(' ')
            .filter_map(|id| id.parse().ok())
            .collect();
        self.waiters.finished(ids);
    }
}

/// A backend's completion signal: the shared state, and the stop switch of
/// its listening task (dropping it, with the backend, ends the task).
#[derive(Default)]
pub(crate) struct RemoteFinish {
    shared: Arc<Shared>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for RemoteFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFinish")
            .field("listening", &*self.shared.listening.borrow())
            .finish()
    }
}

/// Ends a listening task's turn: the subscription is down, and a later wait
/// starts another task (this one's runtime may have shut down).
struct TaskGuard {
    shared: Arc<Shared>,
    task: u64,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mine = self
            .shared
            .task
            .compare_exchange(self.task, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if mine {
            self.shared.listening(false);
        }
    }
}

/// Task numbers, unique in the process.
static TASKS: AtomicU64 = AtomicU64::new(1);

impl RemoteFinish {
    /// How many times waits read their job so far: tests use it to tell
    /// a signalled wait from a polling one.
    pub(crate) fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }

    /// Starts the listening task unless one runs: `listen` subscribes, calls
    /// [`Shared::listening`] and [`Shared::heard`], and resubscribes after
    /// a failure; it never returns.
    fn ensure_started<F, Fut>(&self, listen: F)
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if stop.is_some() && self.shared.task.load(Ordering::Acquire) != 0 {
            return;
        }
        let task = TASKS.fetch_add(1, Ordering::Relaxed);
        self.shared.task.store(task, Ordering::Release);
        let (tx, rx) = oneshot::channel::<()>();
        *stop = Some(tx);
        let guard = TaskGuard {
            shared: self.shared.clone(),
            task,
        };
        let run = listen(self.shared.clone());
        tokio::spawn(async move {
            let _guard = guard;
            tokio::select! {
                _ = rx => {}
                () = run => {}
            }
        });
    }

    /// [`Backend::wait_finished`] on this signal; `listen` as for
    /// [`ensure_started`](Self::ensure_started).
    pub(crate) async fn wait<B, F, Fut>(
        &self,
        backend: &B,
        id: JobId,
        timeout: Duration,
        listen: F,
    ) -> Result<Option<Job>>
    where
        B: Backend + ?Sized,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + timeout.min(Duration::from_secs(86_400));
        self.ensure_started(listen);
        let registration = self.shared.waiters.register(id);
        let mut listening = self.shared.listening.subscribe();
        let mut backoff = Duration::from_millis(20);
        loop {
            let signal = registration.notify().notified();
            tokio::pin!(signal);
            // Interest first, then the subscription's state, then the read:
            // a finish after the read wakes us if we were subscribed.
            signal.as_mut().enable();
            let subscribed = *listening.borrow_and_update();
            let job = backend.get(id).await?;
            self.shared.reads.fetch_add(1, Ordering::Relaxed);
            let now = tokio::time::Instant::now();
            match job {
                Some(job) if !job.status.is_terminal() && now < deadline => {
                    let left = deadline - now;
                    if subscribed {
                        let _ = tokio::time::timeout(left.min(SAFETY_READ), signal).await;
                    } else {
                        // Not subscribed (yet, or any more): read again soon,
                        // or as soon as the subscription is up.
                        let _ = tokio::time::timeout(left.min(backoff), listening.changed()).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                }
                job => return Ok(job),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_wake_the_named_jobs_or_all() {
        let shared = Shared::default();
        let (a, b) = (JobId::new(), JobId::new());
        let ra = shared.waiters.register(a);
        let rb = shared.waiters.register(b);
        let sa = ra.notify().notified();
        let sb = rb.notify().notified();
        tokio::pin!(sa, sb);
        sa.as_mut().enable();
        sb.as_mut().enable();
        shared.heard(&format!("{} {}", JobId::new(), a));
        // Already notified: completes at once.
        sa.as_mut().await;
        assert!(futures_now(sb.as_mut()).is_none());
        shared.heard(ANY_JOB);
        sb.await;
    }

    /// Whether `f` is ready without waiting.
    fn futures_now<F: Future + Unpin>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match std::pin::Pin::new(&mut f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
