//! The jobs a manager holds a lease on, each in one of its real states.
//!
//! A job enters the table when it is claimed and leaves it when its outcome
//! has been recorded. In between, several tasks touch it — the attempt, the
//! heartbeat, the watchdog, the recorder and `stop()` — so every move between
//! states is a method here, under one lock, and the states are an enum rather
//! than flags.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jobs_core::backend::Fence;
use jobs_core::{CancelReason, CancellationToken, Job, JobId, Progress};
use tokio::task::AbortHandle;

use crate::id_hash::IdMap;
use crate::watchdog::PollStart;

/// Where one held job is.
#[derive(Debug)]
pub(crate) enum JobState {
    /// Its handler (or `on_failure`) is running.
    Running(Running),
    /// Its attempt ended and its outcome was handed to the recorder. It is
    /// still heartbeated: the job is this worker's until its outcome is
    /// written, however long the recorder takes (a slow or briefly hung
    /// backend, a recorder waiting on threads that handlers block), so no
    /// other worker runs it again meanwhile. Once the recorder is done with
    /// it — written, or given up on — it leaves the table and its lease
    /// runs out if the outcome never made it. The job is kept when it ran in
    /// a queue with a global limit (which then no longer counts it);
    /// otherwise it is let go here, so it is freed by the attempt's task (on
    /// the thread that claimed it, usually), not by the recorder.
    Recording(Option<Arc<Job>>),
    /// `stop()` gave up waiting for it: its task was aborted and a release was
    /// handed to the recorder, so its own outcome must never be sent.
    Released,
}

/// A running attempt.
#[derive(Debug)]
pub(crate) struct Running {
    cancel: CancellationToken,
    /// The slot task running the attempt, once one took the job.
    abort: Option<AbortHandle>,
    job: Arc<Job>,
    /// When the lease was last known to be good: the moment before the claim
    /// or the last successful heartbeat was sent (so the estimate errs early).
    renewed: Instant,
    /// The watchdog's view of the attempt's current poll.
    poll_start: PollStart,
    /// The watchdog warned about the current blocked stretch.
    warned: bool,
    /// The latest progress report not yet written.
    progress: Option<Progress>,
}

/// A blocked attempt, as the watchdog reports it.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) job: Arc<Job>,
    /// How long its poll has run, in ticks.
    pub(crate) ticks: u64,
}

