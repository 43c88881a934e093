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
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Every one of them works on the same table.
    let id = backends[7]
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    assert!(backends[3].get(id).await.unwrap().is_some());

    // Jobs as a v2 schema held them: one cancelled, one failed twice so far,
    // one failed for good with another error.
    let cancelled = backend
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    backend
        .cancel(cancelled, &jobs_core::CancelRequest::default())
        .await
        .unwrap();
    let q = queues(&["retried"]);
    let retried = backend
        .enqueue_batch(vec![NewJob::new("t", json!({})).queue("retried")])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    for i in 0..2 {
        let job = backend
            .claim(claim_req(&q, 1))
            .await
            .unwrap()
            .jobs
            .remove(0);
        let retry = Outcome::Retry {
            delay: Duration::ZERO,
            error: AttemptFailure::new(format!("failure {i}"), true),
        };
        let lost = backend
            .record("w1", &[OutcomeUpdate::new(job.fence(), retry)])
            .await
            .unwrap();
        assert!(lost.is_empty());
    }
    let q = queues(&["failed"]);
    let failed = backend
        .enqueue_batch(vec![NewJob::new("t", json!({})).queue("failed")])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    let job = backend
        .claim(claim_req(&q, 1))
        .await
        .unwrap()
        .jobs
        .remove(0);
    let fail = Outcome::Fail {
        error: AttemptFailure::new("not cancelled", false),
        result: None,
    };
    let lost = backend
        .record("w1", &[OutcomeUpdate::new(job.fence(), fail)])
        .await
        .unwrap();
    assert!(lost.is_empty());

    // A schema one migration behind — v2, without the columns v3 added — is
    // brought up to date at the next start, and what v3 adds is backfilled.
    sqlx::raw_sql(&format!(
        "ALTER TABLE \"{schema}\".jobs DROP COLUMN lease_token, DROP COLUMN error_count,
             DROP COLUMN cancelled_at, DROP COLUMN timeout_ms;
         DELETE FROM \"{schema}\".jobs_migrations WHERE version = 3"
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
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert!(upgraded.get(id).await.unwrap().is_some());
    let c = upgraded.get(cancelled).await.unwrap().unwrap();
    assert_eq!(c.status, JobStatus::Failed);
    assert!(c.cancelled_at.is_some(), "a cancelled job is marked");
    assert_eq!(c.cancelled_at, c.completed_at);
    let r = upgraded.get(retried).await.unwrap().unwrap();
    assert_eq!((r.errors.len(), r.error_count), (2, 2));
    assert_eq!((r.lease_token, r.timeout), (None, None));
    let f = upgraded.get(failed).await.unwrap().unwrap();
    assert_eq!((f.cancelled_at, f.error_count), (None, 1));
    let page = |c: bool| jobs_core::JobFilter::default().cancelled(c);
    let listed = upgraded.list(&page(true)).await.unwrap();
    assert_eq!(
        listed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![cancelled]
    );
    assert_eq!(upgraded.list(&page(false)).await.unwrap().len(), 3);
    // And the upgraded schema works as a fresh one does.
    let q = queues(&["retried"]);
    let job = upgraded
        .claim(claim_req(&q, 1))
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert!(job.lease_token.is_some());
    let done = OutcomeUpdate::new(job.fence(), Outcome::Complete { result: None });
    assert!(upgraded.record("w1", &[done]).await.unwrap().is_empty());
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
        backend.get(id.id()).await.unwrap().unwrap().payload,
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
    assert!(backend.get(lost.id()).await.unwrap().is_none());
    tx.rollback().await.unwrap();
    assert!(backend.get(lost.id()).await.unwrap().is_none());
    assert!(backend
        .claim(claim_req(&queues(&["default"]), 10))
        .await
        .unwrap()
        .jobs
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
        .unwrap()
        .jobs;
    let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![kept.id(), typed.id()]);
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
    let ids = backend
        .enqueue_batch(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    assert_eq!(ids.len(), 500);

    let q = queues(&["default"]);
    let mut seen = std::collections::HashSet::new();
    let mut last_priority = i32::MAX;
    loop {
        let batch = backend.claim(claim_req(&q, 64)).await.unwrap().jobs;
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
    assert_eq!(
        backend
            .prune(&jobs_core::PruneRequest::new(future, 100))
            .await
            .unwrap(),
        100
    );
    assert_eq!(
        backend
            .prune(&jobs_core::PruneRequest::new(future, 1000))
            .await
            .unwrap(),
        350
    );
    assert_eq!(
        backend
            .prune(&jobs_core::PruneRequest::new(future, 1000))
            .await
            .unwrap(),
        0
    );
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
    let claimed = backend.claim(claim_req(&mine, 10)).await.unwrap().jobs;
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
    assert_eq!(
        backend
            .claim(claim_req(&mine, 10))
            .await
            .unwrap()
            .jobs
            .len(),
        1
    );

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
            .jobs
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
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let q = queues(&["default"]);
    let short = ClaimRequest::new("doomed", &q, 3, Duration::from_millis(100));
    let claimed = backend.claim(short).await.unwrap().jobs;
    assert_eq!(claimed.len(), 3);
    // The third keeps its lease by heartbeating; the others lapse.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lost = backend
        .heartbeat("doomed", &[claimed[2].fence()], Duration::from_secs(30))
        .await
        .unwrap()
        .lost;
    assert!(lost.is_empty());
    // A heartbeat from another worker id is refused.
    let lost = backend
        .heartbeat("intruder", &[claimed[2].fence()], Duration::from_secs(30))
        .await
        .unwrap()
        .lost;
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
    let again = backend.claim(claim_req(&q, 10)).await.unwrap().jobs;
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
    let cancelled = backend
        .cancel(ids[1], &jobs_core::CancelRequest::default())
        .await
        .unwrap();
    assert_eq!(cancelled.status, JobStatus::Failed);
    let err = backend
        .cancel(ids[1], &jobs_core::CancelRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, jobs_core::Error::InvalidState { .. }),
        "{err}"
    );
    let err = backend.requeue(ids[2]).await.unwrap_err();
    assert!(
        matches!(err, jobs_core::Error::InvalidState { .. }),
        "{err}"
    );
    let err = backend
        .cancel(
            jobs_core::JobId::new(),
            &jobs_core::CancelRequest::default(),
        )
        .await
        .unwrap_err();
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
        assert_eq!(
            backend.claim(claim_req(&q, 10)).await.unwrap().jobs.len(),
            10
        );
    }
    let urgent = backend
        .enqueue_batch(vec![NewJob::new("n", json!({"urgent": true})).priority(9)])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    // Within 100 ms (the hint's lifetime) the next claim scans from the start.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let next = backend.claim(claim_req(&q, 10)).await.unwrap().jobs;
    assert_eq!(next[0].id, urgent, "the higher-priority job goes first");
    // The rest still come in enqueue order, none twice.
    let mut seen: Vec<i64> = next[1..]
        .iter()
        .map(|j| j.payload["n"].as_i64().unwrap())
        .collect();
    loop {
        let batch = backend.claim(claim_req(&q, 10)).await.unwrap().jobs;
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.iter().map(|j| j.payload["n"].as_i64().unwrap()));
    }
    assert_eq!(seen, (30..200).collect::<Vec<_>>());
}

