//! Operations over many jobs: the throughput history the backend keeps, and
//! bulk requeue.

use std::time::Duration;

use chrono::Utc;
use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{
    minute_of, CancelRequest, Error, JobFilter, JobId, JobStatus, NewJob, RequeueFilter,
    ThroughputBucket, Uniqueness,
};
use serde_json::json;

use super::support::*;
use super::Backend;

/// The buckets of `queue` summed over every minute, as (completed, failed,
/// dead, retried), checking that each bucket's minute lies in `[lo, hi]`.
fn sums(
    buckets: &[ThroughputBucket],
    queue: &str,
    lo: chrono::DateTime<Utc>,
    hi: chrono::DateTime<Utc>,
) -> (u64, u64, u64, u64) {
    let mut s = (0, 0, 0, 0);
    for b in buckets.iter().filter(|b| b.queue == queue) {
        assert_eq!(b.minute, minute_of(b.minute), "a bucket starts on a minute");
        assert!(
            b.minute >= lo && b.minute <= hi,
            "bucket of {queue} at {} is outside the test's minutes [{lo}, {hi}]",
            b.minute
        );
        s.0 += b.completed;
        s.1 += b.failed;
        s.2 += b.dead;
        s.3 += b.retried;
    }
    s
}

/// Every end of an attempt is counted once, in its queue and in the minute it
/// happened: completions, permanent failures and cancellations (failed),
/// dead letters, retries (outcomes and expired leases). Releases, snoozes,
/// claims and requeues count nothing, and nothing before `since` is returned.
pub async fn throughput_counts_each_end_of_an_attempt(q: Backend) {
    let lo = minute_of(Utc::now() - chrono::Duration::seconds(5));
    enqueue_n(&q, 8, "tp-a").await;
    enqueue_n(&q, 2, "tp-b").await;
    let jobs = claim(&q, W1, &["tp-a"], 7, LONG).await;
    assert_eq!(jobs.len(), 7);
    let outcomes = [
        Outcome::Complete { result: None },
        Outcome::Complete { result: None },
        Outcome::Fail {
            error: failure("no", false),
            result: None,
        },
        Outcome::DeadLetter {
            error: failure("dead", true),
        },
        Outcome::Retry {
            delay: Duration::from_secs(3600),
            error: failure("again", true),
        },
        Outcome::Release,
        Outcome::Snooze {
            delay: Duration::from_secs(3600),
        },
    ];
    let updates: Vec<OutcomeUpdate> = jobs
        .iter()
        .zip(outcomes)
        .map(|(j, o)| OutcomeUpdate::new(j.fence(), o))
        .collect();
    assert!(q.record(W1, &updates).await.expect("record").is_empty());
    // The released one again, cancelled while waiting: a failure too.
    q.cancel(jobs[5].id, &CancelRequest::by("ops"))
        .await
        .expect("cancel waiting");
    // Requeues take jobs out of FAILED and DEAD_LETTER: not counted.
    q.requeue(jobs[2].id).await.expect("requeue failed");
    q.requeue(jobs[3].id).await.expect("requeue dead");

    // tp-b: one completed, one whose lease runs out (a retry).
    let b = claim(&q, W1, &["tp-b"], 1, LONG).await;
    complete(&q, W1, &b[0]).await;
    let lapsing = claim(&q, W2, &["tp-b"], 1, Duration::from_millis(200)).await;
    assert_eq!(lapsing.len(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let recovered = q.recover_expired().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].now, JobStatus::Retrying);
    let hi = minute_of(Utc::now() + chrono::Duration::seconds(5));

    let all = q.throughput(lo).await.expect("throughput");
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (a.minute, &a.queue).cmp(&(b.minute, &b.queue)));
    assert_eq!(all, sorted, "buckets come by minute, then queue");
    assert_eq!(sums(&all, "tp-a", lo, hi), (2, 2, 1, 1), "tp-a: {all:?}");
    assert_eq!(sums(&all, "tp-b", lo, hi), (1, 0, 0, 1), "tp-b: {all:?}");
    assert!(
        all.iter().all(|b| b.queue == "tp-a" || b.queue == "tp-b"),
        "only queues that had jobs end: {all:?}"
    );

    // Nothing before `since`.
    for since in [
        hi,
        hi + chrono::Duration::seconds(1),
        lo + chrono::Duration::seconds(30),
    ] {
        let later = q.throughput(since).await.expect("throughput");
        assert!(
            later.iter().all(|b| b.minute >= since),
            "since {since}: {later:?}"
        );
        let want: Vec<_> = all.iter().filter(|b| b.minute >= since).cloned().collect();
        assert_eq!(later, want, "since {since}");
    }
    let future = Utc::now() + chrono::Duration::minutes(2);
    assert!(q.throughput(future).await.expect("throughput").is_empty());
}

