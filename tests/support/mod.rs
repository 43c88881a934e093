//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use jobs::{Job, JobId, JobStatus, Queue};

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until job `id` reaches `status`, and returns it.
pub async fn wait_for_status(queue: &Queue, id: impl Into<JobId>, status: JobStatus) -> Job {
    let id = id.into();
    eventually(
        Duration::from_secs(20),
        &format!("job {id} to become {status}"),
        || async { queue.get(id).await.unwrap().filter(|j| j.status == status) },
    )
    .await
}

/// Waits until no job is waiting or running.
pub async fn wait_drained(queue: &Queue) {
    eventually(Duration::from_secs(30), "the queue to drain", || async {
        let counts = queue.counts().await.unwrap();
        let busy: u64 = counts
            .iter()
            .filter(|c| !c.status.is_terminal())
            .map(|c| c.count)
            .sum();
        (busy == 0).then_some(())
    })
    .await
}