/// A detached handle (what a WorkerManager heartbeats and records with, on a
/// thread of its own) opens connections of its own on the runtime that uses
/// it: it works from another runtime while the original one's only thread is
/// blocked — with connections shared with that runtime, its calls would hang.
#[tokio::test(flavor = "current_thread")]
async fn a_detached_handle_works_from_a_runtime_of_its_own() {
    let Some(backend) = fresh_backend("detach").await else {
        return;
    };
    let ids = backend
        .enqueue_batch(vec![
            NewJob::new("t", json!({"n": 1})),
            NewJob::new("t", json!({"n": 2})),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    // Connections of this runtime exist, idle, for both kinds of statement.
    let q = queues(&["default"]);
    let claimed = backend.claim(claim_req(&q, 2)).await.unwrap().jobs;
    assert_eq!(claimed.len(), 2);
    assert!(backend.get(ids[0]).await.unwrap().is_some());

    let detached = backend.detached().expect("postgres has detached handles");
    let fences: Vec<_> = claimed.iter().map(|j| j.fence()).collect();
    let second = fences[1];
    // This runtime's only thread blocks on `join` meanwhile.
    let detached = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let work = async {
                let lost = detached
                    .heartbeat("w1", &fences, Duration::from_secs(60))
                    .await
                    .unwrap()
                    .lost;
                assert!(lost.is_empty());
                let done = OutcomeUpdate::new(
                    fences[0],
                    Outcome::Complete {
                        result: Some(json!("detached")),
                    },
                );
                assert!(detached.record("w1", &[done]).await.unwrap().is_empty());
            };
            tokio::time::timeout(Duration::from_secs(20), work)
                .await
                .expect("the detached handle's calls hang");
        });
        detached
    })
    .join()
    .unwrap();

    let j = backend.get(ids[0]).await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Completed);
    assert_eq!(j.result_data, Some(json!("detached")));
    let running = backend.get(ids[1]).await.unwrap().unwrap();
    assert!(running.lease_until.unwrap() > chrono::Utc::now() + chrono::Duration::seconds(40));

    // The runtime that opened its connections is gone: the handle opens new
    // ones on this runtime, and never sends a statement down one of the old
    // ones (it would run, but its answer could not be read).
    let done = OutcomeUpdate::new(second, Outcome::Complete { result: None });
    assert!(detached.record("w1", &[done]).await.unwrap().is_empty());
    let j = backend.get(ids[1]).await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Completed);
}

/// Heartbeats and outcome batches over the same running jobs at once, each
/// listing them in an order of its own: every statement that updates several
/// jobs locks them in `id` order, so none may deadlock (PostgreSQL would
/// abort one with "deadlock detected", a transient error here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_outcomes_in_any_order_never_deadlock() {
    let Some(backend) = fresh_backend("order").await else {
        return;
    };
    const N: usize = 1000;
    let jobs: Vec<NewJob> = (0..N)
        .map(|i| NewJob::new("t", json!({ "n": i })))
        .collect();
    backend.enqueue_batch(jobs).await.unwrap();
    let q = queues(&["default"]);
    let mut fences = Vec::with_capacity(N);
    while fences.len() < N {
        let claim = ClaimRequest::new("w1", &q, 500, Duration::from_secs(120));
        let batch = backend.claim(claim).await.unwrap().jobs;
        assert!(!batch.is_empty());
        fences.extend(batch.iter().map(|j| j.fence()));
    }
    let backend = Arc::new((*backend).clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (backend, mut fences) = (backend.clone(), fences.clone());
        tasks.spawn(async move {
            for _ in 0..5 {
                fastrand::shuffle(&mut fences);
                backend
                    .heartbeat("w1", &fences, Duration::from_secs(120))
                    .await
                    .map(|_| ())?;
            }
            Ok::<_, jobs_core::Error>(())
        });
    }
    let recorder = backend.clone();
    tasks.spawn(async move {
        fastrand::shuffle(&mut fences);
        for chunk in fences.chunks(50) {
            let updates: Vec<OutcomeUpdate> = chunk
                .iter()
                .map(|f| OutcomeUpdate::new(*f, Outcome::Complete { result: None }))
                .collect();
            let lost = recorder.record("w1", &updates).await?;
            assert!(lost.is_empty());
        }
        Ok(())
    });
    while let Some(done) = tasks.join_next().await {
        done.unwrap()
            .expect("no statement may fail, least of all in a deadlock");
    }
    let counts = backend.counts().await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (counts[0].status, counts[0].count),
        (JobStatus::Completed, N as u64)
    );
}