/// `Outcome::CompleteAndDelete` (a retention that keeps no completed jobs):
/// the job is gone, with its unique key; the counts hold it nowhere; the
/// throughput history counts it as completed; and its fence is checked as
/// for any outcome, so a stale one changes nothing.
pub async fn complete_and_delete_leaves_no_job(q: Backend) {
    let lo = minute_of(Utc::now() - chrono::Duration::seconds(5));
    let unique = || {
        NewJob::new("u.job", json!({}))
            .queue("drop")
            .unique(Uniqueness::new("drop-key"))
    };
    let ids = enqueue_n(&q, 3, "drop").await;
    let u = enqueue(&q, unique()).await;
    let jobs = claim(&q, W1, &["drop"], 4, LONG).await;
    assert_eq!(jobs.len(), 4);
    let fence = |id: JobId| jobs.iter().find(|j| j.id == id).expect("claimed").fence();
    let updates = [
        OutcomeUpdate::new(fence(ids[0]), Outcome::CompleteAndDelete),
        OutcomeUpdate::new(fence(ids[1]), Outcome::Complete { result: None }),
        OutcomeUpdate::new(fence(u), Outcome::CompleteAndDelete),
        OutcomeUpdate::new(fence(ids[2]), Outcome::Release),
    ];
    assert!(q.record(W1, &updates).await.expect("record").is_empty());
    for id in [ids[0], u] {
        assert!(q.get(id).await.expect("get").is_none(), "{id} is gone");
    }
    assert_eq!(get(&q, ids[1]).await.status, JobStatus::Completed);

    // Gone: the same fence again is refused.
    let lost = record(&q, W1, fence(ids[0]), Outcome::CompleteAndDelete).await;
    assert_eq!(lost, vec![ids[0]]);
    // Claimed again by W2: W1's old lease is stale, and the job stays W2's.
    let again = claim(&q, W2, &["drop"], 1, LONG).await;
    assert_eq!(ids_of(&again), vec![ids[2]]);
    let lost = record(&q, W1, fence(ids[2]), Outcome::CompleteAndDelete).await;
    assert_eq!(lost, vec![ids[2]]);
    let held = get(&q, ids[2]).await;
    assert_eq!(held.status, JobStatus::Running);
    assert_eq!(held.locked_by.as_deref(), Some(W2));

    // Its unique key is free again.
    let e = q.enqueue_batch(vec![unique()]).await.expect("enqueue");
    assert!(e[0].is_inserted(), "the key was given up: {e:?}");

    let mut counts = q.counts().await.expect("counts");
    counts.sort();
    let row = |status, n| jobs_core::QueueCount::new("drop", status, n);
    let mut want = vec![
        row(JobStatus::Pending, 1),
        row(JobStatus::Running, 1),
        row(JobStatus::Completed, 1),
    ];
    want.sort();
    assert_eq!(counts, want);
    let hi = minute_of(Utc::now() + chrono::Duration::seconds(5));
    let tp = q.throughput(lo).await.expect("throughput");
    assert_eq!(
        sums(&tp, "drop", lo, hi),
        (3, 0, 0, 0),
        "throughput: {tp:?}"
    );
}

/// Moves `n` fresh jobs of `queue` and `job_type` to DEAD_LETTER, with one
/// error in their history each.
async fn dead_jobs(q: &Backend, n: usize, queue: &str, job_type: &str) -> Vec<jobs_core::JobId> {
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::new(job_type, json!({ "n": i })).queue(queue))
        .collect();
    q.enqueue_batch(jobs).await.expect("enqueue");
    let claimed = claim(q, W1, &[queue], n, LONG).await;
    assert_eq!(claimed.len(), n);
    let updates: Vec<OutcomeUpdate> = claimed
        .iter()
        .map(|j| {
            OutcomeUpdate::new(
                j.fence(),
                Outcome::DeadLetter {
                    error: failure("gave up", true),
                },
            )
        })
        .collect();
    assert!(q.record(W1, &updates).await.expect("record").is_empty());
    ids_of(&claimed)
}

