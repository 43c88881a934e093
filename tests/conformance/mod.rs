//! The backend contract, written once and run against every backend.
//!
//! A backend test file does:
//!
//! ```ignore
//! mod conformance;
//!
//! async fn backend() -> std::sync::Arc<dyn jobs_core::JobQueue> {
//!     // a FRESH, isolated backend (own db file / schema / key prefix)
//! }
//!
//! jobs_conformance_suite!(backend);
//! ```
//!
//! and gets one `#[tokio::test]` per rule below. Every rule receives its own
//! backend from the factory, so the tests run in parallel. A backend is done
//! when it passes the suite unchanged.
//!
//! Time-dependent rules (schedules, leases) use sleeps of a few hundred
//! milliseconds with generous margins; they check *what* happens, never how fast.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use jobs_core::{
    AttemptFailure, ClaimRequest, Error, Fence, Job, JobFilter, JobId, JobQueue, JobStatus, NewJob,
    Outcome, OutcomeUpdate, QueueCount,
};
use serde_json::{json, Map, Value};

/// What every factory returns.
pub type Backend = Arc<dyn JobQueue>;

/// Expands into one `#[tokio::test]` per rule of the contract. `$factory` is an
/// expression callable with no arguments that returns a future of a fresh
/// [`Backend`] (an `async fn` path or a closure returning an async block).
#[macro_export]
macro_rules! jobs_conformance_suite {
    ($factory:expr) => {
        $crate::jobs_conformance_suite!(@rules $factory;
            round_trip_with_result_data,
            batch_enqueue_is_atomic_and_ordered,
            claim_order_follows_queue_list_priority_run_at_and_enqueue_order,
            scheduled_jobs_are_not_claimed_early,
            concurrent_claimers_never_share_a_job,
            attempt_increments_per_claim_and_release_is_not_a_failure,
            expired_lease_is_a_failed_attempt,
            heartbeat_keeps_a_lease_and_reports_lost_fences,
            fenced_outcome_refuses_a_superseded_attempt,
            retry_is_scheduled_and_appends_error_history,
            fail_and_dead_letter_are_terminal,
            requeue_revives_failed_and_dead_letter_only,
            cancel_takes_waiting_jobs_only,
            get_unknown_is_none,
            list_filters_and_pages_in_enqueue_order,
            counts_by_queue_and_status,
            prune_removes_only_old_terminal_jobs_within_limit,
            payloads_round_trip_exactly,
            listener_wakes_on_enqueue,
            listener_wakes_when_scheduled_job_is_due
        );
    };
    (@rules $factory:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let backend: $crate::conformance::Backend = ($factory)().await;
                let rule = $crate::conformance::$rule(backend);
                if tokio::time::timeout(::std::time::Duration::from_secs(120), rule)
                    .await
                    .is_err()
                {
                    panic!("conformance rule `{}` hung for 120 s", stringify!($rule));
                }
            }
        )*
    };
}

// ---------------------------------------------------------------- helpers

const W1: &str = "worker-1";
const W2: &str = "worker-2";
const LONG: Duration = Duration::from_secs(60);

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// `Utc::now()` at microsecond precision, what SQL backends store.
fn now_us() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn failure(message: &str, retryable: bool) -> AttemptFailure {
    AttemptFailure {
        message: message.to_owned(),
        retryable,
    }
}

async fn enqueue(q: &Backend, job: NewJob) -> JobId {
    let id = job.id;
    let ids = q.enqueue_batch(vec![job]).await.expect("enqueue");
    assert_eq!(ids, vec![id], "enqueue returns the job's own id");
    id
}

async fn enqueue_n(q: &Backend, n: usize, queue: &str) -> Vec<JobId> {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new("test.job", json!({ "n": i })).queue(queue))
        .collect();
    q.enqueue_batch(jobs).await.expect("enqueue batch")
}

async fn claim(
    q: &Backend,
    worker: &str,
    names: &[&str],
    limit: usize,
    lease: Duration,
) -> Vec<Job> {
    let qs = queues(names);
    q.claim(ClaimRequest {
        worker_id: worker,
        queues: &qs,
        limit,
        lease,
    })
    .await
    .expect("claim")
}

async fn claim_one(q: &Backend, worker: &str, names: &[&str], lease: Duration) -> Option<Job> {
    let mut jobs = claim(q, worker, names, 1, lease).await;
    assert!(jobs.len() <= 1, "claim returned more than its limit");
    jobs.pop()
}

