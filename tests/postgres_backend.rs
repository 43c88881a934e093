//! PostgreSQL-specific behaviour: migrations under concurrent starts, schema
//! selection, transactional enqueue, LISTEN/NOTIFY wake-ups, batched SQL paths.
//! The backend contract itself is `conformance_postgres.rs`.

mod postgres_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{AttemptFailure, ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobOptions, JobPayload, JobStatus, NewJob};
use jobs_runtime::backend::postgres::PostgresBackend;
use jobs_runtime::backend::TransactionalEnqueue;
use postgres_support::{drop_schema, fresh_backend, fresh_schema, url};
use serde_json::json;

fn claim_req<'a>(queues: &'a [String], limit: usize) -> ClaimRequest<'a> {
    ClaimRequest::new("w1", queues, limit, Duration::from_secs(30))
}

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn concurrent_connects_migrate_a_fresh_schema_once() {
    let Some(url) = url() else { return };
    let schema = fresh_schema("migrate");
    let starts = (0..8).map(|_| {
        let (url, schema) = (url.clone(), schema.clone());
        tokio::spawn(async move { PostgresBackend::builder(url).schema(schema).connect().await })
    });
    let mut backends = Vec::new();
    for start in starts {
        backends.push(
            start
                .await
                .unwrap()
                .expect("every concurrent start succeeds"),
        );
    }
    let backend = &backends[0];
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM \"{schema}\".jobs_migrations ORDER BY version"
    ))
    .fetch_all(backend.pool())
    .await
    .unwrap();
    assert_eq!(versions, vec![1, 2]);
    // Every one of them works on the same table.
    let id = backends[7]
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()[0];
    assert!(backends[3].get(id).await.unwrap().is_some());

    // A schema one migration behind is brought up to date at the next start.
    sqlx::query(&format!(
        "DELETE FROM \"{schema}\".jobs_migrations WHERE version = 2"
    ))
    .execute(backend.pool())
    .await
    .unwrap();
    let upgraded = PostgresBackend::builder(url.clone())
        .schema(schema.clone())
        .connect()
        .await
        .unwrap();
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM \"{schema}\".jobs_migrations ORDER BY version"
    ))
    .fetch_all(upgraded.pool())
    .await
    .unwrap();
    assert_eq!(versions, vec![1, 2]);
    assert!(upgraded.get(id).await.unwrap().is_some());
    drop_schema(backend).await;
}

