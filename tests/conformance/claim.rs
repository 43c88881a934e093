//! Claiming: which jobs come first, when scheduled jobs become claimable,
//! and that concurrent claimers never share a job.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{JobId, JobStatus, NewJob, QueueCount};
use serde_json::json;

use super::support::{
    claim, claim_one, enqueue, enqueue_n, get, ids_of, now_us, set, LONG, W1, W2,
};
use super::Backend;

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
    let ids = q
        .enqueue_batch(batch)
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
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
    let ids = q
        .enqueue_batch(q2)
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let (b1, a1, a9, b50, a1_old) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let first = claim(&q, W2, &["a", "b"], 4, LONG).await;
    assert_eq!(set(&ids_of(&first)), set(&[a9, a1_old, a1, b50]));
    let rest = claim(&q, W2, &["a", "b"], 4, LONG).await;
    assert_eq!(ids_of(&rest), vec![b1]);

    // The queue list order is the caller's, not alphabetical.
    let ids = q
        .enqueue_batch(vec![job("a", 0, old, "a"), job("b", 0, recent, "b")])
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
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
                    .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
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
        vec![QueueCount::new(
            "default",
            JobStatus::Completed,
            PRODUCED as u64
        )]
    );
}