async fn get(q: &Backend, id: JobId) -> Job {
    q.get(id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

async fn record(q: &Backend, worker: &str, fence: Fence, outcome: Outcome) -> Vec<JobId> {
    q.record(worker, &[OutcomeUpdate { fence, outcome }])
        .await
        .expect("record")
}

async fn complete(q: &Backend, worker: &str, job: &Job) {
    let lost = record(q, worker, job.fence(), Outcome::Complete { result: None }).await;
    assert!(lost.is_empty(), "completion of {} was refused", job.id);
}

fn ids_of(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
    items.iter().cloned().collect()
}

/// Asserts `t` lies in `[lo - slack, hi + slack]` (slack covers clock
/// precision and a database clock read at statement start).
fn assert_between(what: &str, t: DateTime<Utc>, lo: DateTime<Utc>, hi: DateTime<Utc>) {
    let slack = chrono::Duration::milliseconds(1000);
    assert!(
        t >= lo - slack && t <= hi + slack,
        "{what} = {t} is not within [{lo}, {hi}]"
    );
}

async fn list(q: &Backend, filter: JobFilter) -> Vec<JobId> {
    ids_of(&q.list(&filter).await.expect("list"))
}

// ---------------------------------------------------------------- rules

/// Enqueue → get (PENDING) → claim (RUNNING under a lease) → complete with result
/// data → get (COMPLETED, result stored, lease gone) → nothing left to claim.
pub async fn round_trip_with_result_data(q: Backend) {
    let before = Utc::now();
    let new = NewJob::new("email.send", json!({ "to": "a@example.com", "n": 1 }))
        .queue("emails")
        .priority(7)
        .max_retries(5)
        .metadata("tenant", 42)
        .metadata("trace", "abc");
    let id = enqueue(&q, new.clone()).await;
    let after = Utc::now();

    let job = get(&q, id).await;
    assert_eq!(job.id, id);
    assert_eq!(job.job_type, "email.send");
    assert_eq!(job.queue_name, "emails");
    assert_eq!(job.payload, new.payload);
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.priority, 7);
    assert_eq!(job.max_retries, 5);
    assert_eq!(job.retry_count, 0);
    assert_eq!(job.attempt, 0);
    assert_eq!(job.metadata, new.metadata);
    assert_between("created_at", job.created_at, before, after);
    assert_between("run_at", job.run_at, before, after);
    assert!(job.started_at.is_none() && job.completed_at.is_none());
    assert!(job.locked_by.is_none() && job.lease_until.is_none());
    assert!(job.errors.is_empty() && job.error_message.is_none() && job.result_data.is_none());

    assert!(
        claim(&q, W1, &["other"], 10, LONG).await.is_empty(),
        "a job is claimed only from its own queue"
    );
    let claim_start = Utc::now();
    let claimed = claim(&q, W1, &["emails"], 10, LONG).await;
    let claim_end = Utc::now();
    assert_eq!(ids_of(&claimed), vec![id]);
    let running = &claimed[0];
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.attempt, 1);
    assert_eq!(running.retry_count, 0);
    assert_eq!(running.locked_by.as_deref(), Some(W1));
    assert_eq!(running.payload, new.payload);
    assert_eq!(running.metadata, new.metadata);
    let started = running.started_at.expect("started_at set by claim");
    assert_between("started_at", started, claim_start, claim_end);
    let lease_until = running.lease_until.expect("lease_until set by claim");
    assert_between(
        "lease_until",
        lease_until,
        claim_start + chrono::Duration::seconds(60),
        claim_end + chrono::Duration::seconds(60),
    );
    assert_eq!(
        get(&q, id).await,
        *running,
        "get agrees with what claim returned"
    );
    assert!(claim(&q, W2, &["emails"], 10, LONG).await.is_empty());

    let result = json!({ "receipt": "r-1", "bytes": [1, 2, 3], "ok": true });
    let lost = record(
        &q,
        W1,
        running.fence(),
        Outcome::Complete {
            result: Some(result.clone()),
        },
    )
    .await;
    assert!(lost.is_empty());
    let done = get(&q, id).await;
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.result_data, Some(result));
    assert!(done.completed_at.is_some());
    assert!(done.locked_by.is_none() && done.lease_until.is_none());
    assert_eq!(done.attempt, 1);
    assert!(done.errors.is_empty());
    assert!(claim(&q, W1, &["emails"], 10, LONG).await.is_empty());

    // Completing again under the same fence is refused: the job is no longer RUNNING.
    let lost = record(&q, W1, running.fence(), Outcome::Complete { result: None }).await;
    assert_eq!(lost, vec![id]);
    assert_eq!(get(&q, id).await.status, JobStatus::Completed);
}

/// A batch is stored all-or-none and its ids come back in the order given.
pub async fn batch_enqueue_is_atomic_and_ordered(q: Backend) {
    assert_eq!(
        q.enqueue_batch(Vec::new()).await.expect("empty batch"),
        vec![]
    );

    let jobs: Vec<NewJob> = (0..250)
        .map(|i| NewJob::new("batch.job", json!({ "n": i })).priority(i % 3))
        .collect();
    let want: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let ids = q.enqueue_batch(jobs).await.expect("enqueue batch");
    assert_eq!(ids, want, "ids come back in the order given");
    let listed = list(&q, JobFilter::default().limit(1000)).await;
    assert_eq!(listed, want, "jobs are listed in enqueue order");
    for (i, id) in [(0usize, want[0]), (249, want[249])] {
        assert_eq!(get(&q, id).await.payload, json!({ "n": i }));
    }

    // A batch that clashes with a stored id stores nothing.
    let fresh_a = NewJob::new("batch.job", json!({ "fresh": "a" }));
    let mut clash = NewJob::new("batch.job", json!({ "clash": true }));
    clash.id = want[10];
    let fresh_b = NewJob::new("batch.job", json!({ "fresh": "b" }));
    let (a, b) = (fresh_a.id, fresh_b.id);
    let err = q.enqueue_batch(vec![fresh_a, clash, fresh_b]).await;
    assert!(err.is_err(), "a duplicate id must be refused");
    assert!(
        q.get(a).await.expect("get").is_none(),
        "nothing of a refused batch is stored"
    );
    assert!(
        q.get(b).await.expect("get").is_none(),
        "nothing of a refused batch is stored"
    );
    assert_eq!(
        get(&q, want[10]).await.payload,
        json!({ "n": 10 }),
        "the stored job is untouched"
    );

    // So does a batch that repeats an id within itself.
    let twin_a = NewJob::new("batch.job", json!({ "twin": 1 }));
    let mut twin_b = NewJob::new("batch.job", json!({ "twin": 2 }));
    twin_b.id = twin_a.id;
    let before = NewJob::new("batch.job", json!({ "before": true }));
    let before_id = before.id;
    let twin_id = twin_a.id;
    assert!(
        q.enqueue_batch(vec![before, twin_a, twin_b]).await.is_err(),
        "a batch repeating an id must be refused"
    );
    assert!(q.get(twin_id).await.expect("get").is_none());
    assert!(q.get(before_id).await.expect("get").is_none());
    assert_eq!(list(&q, JobFilter::default().limit(1000)).await.len(), 250);
}

/// Queue list order first (strict), then priority descending, then run_at, then
/// enqueue order. Queues not asked for are never claimed.
pub async fn claim_order_follows_queue_list_priority_run_at_and_enqueue_order(q: Backend) {
    let recent = now_us() - chrono::Duration::seconds(1);
    let old = now_us() - chrono::Duration::seconds(60);
    let job = |queue: &str, prio: i32, run_at: DateTime<Utc>, tag: &str| {
        NewJob::new("order.job", json!({ "tag": tag }))
            .queue(queue)
            .priority(prio)
            .run_at(run_at)
    };
    // Enqueued in an order unlike the claim order, some one by one, some in a batch.
    let l1 = enqueue(&q, job("low", 100, old, "l1")).await;
    let x1 = enqueue(&q, job("elsewhere", 1000, old, "x1")).await;
    let h1 = enqueue(&q, job("high", 0, recent, "h1")).await;
    let batch = vec![
        job("high", 5, recent, "h2"),
        job("high", 5, recent, "h3"),
        job("high", 5, old, "h4"),
        job("high", 0, recent, "h5"),
        job("high", -3, old, "h6"),
    ];
    let ids = q.enqueue_batch(batch).await.expect("enqueue");
    let (h2, h3, h4, h5, h6) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let l2 = enqueue(&q, job("low", 100, recent, "l2")).await;

    let expected = vec![h4, h2, h3, h1, h5, h6, l1, l2];
    let mut got = Vec::new();
    while let Some(j) = claim_one(&q, W1, &["high", "low"], LONG).await {
        got.push(j.id);
    }
    assert_eq!(got, expected, "claim order (h4 h2 h3 h1 h5 h6 l1 l2)");
    assert_eq!(
        get(&q, x1).await.status,
        JobStatus::Pending,
        "unlisted queue untouched"
    );

    // The same rule holds for one claim of many jobs (as a set: the first N).
    let q2 = vec![
        job("b", 0, recent, "b1"),
        job("a", 1, recent, "a1"),
        job("a", 9, recent, "a9"),
        job("b", 50, old, "b50"),
        job("a", 1, old, "a1-old"),
    ];
    let ids = q.enqueue_batch(q2).await.expect("enqueue");
    let (b1, a1, a9, b50, a1_old) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let first = claim(&q, W2, &["a", "b"], 4, LONG).await;
    assert_eq!(set(&ids_of(&first)), set(&[a9, a1_old, a1, b50]));
    let rest = claim(&q, W2, &["a", "b"], 4, LONG).await;
    assert_eq!(ids_of(&rest), vec![b1]);

    // The queue list order is the caller's, not alphabetical.
    let ids = q
        .enqueue_batch(vec![job("a", 0, old, "a"), job("b", 0, recent, "b")])
        .await
        .expect("enqueue");
    let j = claim_one(&q, W1, &["b", "a"], LONG).await.expect("a job");
    assert_eq!(j.id, ids[1], "queue `b` first when listed first");
}

