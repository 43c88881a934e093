//! The in-memory backend: complete and fast, for tests, demos and the
//! conformance suite's reference. Nothing survives the process.
//!
//! One `std::sync::Mutex` guards the state and is never held across an
//! `.await`. Per queue, due jobs sit in a `BTreeSet` ordered by (priority desc,
//! run_at, enqueue order) and future ones in a second set ordered by run_at, so
//! a claim is O(log n) per job.
//!
//! Its clock is tokio's (see `jobs::testing::now`): under
//! `tokio::time::pause()` scheduled jobs, retries with backoff and leases come
//! due as the test advances time, so a test of a job that retries for an hour
//! takes milliseconds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    AttemptFailure, ClaimRequest, Fence, JobListener, LeaseToken, Outcome, OutcomeUpdate, Recovered,
};
use jobs_core::{
    add_saturating, AttemptError, Backend, BoxFuture, Error, Job, JobFilter, JobId, JobStatus,
    NewJob, QueueCount, Result,
};
use tokio::sync::watch;

use super::wait::{signal_or_due, time_left};
use crate::clock;

type ReadyKey = (Reverse<i32>, DateTime<Utc>, u64, JobId);
type DelayedKey = (DateTime<Utc>, u64, i32, JobId);

/// The in-memory queue backend (`memory://`). Clones share the same jobs.
#[derive(Clone)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    wake: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Entry>,
    order: BTreeMap<u64, JobId>,
    next_seq: u64,
    queues: HashMap<String, QueueIndex>,
    leases: BTreeSet<(DateTime<Utc>, JobId)>,
}

struct Entry {
    job: Job,
    seq: u64,
}

#[derive(Default)]
struct QueueIndex {
    ready: BTreeSet<ReadyKey>,
    delayed: BTreeSet<DelayedKey>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("jobs", &self.lock().jobs.len())
            .finish()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn index(&mut self, queue: &str) -> &mut QueueIndex {
        if !self.queues.contains_key(queue) {
            self.queues.insert(queue.to_owned(), QueueIndex::default());
        }
        self.queues.get_mut(queue).expect("just inserted")
    }

    fn insert_waiting(&mut self, id: JobId, now: DateTime<Utc>) {
        let Entry { job, seq } = &self.jobs[&id];
        let (queue, prio, run_at, seq) = (job.queue_name.clone(), job.priority, job.run_at, *seq);
        let idx = self.index(&queue);
        if run_at <= now {
            idx.ready.insert((Reverse(prio), run_at, seq, id));
        } else {
            idx.delayed.insert((run_at, seq, prio, id));
        }
    }

    fn remove_waiting(&mut self, id: JobId) {
        let Entry { job, seq } = &self.jobs[&id];
        let (prio, run_at, seq) = (job.priority, job.run_at, *seq);
        if let Some(idx) = self.queues.get_mut(&job.queue_name) {
            if !idx.ready.remove(&(Reverse(prio), run_at, seq, id)) {
                idx.delayed.remove(&(run_at, seq, prio, id));
            }
        }
    }

    /// The job under `fence`, if it is still RUNNING under that very lease.
    fn fenced(&mut self, fence: &Fence) -> Option<&mut Job> {
        self.jobs
            .get_mut(&fence.id)
            .map(|e| &mut e.job)
            .filter(|j| j.status == JobStatus::Running && j.lease_token == Some(fence.token))
    }

    fn drop_lease(&mut self, id: JobId) {
        if let Some(until) = self.jobs[&id].job.lease_until {
            self.leases.remove(&(until, id));
        }
        let job = &mut self.jobs.get_mut(&id).expect("present").job;
        job.lease_until = None;
        job.locked_by = None;
        job.lease_token = None;
    }

