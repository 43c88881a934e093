//! `Backend::detached` on Redis: a handle whose connection is its own, opened
//! by the runtime that first uses it, so a manager's heartbeats go through
//! even while every thread of the application's runtime is blocked. Its
//! records go through the connection it was detached from (one socket for
//! claims and records: faster), so they wait for that runtime — while the
//! heartbeat keeps the jobs' leases. Needs `JOBS_TEST_REDIS_URL` (skipped
//! without it, except under `CI`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{Job, JobError, JobHandler, JobResult, Queue, WorkerManager};
use jobs_core::backend::{ClaimRequest, Fence, Outcome, OutcomeUpdate};
use jobs_core::{Backend, JobId, JobStatus, NewJob};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;
use support::wait_drained;

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

/// Runs `f` on a new thread with a current-thread runtime of its own, and
/// waits for it by blocking the calling thread (and so, from a
/// current-thread test, the whole of the caller's runtime).
fn on_own_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .expect("the thread panicked")
}

/// Deletes the keys of a prefix when dropped, also after a failed assertion
/// (with a blocking connection: the test's runtime may be gone by then).
struct Purge {
    url: String,
    prefix: String,
}

impl Drop for Purge {
    fn drop(&mut self) {
        let pattern = format!("{{{}}}:*", self.prefix);
        let purge = || -> redis::RedisResult<()> {
            let mut con = redis::Client::open(self.url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut con)?;
            for chunk in keys.chunks(1000) {
                redis::cmd("UNLINK").arg(chunk).exec(&mut con)?;
            }
            Ok(())
        };
        if let Err(e) = purge() {
            eprintln!("could not delete the keys of {pattern}: {e}");
        }
    }
}

/// A backend on a prefix of its own, and what deletes its keys afterwards.
async fn fresh(url: &str) -> (RedisBackend, Purge) {
    let prefix = format!("detached-{:016x}", fastrand::u64(..));
    let purge = Purge {
        url: url.to_owned(),
        prefix: prefix.clone(),
    };
    let backend = RedisBackend::builder(url)
        .prefix(prefix)
        .connect()
        .await
        .unwrap();
    (backend, purge)
}

/// Bounded, so a call stuck behind the blocked runtime fails the test instead
/// of hanging it.
const LIMIT: Duration = Duration::from_secs(10);

// A current-thread runtime: while `on_own_runtime` waits, nothing of this
// runtime runs — not the I/O task of the connection `connect` opened here.
#[tokio::test(flavor = "current_thread")]
async fn a_detached_handle_works_from_another_runtime_while_this_one_is_blocked() {
    let Some(url) = redis_url() else { return };
    let (backend, _purge) = fresh(&url).await;
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
    let queues = vec!["default".to_owned()];
    let jobs = backend
        .claim(ClaimRequest::new(
            "w1",
            &queues,
            10,
            Duration::from_secs(30),
        ))
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 2);
    let fences: Vec<Fence> = jobs.iter().map(|j| j.fence()).collect();

    // Made on a thread without any runtime: nothing is opened until first use
    // (opening a connection outside a runtime would panic).
    let detached: Arc<dyn Backend> = {
        let backend = backend.clone();
        std::thread::spawn(move || backend.detached().expect("redis has a detached handle"))
            .join()
            .unwrap()
    };
    assert_eq!(detached.backend_name(), "redis");

    // This runtime is blocked from here until the thread is done: the shared
    // connection cannot answer, the detached one opens on the thread's own
    // runtime and renews the lease.
    let (shared, first) = (backend.clone(), detached.clone());
    let (fence, id) = (fences[0], ids[0]);
    let (shared_answered, lost_hb) = on_own_runtime(move || {
        Box::pin(async move {
            let shared_answered = tokio::time::timeout(Duration::from_millis(500), shared.get(id))
                .await
                .is_ok();
            let lost_hb = tokio::time::timeout(
                LIMIT,
                first.heartbeat("w1", &[fence], Duration::from_secs(30)),
            )
            .await
            .expect("the detached heartbeat hung")
            .unwrap();
            (shared_answered, lost_hb)
        })
    });
    assert!(
        !shared_answered,
        "the shared connection's I/O runs on the blocked runtime: it cannot answer there"
    );
    assert!(lost_hb.lost.is_empty());

    // The runtime that opened the detached connection is gone; a new one (a
    // manager started again) gets a fresh connection, not a dead one.
    let (second, fence) = (detached.clone(), fences[1]);
    let lost_hb = on_own_runtime(move || {
        Box::pin(async move {
            tokio::time::timeout(
                LIMIT,
                second.heartbeat("w1", &[fence], Duration::from_secs(30)),
            )
            .await
            .expect("the detached heartbeat hung")
        })
    });
    assert!(lost_hb.unwrap().lost.is_empty());

    // This runtime runs again: the detached handle's records (through the
    // connection opened here) go through.
    let updates: Vec<OutcomeUpdate> = fences
        .iter()
        .zip(["first", "second"])
        .map(|(f, r)| {
            OutcomeUpdate::new(
                *f,
                Outcome::Complete {
                    result: Some(json!(r)),
                },
            )
        })
        .collect();
    let lost = tokio::time::timeout(LIMIT, detached.record("w1", &updates))
        .await
        .expect("the detached record hung")
        .unwrap();
    assert_eq!(lost, Vec::<JobId>::new());

    // Both outcomes are stored, and the original handle works as before.
    for (id, want) in ids.iter().zip(["first", "second"]) {
        let job = backend.get(*id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.result_data, Some(json!(want)));
        assert_eq!(job.lease_token, None);
    }
    // And the detached handle serves this runtime too, with a connection of
    // its own opened here now.
    assert_eq!(
        detached.get(ids[0]).await.unwrap().unwrap().status,
        JobStatus::Completed
    );
}