#[tokio::test]
async fn schema_comes_from_the_url_and_connect_dispatches_here() {
    let Some(url) = url() else { return };
    let schema = fresh_schema("url");
    let sep = if url.contains('?') { '&' } else { '?' };
    let with_schema = format!("{url}{sep}schema={schema}");
    let backend = PostgresBackend::connect(&with_schema).await.unwrap();
    assert_eq!(backend.schema(), schema);

    let queue = jobs_runtime::connect(&with_schema).await.unwrap();
    assert_eq!(queue.backend().backend_name(), "postgres");
    let id = queue
        .enqueue_raw("url.test", json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(
        backend.get(id).await.unwrap().unwrap().payload,
        json!({"x": 1})
    );

    let bad = PostgresBackend::connect(&format!("{url}{sep}schema=no-dashes"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("schema name"), "{bad}");
    drop_schema(&backend).await;
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Invoice {
    number: u32,
}

impl JobPayload for Invoice {
    const JOB_TYPE: &'static str = "invoice.send";
    fn options() -> JobOptions {
        JobOptions::default().queue("billing")
    }
}

#[tokio::test]
async fn transactional_enqueue_exists_iff_the_transaction_commits() {
    let Some(backend) = fresh_backend("tx").await else {
        return;
    };
    let table = format!("\"{}\".orders", backend.schema());
    sqlx::query(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .execute(backend.pool())
        .await
        .unwrap();

    // Rolled back: neither the business row nor the job exists.
    let mut tx = backend.pool().begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {table} VALUES (1)"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let lost = backend
        .enqueue_in(&mut *tx, NewJob::new("order.confirm", json!({"order": 1})))
        .await
        .unwrap();
    // Not visible to workers before commit.
    assert!(backend.get(lost).await.unwrap().is_none());
    tx.rollback().await.unwrap();
    assert!(backend.get(lost).await.unwrap().is_none());
    assert!(backend
        .claim(claim_req(&queues(&["default"]), 10))
        .await
        .unwrap()
        .is_empty());

    // Committed: both exist, and the job is claimable.
    let listener_queues = queues(&["default", "billing"]);
    let mut listener = backend.listener(&listener_queues).await.unwrap();
    let mut tx = backend.pool().begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {table} VALUES (2)"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let kept = backend
        .enqueue_in(&mut *tx, NewJob::new("order.confirm", json!({"order": 2})))
        .await
        .unwrap();
    let typed = backend
        .enqueue_payload_in(&mut *tx, Invoice { number: 7 })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The commit's NOTIFY wakes a listener.
    let t0 = Instant::now();
    listener.wait(Duration::from_secs(20)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "no wake-up on commit"
    );

    let claimed = backend
        .claim(claim_req(&listener_queues, 10))
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![kept, typed]);
    assert_eq!(claimed[1].queue_name, "billing");
    assert_eq!(claimed[1].payload, json!({"number": 7}));

    // Bad input is refused before anything is written.
    let mut tx = backend.pool().begin().await.unwrap();
    let err = backend
        .enqueue_in(&mut *tx, NewJob::new("has space", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("job type"), "{err}");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn claim_and_record_work_in_batches() {
    let Some(backend) = fresh_backend("batch").await else {
        return;
    };
    let jobs: Vec<NewJob> = (0..500)
        .map(|i| NewJob::new("n", json!({ "n": i })).priority(i % 3))
        .collect();
    let ids = backend.enqueue_batch(jobs).await.unwrap();
    assert_eq!(ids.len(), 500);

    let q = queues(&["default"]);
    let mut seen = std::collections::HashSet::new();
    let mut last_priority = i32::MAX;
    loop {
        let batch = backend.claim(claim_req(&q, 64)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for job in &batch {
            assert!(
                job.priority <= last_priority,
                "claimed out of priority order"
            );
            last_priority = job.priority;
            assert_eq!(job.status, JobStatus::Running);
            assert_eq!(job.attempt, 1);
            assert!(seen.insert(job.id), "claimed twice");
        }
        let updates: Vec<OutcomeUpdate> = batch
            .iter()
            .map(|j| {
                OutcomeUpdate::new(
                    j.fence(),
                    if j.payload["n"].as_i64().unwrap() % 10 == 0 {
                        Outcome::Retry {
                            delay: Duration::from_secs(3600),
                            error: AttemptFailure::new("später ✗", true),
                        }
                    } else {
                        Outcome::Complete {
                            result: Some(json!({"ok": j.payload["n"]})),
                        }
                    },
                )
            })
            .collect();
        let lost = backend.record("w1", &updates).await.unwrap();
        assert!(lost.is_empty());
        // The same outcomes again are refused: the leases are gone.
        let lost = backend.record("w1", &updates).await.unwrap();
        assert_eq!(lost.len(), updates.len());
    }
    assert_eq!(seen.len(), 500);
    let counts = backend.counts().await.unwrap();
    let count = |s: JobStatus| counts.iter().find(|c| c.status == s).map_or(0, |c| c.count);
    assert_eq!(count(JobStatus::Completed), 450);
    assert_eq!(count(JobStatus::Retrying), 50);

    let retried = backend.get(ids[10]).await.unwrap().unwrap();
    assert_eq!(retried.status, JobStatus::Retrying);
    assert_eq!(retried.retry_count, 1);
    assert_eq!(retried.errors.len(), 1);
    assert_eq!(retried.errors[0].message, "später ✗");
    assert_eq!(retried.errors[0].worker.as_deref(), Some("w1"));
    assert_eq!(retried.errors[0].attempt, 1);
    assert!(retried.run_at > chrono::Utc::now() + chrono::Duration::minutes(59));
    let done = backend.get(ids[11]).await.unwrap().unwrap();
    assert_eq!(done.result_data, Some(json!({"ok": 11})));
    assert!(done.completed_at.is_some() && done.locked_by.is_none());

    // Prune goes in bounded batches.
    let future = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(backend.prune(future, 100).await.unwrap(), 100);
    assert_eq!(backend.prune(future, 1000).await.unwrap(), 350);
    assert_eq!(backend.prune(future, 1000).await.unwrap(), 0);
}

#[tokio::test]
async fn listener_wakes_for_its_queues_and_for_scheduled_jobs() {
    let Some(backend) = fresh_backend("listen").await else {
        return;
    };
    let backend = Arc::new(backend);
    let mine = queues(&["mine"]);
    let mut listener = backend.listener(&mine).await.unwrap();

    // Nothing to do: the wait runs its whole timeout.
    let t0 = Instant::now();
    listener.wait(Duration::from_millis(300)).await;
    assert!(t0.elapsed() >= Duration::from_millis(290));

    // An enqueue on another queue does not wake us; one on ours does.
    let b = backend.clone();
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.enqueue_batch(vec![NewJob::new("t", json!({})).queue("other")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.enqueue_batch(vec![NewJob::new("t", json!({})).queue("mine")])
            .await
            .unwrap();
    });
    let t0 = Instant::now();
    listener.wait(Duration::from_secs(30)).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(15),
        "woke after {waited:?}"
    );
    producer.await.unwrap();
    let claimed = backend.claim(claim_req(&mine, 10)).await.unwrap();
    assert_eq!(claimed.len(), 1);

    // A job going back to waiting (released) wakes us too.
    let b = backend.clone();
    let fence = claimed[0].fence();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let release = OutcomeUpdate::new(fence, Outcome::Release);
        assert!(b.record("w1", &[release]).await.unwrap().is_empty());
    });
    let t0 = Instant::now();
    listener.wait(Duration::from_secs(30)).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(15),
        "woke after {waited:?}"
    );
    releaser.await.unwrap();
    assert_eq!(backend.claim(claim_req(&mine, 10)).await.unwrap().len(), 1);

    // A job scheduled 1 s ahead wakes us when it is due, without any signal then.
    backend
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .queue("mine")
            .delay(Duration::from_secs(1))])
        .await
        .unwrap();
    let t0 = Instant::now();
    listener.wait(Duration::from_millis(1)).await; // consumes the enqueue's signal
    while t0.elapsed() < Duration::from_secs(20) {
        if !backend
            .claim(claim_req(&mine, 10))
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        listener.wait(Duration::from_secs(30)).await;
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(15),
        "scheduled job claimed after {waited:?}"
    );
}