/// A job whose `run_at` is in the future is SCHEDULED and not claimed until due;
/// once due it is claimed like any other.
pub async fn scheduled_jobs_are_not_claimed_early(q: Backend) {
    let due = now_us() + chrono::Duration::milliseconds(1500);
    let soon = enqueue(&q, NewJob::new("later.job", json!({})).run_at(due)).await;
    let far = enqueue(
        &q,
        NewJob::new("later.job", json!({})).run_at(now_us() + chrono::Duration::hours(1)),
    )
    .await;
    let job = get(&q, soon).await;
    assert_eq!(job.status, JobStatus::Scheduled);
    assert_eq!(
        job.run_at, due,
        "run_at is stored as given (to the microsecond)"
    );
    assert_eq!(get(&q, far).await.status, JobStatus::Scheduled);

    assert!(
        claim(&q, W1, &["default"], 10, LONG).await.is_empty(),
        "claimed early"
    );

    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    let claimed = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&claimed), vec![soon], "due job claimed, far one not");
    assert_eq!(claimed[0].status, JobStatus::Running);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(get(&q, far).await.status, JobStatus::Scheduled);

    // A scheduled job due in the past is PENDING at once.
    let past = enqueue(
        &q,
        NewJob::new("later.job", json!({})).run_at(now_us() - chrono::Duration::seconds(5)),
    )
    .await;
    assert_eq!(get(&q, past).await.status, JobStatus::Pending);
}

/// Many tasks claiming (and completing) while a producer enqueues: every job is
/// claimed exactly once.
pub async fn concurrent_claimers_never_share_a_job(q: Backend) {
    const PRODUCED: usize = 1200;
    const CLAIMERS: usize = 8;
    let initial = enqueue_n(&q, 300, "default").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let producer = {
        let q = q.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..(PRODUCED - 300) / 50 {
                ids.extend(enqueue_n(&q, 50, "default").await);
                tokio::task::yield_now().await;
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            ids
        })
    };
    let mut claimers = Vec::new();
    for c in 0..CLAIMERS {
        let q = q.clone();
        let done = done.clone();
        claimers.push(tokio::spawn(async move {
            let worker = format!("claimer-{c}");
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let jobs = claim(&q, &worker, &["default"], 1 + c % 7, LONG).await;
                if jobs.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                let updates: Vec<OutcomeUpdate> = jobs
                    .iter()
                    .map(|j| OutcomeUpdate {
                        fence: j.fence(),
                        outcome: Outcome::Complete { result: None },
                    })
                    .collect();
                let lost = q.record(&worker, &updates).await.expect("record");
                assert!(
                    lost.is_empty(),
                    "a fresh claim's outcome was refused: {lost:?}"
                );
                for j in &jobs {
                    assert_eq!(j.attempt, 1, "job {} claimed more than once", j.id);
                    assert_eq!(j.locked_by.as_deref(), Some(worker.as_str()));
                }
                seen.extend(ids_of(&jobs));
            }
            seen
        }));
    }
    let mut produced: Vec<JobId> = initial;
    produced.extend(producer.await.expect("producer"));
    let mut seen = Vec::new();
    for c in claimers {
        seen.extend(c.await.expect("claimer"));
    }
    let unique: HashSet<JobId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "some job was claimed twice");
    assert_eq!(seen.len(), PRODUCED, "every job is claimed once");
    assert_eq!(unique, produced.iter().copied().collect::<HashSet<_>>());
    let counts = q.counts().await.expect("counts");
    assert_eq!(
        counts,
        vec![QueueCount {
            queue: "default".into(),
            status: JobStatus::Completed,
            count: PRODUCED as u64
        }]
    );
}

