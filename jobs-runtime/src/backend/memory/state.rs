//! The memory backend's state and every change of a job's status, in one
//! place, so the indexes (due and future jobs per queue, leases, unique keys,
//! what runs per limit key, sequences) always follow the jobs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{AttemptFailure, Fence, Outcome};
use jobs_core::{
    add_saturating, queue_rate_key, AttemptError, ClaimLimit, Enqueued, Error, Job, JobId,
    JobStatus, Leader, NewJob, Result, ScheduleState, UniqueStates, WorkerInfo,
};

/// Maps by queue name or limit key, looked up for every claimed and every
/// finished job: hashed with the fast [`IdHashState`](crate::id_hash::IdHashState)
/// rather than SipHash (a memory backend's keys are the program's own).
type NameMap<V> = HashMap<String, V, crate::id_hash::IdHashState>;

/// A due job in claim order; the last field says whether it has limits of
/// its own (after the unique sequence number, it never changes the order),
/// so a claim passes over the jobs that have none without reading them.
type ReadyKey = (Reverse<i32>, DateTime<Utc>, u64, JobId, bool);
/// A job due later; the last field as in [`ReadyKey`].
type DelayedKey = (DateTime<Utc>, u64, i32, JobId, bool);
/// Unfinished jobs of a sequence key, in enqueue order.
type Sequences = HashMap<String, BTreeSet<(DateTime<Utc>, u64, JobId)>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) jobs: super::jobs::Jobs,
    /// Enqueue order: `list`'s order and the claim order's last tie-breaker.
    pub(super) order: BTreeMap<u64, JobId>,
    next_seq: u64,
    queues: NameMap<QueueIndex>,
    /// RUNNING jobs by lease expiry.
    pub(super) leases: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Stored unique key → the job holding it.
    unique: HashMap<String, JobId>,
    pub(super) paused: BTreeSet<String>,
    /// Worker id → its entry and when it expires.
    pub(super) workers: BTreeMap<String, (WorkerInfo, DateTime<Utc>)>,
    pub(super) leaders: HashMap<String, Leader>,
    pub(super) schedules: BTreeMap<String, ScheduleState>,
    /// RUNNING jobs per queue, per concurrency key and per sequence key.
    running_queues: NameMap<u32>,
    running_keys: NameMap<u32>,
    running_sequences: NameMap<u32>,
    /// Unfinished jobs of each sequence, in enqueue order: the first is the
    /// only one that may be claimed.
    sequences: Sequences,
    /// Start times per rate key (jobs' keys and `queue:<name>`), oldest
    /// first, within the key's last window.
    rate_log: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// The audit log, in the order appended.
    pub(super) audit: Vec<jobs_core::AuditEntry>,
    /// Workflow edges settled so far: child → its parents that settled.
    pub(super) settled: HashMap<JobId, std::collections::HashSet<JobId>>,
    /// The `locked_by` strings of ended leases, reused by the next claims:
    /// every claim writes the worker's id into each job it takes, and the
    /// recorder (on another thread) dropped it again, an allocation and a
    /// cross-thread free per job.
    spare_names: Vec<String>,
}

/// At most this many spare `locked_by` strings are kept.
const SPARE_NAMES: usize = 1024;

/// At most this many due jobs of a queue are looked at per claim, so a
/// queue full of jobs that limits hold back costs a bounded scan.
const SCAN_LIMIT: usize = 10_000;

pub(super) struct Entry {
    pub(super) job: Job,
    pub(super) seq: u64,
    /// The statuses in which the job holds its unique key, if it has one.
    unique_states: UniqueStates,
}

#[derive(Default)]
struct QueueIndex {
    ready: BTreeSet<ReadyKey>,
    delayed: BTreeSet<DelayedKey>,
}

impl State {
    pub(super) fn insert_waiting(&mut self, id: JobId, now: DateTime<Utc>) {
        let Entry { job, seq, .. } = &self.jobs[&id];
        let (prio, run_at, seq) = (job.priority, job.run_at, *seq);
        // A stored job's limits never change (they are set at enqueue).
        let limited = !job.limits.is_empty();
        // Looked up by `&str`: the queue's name is copied only for a new queue.
        let idx = match self.queues.get_mut(&job.queue_name) {
            Some(idx) => idx,
            None => self.queues.entry(job.queue_name.clone()).or_default(),
        };
        if run_at <= now {
            idx.ready.insert((Reverse(prio), run_at, seq, id, limited));
        } else {
            idx.delayed.insert((run_at, seq, prio, id, limited));
        }
    }