/// The backend's statements carry its time limits to the server: one stuck
/// behind another transaction's row lock fails, transiently, after the
/// `lock_timeout` — or the `statement_timeout`, when that comes first —
/// instead of waiting as long as the lock is held.
#[tokio::test]
async fn a_blocked_statement_gives_up_after_the_lock_or_statement_timeout() {
    let Some(guard) = fresh_backend("limits").await else {
        return;
    };
    let url = url().expect("set when the guard exists");
    let id = guard
        .enqueue_batch(vec![NewJob::new("t", json!({}))])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>()[0];
    // Another session holds the job's row (the caller's pool has no limits).
    let mut tx = guard.pool().begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT 1 FROM \"{}\".jobs WHERE id = $1 FOR UPDATE",
        guard.schema()
    ))
    .bind(id.as_uuid())
    .execute(&mut *tx)
    .await
    .unwrap();
    let limits = [
        (Duration::from_millis(300), Duration::from_secs(30)),
        (Duration::ZERO, Duration::from_millis(300)),
    ];
    for (lock_timeout, statement_timeout) in limits {
        let backend = PostgresBackend::builder(url.clone())
            .schema(guard.schema())
            .lock_timeout(lock_timeout)
            .statement_timeout(statement_timeout)
            .connect()
            .await
            .unwrap();
        let t0 = Instant::now();
        let err = backend
            .cancel(id, &jobs_core::CancelRequest::default())
            .await
            .unwrap_err();
        let waited = t0.elapsed();
        assert!(err.is_transient(), "{err}");
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
            "gave up after {waited:?}: {err}"
        );
    }
    tx.rollback().await.unwrap();
    assert_eq!(
        guard
            .cancel(id, &jobs_core::CancelRequest::default())
            .await
            .unwrap()
            .status,
        JobStatus::Failed
    );
}

