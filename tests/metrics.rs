//! The metrics a manager and a queue report through the `metrics` facade,
//! read back from `metrics-util`'s debugging recorder: every counter by queue
//! and job type, the run-time and queue-latency histograms, and the gauges.

use std::time::Duration;

use jobs::backend::{memory::MemoryBackend, ClaimRequest};
use jobs::{
    Backoff, Job, JobError, JobHandler, JobResult, JobStatus, NewJob, Queue, Uniqueness,
    WorkerManager,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde_json::json;

struct Ok_;
impl JobHandler for Ok_ {
    fn job_type(&self) -> &str {
        "m.ok"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

struct Fails;
impl JobHandler for Fails {
    fn job_type(&self) -> &str {
        "m.fail"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Err(JobError::msg("always"))
    }
}

struct SnoozesOnce;
impl JobHandler for SnoozesOnce {
    fn job_type(&self) -> &str {
        "m.snooze"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        if job.snoozes == 0 {
            Ok(JobResult::snooze(Duration::from_millis(10)))
        } else {
            Ok(JobResult::success())
        }
    }
}

/// The one value of `name` whose labels include all of `labels`.
fn value<'a>(
    snap: &'a [(MetricKind, String, Vec<(String, String)>, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    let found: Vec<_> = snap
        .iter()
        .filter(|(_, n, ls, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, _, v)| v)
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} matches {} series",
        found.len()
    );
    found.into_iter().next()
}

fn counter(
    snap: &[(MetricKind, String, Vec<(String, String)>, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> u64 {
    match value(snap, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        None => 0,
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn snapshot(s: &Snapshotter) -> Vec<(MetricKind, String, Vec<(String, String)>, DebugValue)> {
    s.snapshot()
        .into_vec()
        .into_iter()
        .map(|(ck, _, _, v)| {
            let (kind, key) = ck.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (kind, key.name().to_owned(), labels, v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_reports_counters_histograms_and_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let queue = Queue::new(MemoryBackend::new());
    let q = "metrics-q";
    let job = |t: &str| NewJob::new(t, json!({})).queue(q);
    // One job claimed by a worker that vanishes: its lease expires and the
    // manager's reaper recovers it.
    let ghost = queue.enqueue_job(job("m.ok")).await.unwrap().id();
    let queues = [q.to_owned()];
    let claimed = queue
        .backend()
        .claim(ClaimRequest::new(
            "ghost",
            &queues,
            1,
            Duration::from_millis(50),
        ))
        .await
        .unwrap();
    assert_eq!(claimed.jobs[0].id, ghost);

    for _ in 0..3 {
        queue.enqueue_job(job("m.ok")).await.unwrap();
    }
    let unique = || job("m.snooze").unique(Uniqueness::new("only-one"));
    assert!(queue.enqueue_job(unique()).await.unwrap().is_inserted());
    assert!(queue.enqueue_job(unique()).await.unwrap().is_duplicate());
    queue
        .enqueue_job(job("m.fail").max_retries(1))
        .await
        .unwrap();
    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .queues([q])
        .handler(Ok_)
        .handler(Fails)
        .handler(SnoozesOnce)
        .backoff(Backoff::fixed(Duration::from_millis(10)))
        .reap_interval(Duration::from_millis(50))
        .metrics_interval(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = queue.counts().await.unwrap();
        let of = |s: JobStatus| {
            counts
                .iter()
                .filter(|c| c.status == s)
                .map(|c| c.count)
                .sum::<u64>()
        };
        if of(JobStatus::Completed) == 5 && of(JobStatus::DeadLetter) == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs did not finish: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A sample of the counts after the last outcome.
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.stop().await.unwrap();

    let snap = snapshot(&snapshotter);
    let ok = [("queue", q), ("job_type", "m.ok")];
    let fail = [("queue", q), ("job_type", "m.fail")];
    let snooze = [("queue", q), ("job_type", "m.snooze")];
    let with = |base: &[(&'static str, &'static str)], extra: (&'static str, &'static str)| {
        let mut v = base.to_vec();
        v.push(extra);
        v
    };
    assert_eq!(
        counter(
            &snap,
            "jobs_enqueued_total",
            &with(&ok, ("result", "inserted"))
        ),
        4
    );
    assert_eq!(
        counter(
            &snap,
            "jobs_enqueued_total",
            &with(&snooze, ("result", "inserted"))
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            "jobs_enqueued_total",
            &with(&snooze, ("result", "duplicate"))
        ),
        1
    );
    assert_eq!(counter(&snap, "jobs_completed_total", &ok), 4);
    assert_eq!(counter(&snap, "jobs_recovered_total", &ok), 1);
    assert_eq!(
        counter(&snap, "jobs_claimed_total", &ok),
        4,
        "the ghost's claim was not ours"
    );
    assert_eq!(counter(&snap, "jobs_snoozed_total", &snooze), 1);
    assert_eq!(counter(&snap, "jobs_completed_total", &snooze), 1);
    assert_eq!(counter(&snap, "jobs_claimed_total", &fail), 2);
    assert_eq!(counter(&snap, "jobs_retried_total", &fail), 1);
    assert_eq!(counter(&snap, "jobs_dead_lettered_total", &fail), 1);
    assert_eq!(counter(&snap, "jobs_failed_total", &fail), 0);

    match value(
        &snap,
        "jobs_run_seconds",
        &with(&ok, ("outcome", "completed")),
    ) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 4),
        other => panic!("jobs_run_seconds: {other:?}"),
    }
    match value(
        &snap,
        "jobs_run_seconds",
        &with(&fail, ("outcome", "dead_lettered")),
    ) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 1),
        other => panic!("jobs_run_seconds: {other:?}"),
    }
    match value(&snap, "jobs_queue_latency_seconds", &snooze) {
        Some(DebugValue::Histogram(samples)) => {
            assert_eq!(samples.len(), 2, "two starts: the snooze and the run");
            assert!(samples.iter().all(|s| s.into_inner() >= 0.0));
        }
        other => panic!("jobs_queue_latency_seconds: {other:?}"),
    }
    // Sampled by the maintainer (this manager): 5 completed, 1 dead, and
    // nothing left running.
    match value(
        &snap,
        "jobs_queue_jobs",
        &[("queue", q), ("status", "completed")],
    ) {
        Some(DebugValue::Gauge(n)) => assert_eq!(n.into_inner(), 5.0),
        other => panic!("jobs_queue_jobs completed: {other:?}"),
    }
    match value(
        &snap,
        "jobs_queue_jobs",
        &[("queue", q), ("status", "dead_letter")],
    ) {
        Some(DebugValue::Gauge(n)) => assert_eq!(n.into_inner(), 1.0),
        other => panic!("jobs_queue_jobs dead: {other:?}"),
    }
    match value(&snap, "jobs_running", &[]) {
        Some(DebugValue::Gauge(n)) => assert_eq!(n.into_inner(), 0.0),
        other => panic!("jobs_running: {other:?}"),
    }
}
