//! End to end: WorkerManagers running on Redis. Two managers (as on two
//! machines) share one namespace: every job runs once when all goes well,
//! retries, permanent failures and dead letters land where DESIGN.md says.
//! Needs `JOBS_TEST_REDIS_URL` (skipped without it, except under `CI`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::{
    Backoff, Job, JobError, JobFilter, JobHandler, JobId, JobResult, JobStatus, NewJob, Queue,
    WorkerManager,
};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;

fn redis_url() -> Option<String> {
    match std::env::var("JOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("JOBS_TEST_REDIS_URL is not set, and CI is: Redis tests must run in CI")
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_REDIS_URL to run the Redis tests");
            None
        }
    }
}

/// Runs per job: how many times each handler saw it.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<JobId, u32>>>);

impl Runs {
    fn add(&self, id: JobId) {
        *self.0.lock().unwrap().entry(id).or_default() += 1;
    }
    fn get(&self, id: JobId) -> u32 {
        self.0.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

struct Work {
    job_type: &'static str,
    runs: Runs,
}

impl JobHandler for Work {
    fn job_type(&self) -> &str {
        self.job_type
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        self.runs.add(job.id);
        match self.job_type {
            "e2e.ok" => Ok(JobResult::with_data(json!({ "n": job.payload["n"] }))),
            "e2e.flaky" if job.retry_count >= 2 => Ok(JobResult::success()),
            "e2e.flaky" => Err(JobError::msg("not yet")),
            "e2e.fatal" => Err(JobError::permanent("recipient rejected")),
            _ => Err(JobError::msg("always down")),
        }
    }
}

fn manager(queue: &Queue, runs: &Runs, id: &str) -> WorkerManager {
    let mut b = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .worker_id(id)
        .queues(["e2e-high", "e2e-low"])
        .concurrency(8)
        .backoff(Backoff::fixed(Duration::from_millis(50)))
        .poll_interval(Duration::from_millis(500));
    for job_type in ["e2e.ok", "e2e.flaky", "e2e.fatal", "e2e.always"] {
        b = b.handler(Work {
            job_type,
            runs: runs.clone(),
        });
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_share_one_namespace() {
    let Some(url) = redis_url() else { return };
    let backend = RedisBackend::builder(&url)
        .prefix(format!("e2e-{:016x}", fastrand::u64(..)))
        .connect()
        .await
        .unwrap();
    let queue = Queue::new(backend.clone());
    let runs = Runs::default();
    let a = manager(&queue, &runs, "machine-a");
    let b = manager(&queue, &runs, "machine-b");
    a.start().await.unwrap();
    b.start().await.unwrap();

    // Enqueued while both are idle: the wake-up reaches them.
    let ok: Vec<NewJob> = (0..400)
        .map(|n| {
            NewJob::new("e2e.ok", json!({ "n": n })).queue(if n % 2 == 0 {
                "e2e-high"
            } else {
                "e2e-low"
            })
        })
        .collect();
    let ok_ids: Vec<_> = queue
        .enqueue_many(ok)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let flaky = queue
        .enqueue_job(NewJob::new("e2e.flaky", json!({})).queue("e2e-low"))
        .await
        .unwrap()
        .id();
    let fatal = queue
        .enqueue_job(NewJob::new("e2e.fatal", json!({})).queue("e2e-low"))
        .await
        .unwrap()
        .id();
    let always = queue
        .enqueue_job(
            NewJob::new("e2e.always", json!({}))
                .queue("e2e-high")
                .max_retries(1),
        )
        .await
        .unwrap()
        .id();
    let later = queue
        .enqueue_job(
            NewJob::new("e2e.ok", json!({ "n": -1 }))
                .queue("e2e-high")
                .delay(Duration::from_millis(700)),
        )
        .await
        .unwrap()
        .id();

    let start = Instant::now();
    loop {
        let counts = queue.counts().await.unwrap();
        let waiting: u64 = counts
            .iter()
            .filter(|c| !c.status.is_terminal())
            .map(|c| c.count)
            .sum();
        if waiting == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not drained: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    for id in &ok_ids {
        assert_eq!(runs.get(*id), 1, "job {id} ran more or less than once");
        let job = queue.get(*id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.result_data.unwrap()["n"], job.payload["n"]);
        assert!(job.errors.is_empty() && job.locked_by.is_none());
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert!(
        sa.completed > 0 && sb.completed > 0,
        "both managers worked: {sa:?} {sb:?}"
    );

    let job = queue.get(flaky).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.retry_count, runs.get(flaky)),
        (JobStatus::Completed, 2, 3)
    );
    assert_eq!(job.errors.len(), 2);

    let job = queue.get(fatal).await.unwrap().unwrap();
    assert_eq!((job.status, runs.get(fatal)), (JobStatus::Failed, 1));
    assert!(job.error_message.unwrap().contains("recipient rejected"));

    let job = queue.get(always).await.unwrap().unwrap();
    assert_eq!((job.status, runs.get(always)), (JobStatus::DeadLetter, 2));

    let job = queue.get(later).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.started_at.unwrap() >= job.run_at);

    // The operator's view agrees.
    let dead = queue
        .list(&JobFilter::default().status(JobStatus::DeadLetter))
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![always]);
    backend.purge().await.unwrap();
}
