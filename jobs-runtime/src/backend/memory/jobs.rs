//! The stored jobs, with their number per (queue, status) kept as they
//! change: `counts()` reads the counts instead of walking every job. The
//! orders of `list_page` that enqueue order does not give (waiting jobs by
//! due time, finished ones by finish time) are kept here the same way.

use std::collections::{BTreeMap, BTreeSet};

use std::ops::{Deref, DerefMut, Index};

use chrono::{DateTime, Utc};
use jobs_core::{JobId, JobStatus, ThroughputBucket, THROUGHPUT_RETENTION};

use super::state::Entry;

/// Jobs per queue, then per status (indexed in [`JobStatus::ALL`]'s order).
/// Keyed by queue alone so a change looks its queue up by `&str`: counting
/// a move allocates nothing unless the queue is new.
type Counts = BTreeMap<String, [u64; STATUSES]>;
const STATUSES: usize = JobStatus::ALL.len();
/// Moves into COMPLETED, FAILED, DEAD_LETTER, RETRYING per minute start (in
/// Unix seconds), then per queue (looked up by `&str`, as for [`Counts`]).
type Throughput = BTreeMap<i64, BTreeMap<String, [u64; 4]>>;

/// The jobs by id; every way to change one goes through [`Jobs::get_mut`],
/// [`Jobs::insert`] or [`Jobs::remove`], which keep the counts.
#[derive(Default)]
pub(super) struct Jobs {
    /// Boxed: the table then holds pointers, not whole jobs, so it stays
    /// small as it grows, and the jobs lie in memory in the order they were
    /// enqueued — the order a backlog is claimed and finished in.
    map: crate::id_hash::IdMap<JobId, Box<Entry>>,
    counts: Counts,
    throughput: Throughput,
    /// Waiting jobs by (`run_at`, enqueue sequence).
    pub(super) due: BTreeSet<DueKey>,
    /// Finished jobs by (`completed_at`, id).
    pub(super) finished: BTreeSet<FinishedKey>,
}

/// Counts a move of a job of `queue` into `status`, now (`now`, if the
/// caller has read the clock already), if it ends an attempt; buckets past
/// [`THROUGHPUT_RETENTION`] go when a new minute starts.
fn bump(throughput: &mut Throughput, queue: &str, status: JobStatus, now: Option<DateTime<Utc>>) {
    let slot = match status {
        JobStatus::Completed => 0,
        JobStatus::Failed => 1,
        JobStatus::DeadLetter => 2,
        JobStatus::Retrying => 3,
        _ => return,
    };
    let now = now.unwrap_or_else(crate::clock::now);
    let minute = now.timestamp().div_euclid(60) * 60;
    if !throughput.contains_key(&minute) {
        let keep = (THROUGHPUT_RETENTION.as_secs() as i64).saturating_add(60);
        *throughput = throughput.split_off(&(minute - keep));
    }
    let queues = throughput.entry(minute).or_default();
    match queues.get_mut(queue) {
        Some(moves) => moves[slot] += 1,
        None => queues.entry(queue.to_owned()).or_default()[slot] += 1,
    }
}

/// Times in µs, as the durable backends store them and as cursors carry
/// them, so a cursor names one position exactly.
pub(super) type DueKey = (i64, u64, JobId);
pub(super) type FinishedKey = (i64, JobId);

fn due_key(e: &Entry) -> Option<DueKey> {
    e.job
        .status
        .is_waiting()
        .then_some((e.job.run_at.timestamp_micros(), e.seq, e.job.id))
}

fn finished_key(e: &Entry) -> Option<FinishedKey> {
    match e.job.completed_at {
        Some(at) if e.job.status.is_terminal() => Some((at.timestamp_micros(), e.job.id)),
        _ => None,
    }
}

