//! Limits the backend enforces when it hands out jobs: per-key concurrency,
//! per-key rate, sequences (one at a time in enqueue order), and per-queue
//! caps sent with the claim (running across the cluster, starts per window,
//! this claim's share). A held-back job stays waiting, unclaimed, and does
//! not stop later jobs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{Fence, LeaseToken, Outcome};
use jobs_core::{
    CancelRequest, ClaimLimit, ConcurrencyLimit, JobLimits, JobStatus, NewJob, RateLimit,
};
use serde_json::json;

use super::support::{
    claim, claim_limited, complete, enqueue, failure, get, ids_of, record, set, LONG, W1, W2,
};
use super::Backend;

fn job(n: u32) -> NewJob {
    NewJob::new("t", json!({ "n": n }))
}

/// At most `max` jobs of a concurrency key run at once; a finished one frees
/// its slot; jobs without the key are not held back by it.
pub async fn a_concurrency_key_caps_running_jobs(q: Backend) {
    let mut keyed = Vec::new();
    for n in 0..4 {
        keyed.push(enqueue(&q, job(n).concurrency("acct-1", 2)).await);
    }
    let free = enqueue(&q, job(9)).await;
    let got = claim_limited(&q, W1, &["default"], 10, &[]).await;
    assert!(got.limited, "two keyed jobs were held back");
    let ids = ids_of(&got.jobs);
    assert_eq!(ids.len(), 3, "two of the key and the free one: {ids:?}");
    assert!(ids.contains(&free));
    assert_eq!(ids.iter().filter(|id| keyed.contains(id)).count(), 2);

    let again = claim_limited(&q, W2, &["default"], 10, &[]).await;
    assert!(
        again.jobs.is_empty() && again.limited,
        "both slots are taken"
    );
    for id in &keyed {
        if !ids.contains(id) {
            assert_eq!(
                get(&q, *id).await.status,
                JobStatus::Pending,
                "held back, not claimed"
            );
        }
    }

    let first = got.jobs.iter().find(|j| keyed.contains(&j.id)).unwrap();
    complete(&q, W1, first).await;
    let next = claim(&q, W2, &["default"], 10, LONG).await;
    assert_eq!(next.len(), 1, "one slot came free");
    assert_eq!(
        next[0].limits.concurrency,
        Some(ConcurrencyLimit::new("acct-1", 2))
    );
}

/// Keys are independent; a held-back job does not block the jobs behind it.
pub async fn a_held_back_job_does_not_block_later_ones(q: Backend) {
    let a1 = enqueue(&q, job(1).concurrency("a", 1).priority(10)).await;
    let a2 = enqueue(&q, job(2).concurrency("a", 1).priority(10)).await;
    let b1 = enqueue(&q, job(3).concurrency("b", 1).priority(5)).await;
    let plain = enqueue(&q, job(4)).await;
    let got = claim(&q, W1, &["default"], 3, LONG).await;
    assert_eq!(
        ids_of(&got),
        vec![a1, b1, plain],
        "a2 is skipped, not waited for"
    );
    assert_eq!(get(&q, a2).await.status, JobStatus::Pending);
}

/// Concurrent claimers never run more jobs of a key at once than its max.
pub async fn concurrency_limits_hold_under_concurrent_claimers(q: Backend) {
    let jobs: Vec<NewJob> = (0..40).map(|n| job(n).concurrency("hot", 3)).collect();
    q.enqueue_batch(jobs).await.expect("enqueue");
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (q, running, peak, done) = (q.clone(), running.clone(), peak.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while done.load(Ordering::SeqCst) < 40 {
                assert!(std::time::Instant::now() < deadline, "stalled");
                let got = claim(&q, &worker, &["default"], 2, LONG).await;
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let now = running.fetch_add(got.len() as u32, Ordering::SeqCst) + got.len() as u32;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                for j in &got {
                    // Counted as stopped before the backend knows: our count
                    // never exceeds the backend's.
                    running.fetch_sub(1, Ordering::SeqCst);
                    complete(&q, &worker, j).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} jobs of a key with max 3 ran at once");
    assert!(
        peak >= 2,
        "the limit was never reached ({peak}): the rule proves nothing"
    );
}

/// A sequence runs one job at a time in enqueue order; a job that fails and
/// waits for its retry keeps its place; a finished, failed or cancelled job
/// lets the next go.
pub async fn a_sequence_runs_in_enqueue_order_through_retries(q: Backend) {
    let mut seq = Vec::new();
    for n in 0..4 {
        seq.push(enqueue(&q, job(n).sequence("acct-7")).await);
    }
    let other = enqueue(&q, job(10).sequence("acct-8")).await;
    let got = claim_limited(&q, W1, &["default"], 10, &[]).await;
    assert_eq!(
        set(&ids_of(&got.jobs)),
        set(&[seq[0], other]),
        "each sequence's head"
    );
    assert!(got.limited);

    // The head fails and waits for its retry: the rest still wait.
    let head = got.jobs.iter().find(|j| j.id == seq[0]).unwrap();
    record(
        &q,
        W1,
        head.fence(),
        Outcome::Retry {
            delay: Duration::from_millis(300),
            error: failure("flaky", true),
        },
    )
    .await;
    let held = claim_limited(&q, W1, &["default"], 10, &[]).await;
    assert!(held.jobs.is_empty(), "the retrying head keeps its place");
    assert!(held.limited);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let retried = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(
        ids_of(&retried),
        vec![seq[0]],
        "the head again, not the next"
    );
    complete(&q, W1, &retried[0]).await;

    let second = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&second), vec![seq[1]]);
    record(
        &q,
        W1,
        second[0].fence(),
        Outcome::Fail {
            error: failure("bad", false),
            result: None,
        },
    )
    .await;
    // A failed job is finished: the next goes. A cancelled one too.
    q.cancel(seq[2], &CancelRequest::default())
        .await
        .expect("cancel");
    let last = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&last), vec![seq[3]]);
}