    pub(super) fn remove_waiting(&mut self, id: JobId) {
        let Entry { job, seq, .. } = &self.jobs[&id];
        let (prio, run_at, seq) = (job.priority, job.run_at, *seq);
        let limited = !job.limits.is_empty();
        if let Some(idx) = self.queues.get_mut(&job.queue_name) {
            if !idx.ready.remove(&(Reverse(prio), run_at, seq, id, limited)) {
                idx.delayed.remove(&(run_at, seq, prio, id, limited));
            }
        }
    }

    /// Stores new jobs, or says which unique key holder stands for them.
    pub(super) fn enqueue(
        &mut self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>> {
        if let Some(dup) = jobs.iter().find(|j| self.jobs.contains_key(&j.id)) {
            return Err(Error::DuplicateId(dup.id));
        }
        let mut fresh = std::collections::HashSet::with_capacity(jobs.len());
        if let Some(dup) = jobs.iter().find(|j| !fresh.insert(j.id)) {
            return Err(Error::DuplicateId(dup.id));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for nj in jobs {
            let due = nj.due_at(now);
            let key = nj.unique.as_ref().map(|u| u.stored_key(now.timestamp()));
            if let (Some(u), Some(key)) = (&nj.unique, &key) {
                if let Some(&holder) = self.unique.get(key) {
                    if u.replace && self.jobs[&holder].job.status.is_waiting() {
                        self.replace(holder, nj, due, now);
                        out.push(Enqueued::Replaced(holder));
                    } else {
                        out.push(Enqueued::Duplicate(holder));
                    }
                    continue;
                }
            }
            let mut job = Job::new(nj.id, nj.job_type, nj.payload);
            job.queue_name = nj.queue_name;
            job.status = if due > now {
                JobStatus::Scheduled
            } else {
                JobStatus::Pending
            };
            job.priority = nj.priority;
            job.max_retries = nj.max_retries;
            job.run_at = due;
            job.created_at = now;
            job.timeout = nj.timeout;
            job.metadata = nj.metadata;
            job.unique_key.clone_from(&key);
            job.limits = nj.limits;
            let unique_states = nj.unique.map(|u| u.states).unwrap_or_default();
            let id = job.id;
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.insert(seq, id);
            self.jobs.insert(
                id,
                Entry {
                    job,
                    seq,
                    unique_states,
                },
            );
            if let Some(key) = key {
                self.unique.insert(key, id);
            }
            self.join_sequence(id);
            self.insert_waiting(id, now);
            out.push(Enqueued::Inserted(id));
        }
        Ok(out)
    }

    /// Debounce: the waiting `holder` takes `nj`'s payload, options and due time.
    fn replace(&mut self, holder: JobId, nj: NewJob, due: DateTime<Utc>, now: DateTime<Utc>) {
        self.remove_waiting(holder);
        {
            let mut entry = self.jobs.get_mut(&holder).expect("holder");
            let job = &mut entry.job;
            job.payload = nj.payload;
            job.metadata = nj.metadata;
            job.priority = nj.priority;
            job.max_retries = nj.max_retries;
            job.timeout = nj.timeout;
            job.run_at = due;
            if job.status != JobStatus::Retrying {
                job.status = if due > now {
                    JobStatus::Scheduled
                } else {
                    JobStatus::Pending
                };
            }
        }
        self.insert_waiting(holder, now);
    }

    /// After a job's status changed: it gives up its unique key if the new
    /// status is not one it holds it in.
    fn settle_key(&mut self, id: JobId) {
        let Entry {
            job, unique_states, ..
        } = &self.jobs[&id];
        if let Some(key) = &job.unique_key {
            if !unique_states.contains(job.status) && self.unique.get(key) == Some(&id) {
                self.unique.remove(key);
            }
        }
    }

    /// Puts an unfinished job in its sequence, if it has one.
    pub(super) fn join_sequence(&mut self, id: JobId) {
        let Entry { job, seq, .. } = &self.jobs[&id];
        if let Some(key) = &job.limits.sequence {
            let member = (job.created_at, *seq, id);
            self.sequences
                .entry(key.clone())
                .or_default()
                .insert(member);
        }
    }

    /// Takes a finished (or deleted) job out of its sequence.
    fn leave_sequence(&mut self, id: JobId) {
        let Entry { job, seq, .. } = &self.jobs[&id];
        if let Some(key) = &job.limits.sequence {
            let member = (job.created_at, *seq, id);
            if let Some(set) = self.sequences.get_mut(key) {
                set.remove(&member);
                if set.is_empty() {
                    self.sequences.remove(key);
                }
            }
        }
    }

    /// A job stopped RUNNING: its queue and keys have a slot free.
    fn left_running(&mut self, id: JobId) {
        let job = &self.jobs[&id].job;
        let dec = |map: &mut NameMap<u32>, key: &str| {
            if let Some(n) = map.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(key);
                }
            }
        };
        dec(&mut self.running_queues, &job.queue_name);
        if let Some(c) = &job.limits.concurrency {
            dec(&mut self.running_keys, &c.key);
        }
        if let Some(k) = &job.limits.sequence {
            dec(&mut self.running_sequences, k);
        }
    }