/// Takes `e` out of the order indexes (`add: false`) or puts it in.
fn index(due: &mut BTreeSet<DueKey>, finished: &mut BTreeSet<FinishedKey>, e: &Entry, add: bool) {
    if let Some(k) = due_key(e) {
        if add {
            due.insert(k);
        } else {
            due.remove(&k);
        }
    }
    if let Some(k) = finished_key(e) {
        if add {
            finished.insert(k);
        } else {
            finished.remove(&k);
        }
    }
}

fn add(counts: &mut Counts, queue: &str, status: JobStatus) {
    match counts.get_mut(queue) {
        Some(n) => n[status as usize] += 1,
        None => counts.entry(queue.to_owned()).or_default()[status as usize] += 1,
    }
}

/// A job of `queue` moves from `from` to `to`.
fn shift(counts: &mut Counts, queue: &str, from: JobStatus, to: JobStatus) {
    match counts.get_mut(queue) {
        Some(n) => {
            n[from as usize] = n[from as usize].saturating_sub(1);
            n[to as usize] += 1;
        }
        None => add(counts, queue, to),
    }
}

fn sub(counts: &mut Counts, queue: &str, status: JobStatus) {
    if let Some(n) = counts.get_mut(queue) {
        let i = status as usize;
        n[i] = n[i].saturating_sub(1);
        if n.iter().all(|&c| c == 0) {
            counts.remove(queue);
        }
    }
}

impl Jobs {
    pub(super) fn get(&self, id: &JobId) -> Option<&Entry> {
        self.map.get(id).map(|e| &**e)
    }

    pub(super) fn contains_key(&self, id: &JobId) -> bool {
        self.map.contains_key(id)
    }

    /// Looks the jobs `ids` names up one after the other, with no work in
    /// between, before a claim or a record changes them one by one. In a
    /// table of many jobs each lookup misses the cache (the ids hash to
    /// scattered places); done back to back, the processor waits for those
    /// misses together rather than for one after each job's change, and the
    /// changes then find their jobs in cache. (Measured on a backlog of
    /// 400,000, three pairs: the backend's own claim + record 8–16 % faster,
    /// W1 3–6 %.)
    pub(super) fn prefetch<'a>(&self, ids: impl IntoIterator<Item = &'a JobId>) {
        for id in ids {
            std::hint::black_box(self.map.get(id).map(|e| e.seq));
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn insert(&mut self, id: JobId, entry: Entry) {
        add(&mut self.counts, &entry.job.queue_name, entry.job.status);
        bump(
            &mut self.throughput,
            &entry.job.queue_name,
            entry.job.status,
            None,
        );
        index(&mut self.due, &mut self.finished, &entry, true);
        if let Some(old) = self.map.insert(id, Box::new(entry)) {
            sub(&mut self.counts, &old.job.queue_name, old.job.status);
            index(&mut self.due, &mut self.finished, &old, false);
            index(&mut self.due, &mut self.finished, &self.map[&id], true);
        }
    }

    pub(super) fn remove(&mut self, id: &JobId) -> Option<Entry> {
        let old = self.map.remove(id)?;
        sub(&mut self.counts, &old.job.queue_name, old.job.status);
        index(&mut self.due, &mut self.finished, &old, false);
        Some(*old)
    }

    /// The job, to change: its counts follow when the handle is dropped.
    pub(super) fn get_mut(&mut self, id: &JobId) -> Option<EntryMut<'_>> {
        self.get_mut_at(id, None)
    }

    /// [`get_mut`](Self::get_mut) for a change made at `now` (the caller's
    /// reading of the clock, so the handle does not read it again).
    pub(super) fn get_mut_at(
        &mut self,
        id: &JobId,
        now: Option<DateTime<Utc>>,
    ) -> Option<EntryMut<'_>> {
        let entry = self.map.get_mut(id)?;
        let was = entry.job.status;
        let keys = (due_key(entry), finished_key(entry));
        Some(EntryMut {
            #[cfg(debug_assertions)]
            queue: entry.job.queue_name.clone(),
            entry,
            counts: &mut self.counts,
            throughput: &mut self.throughput,
            due: &mut self.due,
            finished: &mut self.finished,
            was,
            keys,
            now,
        })
    }

    /// The buckets whose minute starts at or after `since` (Unix seconds).
    pub(super) fn throughput(&self, since: i64) -> Vec<ThroughputBucket> {
        let start = since.div_euclid(60) * 60 + i64::from(since.rem_euclid(60) != 0) * 60;
        self.throughput
            .range(start..)
            .flat_map(|(minute, queues)| {
                let at = chrono::DateTime::from_timestamp(*minute, 0).unwrap_or_default();
                queues.iter().map(move |(queue, [c, f, d, r])| {
                    ThroughputBucket::new(at, queue.as_str()).with_counts(*c, *f, *d, *r)
                })
            })
            .collect()
    }

    /// Drops the buckets of minutes before `before` (Unix seconds).
    pub(super) fn prune_throughput(&mut self, before: i64) {
        self.throughput = self.throughput.split_off(&before);
    }

    /// The number of jobs per (queue, status), for those that have any.
    pub(super) fn counts(&self) -> impl Iterator<Item = (&str, JobStatus, u64)> {
        self.counts.iter().flat_map(|(queue, n)| {
            JobStatus::ALL
                .into_iter()
                .zip(n)
                .filter(|(_, &n)| n > 0)
                .map(move |(status, &n)| (queue.as_str(), status, n))
        })
    }
}

