//! Helpers shared by the rules.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use jobs_core::backend::{AttemptFailure, ClaimRequest, Fence, Outcome, OutcomeUpdate};
use jobs_core::{Job, JobFilter, JobId, NewJob};
use serde_json::json;

use super::Backend;

pub const W1: &str = "worker-1";
pub const W2: &str = "worker-2";
pub const LONG: Duration = Duration::from_secs(60);

pub fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// `Utc::now()` at microsecond precision, what SQL backends store.
pub fn now_us() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn failure(message: &str, retryable: bool) -> AttemptFailure {
    AttemptFailure::new(message.to_owned(), retryable)
}

pub async fn enqueue(q: &Backend, job: NewJob) -> JobId {
    let id = job.id;
    let ids = q
        .enqueue_batch(vec![job])
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    assert_eq!(ids, vec![id], "enqueue returns the job's own id");
    id
}

pub async fn enqueue_n(q: &Backend, n: usize, queue: &str) -> Vec<JobId> {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("test.job", json!({ "n": i })).queue(queue))
        .collect();
    q.enqueue_batch(jobs)
        .await
        .expect("enqueue batch")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()
}

pub async fn claim(
    q: &Backend,
    worker: &str,
    names: &[&str],
    limit: usize,
    lease: Duration,
) -> Vec<Job> {
    let qs = queues(names);
    q.claim(ClaimRequest::new(worker, &qs, limit, lease))
        .await
        .expect("claim")
        .jobs
}

/// A claim with queue limits; returns what `claim` says in full.
pub async fn claim_limited(
    q: &Backend,
    worker: &str,
    names: &[&str],
    limit: usize,
    limits: &[jobs_core::ClaimLimit],
) -> jobs_core::Claimed {
    let qs = queues(names);
    q.claim(ClaimRequest::new(worker, &qs, limit, LONG).with_limits(limits))
        .await
        .expect("claim")
}

pub async fn claim_one(q: &Backend, worker: &str, names: &[&str], lease: Duration) -> Option<Job> {
    let mut jobs = claim(q, worker, names, 1, lease).await;
    assert!(jobs.len() <= 1, "claim returned more than its limit");
    jobs.pop()
}

pub async fn get(q: &Backend, id: JobId) -> Job {
    q.get(id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

pub async fn record(q: &Backend, worker: &str, fence: Fence, outcome: Outcome) -> Vec<JobId> {
    q.record(worker, &[OutcomeUpdate::new(fence, outcome)])
        .await
        .expect("record")
}

pub async fn complete(q: &Backend, worker: &str, job: &Job) {
    let lost = record(q, worker, job.fence(), Outcome::Complete { result: None }).await;
    assert!(lost.is_empty(), "completion of {} was refused", job.id);
}

pub fn ids_of(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

pub fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

/// Asserts `t` lies in `[lo - slack, hi + slack]` (slack covers clock
/// precision and a database clock read at statement start).
pub fn assert_between(what: &str, t: DateTime<Utc>, lo: DateTime<Utc>, hi: DateTime<Utc>) {
    let slack = chrono::Duration::milliseconds(1000);
    assert!(
        t >= lo - slack && t <= hi + slack,
        "{what} = {t} is not within [{lo}, {hi}]"
    );
}

pub async fn list(q: &Backend, filter: JobFilter) -> Vec<JobId> {
    ids_of(&q.list(&filter).await.expect("list"))
}