/// A version 3 schema with jobs in it is brought up to version 4 in place:
/// its jobs read back with no key, no limits and no snoozes, and what v4
/// adds (unique keys, limits, paused queues, the audit log) works at once.
#[tokio::test]
async fn a_version_3_schema_is_upgraded_in_place() {
    let Some(url) = url() else { return };
    let schema = fresh_schema("v3up");
    let backend = PostgresBackend::builder(url.clone())
        .schema(schema.clone())
        .connect()
        .await
        .unwrap();
    let old = backend
        .enqueue_batch(vec![NewJob::new("t", json!({"old": true}))])
        .await
        .unwrap()[0]
        .id();
    sqlx::raw_sql(&format!(
        "DROP TABLE \"{schema}\".paused_queues, \"{schema}\".rate_log, \"{schema}\".workers,
             \"{schema}\".leaders, \"{schema}\".schedules, \"{schema}\".audit_log;
         DROP INDEX \"{schema}\".jobs_unique_idx, \"{schema}\".jobs_running_conc_idx,
             \"{schema}\".jobs_running_seq_idx, \"{schema}\".jobs_sequence_idx;
         ALTER TABLE \"{schema}\".jobs DROP COLUMN snoozes, DROP COLUMN progress,
             DROP COLUMN unique_key, DROP COLUMN unique_states, DROP COLUMN conc_key,
             DROP COLUMN conc_max, DROP COLUMN rate_key, DROP COLUMN rate_max,
             DROP COLUMN rate_per_us, DROP COLUMN seq_key;
         DELETE FROM \"{schema}\".jobs_migrations WHERE version = 4"
    ))
    .execute(backend.pool())
    .await
    .unwrap();
    let upgraded = PostgresBackend::builder(url.clone())
        .schema(schema.clone())
        .connect()
        .await
        .unwrap();
    let job = upgraded.get(old).await.unwrap().unwrap();
    assert_eq!(job.payload, json!({"old": true}));
    assert_eq!((job.snoozes, job.unique_key.as_deref()), (0, None));
    assert!(job.limits.is_empty() && job.progress.is_none());

    let unique = || {
        NewJob::new("t", json!({}))
            .unique(jobs_core::Uniqueness::new("k"))
            .concurrency("c", 1)
    };
    let a = upgraded.enqueue_batch(vec![unique()]).await.unwrap()[0];
    assert!(a.is_inserted());
    let b = upgraded.enqueue_batch(vec![unique()]).await.unwrap()[0];
    assert_eq!(b, jobs_core::Enqueued::Duplicate(a.id()));
    upgraded.pause_queue("default").await.unwrap();
    assert!(upgraded
        .claim(claim_req(&queues(&["default"]), 10))
        .await
        .unwrap()
        .jobs
        .is_empty());
    upgraded.resume_queue("default").await.unwrap();
    let got = upgraded
        .claim(claim_req(&queues(&["default"]), 10))
        .await
        .unwrap()
        .jobs;
    assert_eq!(got.len(), 2, "the old job and the keyed one");
    upgraded
        .append_audit(&jobs_core::AuditEntry::new("ops", "pause", "default"))
        .await
        .unwrap();
    assert_eq!(
        upgraded
            .audit_log(&jobs_core::AuditFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    drop_schema(&upgraded).await;
}

/// Unique jobs enqueued inside the caller's transaction take their keys
/// under a savepoint: a rollback frees the key, a commit keeps it.
#[tokio::test]
async fn unique_jobs_enqueued_in_a_transaction_hold_their_key_iff_it_commits() {
    let Some(guard) = fresh_backend("txuniq").await else {
        return;
    };
    let backend: &PostgresBackend = &guard;
    let unique = || NewJob::new("t", json!({})).unique(jobs_core::Uniqueness::new("tx-key"));
    let mut tx = backend.pool().begin().await.unwrap();
    let first = backend.enqueue_in(&mut *tx, unique()).await.unwrap();
    assert!(first.is_inserted());
    let again = backend.enqueue_in(&mut *tx, unique()).await.unwrap();
    assert_eq!(again, jobs_core::Enqueued::Duplicate(first.id()));
    tx.rollback().await.unwrap();
    assert!(backend.get(first.id()).await.unwrap().is_none());

    let mut tx = backend.pool().begin().await.unwrap();
    let kept = backend.enqueue_in(&mut *tx, unique()).await.unwrap();
    assert!(kept.is_inserted());
    tx.commit().await.unwrap();
    let out = backend.enqueue_batch(vec![unique()]).await.unwrap();
    assert_eq!(out, vec![jobs_core::Enqueued::Duplicate(kept.id())]);
}

/// Many claimers over jobs with overlapping concurrency keys, sequences and
/// a queue cap: no claim fails (no deadlock between the keys' locks), no
/// key ever runs more than its max, and every job runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limited_claims_under_contention_never_fail_or_overrun() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let Some(guard) = fresh_backend("limits").await else {
        return;
    };
    let backend = Arc::new(guard);
    const N: usize = 240;
    let jobs: Vec<NewJob> = (0..N)
        .map(|i| {
            let job = NewJob::new("t", json!({ "i": i })).concurrency(format!("k{}", i % 7), 2);
            if i % 5 == 0 {
                job.sequence(format!("s{}", i % 3))
            } else {
                job
            }
        })
        .collect();
    backend.enqueue_batch(jobs).await.unwrap();
    let running: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let limits = [jobs_core::ClaimLimit::new("default").global(6)];
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (backend, running, done) = (backend.clone(), running.clone(), done.clone());
        let limits = limits.clone();
        tasks.push(tokio::spawn(async move {
            let q = queues(&["default"]);
            let worker = format!("w{w}");
            let deadline = Instant::now() + Duration::from_secs(90);
            while done.load(std::sync::atomic::Ordering::SeqCst) < N {
                assert!(Instant::now() < deadline, "stalled");
                let req = ClaimRequest::new(&worker, &q, 3, Duration::from_secs(30))
                    .with_limits(if w % 2 == 0 { &limits[..] } else { &[] });
                let got = backend.claim(req).await.expect("a claim never fails").jobs;
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for j in &got {
                    let key = j.limits.concurrency.as_ref().unwrap().key.clone();
                    let mut r = running.lock().unwrap();
                    let n = r.entry(key.clone()).or_insert(0);
                    *n += 1;
                    assert!(*n <= 2, "{key} runs {n} jobs at once");
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                for j in &got {
                    let key = j.limits.concurrency.as_ref().unwrap().key.clone();
                    *running.lock().unwrap().get_mut(&key).unwrap() -= 1;
                    let outcome = Outcome::Complete { result: None };
                    let lost = backend
                        .record(&worker, &[OutcomeUpdate::new(j.fence(), outcome)])
                        .await
                        .unwrap();
                    assert!(lost.is_empty());
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = backend.counts().await.unwrap();
    assert_eq!(
        counts
            .iter()
            .filter(|c| c.status == JobStatus::Completed)
            .map(|c| c.count)
            .sum::<u64>(),
        N as u64
    );
}

/// A held-back backlog longer than a limited claim's first read does not
/// hide the jobs behind it: the claim reads on (up to its bound).
#[tokio::test]
async fn a_long_held_back_backlog_does_not_hide_later_jobs() {
    let Some(guard) = fresh_backend("backlog").await else {
        return;
    };
    let backend: &PostgresBackend = &guard;
    let q = queues(&["default"]);
    let keyed: Vec<NewJob> = (0..100)
        .map(|i| NewJob::new("t", json!({ "i": i })).concurrency("one", 1))
        .collect();
    backend.enqueue_batch(keyed).await.unwrap();
    let first = backend.claim(claim_req(&q, 1)).await.unwrap();
    assert_eq!(first.jobs.len(), 1);
    let free = backend
        .enqueue_batch(vec![NewJob::new("t", json!({ "free": true }))])
        .await
        .unwrap()[0]
        .id();
    let next = backend.claim(claim_req(&q, 1)).await.unwrap();
    assert_eq!(
        next.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![free]
    );
    assert!(next.limited);
    let none = backend.claim(claim_req(&q, 1)).await.unwrap();
    assert!(none.jobs.is_empty() && none.limited);
}

/// A due job that cannot be claimed — its queue is paused, or its limit
/// holds it back — does not make the listener return at once (a worker
/// would spin on it); resuming the queue wakes it.
#[tokio::test]
async fn a_listener_does_not_spin_on_jobs_it_cannot_have() {
    let Some(guard) = fresh_backend("spin").await else {
        return;
    };
    let backend: &PostgresBackend = &guard;
    let soon = Duration::from_millis(200);
    backend
        .enqueue_batch(vec![NewJob::new("t", json!({})).queue("p").delay(soon)])
        .await
        .unwrap();
    backend.pause_queue("p").await.unwrap();
    backend
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .queue("l")
            .concurrency("k", 1)])
        .await
        .unwrap();
    let running = backend.claim(claim_req(&queues(&["l"]), 1)).await.unwrap();
    assert_eq!(running.jobs.len(), 1);
    backend
        .enqueue_batch(vec![NewJob::new("t", json!({}))
            .queue("l")
            .concurrency("k", 1)
            .delay(soon)])
        .await
        .unwrap();
    tokio::time::sleep(soon * 2).await;
    let names = queues(&["p", "l"]);
    let mut listener = backend.listener(&names).await.unwrap();
    listener.wait(Duration::from_millis(50)).await; // the first wait may return at once
    let t0 = Instant::now();
    listener.wait(Duration::from_millis(800)).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "the listener returned after {:?} for jobs nobody can claim",
        t0.elapsed()
    );
    let resumer = {
        let backend = backend.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            backend.resume_queue("p").await.unwrap();
        })
    };
    let t0 = Instant::now();
    listener.wait(Duration::from_secs(10)).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "resuming wakes it");
    resumer.await.unwrap();
}

