//! Connection loss: a throwaway PostgreSQL cluster of the test's own (never the
//! shared one) is restarted while a WorkerManager drains jobs from it; every job
//! must end COMPLETED, none lost, and the backend and its listener must recover.
//!
//! Needs the PostgreSQL 15 server binaries (`initdb`, `pg_ctl`; set
//! `JOBS_TEST_PG_BIN` to their directory if not /usr/lib/postgresql/15/bin).
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user through `runuser`.

mod postgres_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{Backend, Job, JobError, JobHandler, JobId, JobResult, JobStatus, NewJob};
use jobs_runtime::backend::postgres::PostgresBackend;
use jobs_runtime::WorkerManager;
use postgres_support::cluster::Cluster;
use serde_json::json;

/// Counts how often each job ran.
struct Counting {
    runs: Arc<Mutex<HashMap<JobId, u32>>>,
}

impl JobHandler for Counting {
    fn job_type(&self) -> &str {
        "restart.test"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self.runs.lock().unwrap().entry(job.id).or_default() += 1;
        Ok(JobResult::success())
    }
}

async fn count(backend: &PostgresBackend, status: JobStatus) -> Option<u64> {
    let counts = backend.counts().await.ok()?;
    Some(
        counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing() {
    let Some(cluster) = Cluster::init() else {
        return;
    };
    let backend = PostgresBackend::builder(cluster.url())
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect to the throwaway cluster");

    const N: usize = 2000;
    let jobs: Vec<NewJob> = (0..N)
        .map(|i| NewJob::new("restart.test", json!({ "n": i })))
        .collect();
    let ids = backend.enqueue_batch(jobs).await.unwrap();

    let runs = Arc::new(Mutex::new(HashMap::new()));
    let manager = WorkerManager::builder(backend.clone())
        .auto_register(false)
        .handler(Counting { runs: runs.clone() })
        .concurrency(8)
        // Short leases, so a claim whose reply died with the server comes back soon.
        .lease_duration(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_secs(1))
        .reap_interval(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let probe_queues = vec!["probe".to_owned()];
    let mut listener = backend.listener(&probe_queues).await.unwrap();
    manager.start().await.unwrap();

    // Let a part of the work happen, then take the server away mid-run.
    let t0 = Instant::now();
    while runs.lock().unwrap().len() < N / 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the drain never got going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.stop();
    let done_at_stop = runs.lock().unwrap().len();
    assert!(
        done_at_stop < N,
        "the drain finished before the restart; raise N"
    );

    // While it is down, calls fail with a transient backend error.
    let err = backend.get(ids[0].id()).await.unwrap_err();
    assert!(err.is_transient(), "not transient: {err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.start();

    // The manager reconnects and finishes the work.
    let t1 = Instant::now();
    loop {
        if count(&backend, JobStatus::Completed).await == Some(N as u64) {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(40),
            "not drained 40 s after the restart: {:?}, {:?}",
            backend.counts().await,
            manager.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    manager.stop().await.unwrap();

    // Every job COMPLETED exactly once: nothing lost, nothing left in another state.
    let counts = backend.counts().await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (counts[0].status, counts[0].count),
        (JobStatus::Completed, N as u64)
    );
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), N, "every job ran");
    let reruns = runs.values().filter(|&&n| n > 1).count();
    eprintln!(
        "restart: {done_at_stop} jobs done before the stop; {reruns} ran twice \
         (at-least-once: attempts whose outcome died with the connection); stats {:?}",
        manager.stats()
    );

    // The listener is back too: it wakes for a new job on its queue.
    for _ in 0..3 {
        // The first wait may return at once: it notices the connection was lost.
        listener.wait(Duration::from_millis(200)).await;
    }
    let producer = backend.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer
            .enqueue_batch(vec![NewJob::new("restart.test", json!({})).queue("probe")])
            .await
            .unwrap();
    });
    let t2 = Instant::now();
    listener.wait(Duration::from_secs(30)).await;
    let waited = t2.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(15),
        "listener woke after {waited:?}"
    );
}