    /// Whether `id` may hold its unique key again (for a requeue): nobody
    /// else holds it. Takes it if so.
    pub(super) fn retake_key(&mut self, id: JobId) -> Result<()> {
        let Some(key) = self.jobs[&id].job.unique_key.clone() else {
            return Ok(());
        };
        match self.unique.get(&key) {
            Some(&holder) if holder != id => Err(Error::UniqueKeyTaken { id, holder }),
            _ => {
                self.unique.insert(key, id);
                Ok(())
            }
        }
    }

    /// The job under `fence`, if it is still RUNNING under that very lease.
    pub(super) fn fenced(&mut self, fence: &Fence) -> Option<super::jobs::JobMut<'_>> {
        if !self.is_fenced(fence) {
            return None;
        }
        self.jobs
            .get_mut(&fence.id)
            .map(super::jobs::EntryMut::into_job)
    }

    /// Whether the job under `fence` is still RUNNING under that very lease
    /// (the test of [`fenced`](Self::fenced) and of `holds`).
    pub(super) fn is_fenced(&self, fence: &Fence) -> bool {
        self.jobs.get(&fence.id).is_some_and(|e| {
            e.job.status == JobStatus::Running && e.job.lease_token == Some(fence.token)
        })
    }

    /// Whether the job under `fence` is still RUNNING in `queue` under that very lease.
    fn holds(&self, fence: &Fence, queue: &str) -> bool {
        self.is_fenced(fence) && self.jobs[&fence.id].job.queue_name == queue
    }

    /// `worker_id` as a `locked_by` string, in a spare one if there is one.
    pub(super) fn worker_name(&mut self, worker_id: &str) -> String {
        match self.spare_names.pop() {
            Some(mut name) => {
                name.clear();
                name.push_str(worker_id);
                name
            }
            None => worker_id.to_owned(),
        }
    }

    /// Keeps an ended lease's `locked_by` string for [`worker_name`](Self::worker_name).
    fn spare_name(&mut self, name: Option<String>) {
        if let Some(name) = name {
            if self.spare_names.len() < SPARE_NAMES && name.capacity() <= 256 {
                self.spare_names.push(name);
            }
        }
    }

    /// Takes the job out of the lease index; its lease fields are cleared by
    /// the caller, with the rest of its change (one handle, one reindexing).
    fn drop_lease(&mut self, id: JobId) {
        if let Some(until) = self.jobs[&id].job.lease_until {
            self.leases.remove(&(until, id));
        }
    }

    /// Applies an outcome to a job known to be RUNNING under its fence. Returns
    /// whether it went back to waiting (so workers should be woken).
    pub(super) fn apply(
        &mut self,
        id: JobId,
        outcome: &Outcome,
        worker: Option<&str>,
        now: DateTime<Utc>,
    ) -> bool {
        self.drop_lease(id);
        self.left_running(id);
        let mut held = self.jobs.get_mut_at(&id, Some(now)).expect("present");
        let job = &mut held.job;
        job.lease_until = None;
        let name = job.locked_by.take();
        job.lease_token = None;
        let entry = |job: &Job, error: &AttemptFailure| {
            AttemptError::new(
                job.attempt,
                job.retry_count,
                now,
                error.message.clone(),
                error.retryable,
                worker.map(str::to_owned),
            )
        };
        // A job whose cancellation was requested never waits again.
        let cancelled = job.cancelled_at.is_some();
        let back_to_waiting = match outcome {
            Outcome::Complete { result } => {
                job.status = JobStatus::Completed;
                job.result_data.clone_from(result);
                job.completed_at = Some(now);
                // It finished before the cancellation reached it.
                job.cancelled_at = None;
                false
            }
            // Completed (counted in the throughput history as it changes
            // status), then deleted below.
            Outcome::CompleteAndDelete => {
                job.status = JobStatus::Completed;
                job.result_data = None;
                job.completed_at = Some(now);
                job.cancelled_at = None;
                false
            }
            Outcome::Fail { error, result } => {
                let e = entry(job, error);
                job.push_error(e);
                job.status = JobStatus::Failed;
                job.result_data.clone_from(result);
                job.completed_at = Some(now);
                false
            }
            Outcome::DeadLetter { error } => {
                let e = entry(job, error);
                job.push_error(e);
                job.status = JobStatus::DeadLetter;
                job.completed_at = Some(now);
                false
            }
            Outcome::Cancel { error } => {
                let e = entry(job, error);
                finish_cancelled(job, Some(e), now);
                false
            }
            Outcome::Retry { error, .. } if cancelled => {
                let e = entry(job, error);
                finish_cancelled(job, Some(e), now);
                false
            }
            Outcome::Release | Outcome::Snooze { .. } if cancelled => {
                finish_cancelled(job, None, now);
                false
            }
            Outcome::Retry { delay, error } => {
                let e = entry(job, error);
                job.push_error(e);
                job.status = JobStatus::Retrying;
                job.retry_count = job.retry_count.saturating_add(1);
                job.run_at = add_saturating(now, *delay);
                true
            }
            Outcome::Release => {
                job.status = JobStatus::Pending;
                job.run_at = now;
                true
            }
            Outcome::Snooze { delay } => {
                job.snoozes = job.snoozes.saturating_add(1);
                job.run_at = add_saturating(now, *delay);
                job.status = if job.run_at > now {
                    JobStatus::Scheduled
                } else {
                    JobStatus::Pending
                };
                true
            }
        };
        drop(held);
        self.spare_name(name);
        if back_to_waiting {
            self.insert_waiting(id, now);
        } else {
            self.leave_sequence(id);
        }
        self.settle_key(id);
        // A slot of a limit key is free: other workers may take the next job.
        let freed = back_to_waiting || !self.jobs[&id].job.limits.is_empty();
        if matches!(outcome, Outcome::CompleteAndDelete) {
            self.delete(id);
        }
        freed
    }

    /// Turns a RUNNING job whose lease expired into a failed attempt, or into
    /// a cancelled job if its cancellation was requested.
    pub(super) fn recover(&mut self, id: JobId, now: DateTime<Utc>) -> JobStatus {
        let job = &self.jobs[&id].job;
        let error = AttemptFailure::new(
            format!(
                "lease expired: worker `{}` stopped heartbeating (lease ran out at {})",
                job.locked_by.as_deref().unwrap_or("?"),
                job.lease_until.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
            true,
        );
        let (outcome, status) = if job.cancelled_at.is_some() {
            (Outcome::Cancel { error }, JobStatus::Failed)
        } else if job.retry_count < job.max_retries {
            let retry = Outcome::Retry {
                delay: Duration::ZERO,
                error,
            };
            (retry, JobStatus::Retrying)
        } else {
            (Outcome::DeadLetter { error }, JobStatus::DeadLetter)
        };
        let worker = job.locked_by.clone();
        self.apply(id, &outcome, worker.as_deref(), now);
        status
    }

    /// Cancels a waiting job now: FAILED, marked.
    pub(super) fn cancel_waiting(&mut self, id: JobId, message: String, now: DateTime<Utc>) {
        self.remove_waiting(id);
        {
            let mut held = self.jobs.get_mut(&id).expect("present");
            let job = &mut held.job;
            job.status = JobStatus::Failed;
            job.error_message = Some(message);
            job.completed_at = Some(now);
            job.cancelled_at = Some(now);
        }
        self.settle_key(id);
        self.leave_sequence(id);
    }

    /// Releases a held workflow step: PENDING, due `now`.
    pub(super) fn release_held(&mut self, id: JobId, now: DateTime<Utc>) -> bool {
        let held = jobs_core::workflow::held_until();
        match self.jobs.get(&id) {
            Some(e) if e.job.status == JobStatus::Scheduled && e.job.run_at >= held => {}
            _ => return false,
        }
        self.remove_waiting(id);
        {
            let mut entry = self.jobs.get_mut(&id).expect("present");
            entry.job.status = JobStatus::Pending;
            entry.job.run_at = now;
        }
        self.insert_waiting(id, now);
        true
    }

    /// Deletes a finished job and everything that points at it.
    pub(super) fn delete(&mut self, id: JobId) {
        if !self.jobs.contains_key(&id) {
            return;
        }
        self.leave_sequence(id);
        let Some(entry) = self.jobs.remove(&id) else {
            return;
        };
        self.order.remove(&entry.seq);
        self.settled.remove(&id);
        if let Some(key) = &entry.job.unique_key {
            if self.unique.get(key) == Some(&id) {
                self.unique.remove(key);
            }
        }
    }

    /// The earliest future due time among `queues`.
    pub(super) fn next_due(&self, queues: &[String]) -> Option<DateTime<Utc>> {
        queues
            .iter()
            .filter(|q| !self.paused.contains(q.as_str()))
            .filter_map(|q| self.queues.get(q.as_str()))
            .filter_map(|idx| idx.delayed.first().map(|k| k.0))
            .min()
    }

    /// Takes up to `limit` due jobs of `queue` in claim order (none if it is
    /// paused), skipping those a limit holds back, and counts them as
    /// running and started. Also says whether a limit held any back.
    pub(super) fn take_due(
        &mut self,
        queue: &str,
        limit: usize,
        now: DateTime<Utc>,
        queue_limit: Option<&ClaimLimit>,
    ) -> (Vec<JobId>, bool) {
        if self.paused.contains(queue) {
            return (Vec::new(), false);
        }
        let Some(idx) = self.queues.get_mut(queue) else {
            return (Vec::new(), false);
        };
        // Jobs whose time has come join the ready set.
        while let Some(&(run_at, seq, prio, id, limited)) = idx.delayed.first() {
            if run_at > now {
                break;
            }
            idx.delayed.pop_first();
            idx.ready.insert((Reverse(prio), run_at, seq, id, limited));
        }
        if idx.ready.is_empty() {
            return (Vec::new(), false);
        }
        // The queue's own caps: this claim's share, the cluster's, the rate.
        let mut cap = limit;
        if let Some(ql) = queue_limit {
            if let Some(take) = ql.take {
                cap = cap.min(take as usize);
            }
            if let Some(global) = ql.global {
                let running = self.running_queues.get(queue).copied().unwrap_or(0);
                // The claimer's jobs whose outcomes are on their way no longer run.
                let ended = ql.recording.iter().filter(|f| self.holds(f, queue)).count();
                let running = running.saturating_sub(u32::try_from(ended).unwrap_or(u32::MAX));
                cap = cap.min(global.saturating_sub(running) as usize);
            }
            if let Some((max, per)) = ql.rate {
                let started = window(&mut self.rate_log, &queue_rate_key(queue), now, per);
                cap = cap.min((max as usize).saturating_sub(started));
            }
        }
        let idx = self.queues.get(queue).expect("present");
        let mut taken = Vec::new();
        let mut held = false;
        let mut seen_keys: Vec<ReadyKey> = Vec::new();
        for (scanned, key) in idx.ready.iter().enumerate() {
            if taken.len() >= cap {
                // Due jobs remain: a queue cap held them back (or the claim is full).
                held |= cap < limit;
                break;
            }
            if scanned >= SCAN_LIMIT {
                held = true;
                break;
            }
            let id = key.3;
            if !key.4 {
                // No limits of its own: nothing to check or count.
                taken.push(id);
                seen_keys.push(*key);
                continue;
            }
            let job = &self.jobs[&id].job;
            if !admits(
                job,
                &self.running_keys,
                &self.running_sequences,
                &self.sequences,
                &mut self.rate_log,
                now,
            ) {
                held = true;
                continue;
            }
            // Count it now, so the next candidates of this claim see it.
            let limits = job.limits.clone();
            if let Some(c) = &limits.concurrency {
                *self.running_keys.entry(c.key.clone()).or_insert(0) += 1;
            }
            if let Some(s) = &limits.sequence {
                *self.running_sequences.entry(s.clone()).or_insert(0) += 1;
            }
            if let Some(r) = &limits.rate {
                self.rate_log
                    .entry(r.key.clone())
                    .or_default()
                    .push_back(now);
            }
            taken.push(id);
            seen_keys.push(*key);
        }
        if !taken.is_empty() {
            match self.running_queues.get_mut(queue) {
                Some(n) => *n += taken.len() as u32,
                None => {
                    self.running_queues
                        .insert(queue.to_owned(), taken.len() as u32);
                }
            }
            if queue_limit.is_some_and(|ql| ql.rate.is_some()) {
                let log = self.rate_log.entry(queue_rate_key(queue)).or_default();
                log.extend(std::iter::repeat_n(now, taken.len()));
            }
        }
        let idx = self.queues.get_mut(queue).expect("present");
        for key in seen_keys {
            // Mostly the first: no limit held an earlier one back.
            if idx.ready.first() == Some(&key) {
                idx.ready.pop_first();
            } else {
                idx.ready.remove(&key);
            }
        }
        (taken, held)
    }
}