/// `counts()` as a full scan of the table says it: what the triggers of
/// migration 5 keep must always equal it.
async fn scanned(backend: &PostgresBackend) -> Vec<jobs_core::QueueCount> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT queue_name, status, count(*) FROM \"{}\".jobs GROUP BY 1, 2",
        backend.schema()
    ))
    .fetch_all(backend.pool())
    .await
    .unwrap();
    let mut out: Vec<_> = rows
        .into_iter()
        .map(|(q, s, n)| jobs_core::QueueCount::new(q, s.parse().unwrap(), n as u64))
        .collect();
    out.sort();
    out
}

async fn assert_counts_exact(backend: &PostgresBackend, step: &str) {
    assert_eq!(
        backend.counts().await.unwrap(),
        scanned(backend).await,
        "after {step}"
    );
}

/// The kept counts stay exact through every kind of change: enqueues (plain,
/// scheduled, unique, replacing, in a rolled-back transaction), claims,
/// every outcome, recovered leases, cancels, requeues, deletes, prunes,
/// heartbeats and progress (no status change), folds from both callers, and
/// a truncate.
#[tokio::test]
async fn counts_stay_exact_through_every_kind_of_change() {
    use jobs_core::backend::Outcome::*;
    let Some(backend) = fresh_backend("counts").await else {
        return;
    };
    let q = queues(&["ca", "cb"]);
    let fail = |m: &str| AttemptFailure::new(m, true);
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.push(NewJob::new("t", json!({ "i": i })).queue(&q[i % 2]));
    }
    batch.push(
        NewJob::new("t", json!({}))
            .queue("cb")
            .delay(Duration::from_secs(3600)),
    );
    batch.push(
        NewJob::new("t", json!({}))
            .queue("cb")
            .delay(Duration::from_secs(3600))
            .unique(jobs_core::Uniqueness::new("deb").replace(true)),
    );
    backend.enqueue_batch(batch).await.unwrap();
    assert_counts_exact(&backend, "enqueue").await;

    // A replace (debounce) of the waiting holder, and a refused duplicate.
    let again = || {
        NewJob::new("t", json!({"again": true}))
            .queue("ca")
            .unique(jobs_core::Uniqueness::new("deb").replace(true))
    };
    let e = backend.enqueue_batch(vec![again()]).await.unwrap()[0];
    assert!(e.is_replaced(), "{e:?}");
    let dup = NewJob::new("t", json!({})).unique(jobs_core::Uniqueness::new("deb"));
    backend.enqueue_batch(vec![dup]).await.unwrap();
    assert_counts_exact(&backend, "unique replace").await;

    // Enqueued in a transaction that rolls back: counted never.
    let mut tx = backend.pool().begin().await.unwrap();
    backend
        .enqueue_in(&mut *tx, NewJob::new("t", json!({})).queue("ca"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_counts_exact(&backend, "rolled-back enqueue").await;

    let claimed = backend.claim(claim_req(&q, 30)).await.unwrap().jobs;
    assert_eq!(claimed.len(), 30);
    assert_counts_exact(&backend, "claim").await;
    backend
        .heartbeat("w1", &[claimed[0].fence()], Duration::from_secs(30))
        .await
        .unwrap();
    assert_counts_exact(&backend, "heartbeat").await;

    let outcomes = [
        Complete { result: None },
        Retry {
            delay: Duration::ZERO,
            error: fail("again"),
        },
        Fail {
            error: fail("no"),
            result: None,
        },
        DeadLetter {
            error: fail("dead"),
        },
        Release,
        Snooze {
            delay: Duration::from_secs(3600),
        },
        Cancel {
            error: fail("cancelled"),
        },
    ];
    let updates: Vec<_> = claimed[..28]
        .iter()
        .enumerate()
        .map(|(i, j)| OutcomeUpdate::new(j.fence(), outcomes[i % outcomes.len()].clone()))
        .collect();
    backend.record("w1", &updates).await.unwrap();
    assert_counts_exact(&backend, "record of every outcome").await;

    // A stale fence changes nothing.
    backend.record("w1", &updates[..3]).await.unwrap();
    assert_counts_exact(&backend, "stale record").await;

    // Two leases lapse and are recovered (as failed attempts).
    let short = ClaimRequest::new("doomed", &q, 2, Duration::from_millis(50));
    assert_eq!(backend.claim(short).await.unwrap().jobs.len(), 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!backend.recover_expired().await.unwrap().is_empty());
    assert_counts_exact(&backend, "recover_expired").await;

    // Cancel a waiting job and a running one; requeue a failed one.
    let waiting = backend
        .list(
            &jobs_core::JobFilter::default()
                .queue("ca")
                .status(JobStatus::Pending),
        )
        .await
        .unwrap();
    let by = jobs_core::CancelRequest::by("ops");
    backend.cancel(waiting[0].id, &by).await.unwrap();
    backend.cancel(claimed[28].id, &by).await.unwrap();
    assert_counts_exact(&backend, "cancel").await;
    let failed = backend
        .list(&jobs_core::JobFilter::default().status(JobStatus::Failed))
        .await
        .unwrap();
    backend.requeue(failed[0].id).await.unwrap();
    let dead = backend
        .list(&jobs_core::JobFilter::default().status(JobStatus::DeadLetter))
        .await
        .unwrap();
    backend.requeue(dead[0].id).await.unwrap();
    assert_counts_exact(&backend, "requeue").await;

    backend.delete_job(dead[1].id).await.unwrap();
    backend.delete_job(waiting[1].id).await.unwrap();
    assert_counts_exact(&backend, "delete_job").await;

    let pruned = backend
        .prune(
            &jobs_core::PruneRequest::new(chrono::Utc::now() + chrono::Duration::hours(1), 3)
                .statuses([JobStatus::Completed, JobStatus::Failed]),
        )
        .await
        .unwrap();
    assert_eq!(pruned, 3);
    assert_counts_exact(&backend, "prune").await;

    // Everything left drains, through retries, to COMPLETED or FAILED.
    loop {
        let got = backend.claim(claim_req(&q, 7)).await.unwrap().jobs;
        if got.is_empty() {
            break;
        }
        let updates: Vec<_> = got
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let o = if i % 3 == 0 && j.retry_count == 0 {
                    Retry {
                        delay: Duration::ZERO,
                        error: fail("once more"),
                    }
                } else {
                    Complete { result: None }
                };
                OutcomeUpdate::new(j.fence(), o)
            })
            .collect();
        backend.record("w1", &updates).await.unwrap();
        // Counted while deltas are still waiting for a fold, too.
        assert_counts_exact(&backend, "drain step").await;
    }
    let rows: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".job_count_deltas",
        backend.schema()
    ))
    .fetch_one(backend.pool())
    .await
    .unwrap();
    assert!(rows < 20, "folded as counted: {rows} deltas left");

    // Concurrent writers and counters: still exact when they are done.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let b = backend.clone();
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("cw{w}");
            for _ in 0..10 {
                let jobs = (0..20).map(|i| NewJob::new("t", json!({ "i": i })).queue(&q[i % 2]));
                b.enqueue_batch(jobs.collect()).await.unwrap();
                let got = b
                    .claim(ClaimRequest::new(&worker, &q, 15, Duration::from_secs(30)))
                    .await
                    .unwrap()
                    .jobs;
                let ups: Vec<_> = got
                    .iter()
                    .map(|j| OutcomeUpdate::new(j.fence(), Complete { result: None }))
                    .collect();
                b.record(&worker, &ups).await.unwrap();
                b.counts().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_counts_exact(&backend, "concurrent writers").await;

    sqlx::query(&format!("TRUNCATE \"{}\".jobs", backend.schema()))
        .execute(backend.pool())
        .await
        .unwrap();
    assert!(backend.counts().await.unwrap().is_empty());
}