#[tokio::test]
async fn expired_leases_become_failed_attempts_and_fence_the_old_worker() {
    let Some(backend) = fresh_backend("lease").await else {
        return;
    };
    let ids = backend
        .enqueue_batch(vec![
            NewJob::new("t", json!({"a": 1})).max_retries(1),
            NewJob::new("t", json!({"a": 2})).max_retries(0),
            NewJob::new("t", json!({"a": 3})),
        ])
        .await
        .unwrap();
    let q = queues(&["default"]);
    let short = ClaimRequest::new("doomed", &q, 3, Duration::from_millis(100));
    let claimed = backend.claim(short).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // The third keeps its lease by heartbeating; the others lapse.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lost = backend
        .heartbeat("doomed", &[claimed[2].fence()], Duration::from_secs(30))
        .await
        .unwrap();
    assert!(lost.is_empty());
    // A heartbeat from another worker id is refused.
    let lost = backend
        .heartbeat("intruder", &[claimed[2].fence()], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(lost, vec![ids[2]]);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut recovered = backend.recover_expired().await.unwrap();
    recovered.sort_by_key(|r| r.job.id);
    assert_eq!(recovered.len(), 2);
    assert_eq!(recovered[0].job.id, ids[0]);
    assert_eq!(recovered[0].job.status, JobStatus::Running);
    assert_eq!(recovered[0].job.locked_by.as_deref(), Some("doomed"));
    assert_eq!(recovered[0].now, JobStatus::Retrying);
    assert_eq!(recovered[1].now, JobStatus::DeadLetter);
    assert!(backend.recover_expired().await.unwrap().is_empty());

    let retrying = backend.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(retrying.status, JobStatus::Retrying);
    assert_eq!(retrying.retry_count, 1);
    assert!(retrying.errors[0].message.contains("lease expired"));
    assert_eq!(retrying.errors[0].worker.as_deref(), Some("doomed"));
    let dead = backend.get(ids[1]).await.unwrap().unwrap();
    assert_eq!(dead.status, JobStatus::DeadLetter);
    assert!(dead.completed_at.is_some());

    // A second worker takes the retry; the first one's late outcome is refused.
    let again = backend.claim(claim_req(&q, 10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    let late = OutcomeUpdate::new(claimed[0].fence(), Outcome::Complete { result: None });
    assert_eq!(
        backend.record("doomed", &[late]).await.unwrap(),
        vec![ids[0]]
    );
    let fresh = OutcomeUpdate::new(
        again[0].fence(),
        Outcome::Fail {
            error: AttemptFailure::new("nope", false),
            result: None,
        },
    );
    assert!(backend.record("w1", &[fresh]).await.unwrap().is_empty());
    let failed = backend.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.errors.len(), 2);

    // Requeue brings FAILED/DEAD_LETTER back; cancel ends a waiting job.
    let requeued = backend.requeue(ids[1]).await.unwrap();
    assert_eq!(
        (requeued.status, requeued.retry_count),
        (JobStatus::Pending, 0)
    );
    let cancelled = backend.cancel(ids[1]).await.unwrap();
    assert_eq!(cancelled.status, JobStatus::Failed);
    let err = backend.cancel(ids[1]).await.unwrap_err();
    assert!(
        matches!(err, jobs_core::Error::InvalidState { .. }),
        "{err}"
    );
    let err = backend.requeue(ids[2]).await.unwrap_err();
    assert!(
        matches!(err, jobs_core::Error::InvalidState { .. }),
        "{err}"
    );
    let err = backend.cancel(jobs_core::JobId::new()).await.unwrap_err();
    assert!(matches!(err, jobs_core::Error::NotFound(_)), "{err}");
}

#[tokio::test]
async fn a_job_enqueued_ahead_of_a_draining_backlog_is_claimed_next_within_the_hint_ttl() {
    let Some(backend) = fresh_backend("hint").await else {
        return;
    };
    let q = queues(&["default"]);
    let jobs: Vec<NewJob> = (0..200)
        .map(|i| NewJob::new("n", json!({ "n": i })))
        .collect();
    backend.enqueue_batch(jobs).await.unwrap();
    // Full claims: the backend now starts its scans past the claimed jobs.
    for _ in 0..3 {
        assert_eq!(backend.claim(claim_req(&q, 10)).await.unwrap().len(), 10);
    }
    let urgent = backend
        .enqueue_batch(vec![NewJob::new("n", json!({"urgent": true})).priority(9)])
        .await
        .unwrap()[0];
    // Within 100 ms (the hint's lifetime) the next claim scans from the start.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let next = backend.claim(claim_req(&q, 10)).await.unwrap();
    assert_eq!(next[0].id, urgent, "the higher-priority job goes first");
    // The rest still come in enqueue order, none twice.
    let mut seen: Vec<i64> = next[1..]
        .iter()
        .map(|j| j.payload["n"].as_i64().unwrap())
        .collect();
    loop {
        let batch = backend.claim(claim_req(&q, 10)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.iter().map(|j| j.payload["n"].as_i64().unwrap()));
    }
    assert_eq!(seen, (30..200).collect::<Vec<_>>());
}