    /// Applies an outcome to a job known to be RUNNING under its fence. Returns
    /// whether it went back to waiting (so workers should be woken).
    fn apply(
        &mut self,
        id: JobId,
        outcome: &Outcome,
        worker: Option<&str>,
        now: DateTime<Utc>,
    ) -> bool {
        self.drop_lease(id);
        let job = &mut self.jobs.get_mut(&id).expect("present").job;
        let fail = |job: &mut Job, error: &AttemptFailure, status: JobStatus| {
            job.push_error(AttemptError::new(
                job.attempt,
                job.retry_count,
                now,
                error.message.clone(),
                error.retryable,
                worker.map(str::to_owned),
            ));
            job.status = status;
        };
        match outcome {
            Outcome::Complete { result } => {
                job.status = JobStatus::Completed;
                job.result_data.clone_from(result);
                job.completed_at = Some(now);
                false
            }
            Outcome::Fail { error, result } => {
                fail(job, error, JobStatus::Failed);
                job.result_data.clone_from(result);
                job.completed_at = Some(now);
                false
            }
            Outcome::DeadLetter { error } => {
                fail(job, error, JobStatus::DeadLetter);
                job.completed_at = Some(now);
                false
            }
            Outcome::Retry { delay, error } => {
                fail(job, error, JobStatus::Retrying);
                job.retry_count = job.retry_count.saturating_add(1);
                job.run_at = add_saturating(now, *delay);
                self.insert_waiting(id, now);
                true
            }
            Outcome::Release => {
                job.status = JobStatus::Pending;
                job.run_at = now;
                self.insert_waiting(id, now);
                true
            }
        }
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        MemoryBackend {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                wake: watch::Sender::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: every mutation
        // completes before anything that can panic.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn not_found(id: JobId) -> Error {
        Error::NotFound(id)
    }

    fn enqueue_now(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        for job in &jobs {
            job.validate()?;
        }
        let now = clock::now();
        let mut st = self.lock();
        if let Some(dup) = jobs.iter().find(|j| st.jobs.contains_key(&j.id)) {
            return Err(Error::DuplicateId(dup.id));
        }
        let mut fresh = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !fresh.insert(j.id)) {
            return Err(Error::DuplicateId(dup.id));
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for nj in jobs {
            let run_at = nj.due_at(now);
            let mut job = Job::new(nj.id, nj.job_type, nj.payload);
            job.queue_name = nj.queue_name;
            job.status = if run_at > now {
                JobStatus::Scheduled
            } else {
                JobStatus::Pending
            };
            job.priority = nj.priority;
            job.max_retries = nj.max_retries;
            job.run_at = run_at;
            job.created_at = now;
            job.timeout = nj.timeout;
            job.metadata = nj.metadata;
            let seq = st.next_seq;
            st.next_seq += 1;
            st.order.insert(seq, job.id);
            let id = job.id;
            st.jobs.insert(id, Entry { job, seq });
            st.insert_waiting(id, now);
            ids.push(id);
        }
        drop(st);
        self.wake();
        Ok(ids)
    }

    fn claim_now(&self, req: ClaimRequest<'_>) -> Vec<Job> {
        let now = clock::now();
        let lease_until = add_saturating(now, req.lease);
        let token = LeaseToken::random();
        let mut st = self.lock();
        let mut claimed = Vec::with_capacity(req.limit.min(1024));
        let State {
            jobs,
            queues,
            leases,
            ..
        } = &mut *st;
        for queue in req.queues {
            if claimed.len() >= req.limit {
                break;
            }
            let Some(idx) = queues.get_mut(queue.as_str()) else {
                continue;
            };
            // Jobs whose time has come join the ready set.
            while let Some(&(run_at, seq, prio, id)) = idx.delayed.first() {
                if run_at > now {
                    break;
                }
                idx.delayed.pop_first();
                idx.ready.insert((Reverse(prio), run_at, seq, id));
            }
            while claimed.len() < req.limit {
                let Some((_, _, _, id)) = idx.ready.pop_first() else {
                    break;
                };
                leases.insert((lease_until, id));
                let job = &mut jobs.get_mut(&id).expect("indexed").job;
                job.status = JobStatus::Running;
                job.attempt += 1;
                job.started_at = Some(now);
                job.locked_by = Some(req.worker_id.to_owned());
                job.lease_until = Some(lease_until);
                job.lease_token = Some(token);
                claimed.push(job.clone());
            }
        }
        claimed
    }

    fn next_due(&self, queues: &[String]) -> Option<DateTime<Utc>> {
        let st = self.lock();
        queues
            .iter()
            .filter_map(|q| st.queues.get(q.as_str()))
            .filter_map(|idx| idx.delayed.first().map(|k| k.0))
            .min()
    }
}

impl Backend for MemoryBackend {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(async move { self.enqueue_now(jobs) })
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move { Ok(self.claim_now(req)) })
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            let until = add_saturating(clock::now(), lease);
            let mut st = self.lock();
            let mut lost = Vec::new();
            for fence in fences {
                let old = match st.fenced(fence) {
                    Some(job) if job.locked_by.as_deref() == Some(worker_id) => {
                        job.lease_until.replace(until)
                    }
                    _ => {
                        lost.push(fence.id);
                        continue;
                    }
                };
                if let Some(old) = old {
                    st.leases.remove(&(old, fence.id));
                }
                st.leases.insert((until, fence.id));
            }
            Ok(lost)
        })
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let mut lost = Vec::new();
            let mut wake = false;
            for u in updates {
                if st.fenced(&u.fence).is_none() {
                    lost.push(u.fence.id);
                    continue;
                }
                wake |= st.apply(u.fence.id, &u.outcome, Some(worker_id), now);
            }
            drop(st);
            if wake {
                self.wake();
            }
            Ok(lost)
        })
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let expired: Vec<JobId> = st
                .leases
                .iter()
                .take_while(|(until, _)| *until < now)
                .map(|(_, id)| *id)
                .collect();
            let mut out = Vec::with_capacity(expired.len());
            for id in expired {
                let before = st.jobs[&id].job.clone();
                let error = AttemptFailure::new(
                    format!(
                        "lease expired: worker `{}` stopped heartbeating (lease ran out at {})",
                        before.locked_by.as_deref().unwrap_or("?"),
                        before
                            .lease_until
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default()
                    ),
                    true,
                );
                let (outcome, now_status) = if before.retry_count < before.max_retries {
                    (
                        Outcome::Retry {
                            delay: Duration::ZERO,
                            error,
                        },
                        JobStatus::Retrying,
                    )
                } else {
                    (Outcome::DeadLetter { error }, JobStatus::DeadLetter)
                };
                let worker = before.locked_by.clone();
                st.apply(id, &outcome, worker.as_deref(), now);
                out.push(Recovered::new(before, now_status));
            }
            drop(st);
            if !out.is_empty() {
                self.wake();
            }
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move { Ok(self.lock().jobs.get(&id).map(|e| e.job.clone())) })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            let st = self.lock();
            Ok(st
                .order
                .values()
                .map(|id| &st.jobs[id].job)
                .filter(|j| filter.matches(j))
                .skip(filter.offset)
                .take(filter.limit)
                .cloned()
                .collect())
        })
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let status = st
                .jobs
                .get(&id)
                .ok_or_else(|| Self::not_found(id))?
                .job
                .status;
            if !status.is_waiting() {
                return Err(Error::cannot_cancel(id, status));
            }
            st.remove_waiting(id);
            let job = &mut st.jobs.get_mut(&id).expect("present").job;
            job.status = JobStatus::Failed;
            job.error_message = Some("cancelled".to_owned());
            job.completed_at = Some(now);
            job.cancelled_at = Some(now);
            Ok(job.clone())
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let job = &mut st.jobs.get_mut(&id).ok_or_else(|| Self::not_found(id))?.job;
            if !matches!(job.status, JobStatus::Failed | JobStatus::DeadLetter) {
                return Err(Error::cannot_requeue(id, job.status));
            }
            job.status = JobStatus::Pending;
            job.retry_count = 0;
            job.run_at = now;
            job.completed_at = None;
            job.cancelled_at = None;
            let out = job.clone();
            st.insert_waiting(id, now);
            drop(st);
            self.wake();
            Ok(out)
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let st = self.lock();
            let mut map: BTreeMap<(&str, JobStatus), u64> = BTreeMap::new();
            for e in st.jobs.values() {
                *map.entry((e.job.queue_name.as_str(), e.job.status))
                    .or_default() += 1;
            }
            Ok(map
                .into_iter()
                .map(|((queue, status), count)| QueueCount::new(queue, status, count))
                .collect())
        })
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut st = self.lock();
            let doomed: Vec<(u64, JobId)> = st
                .order
                .iter()
                .filter(|(_, id)| {
                    let j = &st.jobs[*id].job;
                    j.status.is_terminal() && j.completed_at.is_some_and(|t| t < before)
                })
                .take(limit)
                .map(|(s, id)| (*s, *id))
                .collect();
            for (seq, id) in &doomed {
                st.order.remove(seq);
                st.jobs.remove(id);
            }
            Ok(doomed.len() as u64)
        })
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(MemoryListener {
                backend: self.clone(),
                queues: queues.to_vec(),
                rx: self.inner.wake.subscribe(),
            });
            Ok(listener)
        })
    }
}

struct MemoryListener {
    backend: MemoryBackend,
    queues: Vec<String>,
    rx: watch::Receiver<u64>,
}

impl JobListener for MemoryListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Wake for the earliest scheduled job too, not only for new ones.
            let until_due = time_left(self.backend.next_due(&self.queues), clock::now());
            signal_or_due(self.rx.changed(), until_due, timeout).await;
        })
    }

    fn signals_all_work(&self) -> bool {
        // Every job of a memory backend lives in this process, and every change signals.
        true
    }
}