/// `requeue_many` requeues exactly the jobs its filter takes (status, queue,
/// job type), across several batches, each as `requeue` would (PENDING, due
/// now, retry count 0, no cancellation mark, error history kept), at most
/// `limit`; any other status is refused and changes nothing.
pub async fn requeue_many_takes_what_the_filter_says(q: Backend) {
    let xs = dead_jobs(&q, 230, "rq-a", "x").await;
    let ys = dead_jobs(&q, 3, "rq-a", "y").await;
    let other_queue = dead_jobs(&q, 2, "rq-b", "x").await;
    // A FAILED (cancelled) job in rq-a: another status.
    let cancelled = enqueue(&q, NewJob::new("x", json!({})).queue("rq-a")).await;
    q.cancel(cancelled, &CancelRequest::by("ops"))
        .await
        .expect("cancel");

    // Anything but FAILED or DEAD_LETTER is refused.
    match q
        .requeue_many(&RequeueFilter::new(JobStatus::Completed).queue("rq-a"))
        .await
    {
        Err(Error::InvalidJob(_)) => {}
        other => panic!("requeue_many of COMPLETED jobs must be refused, got {other:?}"),
    }

    let before = now_us();
    let report = q
        .requeue_many(&RequeueFilter::dead_in("rq-a").job_type("x"))
        .await
        .expect("requeue_many");
    assert_eq!(report.requeued, 230);
    assert!(report.skipped_unique.is_empty());
    let pending = list(
        &q,
        JobFilter::default()
            .queue("rq-a")
            .status(JobStatus::Pending)
            .limit(1000),
    )
    .await;
    assert_eq!(pending, xs, "exactly the dead x jobs of rq-a, in order");
    for id in [xs[0], xs[117], xs[229]] {
        let job = get(&q, id).await;
        assert_eq!(job.status, JobStatus::Pending);
        assert_eq!(job.retry_count, 0);
        assert_eq!(job.completed_at, None);
        assert_eq!(job.cancelled_at, None);
        assert_eq!(job.errors.len(), 1, "history kept");
        assert_between("run_at", job.run_at, before, Utc::now());
    }
    for id in ys.iter().chain(&other_queue) {
        assert_eq!(get(&q, *id).await.status, JobStatus::DeadLetter);
    }
    assert_eq!(get(&q, cancelled).await.status, JobStatus::Failed);
    // The requeued jobs are claimable again.
    assert_eq!(claim(&q, W2, &["rq-a"], 1, LONG).await[0].id, xs[0]);

    // A limit, then the rest of the queue; then FAILED ones.
    let two = q
        .requeue_many(&RequeueFilter::dead_in("rq-a").limit(2))
        .await
        .expect("requeue_many");
    assert_eq!(two.requeued, 2);
    assert_eq!(get(&q, ys[2]).await.status, JobStatus::DeadLetter);
    let rest = q
        .requeue_many(&RequeueFilter::dead_in("rq-a"))
        .await
        .expect("requeue_many");
    assert_eq!(rest.requeued, 1);
    assert_eq!(get(&q, ys[2]).await.status, JobStatus::Pending);
    let none = q
        .requeue_many(&RequeueFilter::dead_in("rq-a"))
        .await
        .expect("requeue_many");
    assert_eq!(none.requeued, 0);
    let failed = q
        .requeue_many(&RequeueFilter::new(JobStatus::Failed))
        .await
        .expect("requeue_many");
    assert_eq!(failed.requeued, 1);
    let job = get(&q, cancelled).await;
    assert_eq!((job.status, job.cancelled_at), (JobStatus::Pending, None));
    for id in &other_queue {
        assert_eq!(get(&q, *id).await.status, JobStatus::DeadLetter);
    }
}

/// A unique job whose key another job holds now is skipped and reported (as
/// `requeue` refuses it), the others of the batch are requeued; of two
/// matching jobs with one key, the first takes it and the second is skipped.
pub async fn requeue_many_skips_jobs_whose_unique_key_is_taken(q: Backend) {
    let unique = |key: &str, n: u32| {
        NewJob::new("u", json!({ "k": key, "n": n }))
            .queue("rq-u")
            .unique(Uniqueness::new(key))
    };
    // Four dead jobs: a plain one, "held" (whose key a new job takes), and
    // two of key "twice".
    let mut all = Vec::new();
    for job in [
        NewJob::new("u", json!({})).queue("rq-u"),
        unique("held", 0),
        unique("twice", 1),
    ] {
        all.push(enqueue(&q, job).await);
    }
    let claimed = claim(&q, W1, &["rq-u"], 3, LONG).await;
    for j in &claimed {
        record(
            &q,
            W1,
            j.fence(),
            Outcome::DeadLetter {
                error: failure("gave up", true),
            },
        )
        .await;
    }
    // The second of key "twice", dead too, after the first.
    let twice2 = enqueue(&q, unique("twice", 2)).await;
    let j = claim_one(&q, W1, &["rq-u"], LONG).await.expect("claimed");
    assert_eq!(j.id, twice2);
    record(
        &q,
        W1,
        j.fence(),
        Outcome::DeadLetter {
            error: failure("gave up", true),
        },
    )
    .await;
    let holder = enqueue(&q, unique("held", 9)).await;

    let report = q
        .requeue_many(&RequeueFilter::dead_in("rq-u"))
        .await
        .expect("requeue_many");
    assert_eq!(report.requeued, 2, "{report:?}");
    let mut skipped = report.skipped_unique.clone();
    skipped.sort();
    let mut want = vec![all[1], twice2];
    want.sort();
    assert_eq!(skipped, want);
    assert_eq!(get(&q, all[0]).await.status, JobStatus::Pending);
    assert_eq!(get(&q, all[1]).await.status, JobStatus::DeadLetter);
    assert_eq!(get(&q, all[2]).await.status, JobStatus::Pending);
    assert_eq!(get(&q, twice2).await.status, JobStatus::DeadLetter);
    assert_eq!(get(&q, holder).await.status, JobStatus::Pending);
    // A single requeue says the same of a skipped job.
    match q.requeue(all[1]).await {
        Err(Error::UniqueKeyTaken { id, holder: h }) => assert_eq!((id, h), (all[1], holder)),
        other => panic!("requeue must be refused with UniqueKeyTaken, got {other:?}"),
    }
}