/// Every claim increments `attempt` (the fence); a retry increments
/// `retry_count`; a release puts the job back due now without counting a failure.
pub async fn attempt_increments_per_claim_and_release_is_not_a_failure(q: Backend) {
    let id = enqueue(&q, NewJob::new("a.job", json!({}))).await;
    let j1 = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claim 1");
    assert_eq!((j1.attempt, j1.retry_count), (1, 0));
    let lost = record(
        &q,
        W1,
        j1.fence(),
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("first", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j2 = claim_one(&q, W2, &["default"], LONG)
        .await
        .expect("claim 2");
    assert_eq!(j2.id, id);
    assert_eq!((j2.attempt, j2.retry_count), (2, 1));
    assert_eq!(j2.locked_by.as_deref(), Some(W2));

    let lost = record(&q, W2, j2.fence(), Outcome::Release).await;
    assert!(lost.is_empty());
    let released = get(&q, id).await;
    assert_eq!(released.status, JobStatus::Pending);
    assert_eq!(released.retry_count, 1, "a release is not a failed attempt");
    assert_eq!(released.errors.len(), 1, "a release adds no error");
    assert!(released.locked_by.is_none() && released.lease_until.is_none());
    assert!(released.completed_at.is_none());

    let j3 = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claim 3");
    assert_eq!((j3.attempt, j3.retry_count), (3, 1));
    complete(&q, W1, &j3).await;
    assert_eq!(get(&q, id).await.attempt, 3);
}

/// A lease that runs out turns the job into a failed attempt: RETRYING with
/// `retry_count + 1` (claimable at once) or DEAD_LETTER when no retry is left.
/// `Recovered` carries the job as it was during the lost attempt.
pub async fn expired_lease_is_a_failed_attempt(q: Backend) {
    let short = Duration::from_millis(200);
    let retry = enqueue(
        &q,
        NewJob::new("lease.job", json!({ "k": "retry" })).max_retries(1),
    )
    .await;
    let dead = enqueue(
        &q,
        NewJob::new("lease.job", json!({ "k": "dead" })).max_retries(0),
    )
    .await;
    let kept = enqueue(
        &q,
        NewJob::new("lease.job", json!({ "k": "kept" })).queue("long"),
    )
    .await;

    let claimed = claim(&q, W1, &["default"], 10, short).await;
    assert_eq!(set(&ids_of(&claimed)), set(&[retry, dead]));
    let long = claim(&q, W2, &["long"], 10, LONG).await;
    assert_eq!(ids_of(&long), vec![kept]);

    assert!(
        q.recover_expired().await.expect("recover").is_empty(),
        "a live lease is not recovered"
    );
    tokio::time::sleep(short + Duration::from_millis(300)).await;

    let mut recovered = q.recover_expired().await.expect("recover");
    recovered.sort_by_key(|r| r.job.payload["k"].as_str().map(str::to_owned));
    assert_eq!(
        recovered.len(),
        2,
        "both expired leases recovered: {recovered:?}"
    );
    let (r_dead, r_retry) = (&recovered[0], &recovered[1]);
    assert_eq!(r_retry.job.id, retry);
    assert_eq!(r_retry.now, JobStatus::Retrying);
    assert_eq!(r_retry.job.status, JobStatus::Running, "the job as it was");
    assert_eq!(r_retry.job.retry_count, 0, "the job as it was");
    assert_eq!(r_retry.job.attempt, 1);
    assert_eq!(r_retry.job.locked_by.as_deref(), Some(W1));
    assert_eq!(r_dead.job.id, dead);
    assert_eq!(r_dead.now, JobStatus::DeadLetter);
    assert_eq!(r_dead.job.status, JobStatus::Running);

    let j = get(&q, retry).await;
    assert_eq!(j.status, JobStatus::Retrying);
    assert_eq!(j.retry_count, 1);
    assert_eq!(j.errors.len(), 1);
    assert_eq!(j.errors[0].attempt, 1);
    assert_eq!(j.errors[0].retry_count, 0);
    assert!(j.errors[0].retryable);
    assert_eq!(
        j.error_message.as_deref(),
        Some(j.errors[0].message.as_str())
    );
    assert!(j.locked_by.is_none() && j.lease_until.is_none());
    assert!(j.completed_at.is_none());

    let d = get(&q, dead).await;
    assert_eq!(d.status, JobStatus::DeadLetter);
    assert_eq!(d.errors.len(), 1);
    assert!(d.completed_at.is_some());
    assert!(d.locked_by.is_none() && d.lease_until.is_none());

    assert_eq!(
        get(&q, kept).await.status,
        JobStatus::Running,
        "live lease untouched"
    );
    assert!(
        q.recover_expired().await.expect("recover").is_empty(),
        "recovered once only"
    );

    // The retried job is due at once; losing its last attempt dead-letters it.
    let again = claim(&q, W1, &["default"], 10, short).await;
    assert_eq!(ids_of(&again), vec![retry]);
    assert_eq!((again[0].attempt, again[0].retry_count), (2, 1));
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].now, JobStatus::DeadLetter);
    assert_eq!(recovered[0].job.retry_count, 1);
    let j = get(&q, retry).await;
    assert_eq!(j.status, JobStatus::DeadLetter);
    assert_eq!(j.errors.len(), 2);
    assert_eq!((j.errors[1].attempt, j.errors[1].retry_count), (2, 1));
}

/// Heartbeats extend a lease past its first expiry, so recovery leaves the job
/// alone; fences that are no longer current are reported lost.
pub async fn heartbeat_keeps_a_lease_and_reports_lost_fences(q: Backend) {
    let lease = Duration::from_millis(1000);
    let ids = enqueue_n(&q, 3, "default").await;
    let mut jobs = claim(&q, W1, &["default"], 3, lease).await;
    jobs.sort_by_key(|j| j.id);
    assert_eq!(jobs.len(), 3);
    let (live, stale, finished) = (&jobs[0], &jobs[1], &jobs[2]);
    complete(&q, W1, finished).await;

    let started = Instant::now();
    while started.elapsed() < lease + Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let lost = q
            .heartbeat(W1, &[live.fence()], lease)
            .await
            .expect("heartbeat");
        assert!(lost.is_empty(), "a live lease reported lost");
        assert!(
            q.recover_expired()
                .await
                .expect("recover")
                .iter()
                .all(|r| r.job.id != live.id),
            "a heartbeated lease was recovered"
        );
    }
    let j = get(&q, live.id).await;
    assert_eq!(j.status, JobStatus::Running);
    assert_eq!(j.attempt, 1);
    assert!(j.lease_until.expect("lease") > Utc::now());

    // `stale` was not heartbeated: it has expired and been recovered by now.
    assert_eq!(get(&q, stale.id).await.status, JobStatus::Retrying);

    let unknown = Fence {
        id: JobId::new(),
        attempt: 1,
    };
    let wrong_attempt = Fence {
        id: live.id,
        attempt: live.attempt + 1,
    };
    let mut lost = q
        .heartbeat(
            W1,
            &[stale.fence(), finished.fence(), unknown, live.fence()],
            lease,
        )
        .await
        .expect("heartbeat");
    lost.sort();
    let mut want = vec![stale.id, finished.id, unknown.id];
    want.sort();
    assert_eq!(lost, want, "lost fences reported, the live one not");
    let lost = q
        .heartbeat(W1, &[wrong_attempt], lease)
        .await
        .expect("heartbeat");
    assert_eq!(lost, vec![live.id], "a fence of another attempt is lost");
    assert!(ids.contains(&live.id));

    // Without heartbeats the lease runs out and recovery takes the job.
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(
        ids_of(&recovered.iter().map(|r| r.job.clone()).collect::<Vec<_>>()),
        vec![live.id]
    );
}

