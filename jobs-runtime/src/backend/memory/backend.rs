//! The `MemoryBackend` handle and its `Backend` impl.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    ClaimRequest, Fence, HeartbeatReply, JobListener, LeaseToken, OutcomeUpdate, Recovered,
};
use jobs_core::{
    add_saturating, AuditEntry, AuditFilter, Backend, BoxFuture, CancelRequest, Claimed, Enqueued,
    Error, Job, JobFilter, JobId, JobPage, JobStatus, Leader, NewJob, Progress, PruneRequest,
    QueueCount, RequeueFilter, RequeueReport, Result, ScheduleState, ThroughputBucket, WorkerInfo,
    THROUGHPUT_RETENTION,
};
use tokio::sync::watch;

use super::listener::MemoryListener;
use super::state::State;
use crate::backend::finished::FinishWaiters;
use crate::clock;

/// The in-memory queue backend (`memory://`). Clones share the same jobs.
#[derive(Clone)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped whenever a job may have become claimable.
    wake: watch::Sender<u64>,
    /// Bumped whenever a running job's cancellation is requested.
    cancels: watch::Sender<u64>,
    /// Who awaits which job's end (`wait_finished`).
    finished: FinishWaiters,
}

/// Puts a FAILED or DEAD_LETTER job back to PENDING, due `now`: what
/// `requeue` and `requeue_many` do to each job.
fn requeue_locked(st: &mut State, id: JobId, now: chrono::DateTime<chrono::Utc>) -> Result<Job> {
    let status = st.jobs.get(&id).ok_or(Error::NotFound(id))?.job.status;
    if !matches!(status, JobStatus::Failed | JobStatus::DeadLetter) {
        return Err(Error::cannot_requeue(id, status));
    }
    st.retake_key(id)?;
    let out = {
        let mut entry = st.jobs.get_mut(&id).expect("present");
        let job = &mut entry.job;
        job.status = JobStatus::Pending;
        job.retry_count = 0;
        job.run_at = now;
        job.completed_at = None;
        job.cancelled_at = None;
        job.clone()
    };
    st.join_sequence(id);
    st.insert_waiting(id, now);
    Ok(out)
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

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        MemoryBackend {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                wake: watch::Sender::new(0),
                cancels: watch::Sender::new(0),
                finished: FinishWaiters::default(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: every mutation
        // completes before anything that can panic.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wake(&self) {
        self.inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn claim_now(&self, req: ClaimRequest<'_>) -> Claimed {
        let now = clock::now();
        let lease_until = add_saturating(now, req.lease);
        let token = LeaseToken::random();
        let mut st = self.lock();
        let mut claimed = Vec::with_capacity(req.limit.min(1024));
        let mut limited = false;
        for queue in req.queues {
            if claimed.len() >= req.limit {
                break;
            }
            let (ids, held) =
                st.take_due(queue, req.limit - claimed.len(), now, req.limit_of(queue));
            limited |= held;
            st.jobs.prefetch(&ids);
            for id in ids {
                st.leases.insert((lease_until, id));
                let name = st.worker_name(req.worker_id);
                let job = &mut st.jobs.get_mut(&id).expect("indexed").job;
                job.status = JobStatus::Running;
                job.attempt += 1;
                job.started_at = Some(now);
                job.locked_by = Some(name);
                job.lease_until = Some(lease_until);
                job.lease_token = Some(token);
                claimed.push(job.clone());
            }
        }
        Claimed::limited(claimed, limited)
    }

    fn heartbeat_now(&self, worker_id: &str, fences: &[Fence], lease: Duration) -> HeartbeatReply {
        let until = add_saturating(clock::now(), lease);
        let mut st = self.lock();
        let mut reply = HeartbeatReply::default();
        for fence in fences {
            let (old, cancel) = match st.fenced(fence) {
                Some(mut job) if job.locked_by.as_deref() == Some(worker_id) => {
                    (job.lease_until.replace(until), job.cancelled_at.is_some())
                }
                _ => {
                    reply.lost.push(fence.id);
                    continue;
                }
            };
            if let Some(old) = old {
                st.leases.remove(&(old, fence.id));
            }
            st.leases.insert((until, fence.id));
            if cancel {
                reply.cancel.push(fence.id);
            }
        }
        reply
    }

    fn cancel_now(&self, id: JobId, request: &CancelRequest) -> Result<Job> {
        let now = clock::now();
        let mut st = self.lock();
        let status = st.jobs.get(&id).ok_or(Error::NotFound(id))?.job.status;
        if status.is_waiting() {
            st.cancel_waiting(id, request.message(), now);
        } else if status == JobStatus::Running {
            let job = &mut st.jobs.get_mut(&id).expect("present").job;
            if job.cancelled_at.is_none() {
                job.cancelled_at = Some(now);
                job.error_message = Some(request.message());
                self.inner.cancels.send_modify(|v| *v = v.wrapping_add(1));
            }
        } else {
            return Err(Error::cannot_cancel(id, status));
        }
        Ok(st.jobs[&id].job.clone())
    }

    fn requeue_now(&self, id: JobId) -> Result<Job> {
        let now = clock::now();
        let mut st = self.lock();
        let out = requeue_locked(&mut st, id, now)?;
        drop(st);
        self.wake();
        Ok(out)
    }

    /// Every job `filter` takes, requeued under one lock (one batch).
    fn requeue_many_now(&self, filter: &RequeueFilter) -> Result<RequeueReport> {
        filter.validate()?;
        let now = clock::now();
        let mut st = self.lock();
        let candidates: Vec<JobId> = st
            .order
            .values()
            .filter(|id| filter.matches(&st.jobs[*id].job))
            .copied()
            .collect();
        let mut report = RequeueReport::default();
        for id in candidates {
            if report.requeued as usize >= filter.limit {
                break;
            }
            match requeue_locked(&mut st, id, now) {
                Ok(_) => report.requeued += 1,
                Err(Error::UniqueKeyTaken { .. }) => report.skipped_unique.push(id),
                Err(e) => return Err(e),
            }
        }
        drop(st);
        if report.requeued > 0 {
            self.wake();
        }
        Ok(report)
    }

    pub(super) fn next_due(&self, queues: &[String]) -> Option<chrono::DateTime<chrono::Utc>> {
        self.lock().next_due(queues)
    }

    pub(super) fn subscribe(&self) -> (watch::Receiver<u64>, watch::Receiver<u64>) {
        (self.inner.wake.subscribe(), self.inner.cancels.subscribe())
    }
}

impl Backend for MemoryBackend {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>> {
        Box::pin(async move {
            for job in &jobs {
                job.validate()?;
            }
            let out = self.lock().enqueue(jobs, clock::now())?;
            self.wake();
            Ok(out)
        })
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Claimed>> {
        Box::pin(async move { Ok(self.claim_now(req)) })
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>> {
        Box::pin(async move { Ok(self.heartbeat_now(worker_id, fences, lease)) })
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
            st.jobs.prefetch(updates.iter().map(|u| &u.fence.id));
            for u in updates {
                if !st.is_fenced(&u.fence) {
                    lost.push(u.fence.id);
                    continue;
                }
                wake |= st.apply(u.fence.id, &u.outcome, Some(worker_id), now);
            }
            drop(st);
            if wake {
                self.wake();
            }
            self.inner
                .finished
                .finished(updates.iter().map(|u| u.fence.id));
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
                let status = st.recover(id, now);
                out.push(Recovered::new(before, status));
            }
            drop(st);
            if !out.is_empty() {
                self.wake();
            }
            self.inner.finished.finished(out.iter().map(|r| r.job.id));
            Ok(out)
        })
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move { Ok(self.lock().jobs.get(&id).map(|e| e.job.clone())) })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            let st = self.lock();
            if filter.is_keyset() {
                return Ok(st.list_page(filter)?.jobs);
            }
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

    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<JobPage>> {
        Box::pin(async move { self.lock().list_page(filter) })
    }

    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let job = self.cancel_now(id, request);
            self.inner.finished.finished([id]);
            job
        })
    }

    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        Box::pin(async move {
            let st = self.lock();
            Ok(ids
                .iter()
                .map(|id| st.jobs.get(id).map(|e| e.job.clone()))
                .collect())
        })
    }

    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(async move {
            let mut st = self.lock();
            for (parent, child) in edges {
                st.settled.entry(*child).or_default().insert(*parent);
            }
            Ok(edges
                .iter()
                .map(|(_, c)| st.settled.get(c).map_or(0, |s| s.len() as u32))
                .collect())
        })
    }

    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let released: Vec<JobId> = ids
                .iter()
                .copied()
                .filter(|id| st.release_held(*id, now))
                .collect();
            drop(st);
            if !released.is_empty() {
                self.wake();
            }
            Ok(released)
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(async move { self.requeue_now(id) })
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(async move {
            let st = self.lock();
            Ok(st
                .jobs
                .counts()
                .map(|(queue, status, count)| QueueCount::new(queue, status, count))
                .collect())
        })
    }

    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let mut st = self.lock();
            let doomed: Vec<JobId> = st
                .order
                .values()
                .filter(|id| {
                    let j = &st.jobs[*id].job;
                    j.status.is_terminal()
                        && req.statuses.contains(&j.status)
                        && req.queue.as_deref().is_none_or(|q| q == j.queue_name)
                        && j.completed_at.is_some_and(|t| t < req.before)
                })
                .take(req.limit)
                .copied()
                .collect();
            for id in &doomed {
                st.delete(*id);
            }
            let keep = chrono::Duration::from_std(THROUGHPUT_RETENTION).unwrap_or_default();
            st.jobs
                .prune_throughput((clock::now() - keep).timestamp().div_euclid(60) * 60);
            Ok(doomed.len() as u64)
        })
    }

    fn throughput(&self, since: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<ThroughputBucket>>> {
        Box::pin(async move {
            let secs = since.timestamp() + i64::from(since.timestamp_subsec_nanos() > 0);
            Ok(self.lock().jobs.throughput(secs))
        })
    }

    fn requeue_many<'a>(
        &'a self,
        filter: &'a RequeueFilter,
    ) -> BoxFuture<'a, Result<RequeueReport>> {
        Box::pin(async move { self.requeue_many_now(filter) })
    }

    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.lock().paused.insert(queue.to_owned());
            Ok(())
        })
    }

    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let resumed = self.lock().paused.remove(queue);
            if resumed {
                self.wake();
            }
            Ok(())
        })
    }

    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move { Ok(self.lock().paused.iter().cloned().collect()) })
    }

    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut st = self.lock();
            for (fence, progress) in updates {
                if let Some(mut job) = st.fenced(fence) {
                    job.progress = Some(progress.clone());
                }
            }
            Ok(())
        })
    }

    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let now = clock::now();
            let mut info = info.clone();
            info.last_seen = now;
            let id = info.id.clone();
            self.lock()
                .workers
                .insert(id, (info, add_saturating(now, ttl)));
            Ok(())
        })
    }

    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.lock().workers.remove(id);
            Ok(())
        })
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            st.workers.retain(|_, (_, expires)| *expires > now);
            Ok(st.workers.values().map(|(w, _)| w.clone()).collect())
        })
    }

    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let now = clock::now();
            let mut st = self.lock();
            let free = st
                .leaders
                .get(role)
                .is_none_or(|l| l.holder == holder || l.until <= now);
            if free {
                st.leaders.insert(
                    role.to_owned(),
                    Leader::new(holder, add_saturating(now, ttl)),
                );
            }
            Ok(free)
        })
    }

    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut st = self.lock();
            if st.leaders.get(role).is_some_and(|l| l.holder == holder) {
                st.leaders.remove(role);
            }
            Ok(())
        })
    }

    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        Box::pin(async move {
            let now = clock::now();
            Ok(self
                .lock()
                .leaders
                .get(role)
                .filter(|l| l.until > now)
                .cloned())
        })
    }

    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut st = self.lock();
            let status = st.jobs.get(&id).ok_or(Error::NotFound(id))?.job.status;
            if status == JobStatus::Running {
                return Err(Error::cannot_delete(id, status));
            }
            if status.is_waiting() {
                st.remove_waiting(id);
            }
            st.delete(id);
            drop(st);
            self.inner.finished.finished([id]);
            Ok(())
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.lock().audit.push(entry.clone());
            Ok(())
        })
    }

    fn audit_log<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Result<Vec<AuditEntry>>> {
        Box::pin(async move {
            let st = self.lock();
            let mut entries: Vec<(usize, &AuditEntry)> = st
                .audit
                .iter()
                .enumerate()
                .filter(|(_, e)| filter.before.is_none_or(|b| e.at < b))
                .collect();
            // Newest first: by time, then the order appended.
            entries.sort_by_key(|e| std::cmp::Reverse((e.1.at, e.0)));
            Ok(entries
                .into_iter()
                .skip(filter.offset)
                .take(filter.limit)
                .map(|(_, e)| e.clone())
                .collect())
        })
    }

    fn prune_audit(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut st = self.lock();
            let mut gone = 0usize;
            st.audit.retain(|e| {
                if gone < limit && e.at < before {
                    gone += 1;
                    false
                } else {
                    true
                }
            });
            Ok(gone as u64)
        })
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        Box::pin(async move { Ok(self.lock().schedules.values().cloned().collect()) })
    }

    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut state = state.clone();
            state.updated_at = clock::now();
            self.lock().schedules.insert(state.name.clone(), state);
            Ok(())
        })
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(MemoryListener::new(self, queues));
            Ok(listener)
        })
    }

    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.inner.finished.wait(self, id, timeout))
    }
}