/// The table of held jobs, keyed by the fence of their lease.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    jobs: Mutex<IdMap<Fence, JobState>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, IdMap<Fence, JobState>> {
        // Every method leaves the map consistent before anything can panic.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many jobs are held (running or being recorded).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// A claimed job starts running; its lease was good at `renewed`.
    pub(crate) fn start(
        &self,
        job: Arc<Job>,
        cancel: CancellationToken,
        renewed: Instant,
        poll_start: PollStart,
    ) {
        let running = Running {
            cancel,
            abort: None,
            renewed,
            poll_start,
            warned: false,
            progress: None,
            job: job.clone(),
        };
        self.lock().insert(job.fence(), JobState::Running(running));
    }

    /// Remembers the task of a running job, so `stop()` can abort it.
    pub(crate) fn set_abort(&self, fence: Fence, handle: AbortHandle) {
        if let Some(JobState::Running(r)) = self.lock().get_mut(&fence) {
            r.abort = Some(handle);
        }
    }

    /// A claimed job goes straight to the recorder (released unrun, e.g. when
    /// the manager stopped while claiming).
    pub(crate) fn hand_back(&self, fence: Fence) {
        self.lock().insert(fence, JobState::Recording(None));
    }

    /// A running job's attempt ended: `true` if its outcome may be sent to the
    /// recorder, `false` if `stop()` already released it (or it is unknown).
    /// `keep_job`: its queue has a global limit (see [`recording_in`](Self::recording_in)).
    pub(crate) fn finish(&self, fence: Fence, keep_job: bool) -> bool {
        let mut jobs = self.lock();
        let Some(state @ JobState::Running(_)) = jobs.get_mut(&fence) else {
            return false;
        };
        let JobState::Running(r) = std::mem::replace(state, JobState::Recording(None)) else {
            unreachable!("matched as running")
        };
        if keep_job {
            *state = JobState::Recording(Some(r.job));
            return true;
        }
        drop(jobs);
        // The job's other handles, its token and its watchdog slot go
        // outside the lock.
        drop(r);
        true
    }

    /// Fires the cancellation token of every running job.
    pub(crate) fn cancel_all(&self, reason: CancelReason) {
        for state in self.lock().values() {
            if let JobState::Running(r) = state {
                r.cancel.cancel(reason);
            }
        }
    }

    /// Fires the token of every running job among `ids`; returns their fences.
    pub(crate) fn cancel_ids(&self, ids: &[JobId], reason: CancelReason) -> Vec<Fence> {
        let mut hit = Vec::new();
        for (fence, state) in self.lock().iter() {
            if let JobState::Running(r) = state {
                if ids.contains(&fence.id) {
                    r.cancel.cancel(reason);
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
            if let JobState::Running(r) = state {
                if let Some(abort) = &r.abort {
                    abort.abort();
                }
                *state = JobState::Released;
                released.push(*fence);
            }
        }
        released
    }

    /// Fences of the jobs whose leases the heartbeat extends: those running
    /// and those whose outcomes wait to be recorded.
    pub(crate) fn leased_fences(&self) -> Vec<Fence> {
        self.lock()
            .iter()
            .filter(|(_, s)| matches!(s, JobState::Running(_) | JobState::Recording(_)))
            .map(|(f, _)| *f)
            .collect()
    }

    /// A heartbeat sent at `at` renewed these leases.
    pub(crate) fn renewed(&self, fences: &[Fence], at: Instant) {
        let mut jobs = self.lock();
        for fence in fences {
            if let Some(JobState::Running(r)) = jobs.get_mut(fence) {
                r.renewed = r.renewed.max(at);
            }
        }
    }

    /// Running jobs whose lease has run out by `now` as far as this worker
    /// knows (no renewal for `lease`): their tokens fire with `LeaseLost`,
    /// once. Returns them.
    pub(crate) fn lapsed(&self, now: Instant, lease: Duration) -> Vec<Arc<Job>> {
        let mut lapsed = Vec::new();
        for state in self.lock().values() {
            if let JobState::Running(r) = state {
                if now.saturating_duration_since(r.renewed) >= lease && !r.cancel.is_cancelled() {
                    r.cancel.cancel(CancelReason::LeaseLost);
                    lapsed.push(r.job.clone());
                }
            }
        }
        lapsed
    }

    /// Running jobs whose current poll started at least `limit` ticks before
    /// `now`, not yet warned about for this stretch.
    pub(crate) fn blocked(&self, now: u64, limit: u64) -> Vec<Blocked> {
        let mut blocked = Vec::new();
        for state in self.lock().values_mut() {
            if let JobState::Running(r) = state {
                let start = r.poll_start.load(Ordering::Relaxed);
                let stuck = start != 0 && now.saturating_sub(start) >= limit;
                if stuck && !r.warned {
                    blocked.push(Blocked {
                        job: r.job.clone(),
                        ticks: now - start,
                    });
                }
                r.warned = stuck;
            }
        }
        blocked
    }

    /// A running job reported progress; only the latest is kept until written.
    pub(crate) fn set_progress(&self, fence: Fence, progress: Progress) {
        if let Some(JobState::Running(r)) = self.lock().get_mut(&fence) {
            r.progress = Some(progress);
        }
    }

    /// The progress reports not yet written, taken.
    pub(crate) fn take_progress(&self) -> Vec<(Fence, Progress)> {
        let mut jobs = self.lock();
        let mut out = Vec::new();
        for (fence, state) in jobs.iter_mut() {
            if let JobState::Running(r) = state {
                if let Some(p) = r.progress.take() {
                    out.push((*fence, p));
                }
            }
        }
        out
    }

    /// How many jobs are running (not being recorded).
    pub(crate) fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s, JobState::Running(_)))
            .count()
    }

    /// How many jobs of `queue` are running.
    pub(crate) fn running_in(&self, queue: &str) -> usize {
        self.lock()
            .values()
            .filter(|s| matches!(s, JobState::Running(r) if r.job.queue_name == queue))
            .count()
    }

    /// Jobs of `queue` that ran and whose outcomes are being recorded: RUNNING
    /// in the store until written, but not running.
    pub(crate) fn recording_in(&self, queue: &str) -> Vec<Fence> {
        self.lock()
            .iter()
            .filter(|(_, s)| matches!(s, JobState::Recording(Some(j)) if j.queue_name == queue))
            .map(|(f, _)| *f)
            .collect()
    }

    /// The recorder is done with these jobs (recorded, refused as lost, or
    /// given up on).
    pub(crate) fn remove<'a>(&self, fences: impl IntoIterator<Item = &'a Fence>) {
        let mut jobs = self.lock();
        for fence in fences {
            jobs.remove(fence);
        }
    }

    #[cfg(test)]
    pub(crate) fn state(&self, fence: Fence) -> Option<&'static str> {
        self.lock().get(&fence).map(|s| match s {
            JobState::Running(_) => "running",
            JobState::Recording(_) => "recording",
            JobState::Released => "released",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_core::backend::LeaseToken;

    fn job() -> Arc<Job> {
        let mut job = Job::new(JobId::new(), "t", serde_json::Value::Null);
        job.attempt = 1;
        job.lease_token = Some(LeaseToken::random());
        Arc::new(job)
    }

    fn start(t: &InFlight) -> (Fence, CancellationToken, PollStart) {
        let (job, cancel, poll) = (job(), CancellationToken::new(), PollStart::default());
        t.start(job.clone(), cancel.clone(), Instant::now(), poll.clone());
        (job.fence(), cancel, poll)
    }

    #[test]
    fn a_finished_job_is_recorded_then_forgotten() {
        let t = InFlight::default();
        let (f, _, _) = start(&t);
        assert_eq!(t.state(f), Some("running"));
        assert_eq!(t.leased_fences(), vec![f]);
        assert_eq!(t.recording_in("default"), Vec::<Fence>::new());
        assert!(t.finish(f, true));
        assert_eq!(t.state(f), Some("recording"));
        assert_eq!(
            t.leased_fences(),
            vec![f],
            "a job is heartbeated until its outcome is written"
        );
        assert_eq!(t.recording_in("default"), vec![f]);
        assert_eq!(t.recording_in("other"), Vec::<Fence>::new());
        // Only a running job can finish.
        assert!(!t.finish(f, true));
        t.remove([&f]);
        assert_eq!(t.state(f), None);
        assert!(!t.finish(f, true));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_released_job_never_sends_its_own_outcome() {
        let t = InFlight::default();
        let (running, _, _) = start(&t);
        let (done, _, _) = start(&t);
        assert!(t.finish(done, false));
        assert_eq!(
            t.recording_in("default"),
            Vec::<Fence>::new(),
            "a job whose queue has no global limit is not kept"
        );
        assert_eq!(t.release_running(), vec![running]);
        assert_eq!(t.state(running), Some("released"));
        assert_eq!(t.state(done), Some("recording"));
        assert!(
            !t.finish(running, false),
            "a released job's late outcome is dropped"
        );
        assert_eq!(t.len(), 2, "both are held until the recorder is done");
        assert!(t.release_running().is_empty());
    }

    #[test]
    fn cancellation_reaches_running_jobs_only() {
        let t = InFlight::default();
        let (a, ta, _) = start(&t);
        let (b, tb, _) = start(&t);
        assert_eq!(t.cancel_ids(&[a.id], CancelReason::LeaseLost), vec![a]);
        assert_eq!(ta.reason(), Some(CancelReason::LeaseLost));
        assert!(!tb.is_cancelled());
        assert!(t.finish(b, false));
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
        let f = job().fence();
        t.hand_back(f);
        assert_eq!(t.state(f), Some("recording"));
        assert!(t.release_running().is_empty());
    }

    #[test]
    fn a_lease_not_renewed_in_time_is_lost_locally_once() {
        let t = InFlight::default();
        let (a, ta, _) = start(&t);
        let (b, tb, _) = start(&t);
        let lease = Duration::from_secs(30);
        let later = Instant::now() + lease;
        t.renewed(&[b], later);
        let lapsed = t.lapsed(later, lease);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].fence(), a);
        assert_eq!(ta.reason(), Some(CancelReason::LeaseLost));
        assert!(!tb.is_cancelled());
        assert!(t.lapsed(later, lease).is_empty(), "reported once");
    }

    #[test]
    fn a_blocked_poll_is_reported_once_per_stretch() {
        let t = InFlight::default();
        let (_, _, poll) = start(&t);
        assert!(t.blocked(100, 10).is_empty(), "not polling");
        poll.store(50, Ordering::Relaxed);
        assert!(t.blocked(55, 10).is_empty(), "not long enough");
        assert_eq!(t.blocked(60, 10).len(), 1);
        assert!(t.blocked(70, 10).is_empty(), "already warned");
        poll.store(0, Ordering::Relaxed);
        assert!(t.blocked(80, 10).is_empty());
        poll.store(85, Ordering::Relaxed);
        assert_eq!(
            t.blocked(95, 10).len(),
            1,
            "a new stretch is reported again"
        );
    }
}
