//! In-process completion signals for [`Backend::wait_finished`]: who awaits
//! which job, and waking exactly them when it may have finished.
//!
//! Recording an outcome costs one atomic load while nobody waits; with
//! waiters, a lock and a map lookup per recorded job. Waiters register
//! interest, then read the job, then sleep, so no finish between the read and
//! the sleep is missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs_core::{Backend, Job, JobId, Result};
use tokio::sync::Notify;

/// How often a waiter reads its job even without a signal: the signal covers
/// this process, and this catches a finish recorded by another process on
/// the same store (SQLite shared by two processes).
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// The jobs awaited in this process, each with the signal its waiters sleep on.
#[derive(Default)]
pub(crate) struct FinishWaiters {
    /// How many waits are registered: zero makes [`finished`](Self::finished) free.
    waiting: AtomicUsize,
    jobs: Mutex<HashMap<JobId, (usize, Arc<Notify>)>>,
}

impl FinishWaiters {
    /// Wakes the waiters of any of `ids` (jobs that may have finished).
    pub(crate) fn finished(&self, ids: impl IntoIterator<Item = JobId>) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some((_, notify)) = jobs.get(&id) {
                notify.notify_waiters();
            }
        }
    }

    /// Wakes every waiter: a signal was too broad to name jobs, or signals
    /// may have been lost (each then reads its job again).
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pub(crate) fn finished_all(&self) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        for (_, notify) in jobs.values() {
            notify.notify_waiters();
        }
    }

    /// Registers interest in `id` until the returned registration is dropped.
    pub(crate) fn register(&self, id: JobId) -> Registration<'_> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let entry = jobs.entry(id).or_insert_with(|| (0, Arc::default()));
        entry.0 += 1;
        let notify = entry.1.clone();
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Registration {
            waiters: self,
            id,
            notify,
        }
    }

    /// [`Backend::wait_finished`] for a backend that calls
    /// [`finished`](Self::finished) whenever a job of this process may have
    /// finished (recorded, cancelled, recovered, deleted).
    pub(crate) async fn wait<B: Backend + ?Sized>(
        &self,
        backend: &B,
        id: JobId,
        timeout: Duration,
    ) -> Result<Option<Job>> {
        let deadline = tokio::time::Instant::now() + timeout.min(Duration::from_secs(86_400));
        let registration = self.register(id);
        loop {
            let signal = registration.notify.notified();
            tokio::pin!(signal);
            // Interest first, then the read: a finish after this wakes us.
            signal.as_mut().enable();
            let job = backend.get(id).await?;
            let now = tokio::time::Instant::now();
            match job {
                Some(job) if !job.status.is_terminal() && now < deadline => {
                    let _ = tokio::time::timeout((deadline - now).min(SAFETY_POLL), signal).await;
                }
                job => return Ok(job),
            }
        }
    }
}

/// One registered wait; dropping it (the wait ended or was dropped) unregisters it.
pub(crate) struct Registration<'a> {
    waiters: &'a FinishWaiters,
    id: JobId,
    notify: Arc<Notify>,
}

impl Registration<'_> {
    /// The signal this wait sleeps on.
    #[cfg(any(feature = "postgres", feature = "redis"))]
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut jobs = self.waiters.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = jobs.get_mut(&self.id) {
            entry.0 -= 1;
            if entry.0 == 0 {
                jobs.remove(&self.id);
            }
        }
        self.waiters.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registrations_come_and_go() {
        let waiters = FinishWaiters::default();
        let id = JobId::new();
        {
            let a = waiters.register(id);
            let _b = waiters.register(id);
            assert_eq!(waiters.waiting.load(Ordering::Acquire), 2);
            let signal = a.notify.notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            waiters.finished([JobId::new(), id]);
            // Already notified: completes at once.
            signal.await;
        }
        assert_eq!(waiters.waiting.load(Ordering::Acquire), 0);
        assert!(waiters.jobs.lock().unwrap().is_empty());
    }
}
