//! Listeners: woken by an enqueue, and when a scheduled job comes due.

use std::time::{Duration, Instant};

use chrono::Utc;
use jobs_core::NewJob;
use serde_json::json;

use super::support::{claim_one, enqueue, enqueue_n, now_us, queues, LONG, W1};
use super::Backend;

/// A listener waiting with a long timeout returns promptly after an enqueue from
/// another task, and does not miss an enqueue made between subscribing and waiting.
pub async fn listener_wakes_on_enqueue(q: Backend) {
    let names = queues(&["default"]);
    let mut listener = q.listener(&names).await.expect("listener");

    // Enqueued while the listener is waiting.
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            enqueue_n(&q, 1, "default").await
        })
    };
    let started = Instant::now();
    listener.wait(Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "wait(60 s) did not return after an enqueue"
    );
    producer.await.expect("producer");

    // Enqueued after subscribing but before waiting: not missed.
    let mut listener = q.listener(&names).await.expect("listener");
    tokio::time::sleep(Duration::from_millis(50)).await;
    enqueue_n(&q, 1, "default").await;
    let started = Instant::now();
    listener.wait(Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "an enqueue before wait() was missed"
    );
}

/// A listener also returns when the earliest scheduled job of its queues comes
/// due, though nothing new was enqueued.
pub async fn listener_wakes_when_scheduled_job_is_due(q: Backend) {
    let due = now_us() + chrono::Duration::milliseconds(800);
    let id = enqueue(&q, NewJob::new("s.job", json!({})).run_at(due)).await;
    let names = queues(&["default"]);
    let mut listener = q.listener(&names).await.expect("listener");
    let started = Instant::now();
    // Spurious returns are allowed; keep waiting until the job is due or we give up.
    while Utc::now() < due && started.elapsed() < Duration::from_secs(30) {
        listener.wait(Duration::from_secs(60)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "wait(60 s) did not return when a scheduled job came due"
    );
    let j = claim_one(&q, W1, &["default"], LONG)
        .await
        .expect("due job");
    assert_eq!(j.id, id);
}
