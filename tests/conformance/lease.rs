//! Leases and fences: attempts, releases, expiry, heartbeats, and outcomes of
//! superseded attempts.

use std::time::{Duration, Instant};

use chrono::Utc;
use jobs_core::backend::{Fence, LeaseToken, Outcome, OutcomeUpdate};
use jobs_core::{JobId, JobStatus, NewJob};
use serde_json::json;

use super::support::{
    claim, claim_one, complete, enqueue, enqueue_n, failure, get, ids_of, record, set, LONG, W1, W2,
};
use super::Backend;

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
            .expect("heartbeat")
            .lost;
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

    let unknown = Fence::new(JobId::new(), 1, LeaseToken::random());
    let wrong_token = Fence::new(live.id, live.attempt, LeaseToken::random());
    let mut lost = q
        .heartbeat(
            W1,
            &[stale.fence(), finished.fence(), unknown, live.fence()],
            lease,
        )
        .await
        .expect("heartbeat")
        .lost;
    lost.sort();
    let mut want = vec![stale.id, finished.id, unknown.id];
    want.sort();
    assert_eq!(lost, want, "lost fences reported, the live one not");
    let lost = q
        .heartbeat(W1, &[wrong_token], lease)
        .await
        .expect("heartbeat")
        .lost;
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
            result: None,
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
        .expect("heartbeat")
        .lost;
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
                OutcomeUpdate::new(old.fence(), Outcome::Complete { result: None }),
                OutcomeUpdate::new(other_job.fence(), Outcome::Complete { result: None }),
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

    let unknown = Fence::new(JobId::new(), 1, LeaseToken::random());
    let lost = record(&q, W1, unknown, Outcome::Complete { result: None }).await;
    assert_eq!(lost, vec![unknown.id], "an unknown job is reported lost");
}

/// A lease is known by its random token, not by its attempt number: an outcome
/// or a heartbeat for the same job and attempt under another token — what a
/// worker sends whose claim a database crash undid before the job was claimed
/// again under the same attempt number — is refused, and changes nothing.
pub async fn a_stale_lease_token_is_refused_even_under_the_same_attempt(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let real = job.fence();
    assert!(
        job.lease_token.is_some(),
        "a claimed job carries its lease token"
    );
    let stale = Fence::new(id, job.attempt, LeaseToken::random());
    assert_ne!(stale.token, real.token);

    let lost = q
        .heartbeat(W1, &[stale], LONG)
        .await
        .expect("heartbeat")
        .lost;
    assert_eq!(lost, vec![id], "a heartbeat under another token is refused");
    let lost = record(
        &q,
        W1,
        stale,
        Outcome::Complete {
            result: Some(json!("stale")),
        },
    )
    .await;
    assert_eq!(lost, vec![id], "an outcome under another token is refused");
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Running);
    assert_eq!(j.result_data, None);
    assert_eq!(j.lease_token, Some(real.token));

    assert!(q
        .heartbeat(W1, &[real], LONG)
        .await
        .expect("heartbeat")
        .lost
        .is_empty());
    let lost = record(
        &q,
        W1,
        real,
        Outcome::Complete {
            result: Some(json!("fresh")),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!(j.result_data, Some(json!("fresh")));
    assert_eq!(j.lease_token, None, "a finished job holds no lease");

    // Every claim takes a fresh token: after a release, the old one is dead.
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let first = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    assert!(record(&q, W1, first.fence(), Outcome::Release)
        .await
        .is_empty());
    let second = claim_one(&q, W2, &["default"], LONG)
        .await
        .expect("claimed");
    assert_eq!(second.id, id);
    assert_ne!(second.lease_token, first.lease_token);
    let lost = record(&q, W1, first.fence(), Outcome::Complete { result: None }).await;
    assert_eq!(lost, vec![id], "the released lease's token is refused");
    assert_eq!(get(&q, id).await.status, JobStatus::Running);
}
