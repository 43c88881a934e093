//! Outcomes: retries are scheduled with their error history; fail and dead
//! letter are terminal.

use std::time::Duration;

use chrono::Utc;
use jobs_core::backend::{Outcome, OutcomeUpdate};
use jobs_core::{JobId, JobStatus, NewJob};
use serde_json::json;

use super::support::{
    assert_between, claim, claim_one, enqueue, enqueue_n, failure, get, ids_of, record, set, LONG,
    W1, W2,
};
use super::Backend;

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
                OutcomeUpdate::new(
                    by_id(ids[0]),
                    Outcome::Fail {
                        error: failure("bad input", false),
                        result: None,
                    },
                ),
                OutcomeUpdate::new(
                    by_id(ids[1]),
                    Outcome::DeadLetter {
                        error: failure("gave up", true),
                    },
                ),
                OutcomeUpdate::new(
                    by_id(ids[2]),
                    Outcome::Complete {
                        result: Some(json!(3)),
                    },
                ),
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

/// A failure keeps the data its handler returned with it (a failed
/// `JobResult` may carry some, e.g. an HTTP status); the other outcomes
/// leave `result_data` alone.
pub async fn a_failed_outcome_keeps_its_result(q: Backend) {
    let id = enqueue(&q, NewJob::new("t", json!({}))).await;
    let job = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Fail {
            error: failure("HTTP 404", false),
            result: Some(json!({"status": 404})),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.result_data, Some(json!({"status": 404})));
    assert_eq!(j.error_message.as_deref(), Some("HTTP 404"));
}

/// The error history keeps the last `MAX_ERROR_HISTORY` attempts, oldest
/// first, and `error_count` counts every failed attempt, so a job with a huge
/// retry budget does not carry an ever-growing history.
pub async fn the_error_history_keeps_the_last_entries_and_counts_all(q: Backend) {
    let failures = jobs_core::MAX_ERROR_HISTORY as u32 + 5;
    let id = enqueue(&q, NewJob::new("t", json!({})).max_retries(100)).await;
    for i in 1..=failures {
        let job = claim_one(&q, W1, &["default"], LONG)
            .await
            .expect("claimed");
        assert_eq!(job.attempt, i);
        let lost = record(
            &q,
            W1,
            job.fence(),
            Outcome::Retry {
                delay: Duration::ZERO,
                error: failure(&format!("failure {i}"), true),
            },
        )
        .await;
        assert!(lost.is_empty());
    }
    let j = get(&q, id).await;
    assert_eq!(j.error_count, failures);
    assert_eq!(j.errors.len(), jobs_core::MAX_ERROR_HISTORY);
    assert_eq!(j.errors[0].attempt, 6, "the oldest entries went first");
    assert_eq!(
        j.errors.last().unwrap().message,
        format!("failure {failures}")
    );
    assert_eq!(j.retry_count, failures);
}

/// Delays too long for any clock saturate (at `MAX_DELAY`, about a century)
/// instead of failing or overflowing: at enqueue and on retry.
pub async fn huge_delays_saturate(q: Backend) {
    let far = Utc::now() + chrono::Duration::days(365 * 90);
    let id = enqueue(&q, NewJob::new("t", json!({})).delay(Duration::MAX)).await;
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Scheduled);
    assert!(j.run_at > far, "{}", j.run_at);
    assert!(claim_one(&q, W1, &["default"], LONG).await.is_none());

    let id = enqueue(&q, NewJob::new("t", json!({})).queue("q2")).await;
    let job = claim_one(&q, W1, &["q2"], LONG).await.expect("claimed");
    let lost = record(
        &q,
        W1,
        job.fence(),
        Outcome::Retry {
            delay: Duration::MAX,
            error: failure("later", true),
        },
    )
    .await;
    assert!(lost.is_empty());
    let j = get(&q, id).await;
    assert_eq!(j.status, JobStatus::Retrying);
    assert!(j.run_at > far, "{}", j.run_at);
}