/// Sleeps `ms` — blocking its thread (`std::thread::sleep`) or not — and
/// counts how often each job ran.
struct Sleep {
    job_type: &'static str,
    ms: u64,
    blocking: bool,
    runs: Arc<Mutex<Vec<JobId>>>,
}

impl JobHandler for Sleep {
    fn job_type(&self) -> &str {
        self.job_type
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        self.runs.lock().unwrap().push(job.id);
        if self.blocking {
            std::thread::sleep(Duration::from_millis(self.ms));
        } else {
            tokio::time::sleep(Duration::from_millis(self.ms)).await;
        }
        Ok(JobResult::success())
    }
}

fn sleepers(runs: &Arc<Mutex<Vec<JobId>>>) -> (Sleep, Sleep) {
    (
        Sleep {
            job_type: "block",
            ms: 2_500,
            blocking: true,
            runs: runs.clone(),
        },
        Sleep {
            job_type: "nap",
            ms: 100,
            blocking: false,
            runs: runs.clone(),
        },
    )
}

/// Handlers block both threads of the runtime whose connection carries the
/// worker's claims and records, for 2.5 leases: nothing goes through that
/// connection meanwhile. The heartbeat, on the detached connection, keeps
/// the worker's leases (here those of the jobs waiting for a thread to run
/// on; a job waiting for its record is `tests/hardening.rs`'s
/// `an_outcome_waiting_to_be_recorded_keeps_its_lease`), so a rival worker
/// that reaps every 100 ms takes none of them, and every job runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_threads_cost_a_redis_worker_no_lease() {
    let Some(url) = redis_url() else { return };
    let (backend, purge) = fresh(&url).await;
    let prefix = purge.prefix.clone();
    let queue = Queue::new(backend);
    let mut jobs: Vec<NewJob> = (0..2).map(|_| NewJob::new("block", json!({}))).collect();
    jobs.extend((0..6).map(|i| NewJob::new("nap", json!({ "n": i }))));
    let ids: Vec<JobId> = queue
        .enqueue_many(jobs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (blocker, napper) = sleepers(&runs);
    let manager = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(blocker)
        .handler(napper)
        .concurrency(8)
        .lease_duration(Duration::from_millis(1_000))
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    // The rival: another process, as far as the jobs can tell. It claims
    // from another queue, so every job here is the blocked worker's, and it
    // starts first, so it is the cluster's maintainer (the one that takes
    // back expired leases).
    let (stop_rival, rival_stopped) = std::sync::mpsc::channel::<()>();
    let (leading_tx, leading) = std::sync::mpsc::channel::<()>();
    let (rival_runs, rival_url) = (runs.clone(), url.clone());
    let rival = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let backend = RedisBackend::builder(&rival_url)
                .prefix(prefix)
                .connect()
                .await
                .unwrap();
            let (blocker, napper) = sleepers(&rival_runs);
            let rival = WorkerManager::builder(Queue::new(backend))
                .auto_register(false)
                .handler(blocker)
                .handler(napper)
                .queues(["elsewhere"])
                .reap_interval(Duration::from_millis(100))
                .build()
                .unwrap();
            rival.start().await.unwrap();
            while !rival.is_maintainer() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            leading_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || rival_stopped.recv())
                .await
                .unwrap()
                .ok();
            rival.stop().await.unwrap();
            rival.stats()
        })
    });
    tokio::task::spawn_blocking(move || leading.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the rival leads");
    manager.start().await.unwrap();
    wait_drained(&queue).await;
    manager.stop().await.unwrap();
    stop_rival.send(()).unwrap();
    let rival_stats = rival.join().unwrap();
    let runs = runs.lock().unwrap();
    for id in &ids {
        let n = runs.iter().filter(|r| *r == id).count();
        assert_eq!(n, 1, "job {id} ran {n} times");
    }
    let stats = manager.stats();
    assert_eq!((stats.lost, stats.recovered), (0, 0), "{stats:?}");
    assert_eq!(
        rival_stats.recovered, 0,
        "no lease ran out: {rival_stats:?}"
    );
}