impl Index<&JobId> for Jobs {
    type Output = Entry;

    fn index(&self, id: &JobId) -> &Entry {
        &self.map[id]
    }
}

/// A job being changed; on drop, its move between (queue, status) counts.
pub(super) struct EntryMut<'a> {
    entry: &'a mut Entry,
    counts: &'a mut Counts,
    throughput: &'a mut Throughput,
    due: &'a mut BTreeSet<DueKey>,
    finished: &'a mut BTreeSet<FinishedKey>,
    /// The status before the change. Not the queue: a stored job never
    /// changes queue (no operation of this backend moves one), so its counts
    /// move within its queue and a change costs no copy of the queue's name.
    was: JobStatus,
    /// The queue before the change, to check the above in debug builds.
    #[cfg(debug_assertions)]
    queue: String,
    keys: (Option<DueKey>, Option<FinishedKey>),
    /// When the change is made, if the caller knows (else the clock is read
    /// when a move is counted).
    now: Option<DateTime<Utc>>,
}

impl Deref for EntryMut<'_> {
    type Target = Entry;

    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl DerefMut for EntryMut<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        self.entry
    }
}

impl Drop for EntryMut<'_> {
    fn drop(&mut self) {
        let job = &self.entry.job;
        #[cfg(debug_assertions)]
        debug_assert_eq!(job.queue_name, self.queue, "a stored job changed queue");
        if job.status != self.was {
            shift(self.counts, &job.queue_name, self.was, job.status);
            bump(self.throughput, &job.queue_name, job.status, self.now);
        }
        let keys = (due_key(self.entry), finished_key(self.entry));
        if keys.0 != self.keys.0 {
            if let Some(k) = self.keys.0 {
                self.due.remove(&k);
            }
            if let Some(k) = keys.0 {
                self.due.insert(k);
            }
        }
        if keys.1 != self.keys.1 {
            if let Some(k) = self.keys.1 {
                self.finished.remove(&k);
            }
            if let Some(k) = keys.1 {
                self.finished.insert(k);
            }
        }
    }
}

impl<'a> EntryMut<'a> {
    /// The same handle, seen as its job.
    pub(super) fn into_job(self) -> JobMut<'a> {
        JobMut(self)
    }
}

/// [`EntryMut`] as its job.
pub(super) struct JobMut<'a>(EntryMut<'a>);

impl Deref for JobMut<'_> {
    type Target = jobs_core::Job;

    fn deref(&self) -> &jobs_core::Job {
        &self.0.job
    }
}

impl DerefMut for JobMut<'_> {
    fn deref_mut(&mut self) -> &mut jobs_core::Job {
        &mut self.0.job
    }
}