/// A job requeued into its sequence takes its old place again, but never
/// runs beside a job of the sequence that is running.
pub async fn a_requeued_sequence_job_waits_for_the_running_one(q: Backend) {
    let first = enqueue(&q, job(0).sequence("s").max_retries(0)).await;
    let second = enqueue(&q, job(1).sequence("s")).await;
    let a = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&a), vec![first]);
    record(
        &q,
        W1,
        a[0].fence(),
        Outcome::DeadLetter {
            error: failure("gone", true),
        },
    )
    .await;
    let b = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&b), vec![second]);
    q.requeue(first).await.expect("requeue");
    assert!(
        claim(&q, W2, &["default"], 10, LONG).await.is_empty(),
        "one at a time, even with the older job back"
    );
    complete(&q, W1, &b[0]).await;
    assert_eq!(
        ids_of(&claim(&q, W2, &["default"], 10, LONG).await),
        vec![first]
    );
}

/// At most `max` jobs of a rate key start in any window of `per`; once the
/// window has moved on, more start.
pub async fn a_rate_key_caps_starts_per_window(q: Backend) {
    let per = Duration::from_millis(800);
    for n in 0..5 {
        enqueue(&q, job(n).rate_limit("tenant-3", 2, per)).await;
    }
    let first = claim_limited(&q, W1, &["default"], 10, &[]).await;
    assert_eq!(first.jobs.len(), 2);
    assert!(first.limited);
    // Finishing them frees nothing: the limit counts starts.
    for j in &first.jobs {
        complete(&q, W1, j).await;
    }
    assert!(claim(&q, W1, &["default"], 10, LONG).await.is_empty());
    tokio::time::sleep(per + Duration::from_millis(200)).await;
    let second = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(second.len(), 2, "the window moved on");
    assert_eq!(
        second[0].limits.rate,
        Some(RateLimit::new("tenant-3", 2, per))
    );
}

/// A queue's global cap counts every running job of the queue, whoever
/// claimed it.
pub async fn a_queue_global_limit_caps_running_jobs(q: Backend) {
    for n in 0..5 {
        enqueue(&q, job(n).queue("mail")).await;
    }
    enqueue(&q, job(9).queue("other")).await;
    let limits = [ClaimLimit::new("mail").global(2)];
    let a = claim_limited(&q, W1, &["mail", "other"], 10, &limits).await;
    assert_eq!(a.jobs.iter().filter(|j| j.queue_name == "mail").count(), 2);
    assert_eq!(a.jobs.len(), 3, "other queues are not limited");
    assert!(a.limited);
    let b = claim_limited(&q, W2, &["mail"], 10, &limits).await;
    assert!(b.jobs.is_empty() && b.limited);
    let mail = a.jobs.iter().find(|j| j.queue_name == "mail").unwrap();
    complete(&q, W1, mail).await;
    let c = claim_limited(&q, W2, &["mail"], 10, &limits).await;
    assert_eq!(c.jobs.len(), 1);
}

