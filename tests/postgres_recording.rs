//! Recording outcomes and renewing leases at full speed, side by side: one
//! worker drains 100,000 no-op jobs with 32 slots and a heartbeat every
//! second, so outcome batches and heartbeat batches update the same rows all
//! the time. Every statement that updates several jobs locks them in `id`
//! order, so none of them may ever deadlock; no live lease may expire; every
//! job runs exactly once.
//!
//! The deadlock count is the server's (`pg_stat_database.deadlocks` of the
//! test database), so this file holds this one test: nothing else of it runs
//! meanwhile.

mod postgres_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::backend::postgres::PostgresBackend;
use jobs::backend::Backend;
use jobs::{Job, JobError, JobHandler, JobId, JobResult, JobStatus, NewJob, WorkerManager};
use postgres_support::{fresh_backend, url};
use serde_json::json;
use sqlx::Connection;

const JOBS: usize = 100_000;
const BATCH: usize = 5_000;

/// Does nothing, and counts how often each job ran.
struct Counting {
    runs: Arc<Mutex<HashMap<JobId, u32>>>,
}

impl JobHandler for Counting {
    fn job_type(&self) -> &str {
        "recording.noop"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        *self.runs.lock().unwrap().entry(job.id).or_default() += 1;
        Ok(JobResult::success())
    }
}

/// Deadlocks the server has detected in the current database so far. Stats
/// of a session reach this view when it goes idle for a while or ends, so
/// callers close the sessions they want counted first.
async fn deadlocks(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_recording_never_deadlock() {
    // The guard makes (and in the end drops) the schema; the work runs on a
    // backend of its own, so that every session it opened can be closed
    // before the deadlock count is read.
    let Some(guard) = fresh_backend("rec").await else {
        return;
    };
    let url = url().expect("set when the guard exists");
    let backend = PostgresBackend::builder(url.clone())
        .schema(guard.schema())
        .connect()
        .await
        .unwrap();
    let deadlocks_before = deadlocks(&url).await;

    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(JOBS);
    for start in (0..JOBS).step_by(BATCH) {
        let jobs: Vec<NewJob> = (start..(start + BATCH).min(JOBS))
            .map(|i| NewJob::new("recording.noop", json!({ "n": i })))
            .collect();
        ids.extend(
            jobs::Queue::from(backend.clone())
                .enqueue_many(jobs)
                .await
                .unwrap(),
        );
    }
    let enqueued_in = t0.elapsed();

    let runs = Arc::new(Mutex::new(HashMap::with_capacity(JOBS)));
    let manager = WorkerManager::builder(backend.clone())
        .auto_register(false)
        .handler(Counting { runs: runs.clone() })
        .concurrency(32)
        .lease_duration(Duration::from_secs(5))
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let t1 = Instant::now();
    manager.start().await.unwrap();
    // Until every job ran, watch the handler (cheap), not the table: the
    // manager's own drain check counts every row each time.
    while runs.lock().unwrap().len() < JOBS {
        assert!(
            t1.elapsed() < Duration::from_secs(300),
            "not drained within 5 minutes: {:?}",
            manager.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then until every outcome is recorded, and stop.
    tokio::time::timeout(Duration::from_secs(60), manager.run_until_drained())
        .await
        .expect("outcomes not recorded within a minute")
        .unwrap();
    let drained_in = t1.elapsed();
    let stats = manager.stats();
    let counts = backend.counts().await.unwrap();

    // Close every session the work used, so their statistics are flushed.
    drop(manager);
    drop(backend);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deadlocks_during = deadlocks(&url).await - deadlocks_before;
    eprintln!(
        "{JOBS} jobs: enqueued in {enqueued_in:?}, drained in {drained_in:?}; \
         {deadlocks_during} deadlocks; {stats:?}"
    );

    assert_eq!(deadlocks_during, 0, "the server detected deadlocks");
    assert_eq!(stats.recovered, 0, "a live lease expired: {stats:?}");
    assert_eq!(stats.lost, 0, "an outcome found its lease gone: {stats:?}");
    assert_eq!(stats.completed, JOBS as u64, "{stats:?}");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (counts[0].status, counts[0].count),
        (JobStatus::Completed, JOBS as u64)
    );
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), JOBS, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "jobs ran more than once: {twice:?}");
    assert!(ids.iter().all(|id| runs.contains_key(&id.id())));
}
