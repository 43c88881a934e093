//! Enqueueing: a job round-trips through its whole life, and batches are
//! stored all-or-none in the order given.

use chrono::Utc;
use jobs_core::backend::Outcome;
use jobs_core::{JobFilter, JobId, JobStatus, NewJob};
use serde_json::json;

use super::support::{assert_between, claim, enqueue, get, ids_of, list, record, LONG, W1, W2};
use super::Backend;

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
        q.enqueue_batch(Vec::new())
            .await
            .expect("empty batch")
            .into_iter()
            .map(|e| e.id())
            .collect::<Vec<_>>(),
        vec![]
    );

    let jobs: Vec<NewJob> = (0..250)
        .map(|i| NewJob::new("batch.job", json!({ "n": i })).priority(i % 3))
        .collect();
    let want: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let ids = q
        .enqueue_batch(jobs)
        .await
        .expect("enqueue batch")
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
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
    assert!(
        matches!(err, Err(jobs_core::Error::DuplicateId(id)) if id == want[10]),
        "a duplicate id must be refused, naming it: {err:?}"
    );
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

    // A batch bigger than one insert statement, whose 551st job repeats the
    // 6th's id: refused whole, naming that id.
    let mut big: Vec<NewJob> = (0..600)
        .map(|i| NewJob::new("batch.job", json!({ "big": i })))
        .collect();
    big[550].id = big[5].id;
    let (first, repeated) = (big[0].id, big[5].id);
    let err = q.enqueue_batch(big).await;
    assert!(
        matches!(err, Err(jobs_core::Error::DuplicateId(id)) if id == repeated),
        "an id repeated within a batch is refused, naming it: {err:?}"
    );
    assert!(
        q.get(first).await.expect("get").is_none(),
        "nothing of a refused batch is stored"
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

/// A relative delay is resolved by the backend's clock (so `run_at -
/// created_at` is the delay, whatever the producer's clock says), and a job's
/// own timeout is stored with it.
pub async fn relative_delays_and_timeouts_are_stored(q: Backend) {
    let delay = std::time::Duration::from_millis(400);
    let later = enqueue(
        &q,
        NewJob::new("t", json!({}))
            .delay(delay)
            .timeout(std::time::Duration::from_secs(7)),
    )
    .await;
    let never = enqueue(
        &q,
        NewJob::new("t", json!({})).timeout(jobs_core::Timeout::Never),
    )
    .await;
    let plain = enqueue(&q, NewJob::new("t", json!({}))).await;
    let j = get(&q, later).await;
    assert_eq!(j.status, JobStatus::Scheduled);
    let gap = (j.run_at - j.created_at)
        .to_std()
        .expect("run_at after created_at");
    assert!(
        gap.abs_diff(delay) <= std::time::Duration::from_millis(2),
        "run_at - created_at = {gap:?}, want {delay:?}"
    );
    assert_eq!(
        j.timeout,
        Some(jobs_core::Timeout::After(std::time::Duration::from_secs(7)))
    );
    assert_eq!(
        get(&q, never).await.timeout,
        Some(jobs_core::Timeout::Never)
    );
    let p = get(&q, plain).await;
    assert_eq!(p.timeout, None);
    assert_eq!(p.run_at, p.created_at, "no delay: due when stored");
}
