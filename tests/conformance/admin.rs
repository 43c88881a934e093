//! Administration: requeue, cancel, get, list, counts and prune.

use std::time::Duration;

use chrono::Utc;
use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{
    CancelRequest, Error, JobFilter, JobId, JobStatus, NewJob, PruneRequest, QueueCount,
};
use serde_json::json;

use super::support::{
    assert_between, claim, claim_one, complete, enqueue, enqueue_n, failure, get, ids_of, list,
    now_us, record, set, LONG, W1, W2,
};
use super::Backend;

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
                OutcomeUpdate::new(
                    fence(failed),
                    Outcome::Fail {
                        error: failure("no", false),
                        result: None,
                    },
                ),
                OutcomeUpdate::new(
                    fence(dead),
                    Outcome::Retry {
                        delay: Duration::ZERO,
                        error: failure("try again", true),
                    },
                ),
                OutcomeUpdate::new(fence(done), Outcome::Complete { result: None }),
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
/// unclaimable at once; finished jobs are refused with `InvalidState`.
pub async fn cancel_takes_waiting_jobs_at_once(q: Backend) {
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
        let c = q
            .cancel(id, &CancelRequest::default())
            .await
            .expect("cancel");
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

    // A running job can be cancelled too (see
    // `a_running_job_is_cancelled_through_its_worker`); finished ones cannot.
    let _ = running;
    for (id, from) in [(done, JobStatus::Completed), (pending, JobStatus::Failed)] {
        let before = get(&q, id).await;
        match q.cancel(id, &CancelRequest::default()).await {
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
    assert!(
        matches!(q.cancel(unknown, &CancelRequest::default()).await, Err(Error::NotFound(id)) if id == unknown)
    );

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
    let ids = q
        .enqueue_batch(jobs)
        .await
        .expect("enqueue")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
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
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());

    let mut got = q.counts().await.expect("counts");
    got.sort();
    let row = |queue: &str, status, count| QueueCount::new(queue, status, count);
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
                result: None,
            },
            _ => Outcome::DeadLetter {
                error: failure("d", true),
            },
        };
        updates.push(OutcomeUpdate::new(j.fence(), outcome));
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
            result: None,
        },
    )
    .await;
    assert!(lost.is_empty());
    q.requeue(requeued_claim).await.expect("requeue");

    assert_eq!(
        q.prune(&PruneRequest::new(early, 100))
            .await
            .expect("prune"),
        0,
        "nothing finished before `early`"
    );

    let late = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        q.prune(&PruneRequest::new(late, 3)).await.expect("prune"),
        3,
        "bounded by limit"
    );
    assert_eq!(
        q.prune(&PruneRequest::new(late, 100)).await.expect("prune"),
        4
    );
    assert_eq!(
        q.prune(&PruneRequest::new(late, 100)).await.expect("prune"),
        0
    );
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
    assert_eq!(
        q.prune(&PruneRequest::new(mid, 100)).await.expect("prune"),
        1
    );
    assert!(
        q.get(more[0]).await.expect("get").is_none(),
        "finished before the cutoff"
    );
    assert!(
        q.get(more[1]).await.expect("get").is_some(),
        "finished after the cutoff"
    );
}

/// A cancelled job is FAILED (the seven statuses stay as they are) but carries
/// a mark that tells it apart from a failure, and lists can filter on it; a
/// requeue removes the mark.
pub async fn cancelled_jobs_are_marked_and_filterable(q: Backend) {
    let cancelled = enqueue(&q, NewJob::new("t", json!({"n": 1}))).await;
    let failed = enqueue(&q, NewJob::new("t", json!({"n": 2})).queue("other")).await;
    let job = claim_one(&q, W1, &["other"], LONG).await.expect("claimed");
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
    let before = now_us();
    let c = q
        .cancel(cancelled, &CancelRequest::default())
        .await
        .expect("cancel");
    assert_eq!(c.status, JobStatus::Failed);
    let at = c.cancelled_at.expect("a cancelled job is marked");
    assert_between(
        "cancelled_at",
        at,
        before - chrono::Duration::seconds(5),
        Utc::now() + chrono::Duration::seconds(5),
    );
    assert_eq!(get(&q, cancelled).await.cancelled_at, Some(at));
    assert_eq!(get(&q, failed).await.cancelled_at, None);

    let only = |c: bool| JobFilter::default().status(JobStatus::Failed).cancelled(c);
    assert_eq!(list(&q, only(true)).await, vec![cancelled]);
    assert_eq!(list(&q, only(false)).await, vec![failed]);
    assert_eq!(
        list(&q, JobFilter::default().cancelled(true)).await,
        vec![cancelled]
    );

    let back = q.requeue(cancelled).await.expect("requeue");
    assert_eq!(back.status, JobStatus::Pending);
    assert_eq!(back.cancelled_at, None);
    assert!(list(&q, JobFilter::default().cancelled(true))
        .await
        .is_empty());
}

/// `counts` agrees with the jobs themselves after every kind of change
/// (backends keep counters rather than scan: they must not drift).
pub async fn counts_follow_every_change(q: Backend) {
    async fn check(q: &Backend, phase: &str) {
        let jobs = q
            .list(&JobFilter::default().limit(10_000))
            .await
            .expect("list");
        let mut want: Vec<QueueCount> = Vec::new();
        for j in &jobs {
            match want
                .iter_mut()
                .find(|c| c.queue == j.queue_name && c.status == j.status)
            {
                Some(c) => c.count += 1,
                None => want.push(QueueCount::new(j.queue_name.clone(), j.status, 1)),
            }
        }
        let key = |c: &QueueCount| (c.queue.clone(), c.status.as_str());
        want.sort_by_key(key);
        let mut got = q.counts().await.expect("counts");
        got.sort_by_key(key);
        assert_eq!(got, want, "counts after {phase}");
    }
    enqueue_n(&q, 12, "cnt-a").await;
    enqueue_n(&q, 3, "cnt-b").await;
    let later = NewJob::new("conf.later", json!({}))
        .queue("cnt-b")
        .run_at(Utc::now() + chrono::Duration::hours(1));
    let scheduled = enqueue(&q, later).await;
    check(&q, "enqueue").await;
    let jobs = claim(&q, W1, &["cnt-a"], 8, LONG).await;
    check(&q, "claim").await;
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
    for (job, outcome) in jobs.iter().zip(outcomes) {
        record(&q, W1, job.fence(), outcome).await;
    }
    check(&q, "every outcome").await;
    // The eighth is still running: cancelled there, and one waiting here.
    q.cancel(jobs[7].id, &CancelRequest::by("ops"))
        .await
        .expect("cancel running");
    q.cancel(scheduled, &CancelRequest::by("ops"))
        .await
        .expect("cancel waiting");
    check(&q, "cancels").await;
    q.requeue(jobs[2].id).await.expect("requeue failed");
    q.requeue(jobs[3].id).await.expect("requeue dead");
    check(&q, "requeues").await;
    q.delete_job(jobs[0].id).await.expect("delete");
    check(&q, "delete").await;
    let pruned = q
        .prune(&PruneRequest::new(
            Utc::now() + chrono::Duration::hours(1),
            100,
        ))
        .await
        .expect("prune");
    assert!(pruned >= 1);
    check(&q, "prune").await;
}