/// A version-4 schema gets its totals at upgrade: counted from the jobs it
/// already holds, then kept.
#[tokio::test]
async fn a_version_4_schema_gets_its_counts_in_place() {
    let Some(url) = url() else { return };
    let schema = fresh_schema("v4up");
    let backend = PostgresBackend::builder(url.clone())
        .schema(schema.clone())
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "DROP TABLE \"{schema}\".job_counts, \"{schema}\".job_count_deltas;
         DROP FUNCTION \"{schema}\".count_jobs(), \"{schema}\".fold_job_counts();
         DROP TRIGGER jobs_counted_insert ON \"{schema}\".jobs;
         DROP TRIGGER jobs_counted_update ON \"{schema}\".jobs;
         DROP TRIGGER jobs_counted_delete ON \"{schema}\".jobs;
         DROP TRIGGER jobs_counted_truncate ON \"{schema}\".jobs;
         DROP FUNCTION \"{schema}\".jobs_counted_insert(), \"{schema}\".jobs_counted_update(),
             \"{schema}\".jobs_counted_delete(), \"{schema}\".jobs_counted_truncate();
         DELETE FROM \"{schema}\".jobs_migrations WHERE version = 5"
    ))
    .execute(backend.pool())
    .await
    .unwrap();
    // Written by a version-4 binary: nothing counts them as they come.
    let jobs = (0..12).map(|i| NewJob::new("t", json!({ "i": i })).queue(["ua", "ub"][i % 2]));
    backend.enqueue_batch(jobs.collect()).await.unwrap();
    let q = queues(&["ua"]);
    let got = backend.claim(claim_req(&q, 4)).await.unwrap().jobs;
    let done = OutcomeUpdate::new(got[0].fence(), Outcome::Complete { result: None });
    backend.record("w1", &[done]).await.unwrap();

    let upgraded = PostgresBackend::builder(url.clone())
        .schema(schema.clone())
        .connect()
        .await
        .unwrap();
    let expect = |q: &str, s, n| jobs_core::QueueCount::new(q.to_owned(), s, n);
    let want = vec![
        expect("ua", JobStatus::Pending, 2),
        expect("ua", JobStatus::Running, 3),
        expect("ua", JobStatus::Completed, 1),
        expect("ub", JobStatus::Pending, 6),
    ];
    let mut want = want;
    want.sort();
    assert_eq!(upgraded.counts().await.unwrap(), want);
    let more = upgraded.claim(claim_req(&q, 10)).await.unwrap().jobs;
    assert_eq!(more.len(), 2);
    assert_counts_exact(&upgraded, "claims after the upgrade").await;
    drop_schema(&upgraded).await;
}

