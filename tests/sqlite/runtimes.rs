//! Heartbeats and outcomes from runtimes other than the one that opened the
//! backend, as a `WorkerManager` sends them from its maintenance thread.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, Job, JobStatus, NewJob};
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;

use crate::{temp_db, url_of};

/// A runtime of its own on a thread of its own, as the manager runs its
/// heartbeats and recording on.
fn own_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Claims `n` jobs of a fresh backend at `url`, on the runtime `rt`.
fn claimed_on(rt: &tokio::runtime::Runtime, url: &str, n: usize) -> (Arc<SqliteBackend>, Vec<Job>) {
    rt.block_on(async {
        let q = Arc::new(SqliteBackend::connect(url).await.expect("open"));
        q.enqueue_batch(
            (0..n)
                .map(|i| NewJob::new("t", json!({ "i": i })))
                .collect(),
        )
        .await
        .expect("enqueue");
        let jobs = super::claim(&q, "default", n, Duration::from_secs(60)).await;
        assert_eq!(jobs.len(), n);
        (q, jobs)
    })
}

/// Heartbeats and outcomes from another runtime on another thread, as the
/// manager's maintenance thread makes them: the handle needs no detached
/// twin, since no connection of it is tied to the runtime that opened it —
/// neither while that runtime lives nor after it is gone (the checkpointer
/// lives on the backend's own thread too).
#[test]
fn heartbeats_and_outcomes_work_from_another_runtime() {
    let path = temp_db("other-runtime");
    let url = url_of(&path);
    let opener = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (q, jobs) = claimed_on(&opener, &url, 4);
    assert!(
        q.detached().is_none(),
        "the handle itself serves any runtime"
    );

    let maintain = |q: Arc<SqliteBackend>, jobs: Vec<Job>| {
        std::thread::spawn(move || {
            own_runtime().block_on(async {
                let fences: Vec<_> = jobs.iter().map(|j| j.fence()).collect();
                let lost = q.heartbeat("w", &fences, Duration::from_secs(60)).await;
                assert!(lost.expect("heartbeat").lost.is_empty());
                let updates: Vec<_> = jobs
                    .iter()
                    .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
                    .collect();
                assert!(q.record("w", &updates).await.expect("record").is_empty());
                for j in &jobs {
                    let job = q.get(j.id).await.expect("get").expect("stored");
                    assert_eq!(job.status, JobStatus::Completed);
                }
            })
        })
        .join()
        .expect("the other runtime's thread")
    };
    // While the runtime that opened the backend lives (and idles)...
    maintain(q.clone(), jobs[..2].to_vec());
    // ... and once it is gone.
    drop(opener);
    maintain(q.clone(), jobs[2..].to_vec());

    // Writes since are still checkpointed into the database file, by the
    // backend's own thread.
    let rt = own_runtime();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    rt.block_on(async {
        let blob = "x".repeat(1 << 20);
        q.enqueue_batch(vec![NewJob::new("big", json!({ "blob": blob }))])
            .await
            .expect("enqueue");
        let start = std::time::Instant::now();
        while size() < before + (1 << 20) {
            assert!(start.elapsed() < Duration::from_secs(10), "no checkpoint");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// A call whose runtime stalls while it holds the writer (a handler blocking
/// the only thread of the application's current-thread runtime, right after
/// the claim loop sent a claim) must not hold up the heartbeats and outcomes
/// that another runtime sends meanwhile: every change runs on the writer's own
/// thread, so it ends whether or not its caller's runtime runs.
#[test]
fn a_stalled_runtime_does_not_hold_up_heartbeats_and_outcomes() {
    for url in [url_of(&temp_db("stalled")), "sqlite::memory:".to_owned()] {
        let app = own_runtime();
        let (q, mut jobs) = claimed_on(&app, &url, 3);
        rt_enqueue_more(&app, &q);
        let last = jobs.pop().expect("claimed");
        let maintenance = {
            let q = q.clone();
            std::thread::spawn(move || {
                // Once the application's runtime is stuck.
                std::thread::sleep(Duration::from_millis(300));
                own_runtime().block_on(async {
                    let fences: Vec<_> = jobs.iter().map(|j| j.fence()).collect();
                    let step = Duration::from_millis(1200);
                    let lost = tokio::time::timeout(
                        step,
                        q.heartbeat("w", &fences, Duration::from_secs(60)),
                    )
                    .await
                    .expect("a heartbeat waited for the stalled runtime");
                    assert!(lost.expect("heartbeat").lost.is_empty());
                    let updates: Vec<_> = jobs
                        .iter()
                        .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
                        .collect();
                    let lost = tokio::time::timeout(step, q.record("w", &updates))
                        .await
                        .expect("recording waited for the stalled runtime");
                    assert!(lost.expect("record").is_empty());
                })
            })
        };
        app.block_on(async {
            let claimer = {
                let q = q.clone();
                tokio::spawn(async move {
                    q.claim(ClaimRequest::new(
                        "w",
                        &["default".to_owned()],
                        1,
                        Duration::from_secs(60),
                    ))
                    .await
                })
            };
            // The claim starts (and would hold the writer)...
            tokio::task::yield_now().await;
            // ... and a handler blocks the runtime's only thread.
            std::thread::sleep(Duration::from_secs(3));
            let claimed = claimer.await.expect("claimer").expect("claim");
            assert_eq!(claimed.jobs.len(), 1, "the stalled claim still completes");
        });
        maintenance.join().expect("maintenance thread");
        // The claim made while the runtime was stuck is intact.
        app.block_on(async {
            assert!(q
                .record("w", &[OutcomeUpdate::new(last.fence(), Outcome::Release)])
                .await
                .expect("record")
                .is_empty());
        });
    }
}

fn rt_enqueue_more(rt: &tokio::runtime::Runtime, q: &SqliteBackend) {
    rt.block_on(async {
        q.enqueue_batch(vec![NewJob::new("t", json!({ "more": true }))])
            .await
            .expect("enqueue");
    });
}

/// Blocks its thread, as a handler calling a synchronous client does.
struct Blocking(Duration);

impl jobs::JobHandler for Blocking {
    fn job_type(&self) -> &str {
        "blocking"
    }

    async fn handle(&self, _job: &Job) -> Result<jobs::JobResult, jobs::JobError> {
        std::thread::sleep(self.0);
        Ok(jobs::JobResult::success())
    }
}

/// End to end: on a current-thread runtime whose only thread each handler
/// blocks for longer than a lease, the manager's heartbeats (sent from its
/// maintenance thread, through this same handle) keep the leases, so another
/// process recovering expired leases meanwhile takes nothing: each job runs
/// once and completes without a failed attempt. With more jobs than slots,
/// the claim loop sends a claim as a slot frees, and the next handler blocks
/// the thread before the claim's answer is read: had the claim's task held
/// the writer, every heartbeat would wait behind it.
#[tokio::test(flavor = "current_thread")]
async fn blocking_handlers_keep_their_leases() {
    let url = url_of(&temp_db("blocking"));
    let queue = jobs_runtime::connect(&url).await.expect("open");
    let ids = queue
        .backend()
        .enqueue_batch(
            (0..4)
                .map(|i| NewJob::new("blocking", json!({ "i": i })))
                .collect(),
        )
        .await
        .expect("enqueue");
    // Another process, watching for expired leases.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reaper = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            own_runtime().block_on(async {
                let other = SqliteBackend::connect(&url).await.expect("open");
                let mut recovered = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    recovered.extend(other.recover_expired().await.expect("recover"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                recovered
            })
        })
    };
    let manager = jobs::WorkerManager::builder(queue.clone())
        .auto_register(false)
        .worker_id("blocked")
        .concurrency(2)
        .lease_duration(Duration::from_millis(1000))
        .heartbeat_interval(Duration::from_millis(200))
        .handler(Blocking(Duration::from_millis(1500)))
        .build()
        .expect("manager");
    manager.start().await.expect("start");
    let start = std::time::Instant::now();
    loop {
        let mut done = 0;
        for id in &ids {
            let job = queue
                .backend()
                .get(id.id())
                .await
                .expect("get")
                .expect("kept");
            done += usize::from(job.status == JobStatus::Completed);
        }
        if done == ids.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "jobs did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    manager.stop().await.expect("stop");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let recovered = reaper.join().expect("reaper");
    assert!(
        recovered.is_empty(),
        "leases of running jobs expired: {:?}",
        recovered.iter().map(|r| r.job.id).collect::<Vec<_>>()
    );
    for id in &ids {
        let job = queue
            .backend()
            .get(id.id())
            .await
            .expect("get")
            .expect("kept");
        assert_eq!((job.attempt, job.error_count), (1, 0), "{job:?}");
    }
}