/// After a lease expires and the job is claimed again, the old attempt's outcome
/// and heartbeat are refused and reported lost; the new attempt's outcome stands.
pub async fn fenced_outcome_refuses_a_superseded_attempt(q: Backend) {
    let short = Duration::from_millis(200);
    let id = enqueue(&q, NewJob::new("fence.job", json!({}))).await;
    let other = enqueue(
        &q,
        NewJob::new("fence.job", json!({ "other": true })).queue("o"),
    )
    .await;
    let old = claim_one(&q, W1, &["default"], short).await.expect("claim");
    tokio::time::sleep(short + Duration::from_millis(300)).await;
    assert_eq!(q.recover_expired().await.expect("recover").len(), 1);
    let new = claim_one(&q, W2, &["default"], LONG)
        .await
        .expect("reclaim");
    assert_eq!(new.id, id);
    assert_eq!(new.attempt, old.attempt + 1);

    for outcome in [
        Outcome::Complete {
            result: Some(json!("stale")),
        },
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("stale retry", true),
        },
        Outcome::Fail {
            error: failure("stale fail", false),
        },
        Outcome::DeadLetter {
            error: failure("stale dead", true),
        },
        Outcome::Release,
    ] {
        let lost = record(&q, W1, old.fence(), outcome.clone()).await;
        assert_eq!(lost, vec![id], "stale {outcome:?} must be refused");
    }
    let lost = q
        .heartbeat(W1, &[old.fence()], LONG)
        .await
        .expect("heartbeat");
    assert_eq!(lost, vec![id]);
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Running);
    assert_eq!(j.locked_by.as_deref(), Some(W2));
    assert_eq!(j.attempt, new.attempt);
    assert_eq!(
        j.errors.len(),
        1,
        "only the expiry's error; stale outcomes add none"
    );

    // In one batch, the stale update is refused and the others apply.
    let other_job = claim_one(&q, W1, &["o"], LONG).await.expect("claim other");
    let lost = q
        .record(
            W1,
            &[
                OutcomeUpdate {
                    fence: old.fence(),
                    outcome: Outcome::Complete { result: None },
                },
                OutcomeUpdate {
                    fence: other_job.fence(),
                    outcome: Outcome::Complete { result: None },
                },
            ],
        )
        .await
        .expect("record");
    assert_eq!(lost, vec![id]);
    assert_eq!(get(&q, other).await.status, JobStatus::Completed);

    let lost = record(
        &q,
        W2,
        new.fence(),
        Outcome::Complete {
            result: Some(json!("fresh")),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!(j.result_data, Some(json!("fresh")));

    let unknown = Fence {
        id: JobId::new(),
        attempt: 1,
    };
    let lost = record(&q, W1, unknown, Outcome::Complete { result: None }).await;
    assert_eq!(lost, vec![unknown.id], "an unknown job is reported lost");
}

/// `Outcome::Retry` → RETRYING, `retry_count + 1`, not claimable before `delay`
/// has passed, error appended to the history (oldest first).
pub async fn retry_is_scheduled_and_appends_error_history(q: Backend) {
    let id = enqueue(&q, NewJob::new("retry.job", json!({}))).await;
    let j = claim_one(&q, W1, &["default"], LONG).await.expect("claim");
    let delay = Duration::from_millis(1200);
    let before = Utc::now();
    let lost = record(
        &q,
        W1,
        j.fence(),
        Outcome::Retry {
            delay,
            error: failure("boom", true),
        },
    )
    .await;
    let after = Utc::now();
    assert!(lost.is_empty());
    let r = get(&q, id).await;
    assert_eq!(r.status, JobStatus::Retrying);
    assert_eq!(r.retry_count, 1);
    assert_eq!(r.error_message.as_deref(), Some("boom"));
    assert!(r.completed_at.is_none());
    assert!(r.locked_by.is_none() && r.lease_until.is_none());
    let d = chrono::Duration::from_std(delay).expect("delay");
    assert_between("run_at", r.run_at, before + d, after + d);
    assert_eq!(r.errors.len(), 1);
    let e = &r.errors[0];
    assert_eq!((e.attempt, e.retry_count), (1, 0));
    assert_eq!(e.message, "boom");
    assert!(e.retryable);
    assert_eq!(e.worker.as_deref(), Some(W1));
    assert_between("error at", e.at, before, after);

    assert!(
        claim(&q, W1, &["default"], 10, LONG).await.is_empty(),
        "a retry is not claimed before its delay"
    );
    let wait = (r.run_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;
    let j2 = claim_one(&q, W2, &["default"], LONG)
        .await
        .expect("retry due");
    assert_eq!((j2.attempt, j2.retry_count), (2, 1));
    let lost = record(
        &q,
        W2,
        j2.fence(),
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("boom again", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let r = get(&q, id).await;
    assert_eq!(r.retry_count, 2);
    let messages: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, vec!["boom", "boom again"]);
    assert_eq!((r.errors[1].attempt, r.errors[1].retry_count), (2, 1));
    assert_eq!(r.errors[1].worker.as_deref(), Some(W2));
    assert_eq!(r.error_message.as_deref(), Some("boom again"));
    let j3 = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("due now");
    assert_eq!((j3.attempt, j3.retry_count), (3, 2));
}

/// `Fail` → FAILED and `DeadLetter` → DEAD_LETTER: terminal, finished, never claimed.
pub async fn fail_and_dead_letter_are_terminal(q: Backend) {
    let ids = enqueue_n(&q, 3, "default").await;
    let jobs = claim(&q, W1, &["default"], 3, LONG).await;
    assert_eq!(set(&ids_of(&jobs)), set(&ids));
    let by_id = |id: JobId| jobs.iter().find(|j| j.id == id).expect("claimed").fence();
    let lost = q
        .record(
            W1,
            &[
                OutcomeUpdate {
                    fence: by_id(ids[0]),
                    outcome: Outcome::Fail {
                        error: failure("bad input", false),
                    },
                },
                OutcomeUpdate {
                    fence: by_id(ids[1]),
                    outcome: Outcome::DeadLetter {
                        error: failure("gave up", true),
                    },
                },
                OutcomeUpdate {
                    fence: by_id(ids[2]),
                    outcome: Outcome::Complete {
                        result: Some(json!(3)),
                    },
                },
            ],
        )
        .await
        .expect("record");
    assert!(lost.is_empty());

    let f = get(&q, ids[0]).await;
    assert_eq!(f.status, JobStatus::Failed);
    assert_eq!(f.retry_count, 0);
    assert_eq!(f.error_message.as_deref(), Some("bad input"));
    assert_eq!(f.errors.len(), 1);
    assert!(!f.errors[0].retryable);
    assert!(f.completed_at.is_some());
    assert!(f.locked_by.is_none() && f.lease_until.is_none());

    let d = get(&q, ids[1]).await;
    assert_eq!(d.status, JobStatus::DeadLetter);
    assert_eq!(d.error_message.as_deref(), Some("gave up"));
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].retryable);
    assert!(d.completed_at.is_some());

    let c = get(&q, ids[2]).await;
    assert_eq!(c.status, JobStatus::Completed);
    assert_eq!(c.result_data, Some(json!(3)));

    assert!(claim(&q, W1, &["default"], 10, LONG).await.is_empty());
    assert!(q.recover_expired().await.expect("recover").is_empty());
}

/// FAILED and DEAD_LETTER jobs can be requeued (PENDING, due now, fresh retry
/// budget, history kept); any other status is refused with `InvalidState`.
pub async fn requeue_revives_failed_and_dead_letter_only(q: Backend) {
    let ids = enqueue_n(&q, 3, "default").await;
    let jobs = claim(&q, W1, &["default"], 3, LONG).await;
    assert_eq!(jobs.len(), 3);
    let fence = |id: JobId| jobs.iter().find(|j| j.id == id).expect("claimed").fence();
    let (failed, dead, done) = (ids[0], ids[1], ids[2]);
    // Give the dead-lettered job a retry_count above zero first.
    let lost = q
        .record(
            W1,
            &[
                OutcomeUpdate {
                    fence: fence(failed),
                    outcome: Outcome::Fail {
                        error: failure("no", false),
                    },
                },
                OutcomeUpdate {
                    fence: fence(dead),
                    outcome: Outcome::Retry {
                        delay: Duration::ZERO,
                        error: failure("try again", true),
                    },
                },
                OutcomeUpdate {
                    fence: fence(done),
                    outcome: Outcome::Complete { result: None },
                },
            ],
        )
        .await
        .expect("record");
    assert!(lost.is_empty());
    let d = claim_one(&q, W1, &["default"], LONG).await.expect("retry");
    assert_eq!(d.id, dead);
    let lost = record(
        &q,
        W1,
        d.fence(),
        Outcome::DeadLetter {
            error: failure("gave up", true),
        },
    )
    .await;
    assert!(lost.is_empty());

    let pending = enqueue(&q, NewJob::new("r.job", json!({}))).await;
    for (id, retry_count) in [(failed, 0), (dead, 1)] {
        let before = get(&q, id).await;
        assert_eq!(before.retry_count, retry_count);
        let t0 = Utc::now();
        let r = q.requeue(id).await.expect("requeue");
        let t1 = Utc::now();
        assert_eq!(r.id, id);
        assert_eq!(r.status, JobStatus::Pending);
        assert_eq!(r.retry_count, 0, "a fresh retry budget");
        assert_eq!(r.errors, before.errors, "history kept");
        assert!(r.completed_at.is_none());
        assert_between("run_at", r.run_at, t0, t1);
        assert_eq!(get(&q, id).await, r, "requeue returns the stored job");
    }

    // Both are claimable again; attempts keep counting.
    let again = claim(&q, W2, &["default"], 10, LONG).await;
    assert_eq!(set(&ids_of(&again)), set(&[failed, dead, pending]));
    let f = again.iter().find(|j| j.id == failed).expect("failed job");
    assert_eq!((f.attempt, f.retry_count), (2, 0));
    let dj = again.iter().find(|j| j.id == dead).expect("dead job");
    assert_eq!((dj.attempt, dj.retry_count), (3, 0));

    // Refused: RUNNING, COMPLETED, waiting; unknown → NotFound.
    let waiting = enqueue(&q, NewJob::new("r.job", json!({}))).await;
    for (id, from) in [
        (failed, JobStatus::Running),
        (done, JobStatus::Completed),
        (waiting, JobStatus::Pending),
    ] {
        let before = get(&q, id).await;
        match q.requeue(id).await {
            Err(Error::InvalidState {
                id: e_id,
                from: e_from,
                ..
            }) => {
                assert_eq!((e_id, e_from), (id, from));
            }
            other => panic!("requeue of a {from} job must be InvalidState, got {other:?}"),
        }
        assert_eq!(
            get(&q, id).await,
            before,
            "a refused requeue changes nothing"
        );
    }
    let unknown = JobId::new();
    assert!(matches!(q.requeue(unknown).await, Err(Error::NotFound(id)) if id == unknown));
}

/// Cancelling a waiting job (PENDING, SCHEDULED, RETRYING) makes it FAILED and
/// unclaimable; RUNNING and finished jobs are refused with `InvalidState`.
pub async fn cancel_takes_waiting_jobs_only(q: Backend) {
    let pending = enqueue(&q, NewJob::new("c.job", json!({ "k": "p" }))).await;
    let scheduled = enqueue(
        &q,
        NewJob::new("c.job", json!({ "k": "s" }))
            .run_at(now_us() + chrono::Duration::milliseconds(300)),
    )
    .await;
    let retrying = enqueue(&q, NewJob::new("c.job", json!({ "k": "r" })).queue("r")).await;
    let running = enqueue(&q, NewJob::new("c.job", json!({ "k": "run" })).queue("run")).await;
    let done = enqueue(&q, NewJob::new("c.job", json!({ "k": "d" })).queue("d")).await;

    let r = claim_one(&q, W1, &["r"], LONG).await.expect("claim");
    let lost = record(
        &q,
        W1,
        r.fence(),
        Outcome::Retry {
            delay: Duration::ZERO,
            error: failure("e", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let run = claim_one(&q, W1, &["run"], LONG).await.expect("claim");
    let d = claim_one(&q, W1, &["d"], LONG).await.expect("claim");
    complete(&q, W1, &d).await;
    assert_eq!(get(&q, retrying).await.status, JobStatus::Retrying);
    assert_eq!(get(&q, scheduled).await.status, JobStatus::Scheduled);

    for id in [pending, scheduled, retrying] {
        let c = q.cancel(id).await.expect("cancel");
        assert_eq!(c.id, id);
        assert_eq!(c.status, JobStatus::Failed);
        assert!(c.completed_at.is_some());
        assert!(
            c.error_message
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains("cancel")),
            "a cancelled job says so: {:?}",
            c.error_message
        );
        assert_eq!(get(&q, id).await, c, "cancel returns the stored job");
    }

    for (id, from) in [
        (running, JobStatus::Running),
        (done, JobStatus::Completed),
        (pending, JobStatus::Failed),
    ] {
        let before = get(&q, id).await;
        match q.cancel(id).await {
            Err(Error::InvalidState {
                id: e_id,
                from: e_from,
                ..
            }) => {
                assert_eq!((e_id, e_from), (id, from));
            }
            other => panic!("cancel of a {from} job must be InvalidState, got {other:?}"),
        }
        assert_eq!(
            get(&q, id).await,
            before,
            "a refused cancel changes nothing"
        );
    }
    let unknown = JobId::new();
    assert!(matches!(q.cancel(unknown).await, Err(Error::NotFound(id)) if id == unknown));

    // Never claimed, not even once the schedule comes due.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(claim(&q, W2, &["default", "r"], 10, LONG).await.is_empty());
    // The running job completes normally.
    complete(&q, W1, &run).await;
}

/// `get` of an id never stored is `None`, not an error.
pub async fn get_unknown_is_none(q: Backend) {
    assert!(q.get(JobId::new()).await.expect("get").is_none());
    enqueue_n(&q, 2, "default").await;
    assert!(q.get(JobId::new()).await.expect("get").is_none());
}

/// `list` filters by queue, status and type, in enqueue order, paged.
pub async fn list_filters_and_pages_in_enqueue_order(q: Backend) {
    let jobs: Vec<NewJob> = (0..10)
        .map(|i| {
            NewJob::new(if i % 3 == 0 { "t1" } else { "t2" }, json!({ "i": i }))
                .queue(if i % 2 == 0 { "a" } else { "b" })
        })
        .collect();
    let ids = q.enqueue_batch(jobs).await.expect("enqueue");
    // One more, enqueued separately, with a higher priority: still listed last.
    let last = enqueue(
        &q,
        NewJob::new("t2", json!({ "i": 10 })).queue("b").priority(9),
    )
    .await;
    let mut all = ids.clone();
    all.push(last);

    let claimed = claim(&q, W1, &["a"], 2, LONG).await;
    assert_eq!(set(&ids_of(&claimed)), set(&[ids[0], ids[2]]));
    let first = claimed.iter().find(|j| j.id == ids[0]).expect("job 0");
    complete(&q, W1, first).await;

    let pick = |idx: &[usize]| idx.iter().map(|&i| all[i]).collect::<Vec<_>>();
    assert_eq!(list(&q, JobFilter::default()).await, all);
    assert_eq!(
        list(&q, JobFilter::default().queue("a")).await,
        pick(&[0, 2, 4, 6, 8])
    );
    assert_eq!(
        list(&q, JobFilter::default().queue("b")).await,
        pick(&[1, 3, 5, 7, 9, 10])
    );
    assert_eq!(
        list(
            &q,
            JobFilter::default().queue("a").status(JobStatus::Pending)
        )
        .await,
        pick(&[4, 6, 8])
    );
    assert_eq!(
        list(&q, JobFilter::default().job_type("t1")).await,
        pick(&[0, 3, 6, 9])
    );
    assert_eq!(
        list(&q, JobFilter::default().queue("b").job_type("t1")).await,
        pick(&[3, 9])
    );
    assert_eq!(
        list(&q, JobFilter::default().status(JobStatus::Completed)).await,
        pick(&[0])
    );
    assert_eq!(
        list(&q, JobFilter::default().status(JobStatus::Running)).await,
        pick(&[2])
    );
    assert_eq!(
        list(
            &q,
            JobFilter::default()
                .queue("a")
                .status(JobStatus::Running)
                .job_type("t1")
        )
        .await,
        vec![]
    );
    assert_eq!(list(&q, JobFilter::default().queue("nope")).await, vec![]);
    assert_eq!(
        list(&q, JobFilter::default().status(JobStatus::DeadLetter)).await,
        vec![]
    );

    // Paging.
    assert_eq!(
        list(&q, JobFilter::default().limit(3)).await,
        pick(&[0, 1, 2])
    );
    assert_eq!(
        list(&q, JobFilter::default().limit(3).offset(3)).await,
        pick(&[3, 4, 5])
    );
    assert_eq!(
        list(&q, JobFilter::default().limit(3).offset(9)).await,
        pick(&[9, 10])
    );
    assert_eq!(list(&q, JobFilter::default().offset(11)).await, vec![]);
    assert_eq!(list(&q, JobFilter::default().limit(0)).await, vec![]);
    assert_eq!(
        list(&q, JobFilter::default().queue("b").limit(2).offset(1)).await,
        pick(&[3, 5])
    );

    // Listed jobs are whole jobs.
    let listed = q
        .list(&JobFilter::default().status(JobStatus::Completed))
        .await
        .expect("list");
    assert_eq!(listed[0], get(&q, ids[0]).await);
}

/// `counts` gives one row per (queue, status) that has jobs.
pub async fn counts_by_queue_and_status(q: Backend) {
    assert_eq!(q.counts().await.expect("counts"), vec![]);
    enqueue_n(&q, 5, "a").await;
    enqueue_n(&q, 3, "b").await;
    enqueue(
        &q,
        NewJob::new("c.job", json!({}))
            .queue("b")
            .run_at(now_us() + chrono::Duration::hours(1)),
    )
    .await;
    let jobs = claim(&q, W1, &["a"], 3, LONG).await;
    complete(&q, W1, &jobs[0]).await;
    let lost = record(
        &q,
        W1,
        jobs[1].fence(),
        Outcome::Fail {
            error: failure("x", false),
        },
    )
    .await;
    assert!(lost.is_empty());

    let mut got = q.counts().await.expect("counts");
    got.sort();
    let row = |queue: &str, status, count| QueueCount {
        queue: queue.into(),
        status,
        count,
    };
    let mut want = vec![
        row("a", JobStatus::Pending, 2),
        row("a", JobStatus::Running, 1),
        row("a", JobStatus::Completed, 1),
        row("a", JobStatus::Failed, 1),
        row("b", JobStatus::Pending, 3),
        row("b", JobStatus::Scheduled, 1),
    ];
    want.sort();
    assert_eq!(got, want);
}

/// `prune` deletes terminal jobs finished before the cutoff, at most `limit`
/// per call; waiting, running and recently finished jobs stay.
pub async fn prune_removes_only_old_terminal_jobs_within_limit(q: Backend) {
    let ids = enqueue_n(&q, 9, "default").await;
    let jobs = claim(&q, W1, &["default"], 8, LONG).await;
    assert_eq!(jobs.len(), 8);
    let mut by_id = jobs.clone();
    by_id.sort_by_key(|j| ids.iter().position(|i| *i == j.id));
    let early = Utc::now() - chrono::Duration::milliseconds(1);
    let mut updates = Vec::new();
    for (i, j) in by_id.iter().enumerate().take(7) {
        let outcome = match i {
            0..=4 => Outcome::Complete { result: None },
            5 => Outcome::Fail {
                error: failure("f", false),
            },
            _ => Outcome::DeadLetter {
                error: failure("d", true),
            },
        };
        updates.push(OutcomeUpdate {
            fence: j.fence(),
            outcome,
        });
    }
    assert!(q.record(W1, &updates).await.expect("record").is_empty());
    let running = by_id[7].id;
    let pending = ids[8];

    // A requeued job is waiting again, so it is not pruned either.
    let requeued_claim = enqueue(&q, NewJob::new("p.job", json!({})).queue("rq")).await;
    let rq = claim_one(&q, W1, &["rq"], LONG).await.expect("claim");
    let lost = record(
        &q,
        W1,
        rq.fence(),
        Outcome::Fail {
            error: failure("f", false),
        },
    )
    .await;
    assert!(lost.is_empty());
    q.requeue(requeued_claim).await.expect("requeue");

    assert_eq!(
        q.prune(early, 100).await.expect("prune"),
        0,
        "nothing finished before `early`"
    );

    let late = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        q.prune(late, 3).await.expect("prune"),
        3,
        "bounded by limit"
    );
    assert_eq!(q.prune(late, 100).await.expect("prune"), 4);
    assert_eq!(q.prune(late, 100).await.expect("prune"), 0);
    let left = list(&q, JobFilter::default()).await;
    assert_eq!(set(&left), set(&[running, pending, requeued_claim]));
    assert_eq!(get(&q, running).await.status, JobStatus::Running);

    // The cutoff is respected: a job finished after it stays.
    let more = enqueue_n(&q, 2, "m").await;
    let x = claim_one(&q, W1, &["m"], LONG).await.expect("claim");
    complete(&q, W1, &x).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mid = Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let y = claim_one(&q, W1, &["m"], LONG).await.expect("claim");
    complete(&q, W1, &y).await;
    assert_eq!(q.prune(mid, 100).await.expect("prune"), 1);
    assert!(
        q.get(more[0]).await.expect("get").is_none(),
        "finished before the cutoff"
    );
    assert!(
        q.get(more[1]).await.expect("get").is_some(),
        "finished after the cutoff"
    );
}

/// Payloads, metadata and results come back exactly: unicode, escapes, deep
/// nesting, numbers at the edges, 1 MiB strings, empty objects and arrays.
pub async fn payloads_round_trip_exactly(q: Backend) {
    let big_string: String = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let big_array: Vec<Value> = (0..20_000)
        .map(|i| json!({ "i": i, "s": format!("item-{i}") }))
        .collect();
    let mut deep = json!({ "leaf": "bottom" });
    for i in 0..100 {
        deep = json!({ "level": i, "child": deep, "list": [i, [], {}] });
    }
    let payloads = vec![
        json!({}),
        json!({ "empty_obj": {}, "empty_arr": [], "empty_str": "", "null": null }),
        json!({
            "unicode": "héllo wörld — ✓ 日本語 עברית العربية 🦀👩‍👩‍👧‍👦 e\u{301}",
            "escapes": "quote \" backslash \\ slash / newline \n tab \t cr \r bell \u{7}",
            "sql": "'; DROP TABLE jobs; --",
            "键": "值",
            "emoji_key_🦀": true,
        }),
        json!({
            "ints": [0, -1, 1, i64::MAX, i64::MIN, u64::MAX],
            "floats": [0.5, -2.25, 1e-7, 12345.678],
            "bools": [true, false],
        }),
        json!({ "nested": deep }),
        json!({ "big": big_string }),
        json!({ "many": big_array }),
    ];
    let mut meta = Map::new();
    meta.insert("trace_id".into(), json!("ü-🦀"));
    meta.insert("nested".into(), json!({ "a": [1, { "b": {} }] }));
    let jobs: Vec<NewJob> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut j = NewJob::new("payload.job", p.clone()).priority(-(i as i32));
            j.metadata = meta.clone();
            j
        })
        .collect();
    let ids = q.enqueue_batch(jobs).await.expect("enqueue");
    for (id, p) in ids.iter().zip(&payloads) {
        let j = get(&q, *id).await;
        assert!(j.payload == *p, "payload of {id} changed in storage");
        assert_eq!(j.metadata, meta);
    }
    let claimed = claim(&q, W1, &["default"], payloads.len(), LONG).await;
    assert_eq!(claimed.len(), payloads.len());
    for j in &claimed {
        let i = ids.iter().position(|id| *id == j.id).expect("known id");
        assert!(
            j.payload == payloads[i],
            "payload {i} changed through claim"
        );
        // Echo the payload back as the result.
        let lost = record(
            &q,
            W1,
            j.fence(),
            Outcome::Complete {
                result: Some(payloads[i].clone()),
            },
        )
        .await;
        assert!(lost.is_empty());
    }
    for (id, p) in ids.iter().zip(&payloads) {
        let j = get(&q, *id).await;
        assert!(
            j.result_data.as_ref() == Some(p),
            "result of {id} changed in storage"
        );
    }
    // Error messages are text too.
    let e = enqueue(&q, NewJob::new("payload.job", json!({ "e": 1 }))).await;
    let j = claim_one(&q, W1, &["default"], LONG).await.expect("claim");
    assert_eq!(j.id, e);
    let msg = "échec: 🦀 \"quoted\" \n line two \\ done";
    let lost = record(
        &q,
        W1,
        j.fence(),
        Outcome::Fail {
            error: failure(msg, false),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, e).await;
    assert_eq!(j.error_message.as_deref(), Some(msg));
    assert_eq!(j.errors[0].message, msg);
}

/// A listener waiting with a long timeout returns promptly after an enqueue from
/// another task, and does not miss an enqueue made between subscribing and waiting.
pub async fn listener_wakes_on_enqueue(q: Backend) {
    let names = queues(&["default"]);
    let mut listener = q.listener(&names).await.expect("listener");

    // Enqueued while the listener is waiting.
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            enqueue_n(&q, 1, "default").await
        })
    };
    let started = Instant::now();
    listener.wait(Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "wait(60 s) did not return after an enqueue"
    );
    producer.await.expect("producer");

    // Enqueued after subscribing but before waiting: not missed.
    let mut listener = q.listener(&names).await.expect("listener");
    tokio::time::sleep(Duration::from_millis(50)).await;
    enqueue_n(&q, 1, "default").await;
    let started = Instant::now();
    listener.wait(Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "an enqueue before wait() was missed"
    );
}

/// A listener also returns when the earliest scheduled job of its queues comes
/// due, though nothing new was enqueued.
pub async fn listener_wakes_when_scheduled_job_is_due(q: Backend) {
    let due = now_us() + chrono::Duration::milliseconds(800);
    let id = enqueue(&q, NewJob::new("s.job", json!({})).run_at(due)).await;
    let names = queues(&["default"]);
    let mut listener = q.listener(&names).await.expect("listener");
    let started = Instant::now();
    // Spurious returns are allowed; keep waiting until the job is due or we give up.
    while Utc::now() < due && started.elapsed() < Duration::from_secs(30) {
        listener.wait(Duration::from_secs(60)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "wait(60 s) did not return when a scheduled job came due"
    );
    let j = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("due job");
    assert_eq!(j.id, id);
}
