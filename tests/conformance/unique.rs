//! Unique jobs: at most one job holds a key while in its unique states,
//! enforced by the store (a unique index, or one atomic script), not by a
//! read then a write.

use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::{Enqueued, Error, JobId, JobStatus, NewJob, UniqueStates, Uniqueness};
use serde_json::json;

use super::support::{claim_one, complete, failure, get, record, LONG, W1};
use super::Backend;

fn unique(key: &str) -> NewJob {
    NewJob::new("u", json!({"k": key})).unique(Uniqueness::new(key))
}

async fn enqueue_one(q: &Backend, job: NewJob) -> Enqueued {
    let mut out = q.enqueue_batch(vec![job]).await.expect("enqueue");
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// A second job with the key of a waiting or running one is not stored: the
/// enqueue says `Duplicate` with the holder's id. Once the holder finished
/// (by default finished jobs do not hold keys) the key is free again.
pub async fn a_unique_key_admits_one_waiting_or_running_job(q: Backend) {
    let a = unique("k");
    let a_id = a.id;
    assert_eq!(enqueue_one(&q, a).await, Enqueued::Inserted(a_id));
    let stored = get(&q, a_id).await;
    assert_eq!(stored.unique_key.as_deref(), Some("k"));

    let b = unique("k");
    let b_id = b.id;
    assert_eq!(enqueue_one(&q, b).await, Enqueued::Duplicate(a_id));
    assert!(
        q.get(b_id).await.expect("get").is_none(),
        "the duplicate is not stored"
    );

    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    assert_eq!(job.id, a_id);
    assert_eq!(
        enqueue_one(&q, unique("k")).await,
        Enqueued::Duplicate(a_id),
        "a running job holds its key"
    );
    assert!(matches!(
        enqueue_one(&q, unique("other")).await,
        Enqueued::Inserted(_)
    ));

    complete(&q, W1, &job).await;
    let c = unique("k");
    let c_id = c.id;
    assert_eq!(
        enqueue_one(&q, c).await,
        Enqueued::Inserted(c_id),
        "a finished job frees its key"
    );
}

/// Finished statuses can be made to hold the key too.
pub async fn unique_states_can_keep_the_key_after_the_job_finished(q: Backend) {
    let keep = |key: &str| {
        NewJob::new("u", json!({}))
            .unique(Uniqueness::new(key).states(UniqueStates::ACTIVE.with(JobStatus::Completed)))
    };
    let a = keep("done-holds");
    let a_id = a.id;
    enqueue_one(&q, a).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    complete(&q, W1, &job).await;
    assert_eq!(
        enqueue_one(&q, keep("done-holds")).await,
        Enqueued::Duplicate(a_id)
    );

    // FAILED is not among its states: a failed holder frees the key.
    let f = keep("failed-frees");
    enqueue_one(&q, f).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Fail {
            error: failure("no", false),
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());
    assert!(enqueue_one(&q, keep("failed-frees")).await.is_inserted());
}

/// With a period the key is taken once per period: the backend appends the
/// number of whole periods since the epoch by its own clock, and finished
/// jobs hold it too (at most one per period).
pub async fn a_period_takes_the_key_once_per_period(q: Backend) {
    let hourly = |n: u32| {
        NewJob::new("report", json!({"n": n}))
            .unique(Uniqueness::new("daily-report").period(Duration::from_secs(3600)))
    };
    let a = hourly(1);
    let a_id = a.id;
    assert!(enqueue_one(&q, a).await.is_inserted());
    let stored = get(&q, a_id).await;
    let bucket = stored.created_at.timestamp().div_euclid(3600);
    assert_eq!(
        stored.unique_key,
        Some(format!("daily-report:{bucket}")),
        "the period's bucket comes from the backend's clock"
    );
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    complete(&q, W1, &job).await;
    assert_eq!(
        enqueue_one(&q, hourly(2)).await,
        Enqueued::Duplicate(a_id),
        "once per period, even after it ran"
    );
}

/// A batch reports each item: duplicates of an earlier item of the same
/// batch, and of stored jobs.
pub async fn duplicates_in_a_batch_are_reported_each(q: Backend) {
    let x = unique("k2");
    let x_id = x.id;
    enqueue_one(&q, x).await;
    let (a, b, c, d) = (
        unique("k1"),
        unique("k1"),
        unique("k2"),
        NewJob::new("u", json!({})),
    );
    let (a_id, b_id, d_id) = (a.id, b.id, d.id);
    let out = q.enqueue_batch(vec![a, b, c, d]).await.expect("enqueue");
    assert_eq!(
        out,
        vec![
            Enqueued::Inserted(a_id),
            Enqueued::Duplicate(a_id),
            Enqueued::Duplicate(x_id),
            Enqueued::Inserted(d_id),
        ]
    );
    assert!(q.get(b_id).await.expect("get").is_none());
}

/// Debounce: in replace mode a *waiting* holder takes the new job's payload
/// and due time; a running holder is not replaced (the new job is its duplicate).
pub async fn replace_mode_updates_a_waiting_holder(q: Backend) {
    let debounce = |v: u32, delay: u64| {
        NewJob::new("reindex", json!({"v": v}))
            .delay(Duration::from_secs(delay))
            .unique(Uniqueness::new("reindex").replace(true))
    };
    let a = debounce(1, 3600);
    let a_id = a.id;
    assert!(enqueue_one(&q, a).await.is_inserted());
    let first_due = get(&q, a_id).await.run_at;
    assert_eq!(
        enqueue_one(&q, debounce(2, 7200)).await,
        Enqueued::Replaced(a_id)
    );
    let j = get(&q, a_id).await;
    assert_eq!(j.payload, json!({"v": 2}));
    assert_eq!(j.status, JobStatus::Scheduled);
    assert!(j.run_at > first_due, "its due time was pushed");

    let now = NewJob::new("now", json!({"v": 1})).unique(Uniqueness::new("busy").replace(true));
    let now_id = now.id;
    enqueue_one(&q, now).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    assert_eq!(job.id, now_id);
    let again = NewJob::new("now", json!({"v": 2})).unique(Uniqueness::new("busy").replace(true));
    assert_eq!(enqueue_one(&q, again).await, Enqueued::Duplicate(now_id));
    assert_eq!(
        get(&q, now_id).await.payload,
        json!({"v": 1}),
        "a running job is not replaced"
    );
}

/// A requeue that would make two jobs hold one key is refused, naming the
/// holder; nothing changes.
pub async fn a_requeue_refuses_a_job_whose_key_was_taken(q: Backend) {
    let a = unique("k");
    let a_id = a.id;
    enqueue_one(&q, a).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Fail {
            error: failure("no", false),
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());
    let b = unique("k");
    let b_id = b.id;
    assert!(enqueue_one(&q, b).await.is_inserted());
    match q.requeue(a_id).await {
        Err(Error::UniqueKeyTaken { id, holder }) => assert_eq!((id, holder), (a_id, b_id)),
        other => panic!("requeue must be refused with UniqueKeyTaken, got {other:?}"),
    }
    assert_eq!(get(&q, a_id).await.status, JobStatus::Failed);

    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    assert_eq!(job.id, b_id);
    complete(&q, W1, &job).await;
    let back = q.requeue(a_id).await.expect("the key is free again");
    assert_eq!(back.status, JobStatus::Pending);
    assert_eq!(
        enqueue_one(&q, unique("k")).await,
        Enqueued::Duplicate(a_id)
    );
}

/// 16 producers enqueue one key 1,000 times each at once: exactly one job
/// exists, every enqueue names it, and no enqueue fails.
pub async fn unique_keys_hold_under_a_hammer(q: Backend) {
    const PRODUCERS: usize = 16;
    const EACH: usize = 1_000;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(EACH);
            for i in 0..EACH {
                let job = NewJob::new("hammer", json!({"p": p, "i": i}))
                    .unique(Uniqueness::new("the-one"));
                let mut out = q.enqueue_batch(vec![job]).await.expect("enqueue");
                seen.push(out.remove(0));
            }
            seen
        }));
    }
    let mut all = Vec::with_capacity(PRODUCERS * EACH);
    for t in tasks {
        all.extend(t.await.expect("producer"));
    }
    let inserted: Vec<JobId> = all
        .iter()
        .filter(|e| e.is_inserted())
        .map(|e| e.id())
        .collect();
    assert_eq!(inserted.len(), 1, "exactly one enqueue stored a job");
    let holder = inserted[0];
    assert!(
        all.iter().all(|e| e.id() == holder),
        "every other enqueue names the holder"
    );
    let stored = q
        .list(&jobs_core::JobFilter::default().job_type("hammer").limit(10))
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
}