/// Whether `job`'s own limits let it start now.
fn admits(
    job: &Job,
    running_keys: &NameMap<u32>,
    running_sequences: &NameMap<u32>,
    sequences: &Sequences,
    rate_log: &mut HashMap<String, VecDeque<DateTime<Utc>>>,
    now: DateTime<Utc>,
) -> bool {
    let l = &job.limits;
    if let Some(c) = &l.concurrency {
        if running_keys.get(&c.key).copied().unwrap_or(0) >= c.max {
            return false;
        }
    }
    if let Some(s) = &l.sequence {
        let head = sequences.get(s).and_then(|set| set.first()).map(|m| m.2);
        if head != Some(job.id) || running_sequences.get(s).copied().unwrap_or(0) > 0 {
            return false;
        }
    }
    if let Some(r) = &l.rate {
        if window(rate_log, &r.key, now, r.per) >= r.max as usize {
            return false;
        }
    }
    true
}

/// How many starts `key` has in the window of length `per` ending now;
/// forgets older ones.
fn window(
    log: &mut HashMap<String, VecDeque<DateTime<Utc>>>,
    key: &str,
    now: DateTime<Utc>,
    per: Duration,
) -> usize {
    let Some(starts) = log.get_mut(key) else {
        return 0;
    };
    let since = jobs_core::sub_saturating(now, per);
    while starts.front().is_some_and(|t| *t <= since) {
        starts.pop_front();
    }
    let n = starts.len();
    if n == 0 {
        log.remove(key);
    }
    n
}

/// A RUNNING job whose cancellation was requested ends: FAILED, for good,
/// its error still saying who cancelled it and why.
fn finish_cancelled(job: &mut Job, attempt: Option<AttemptError>, now: DateTime<Utc>) {
    let requested = job.cancelled_at.and(job.error_message.clone());
    if let Some(e) = attempt {
        job.push_error(e);
    }
    if requested.is_some() {
        job.error_message = requested;
    }
    job.status = JobStatus::Failed;
    job.completed_at = Some(now);
    job.cancelled_at.get_or_insert(now);
}