/// A queue's global cap holds with eight claimers at once, each claiming
/// while it still records its last jobs' outcomes (naming them, as a
/// manager does): the jobs actually running never exceed the cap.
pub async fn a_global_cap_holds_under_concurrent_claimers(q: Backend) {
    let jobs: Vec<NewJob> = (0..40).map(|n| job(n).queue("capped")).collect();
    q.enqueue_batch(jobs).await.expect("enqueue");
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (q, running, peak, done) = (q.clone(), running.clone(), peak.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut finished: Vec<jobs_core::Job> = Vec::new();
            while done.load(Ordering::SeqCst) < 40 {
                assert!(std::time::Instant::now() < deadline, "stalled");
                let recording = finished.iter().map(|j| j.fence()).collect();
                let limits = [ClaimLimit::new("capped").global(3).recording(recording)];
                let got = claim_limited(&q, &worker, &["capped"], 2, &limits)
                    .await
                    .jobs;
                // The outcomes are written after the claim, as the recorder
                // of a manager may.
                for j in finished.drain(..) {
                    complete(&q, &worker, &j).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let now = running.fetch_add(got.len() as u32, Ordering::SeqCst) + got.len() as u32;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                // The handlers return: no longer running, not yet recorded.
                running.fetch_sub(got.len() as u32, Ordering::SeqCst);
                finished = got;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} jobs of a queue capped at 3 ran at once");
    assert!(
        peak >= 2,
        "the cap was never reached ({peak}): the rule proves nothing"
    );
}

/// A claimer's jobs whose outcomes it is still recording have stopped
/// running: named in its claim, they free their slots of the queue's global
/// cap — only while they still hold the named lease, only in their own
/// queue, and not for another claimer's claim that does not name them.
pub async fn jobs_being_recorded_free_their_global_slots(q: Backend) {
    for n in 0..6 {
        enqueue(&q, job(n).queue("mail")).await;
    }
    enqueue(&q, job(9).queue("other")).await;
    let cap = |recording: Vec<Fence>| [ClaimLimit::new("mail").global(2).recording(recording)];
    let a = claim_limited(&q, W1, &["mail"], 10, &cap(vec![])).await;
    assert_eq!(a.jobs.len(), 2);
    let (first, second) = (&a.jobs[0], &a.jobs[1]);
    let other = claim(&q, W2, &["other"], 1, LONG).await;
    assert_eq!(other.len(), 1);

    // Not named, a finished job still counts; named under another lease
    // (a stale token) or from another queue, nothing is freed.
    let stale = Fence::new(first.id, first.attempt, LeaseToken::random());
    for recording in [vec![], vec![stale], vec![other[0].fence()]] {
        let got = claim_limited(&q, W1, &["mail"], 10, &cap(recording)).await;
        assert!(got.jobs.is_empty() && got.limited);
    }

    // Named under its lease, it frees its slot: one more is claimed.
    let b = claim_limited(&q, W1, &["mail"], 10, &cap(vec![first.fence()])).await;
    assert_eq!(b.jobs.len(), 1, "one slot freed by the job being recorded");
    // Named again, it frees nothing more: the cap counts the new one.
    let c = claim_limited(&q, W1, &["mail"], 10, &cap(vec![first.fence()])).await;
    assert!(c.jobs.is_empty() && c.limited);

    // Once its outcome is written it is no longer RUNNING: the two others
    // fill the cap, and naming it frees nothing twice.
    complete(&q, W1, first).await;
    let d = claim_limited(&q, W1, &["mail"], 10, &cap(vec![first.fence()])).await;
    assert!(d.jobs.is_empty() && d.limited);
    // Both of them being recorded: two slots.
    let f = claim_limited(
        &q,
        W1,
        &["mail"],
        10,
        &cap(vec![second.fence(), b.jobs[0].fence()]),
    )
    .await;
    assert_eq!(f.jobs.len(), 2);
}

/// `take` caps one claim's share of a queue; `rate` caps the queue's
/// starts per window.
pub async fn a_queue_take_and_rate_cap_claims(q: Backend) {
    for n in 0..6 {
        enqueue(&q, job(n).queue("api")).await;
    }
    let took = claim_limited(&q, W1, &["api"], 10, &[ClaimLimit::new("api").take(1)]).await;
    assert_eq!(took.jobs.len(), 1);
    let rate = [ClaimLimit::new("api").rate(2, Duration::from_millis(800))];
    let r1 = claim_limited(&q, W1, &["api"], 10, &rate).await;
    assert_eq!(r1.jobs.len(), 2);
    let r2 = claim_limited(&q, W2, &["api"], 10, &rate).await;
    assert!(r2.jobs.is_empty() && r2.limited, "two starts per window");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r3 = claim_limited(&q, W2, &["api"], 10, &rate).await;
    assert_eq!(r3.jobs.len(), 2);
}

/// A job's limits are stored with it and read back.
pub async fn limits_are_stored_with_the_job(q: Backend) {
    let limits = JobLimits::none()
        .concurrency(ConcurrencyLimit::new("c", 4))
        .rate(RateLimit::new("r", 10, Duration::from_secs(60)))
        .sequence("s");
    let id = enqueue(&q, job(0).limits(limits.clone())).await;
    assert_eq!(get(&q, id).await.limits, limits);
    let plain = enqueue(&q, job(1)).await;
    assert!(get(&q, plain).await.limits.is_empty());
}
