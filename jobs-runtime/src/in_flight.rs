//! The jobs a manager holds a lease on, each in one of its real states.
//!
//! A job enters the table when it is claimed and leaves it when its outcome
//! has been recorded. In between, four tasks touch it — the attempt, the
//! heartbeat, the recorder and `stop()` — so every move between states is a
//! method here, under one lock, and the states are an enum rather than flags.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use jobs_core::backend::Fence;
use jobs_core::{CancelReason, CancellationToken, JobId};
use tokio::task::AbortHandle;

/// Where one held job is.
#[derive(Debug)]
pub(crate) enum JobState {
    /// Its handler (or `on_failure`) is running.
    Running {
        cancel: CancellationToken,
        /// The task running the attempt, once spawned.
        abort: Option<AbortHandle>,
    },
    /// Its attempt ended and its outcome was handed to the recorder.
    Recording,
    /// `stop()` gave up waiting for it: its task was aborted and a release was
    /// handed to the recorder, so its own outcome must never be sent.
    Released,
}

/// The table of held jobs, keyed by the fence of their lease.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    jobs: Mutex<HashMap<Fence, JobState>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<Fence, JobState>> {
        // Every method leaves the map consistent before anything can panic.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many jobs are held (running or being recorded).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A claimed job starts running.
    pub(crate) fn start(&self, fence: Fence, cancel: CancellationToken) {
        self.lock().insert(
            fence,
            JobState::Running {
                cancel,
                abort: None,
            },
        );
    }

    /// Remembers the task of a running job, so `stop()` can abort it.
    pub(crate) fn set_abort(&self, fence: Fence, handle: AbortHandle) {
        if let Some(JobState::Running { abort, .. }) = self.lock().get_mut(&fence) {
            *abort = Some(handle);
        }
    }

    /// A claimed job goes straight to the recorder (released unrun, e.g. when
    /// the manager stopped while claiming).
    pub(crate) fn hand_back(&self, fence: Fence) {
        self.lock().insert(fence, JobState::Recording);
    }

    /// A running job's attempt ended: `true` if its outcome may be sent to the
    /// recorder, `false` if `stop()` already released it (or it is unknown).
    pub(crate) fn finish(&self, fence: Fence) -> bool {
        let mut jobs = self.lock();
        match jobs.get_mut(&fence) {
            Some(state @ JobState::Running { .. }) => {
                *state = JobState::Recording;
                true
            }
            _ => false,
        }
    }

    /// Fires the cancellation token of every running job.
    pub(crate) fn cancel_all(&self, reason: CancelReason) {
        for state in self.lock().values() {
            if let JobState::Running { cancel, .. } = state {
                cancel.cancel(reason);
            }
        }
    }

    /// Fires the token of every running job among `ids`; returns their fences.
    pub(crate) fn cancel_ids(&self, ids: &[JobId], reason: CancelReason) -> Vec<Fence> {
        let mut hit = Vec::new();
        for (fence, state) in self.lock().iter() {
            if let JobState::Running { cancel, .. } = state {
                if ids.contains(&fence.id) {
                    cancel.cancel(reason);
                    hit.push(*fence);
                }
            }
        }
        hit
    }

    /// `stop()` gives up on every job still running: aborts its task and marks
    /// it released. Returns the fences to release back to the queue.
    pub(crate) fn release_running(&self) -> Vec<Fence> {
        let mut released = Vec::new();
        for (fence, state) in self.lock().iter_mut() {
            if let JobState::Running { abort, .. } = state {
                if let Some(abort) = abort {
                    abort.abort();
                }
                *state = JobState::Released;
                released.push(*fence);
            }
        }
        released
    }

    /// Fences of every held job, for the heartbeat.
    pub(crate) fn fences(&self) -> Vec<Fence> {
        self.lock().keys().copied().collect()
    }

    /// The recorder is done with these jobs (recorded, or refused as lost).
    pub(crate) fn remove<'a>(&self, fences: impl IntoIterator<Item = &'a Fence>) {
        let mut jobs = self.lock();
        for fence in fences {
            jobs.remove(fence);
        }
    }

    #[cfg(test)]
    fn state(&self, fence: Fence) -> Option<&'static str> {
        self.lock().get(&fence).map(|s| match s {
            JobState::Running { .. } => "running",
            JobState::Recording => "recording",
            JobState::Released => "released",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Fence {
        Fence::new(JobId::new(), 1)
    }

    #[test]
    fn a_finished_job_is_recorded_then_forgotten() {
        let t = InFlight::default();
        let f = fence();
        t.start(f, CancellationToken::new());
        assert_eq!(t.state(f), Some("running"));
        assert!(t.finish(f));
        assert_eq!(t.state(f), Some("recording"));
        // Only a running job can finish.
        assert!(!t.finish(f));
        t.remove([&f]);
        assert_eq!(t.state(f), None);
        assert!(!t.finish(f));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_released_job_never_sends_its_own_outcome() {
        let t = InFlight::default();
        let (running, done) = (fence(), fence());
        t.start(running, CancellationToken::new());
        t.start(done, CancellationToken::new());
        assert!(t.finish(done));
        assert_eq!(t.release_running(), vec![running]);
        assert_eq!(t.state(running), Some("released"));
        assert_eq!(t.state(done), Some("recording"));
        assert!(
            !t.finish(running),
            "a released job's late outcome is dropped"
        );
        // Both are still held (leases heartbeated) until the recorder is done.
        assert_eq!(t.fences().len(), 2);
        assert!(t.release_running().is_empty());
    }

    #[test]
    fn cancellation_reaches_running_jobs_only() {
        let t = InFlight::default();
        let (a, b) = (fence(), fence());
        let (ta, tb) = (CancellationToken::new(), CancellationToken::new());
        t.start(a, ta.clone());
        t.start(b, tb.clone());
        assert_eq!(t.cancel_ids(&[a.id], CancelReason::LeaseLost), vec![a]);
        assert_eq!(ta.reason(), Some(CancelReason::LeaseLost));
        assert!(!tb.is_cancelled());
        assert!(t.finish(b));
        t.cancel_all(CancelReason::Shutdown);
        assert!(
            !tb.is_cancelled(),
            "a job past its attempt is not cancelled"
        );
        assert_eq!(ta.reason(), Some(CancelReason::LeaseLost));
    }

    #[test]
    fn a_job_handed_back_unrun_goes_to_the_recorder() {
        let t = InFlight::default();
        let f = fence();
        t.hand_back(f);
        assert_eq!(t.state(f), Some("recording"));
        assert!(t.release_running().is_empty());
    }
}
