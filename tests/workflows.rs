//! Workflows and batches with real managers, on every backend: the report
//! pipeline of `examples/report_pipeline.rs` (fan-out, fan-in, a step
//! retried, a step dead-lettered then requeued by hand); the policies when
//! a parent fails; cancelling a workflow; batches whose callbacks run once,
//! with two managers taking the jobs.
//!
//! One test per scenario and backend (`memory::…`, `sqlite::…`,
//! `postgres::…`, `redis::…`); PostgreSQL and Redis need
//! `JOBS_TEST_POSTGRES_URL` / `JOBS_TEST_REDIS_URL` (set in CI).

#[path = "cluster/target.rs"]
mod target;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/report_pipeline.rs"]
mod report_pipeline;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;
use jobs::workflow::{cancelled_by_workflow, skipped_as_not_needed};
use jobs::{BatchResults, CancelRequest, OnParentFailure, WorkflowState};
use target::Target;

const PATIENCE: Duration = Duration::from_secs(60);

/// Counts the callback runs of each batch test.
#[derive(Debug, Default)]
struct Calls {
    finished: AtomicU32,
    succeeded: AtomicU32,
    failed: AtomicU32,
    last: std::sync::Mutex<Option<BatchResults>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Charge {
    n: u32,
    fail: bool,
}

#[job_handler("wft.charge", max_retries = 0)]
async fn charge(c: Charge) -> Result<u32, JobError> {
    if c.fail {
        return Err(JobError::permanent(format!("card {} declined", c.n)));
    }
    Ok(c.n * 100)
}

#[derive(Debug, Serialize, Deserialize)]
struct BatchFinished;

#[job_handler("wft.batch_finished")]
async fn batch_finished(_b: BatchFinished, results: BatchResults, calls: Data<Calls>) {
    calls.finished.fetch_add(1, Ordering::SeqCst);
    *calls.last.lock().unwrap() = Some(results);
}

#[derive(Debug, Serialize, Deserialize)]
struct BatchSucceeded;

#[job_handler("wft.batch_succeeded")]
async fn batch_succeeded(_b: BatchSucceeded, calls: Data<Calls>) {
    calls.succeeded.fetch_add(1, Ordering::SeqCst);
}

#[derive(Debug, Serialize, Deserialize)]
struct BatchFailed;

#[job_handler("wft.batch_failed")]
async fn batch_failed(_b: BatchFailed, results: BatchResults, calls: Data<Calls>) {
    assert!(results.failed + results.dead_lettered >= 1);
    calls.failed.fetch_add(1, Ordering::SeqCst);
}

#[derive(Debug, Serialize, Deserialize)]
struct Fetch {
    id: u32,
    fail: bool,
}

#[job_handler("wft.fetch", max_retries = 0)]
async fn fetch(f: Fetch) -> Result<u32, JobError> {
    if f.fail {
        return Err(JobError::permanent("upstream 404"));
    }
    Ok(f.id)
}

#[derive(Debug, Serialize, Deserialize)]
struct Summarize;

/// Runs after failures too: a failed parent's result is `None`.
#[job_handler("wft.summarize")]
async fn summarize(
    _s: Summarize,
    parts: Parents<Vec<Option<u32>>>,
) -> Result<(u32, u32), JobError> {
    let ok = parts.iter().flatten().count() as u32;
    Ok((ok, parts.len() as u32 - ok))
}

#[derive(Debug, Serialize, Deserialize)]
struct Publish;

#[job_handler("wft.publish")]
async fn publish(_p: Publish, summary: Parent<(u32, u32)>) -> Result<String, JobError> {
    Ok(format!("{} ok, {} failed", summary.0 .0, summary.0 .1))
}

#[derive(Debug, Serialize, Deserialize)]
struct Slow;

#[job_handler("wft.slow")]
async fn slow(_s: Slow, cancel: CancellationToken) -> Result<(), JobError> {
    cancel.cancelled().await;
    Err(JobError::msg("stopped"))
}

#[derive(Debug, Serialize, Deserialize)]
struct After;

#[job_handler("wft.after")]
async fn after(_a: After) {}

fn manager(
    queue: &Queue,
    id: &str,
    calls: &Arc<Calls>,
    sources: &Arc<report_pipeline::Sources>,
) -> WorkerManager {
    WorkerManager::builder(queue.clone())
        .worker_id(id)
        .concurrency(8)
        .data_arc(calls.clone())
        .data_arc(sources.clone())
        .backoff(Backoff::fixed(Duration::from_millis(20)))
        .lease_duration(Duration::from_secs(5))
        .heartbeat_interval(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(100))
        .reap_interval(Duration::from_millis(200))
        .retention(Retention::keep_all())
        .build()
        .unwrap()
}

async fn the_report_pipeline_survives_a_retry_and_a_dead_step(t: Target) {
    let queue = t.queue().await;
    let sources = Arc::new(report_pipeline::Sources::with_latam_down());
    let calls = Arc::new(Calls::default());
    let m = manager(&queue, "w1", &calls, &sources);
    m.start().await.unwrap();
    let report = report_pipeline::run(&queue, &sources).await.unwrap();
    assert_eq!(report.url, "s3://reports/2026-11.pdf");
    // Every region is in: the resumed latam step's result was merged.
    let expected: u64 = report_pipeline::REGIONS
        .iter()
        .map(|r| r.bytes().map(u64::from).sum::<u64>() * 10)
        .sum();
    assert_eq!(report.orders, expected);
    m.stop().await.unwrap();
}

async fn a_run_anyway_step_sees_failed_parents_as_none(t: Target) {
    let queue = t.queue().await;
    let (calls, sources) = (
        Arc::default(),
        Arc::new(report_pipeline::Sources::default()),
    );
    let m = manager(&queue, "w1", &calls, &sources);
    m.start().await.unwrap();

    let mut wf = Workflow::new("fetch-all");
    let parts: Vec<_> = (0..5)
        .map(|i| {
            wf.add(Fetch {
                id: i,
                fail: i % 2 == 1,
            })
        })
        .collect();
    let sum = wf.join(&parts, Summarize);
    wf.on_parent_failure(&sum, OnParentFailure::Run);
    let published = wf.then(&sum, Publish);
    let handle = queue.enqueue_workflow(wf).await.unwrap();
    let text = handle
        .step(&published)
        .result_timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(text, "3 ok, 2 failed");
    let status = handle.wait(PATIENCE).await.unwrap();
    // Two fetches failed: the workflow ran to its end, and says it failed.
    assert_eq!(status.state, WorkflowState::Failed);
    assert_eq!(status.count(JobStatus::Completed), 5);
    assert_eq!(status.count(JobStatus::Failed), 2);
    m.stop().await.unwrap();
}

async fn cancelling_a_workflow_stops_running_and_waiting_steps(t: Target) {
    let queue = t.queue().await;
    let (calls, sources) = (
        Arc::default(),
        Arc::new(report_pipeline::Sources::default()),
    );
    let m = manager(&queue, "w1", &calls, &sources);
    m.start().await.unwrap();

    let mut wf = Workflow::new("slow");
    let s = wf.add(Slow);
    let a = wf.then(&s, After);
    let b = wf.after(&[a.any()], After);
    let handle = queue.enqueue_workflow(wf).await.unwrap();
    // Wait until the first step runs.
    let start = std::time::Instant::now();
    while queue.get(s.id()).await.unwrap().unwrap().status != JobStatus::Running {
        assert!(start.elapsed() < PATIENCE, "the slow step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = handle
        .cancel(&CancelRequest::by("test").reason("not this month"))
        .await
        .unwrap();
    assert_eq!(asked, 3);
    let status = handle.wait(PATIENCE).await.unwrap();
    assert_eq!(status.state, WorkflowState::Failed);
    assert!(
        status
            .steps
            .iter()
            .all(|s| s.status == JobStatus::Failed && s.cancelled),
        "{status:#?}"
    );
    for id in [a.id(), b.id()] {
        let job = queue.get(id).await.unwrap().unwrap();
        assert!(
            !cancelled_by_workflow(&job),
            "cancelled by the operator: {job:?}"
        );
    }
    m.stop().await.unwrap();
}

/// Two managers take a batch's 40 jobs; each callback runs once.
async fn batch_callbacks_run_once_across_two_managers(t: Target) {
    let queue = t.queue().await;
    let other = t.queue().await;
    let calls = Arc::new(Calls::default());
    let sources = Arc::new(report_pipeline::Sources::default());
    let m1 = manager(&queue, "w1", &calls, &sources);
    let m2 = manager(&other, "w2", &calls, &sources);
    m1.start().await.unwrap();
    m2.start().await.unwrap();

    // Some fail: on_finished and on_failure run, on_success is cancelled.
    let mut batch = Batch::new("charges");
    batch
        .extend((0..40).map(|n| Charge {
            n,
            fail: n % 10 == 3,
        }))
        .on_finished(BatchFinished)
        .on_success(BatchSucceeded)
        .on_failure(BatchFailed);
    let handle = queue.enqueue_batch_with_callbacks(batch).await.unwrap();
    let status = handle.wait(PATIENCE).await.unwrap();
    assert!(status.is_finished(), "{status:#?}");
    assert_eq!(calls.finished.load(Ordering::SeqCst), 1);
    assert_eq!(calls.failed.load(Ordering::SeqCst), 1);
    assert_eq!(calls.succeeded.load(Ordering::SeqCst), 0);
    let results = calls.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (results.total, results.completed, results.failed),
        (40, 36, 4)
    );
    let on_success = status.step("on_success").unwrap();
    assert_eq!(on_success.status, JobStatus::Failed);
    assert!(on_success.cancelled);
    assert_eq!(status.state, WorkflowState::Failed);

    // All succeed: on_success runs, on_failure is skipped as not needed.
    let calls2 = Arc::new(Calls::default());
    m1.stop().await.unwrap();
    m2.stop().await.unwrap();
    let m1 = manager(&queue, "w3", &calls2, &sources);
    let m2 = manager(&other, "w4", &calls2, &sources);
    m1.start().await.unwrap();
    m2.start().await.unwrap();
    let mut batch = Batch::new("charges-ok");
    batch
        .extend((0..40).map(|n| Charge { n, fail: false }))
        .on_finished(BatchFinished)
        .on_success(BatchSucceeded)
        .on_failure(BatchFailed);
    let handle = queue.enqueue_batch_with_callbacks(batch).await.unwrap();
    let status = handle.wait(PATIENCE).await.unwrap();
    assert_eq!(status.state, WorkflowState::Completed, "{status:#?}");
    assert_eq!(calls2.finished.load(Ordering::SeqCst), 1);
    assert_eq!(calls2.succeeded.load(Ordering::SeqCst), 1);
    assert_eq!(calls2.failed.load(Ordering::SeqCst), 0);
    let on_failure = status.step("on_failure").unwrap();
    let job = queue.get(on_failure.id).await.unwrap().unwrap();
    assert!(skipped_as_not_needed(&job), "{job:?}");
    m1.stop().await.unwrap();
    m2.stop().await.unwrap();
}

macro_rules! workflow_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_report_pipeline_survives_a_retry_and_a_dead_step() {
                let Some(t) = Target::$backend() else { return };
                super::the_report_pipeline_survives_a_retry_and_a_dead_step(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_run_anyway_step_sees_failed_parents_as_none() {
                let Some(t) = Target::$backend() else { return };
                super::a_run_anyway_step_sees_failed_parents_as_none(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cancelling_a_workflow_stops_running_and_waiting_steps() {
                let Some(t) = Target::$backend() else { return };
                super::cancelling_a_workflow_stops_running_and_waiting_steps(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batch_callbacks_run_once_across_two_managers() {
                let Some(t) = Target::$backend() else { return };
                super::batch_callbacks_run_once_across_two_managers(t).await;
            }
        }
    };
}

workflow_suite!(memory);
workflow_suite!(sqlite);
workflow_suite!(postgres);
workflow_suite!(redis);

/// A manager that works a declared workflow's queue without a handler for
/// one of its steps is refused at build(), naming the step.
#[tokio::test]
async fn a_manager_missing_a_declared_step_is_refused() {
    let queue = jobs::connect("memory://").await.unwrap();
    let err = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .register(&report_pipeline::ExtractHandler::REGISTRATION)
        .data(report_pipeline::Sources::default())
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`pipeline.merge` of workflow `monthly-report`"),
        "{err}"
    );
    assert!(err.contains("`pipeline.render`"), "{err}");
    assert!(!err.contains("`pipeline.extract`"), "{err}");
    // Opted out (this manager runs other queues' jobs by design).
    WorkerManager::builder(queue.clone())
        .auto_register(false)
        .register(&report_pipeline::ExtractHandler::REGISTRATION)
        .data(report_pipeline::Sources::default())
        .check_workflows(false)
        .build()
        .unwrap();
    // Not working the steps' queue: nothing to check.
    WorkerManager::builder(queue)
        .auto_register(false)
        .queues(["emails"])
        .build()
        .unwrap();
}

/// `jobs::testing`: a step performed with its parents' results given, and a
/// whole workflow drained in the test's task.
#[tokio::test]
async fn testing_helpers_run_a_step_and_a_whole_workflow() {
    use report_pipeline::{MergeHandler, MergeRegions, MergedReport};
    let out = jobs::testing::perform::<MergeHandler>(MergeRegions {
        month: "2026-12".into(),
    })
    .parents([
        serde_json::json!({ "region": "emea", "orders": 2, "revenue_cents": 300 }),
        serde_json::json!({ "region": "amer", "orders": 5, "revenue_cents": 700 }),
    ])
    .await;
    assert_eq!(out.status(), JobStatus::Completed);
    let merged: MergedReport = serde_json::from_value(out.result().unwrap().clone()).unwrap();
    assert_eq!((merged.orders, merged.revenue_cents), (7, 1000));
    assert_eq!(merged.regions, ["emea", "amer"]);

    // Without parents, a step that takes their results fails for good, saying why.
    let out = jobs::testing::perform::<MergeHandler>(MergeRegions {
        month: "2026-12".into(),
    })
    .await;
    assert_eq!(out.status(), JobStatus::Failed);
    assert!(
        out.error()
            .unwrap()
            .to_string()
            .contains("not a workflow step"),
        "{:?}",
        out.error()
    );

    let queue = jobs::connect("memory://").await.unwrap();
    let (wf, rendered, _) = report_pipeline::report_workflow("2026-12");
    let handle = queue.enqueue_workflow(wf).await.unwrap();
    let drained = jobs::testing::drain(&queue)
        .data(report_pipeline::Sources::default())
        .backoff(Backoff::fixed(Duration::ZERO))
        .with_recursion(true)
        .await
        .unwrap();
    // Four extractions (apac twice), the merge, the render.
    assert_eq!((drained.completed, drained.retried), (6, 1));
    assert_eq!(
        handle.status().await.unwrap().state,
        WorkflowState::Completed
    );
    let report = handle
        .step(&rendered)
        .result_timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(report.url, "s3://reports/2026-12.pdf");
}