/// Subscribes `backend`'s finish signal: waits on `job` (unfinished) until a
/// wait of 300 ms reads it twice only (at its start and end), which a wait
/// does only while subscribed (before, it reads it every 20 ms and more).
async fn subscribe_finish_signal(backend: &PostgresBackend, job: jobs_core::JobId) {
    for _ in 0..100 {
        let before = backend.finish_wait_reads();
        let got = backend
            .wait_finished(job, Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap();
        assert!(!got.status.is_terminal());
        if backend.finish_wait_reads() - before == 2 {
            return;
        }
    }
    panic!("the finish signal never subscribed");
}

/// The job `wait` returns, which must come long before the wait's 30 s
/// safety read: only a signal can end it sooner (or polling, which the
/// callers rule out by counting reads).
async fn woken(
    wait: jobs_core::BoxFuture<'_, jobs_core::Result<Option<jobs_core::Job>>>,
) -> jobs_core::Job {
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .expect("woken by the signal, not by the safety read")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_result_wait_is_woken_by_the_finished_channel_not_by_polling() {
    let Some(backend) = fresh_backend("finwake").await else {
        return;
    };
    // Another process on the same schema finishes the jobs.
    let other = PostgresBackend::builder(url().unwrap())
        .schema(backend.schema())
        .connect()
        .await
        .unwrap();
    let ids: Vec<_> = backend
        .enqueue_batch(vec![
            NewJob::new("idle", json!({})).queue("idle"),
            NewJob::new("t", json!({})),
            NewJob::new("t", json!({})).queue("cancelled"),
            NewJob::new("t", json!({})).queue("lost").max_retries(0),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let (idle, recorded, cancelled, lost) = (ids[0], ids[1], ids[2], ids[3]);
    subscribe_finish_signal(&backend, idle).await;

    // Recorded by the other backend 1.5 s into a wait of 60 s. Without the
    // signal the wait would read the job some 8 times by then (a backoff
    // from 20 ms), or, subscribed but deaf, see it only at its safety read
    // 30 s in.
    let job = other
        .claim(claim_req(&queues(&["default"]), 1))
        .await
        .unwrap()
        .jobs;
    assert_eq!(job.len(), 1);
    let fence = job[0].fence();
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let done = OutcomeUpdate::new(
                fence,
                Outcome::Complete {
                    result: Some(json!(7)),
                },
            );
            assert!(other.record("w2", &[done]).await.unwrap().is_empty());
        })
    };
    let before = backend.finish_wait_reads();
    let got = woken(backend.wait_finished(recorded, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::Completed);
    assert_eq!(got.result_data, Some(json!(7)));
    // One read before the wait, one after the signal.
    assert_eq!(backend.finish_wait_reads() - before, 2);
    finisher.await.unwrap();

    // A waiting job cancelled by the other backend: the same.
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            other
                .cancel(cancelled, &jobs_core::CancelRequest::default())
                .await
                .unwrap();
        })
    };
    let before = backend.finish_wait_reads();
    let got = woken(backend.wait_finished(cancelled, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::Failed);
    assert_eq!(backend.finish_wait_reads() - before, 2);
    finisher.await.unwrap();

    // A lease that ran out, recovered by the other backend: no retries
    // left, so DEAD_LETTER; the same.
    let lost_queue = vec!["lost".to_string()];
    let claimed = other
        .claim(ClaimRequest::new(
            "w3",
            &lost_queue,
            1,
            Duration::from_secs(1),
        ))
        .await
        .unwrap()
        .jobs;
    assert_eq!(claimed.len(), 1);
    let finisher = {
        let other = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let recovered = other.recover_expired().await.unwrap();
            assert_eq!(recovered.len(), 1);
        })
    };
    let before = backend.finish_wait_reads();
    let got = woken(backend.wait_finished(lost, Duration::from_secs(60))).await;
    assert_eq!(got.status, JobStatus::DeadLetter);
    assert_eq!(backend.finish_wait_reads() - before, 2);
    finisher.await.unwrap();
}

