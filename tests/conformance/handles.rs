//! Result handles: a `JobHandle` resolves, through `Backend::wait_finished`,
//! to the handler's typed result once a worker records the outcome — or to
//! the typed error of a failed, dead, cancelled or missing job — and a wait
//! that times out changes nothing.
//!
//! The "worker" here is a task speaking the worker protocol (claim, record)
//! while the handle waits, so each rule also checks that a finish recorded
//! after the wait began is not missed.

use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::{
    CancelRequest, Job, JobHandle, JobOutput, JobPayload, JobResultError, JobStatus, Queue,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::support::{claim_one, failure, get, record, LONG, W1};
use super::Backend;

/// Far longer than any rule needs: a wait that reaches it is a missed wake-up.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct Render {
    page: u32,
}

impl JobPayload for Render {
    const JOB_TYPE: &'static str = "handles.render";
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rendered {
    url: String,
    bytes: u64,
}

impl JobOutput for Render {
    type Output = Rendered;
}

#[derive(Debug, Serialize, Deserialize)]
struct Ping;

impl JobPayload for Ping {
    const JOB_TYPE: &'static str = "handles.ping";
}

impl JobOutput for Ping {
    type Output = ();
}

/// Claims the one waiting job (as a worker would, once the waiter is
/// waiting) and records `outcome` for it.
async fn run_with(q: &Backend, outcome: Outcome) -> Job {
    // Give the waiter time to start waiting: the finish must wake it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let job = claim_one(q, W1, &["default"], LONG)
        .await
        .expect("a job to claim");
    let lost = record(q, W1, job.fence(), outcome).await;
    assert!(lost.is_empty(), "the outcome of {} was refused", job.id);
    job
}

/// A handle on a typed enqueue resolves to the handler's result once a worker
/// completes the job; so does a handle made from the id through another
/// `Queue`; a job that stored no result resolves `Ok(())` for `Output = ()`.
pub async fn a_handle_resolves_to_the_typed_result(q: Backend) {
    let queue = Queue::from(q.clone());
    let handle = queue
        .enqueue(Render { page: 3 })
        .handle()
        .await
        .expect("enqueue");
    assert!(handle.enqueued().is_some_and(|e| e.is_inserted()));
    let other = Queue::from(q.clone());
    let by_id = JobHandle::<Render>::from_id(&other, handle.id());
    assert_eq!(by_id.status().await.expect("status"), JobStatus::Pending);

    let worker = {
        let q = q.clone();
        tokio::spawn(async move {
            run_with(
                &q,
                Outcome::Complete {
                    result: Some(json!({ "url": "s3://r/3.pdf", "bytes": 1024 })),
                },
            )
            .await
        })
    };
    let (got, again) = tokio::join!(handle.result_timeout(PATIENCE), by_id.result());
    let job = worker.await.expect("worker");
    assert_eq!(job.id, handle.id());
    let want = Rendered {
        url: "s3://r/3.pdf".into(),
        bytes: 1024,
    };
    assert_eq!(got.expect("typed result"), want);
    assert_eq!(again.expect("typed result by id"), want);
    // Untyped, the same result as JSON.
    let raw = queue.handle::<serde_json::Value>(handle.id());
    assert_eq!(
        raw.result().await.expect("json")["bytes"],
        json!(1024),
        "the untyped handle reads the same result"
    );

    let ping = queue.enqueue(Ping).handle().await.expect("enqueue");
    let worker = {
        let q = q.clone();
        tokio::spawn(async move { run_with(&q, Outcome::Complete { result: None }).await })
    };
    ping.result_timeout(PATIENCE)
        .await
        .expect("a job with no stored result resolves to ()");
    worker.await.expect("worker");
}

/// A job that fails for good resolves to `Failed` with its last error, one
/// that is dead-lettered to `DeadLettered`, a cancelled one to `Cancelled`;
/// a retry in between does not resolve the handle.
pub async fn a_failed_job_resolves_to_its_typed_error(q: Backend) {
    let queue = Queue::from(q.clone());

    // Retried once, then failed for good.
    let handle = queue
        .enqueue(Render { page: 1 })
        .handle()
        .await
        .expect("enqueue");
    let worker = {
        let q = q.clone();
        tokio::spawn(async move {
            run_with(
                &q,
                Outcome::Retry {
                    delay: Duration::ZERO,
                    error: failure("printer jammed", true),
                },
            )
            .await;
            run_with(
                &q,
                Outcome::Fail {
                    error: failure("page 1 does not exist", false),
                    result: None,
                },
            )
            .await
        })
    };
    match handle.result_timeout(PATIENCE).await {
        Err(JobResultError::Failed {
            last_error, status, ..
        }) => {
            assert_eq!(status, JobStatus::Failed);
            assert_eq!(
                last_error, "page 1 does not exist",
                "the last error, not the retry's"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    worker.await.expect("worker");

    // Dead-lettered.
    let handle = queue
        .enqueue(Render { page: 2 })
        .handle()
        .await
        .expect("enqueue");
    let worker = {
        let q = q.clone();
        tokio::spawn(async move {
            run_with(
                &q,
                Outcome::DeadLetter {
                    error: failure("smtp down", true),
                },
            )
            .await
        })
    };
    match handle.result_timeout(PATIENCE).await {
        Err(JobResultError::DeadLettered {
            last_error, status, ..
        }) => {
            assert_eq!(status, JobStatus::DeadLetter);
            assert_eq!(last_error, "smtp down");
        }
        other => panic!("expected DeadLettered, got {other:?}"),
    }
    worker.await.expect("worker");

    // Cancelled while waiting to run.
    let handle = queue
        .enqueue(Render { page: 4 })
        .handle()
        .await
        .expect("enqueue");
    let canceller = {
        let q = q.clone();
        let id = handle.id();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            q.cancel(id, &CancelRequest::default())
                .await
                .expect("cancel")
        })
    };
    match handle.result_timeout(PATIENCE).await {
        Err(e @ JobResultError::Cancelled { .. }) => {
            assert_eq!(e.status(), Some(JobStatus::Failed));
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    canceller.await.expect("canceller");
}

/// A wait that runs out says `Timeout` and leaves the job exactly as it was
/// (still claimable, and awaitable again); an unknown id is `NotFound`; a
/// result that does not fit the handle's type is `Decode`, naming the type.
pub async fn a_wait_that_times_out_leaves_the_job_untouched(q: Backend) {
    let queue = Queue::from(q.clone());
    let handle = queue
        .enqueue(Render { page: 9 })
        .handle()
        .await
        .expect("enqueue");
    let before = get(&q, handle.id()).await;
    match handle.result_timeout(Duration::from_millis(300)).await {
        Err(JobResultError::Timeout { id, status, .. }) => {
            assert_eq!((id, status), (handle.id(), JobStatus::Pending));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(
        get(&q, handle.id()).await,
        before,
        "the wait changed the job"
    );

    // Still claimable, and a new wait resolves.
    let worker = {
        let q = q.clone();
        tokio::spawn(async move {
            run_with(
                &q,
                Outcome::Complete {
                    result: Some(json!({ "url": 9 })),
                },
            )
            .await
        })
    };
    match handle.result_timeout(PATIENCE).await {
        Err(JobResultError::Decode {
            expected, reason, ..
        }) => {
            assert!(expected.ends_with("Rendered"), "{expected}");
            assert!(reason.contains("url"), "{reason}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    worker.await.expect("worker");
    let raw = handle
        .result_value()
        .await
        .expect("the raw result is still readable");
    assert_eq!(raw, Some(json!({ "url": 9 })));

    let missing = queue.handle::<Render>(jobs_core::JobId::new());
    assert!(matches!(
        missing.result_timeout(PATIENCE).await,
        Err(JobResultError::NotFound { .. })
    ));
}