/// A row a claim cannot read (a value written past this backend: metadata
/// that is not an object, an error history that is not an array) never
/// stops its queue: the claim fails it for good saying why and delivers the
/// others — on the fast path, on a capped queue's and on the limited path
/// alike, with the counts kept. Before, the claim failed after leasing the
/// whole batch, so every job of it waited out its lease and came back with
/// one retry fewer.
#[tokio::test]
async fn an_unreadable_row_fails_alone_and_never_stops_its_queue() {
    use jobs_core::{ClaimLimit, JobId};

    let Some(b) = fresh_backend("corrupt").await else {
        return;
    };
    let table = format!("\"{}\".jobs", b.schema());
    let spoiled = [
        ("plain", "metadata = '[1]'::jsonb"),
        ("capped", "errors = '{}'::jsonb"),
        ("keyed", "metadata = '\"x\"'::jsonb"),
    ];
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for (queue, spoil) in spoiled {
        let jobs = (0..3)
            .map(|n| {
                let job = NewJob::new("t", json!({ "n": n })).queue(queue);
                if queue == "keyed" {
                    job.concurrency("k", 10)
                } else {
                    job
                }
            })
            .collect();
        let ids: Vec<JobId> = b
            .enqueue_batch(jobs)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id())
            .collect();
        sqlx::query(&format!("UPDATE {table} SET {spoil} WHERE id = $1"))
            .bind(ids[1].as_uuid())
            .execute(b.pool())
            .await
            .unwrap();
        bad.push(ids[1]);
        let mut g = vec![ids[0], ids[2]];
        g.sort();
        good.push(g);
    }
    for (i, (queue, _)) in spoiled.iter().enumerate() {
        let limits = match *queue {
            "capped" => vec![ClaimLimit::new("capped").global(10)],
            _ => Vec::new(),
        };
        let names = queues(&[queue]);
        let claimed = b
            .claim(claim_req(&names, 16).with_limits(&limits))
            .await
            .unwrap_or_else(|e| panic!("a claim of `{queue}` goes on: {e}"));
        let mut ids: Vec<JobId> = claimed.jobs.iter().map(|j| j.id).collect();
        ids.sort();
        assert_eq!(ids, good[i], "`{queue}`: the readable jobs, delivered");
    }
    for (id, (queue, _)) in bad.iter().zip(spoiled) {
        let (status, message, history, token): (String, String, String, Option<i64>) =
            sqlx::query_as(&format!(
                "SELECT status, error_message, jsonb_typeof(errors), lease_token \
                 FROM {table} WHERE id = $1"
            ))
            .bind(id.as_uuid())
            .fetch_one(b.pool())
            .await
            .unwrap();
        assert_eq!(status, "FAILED", "`{queue}`: its unreadable job failed");
        assert!(message.contains("corrupt job data"), "`{queue}`: {message}");
        assert_eq!(history, "array", "`{queue}`: a history again");
        assert_eq!(token, None, "`{queue}`: its lease ended");
    }
    let counts = b.counts().await.unwrap();
    for (queue, _) in spoiled {
        let of = |status| {
            counts
                .iter()
                .find(|c| c.queue == queue && c.status == status)
                .map_or(0, |c| c.count)
        };
        assert_eq!(
            (of(JobStatus::Running), of(JobStatus::Failed)),
            (2, 1),
            "`{queue}`: the counts"
        );
    }
}

/// A job whose lease ran out and whose row cannot be read is recovered with
/// the others, which are all reported (it is not: it cannot be read); the
/// claim that next leases it fails it for good.
#[tokio::test]
async fn an_unreadable_row_never_stops_the_recovery_of_the_others() {
    use jobs_core::JobId;

    let Some(b) = fresh_backend("corrupt_recovery").await else {
        return;
    };
    let table = format!("\"{}\".jobs", b.schema());
    let ids: Vec<JobId> = b
        .enqueue_batch(
            (0..3)
                .map(|n| NewJob::new("t", json!({ "n": n })))
                .collect(),
        )
        .await
        .unwrap()
        .iter()
        .map(|e| e.id())
        .collect();
    let names = queues(&["default"]);
    let short = ClaimRequest::new("w1", &names, 16, Duration::from_millis(1));
    assert_eq!(b.claim(short).await.unwrap().jobs.len(), 3);
    sqlx::query(&format!(
        "UPDATE {table} SET metadata = '[1]'::jsonb WHERE id = $1"
    ))
    .bind(ids[1].as_uuid())
    .execute(b.pool())
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut recovered: Vec<JobId> = b
        .recover_expired()
        .await
        .expect("the recovery goes on")
        .iter()
        .map(|r| r.job.id)
        .collect();
    recovered.sort();
    let mut readable = vec![ids[0], ids[2]];
    readable.sort();
    assert_eq!(recovered, readable);
    let again: Vec<JobId> = b
        .claim(claim_req(&names, 16))
        .await
        .expect("a claim goes on")
        .jobs
        .iter()
        .map(|j| j.id)
        .collect();
    assert!(
        !again.contains(&ids[1]),
        "the unreadable job is not delivered"
    );
    let status: String = sqlx::query_scalar(&format!("SELECT status FROM {table} WHERE id = $1"))
        .bind(ids[1].as_uuid())
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(status, "FAILED");
}
