//! The WorkerManager's contract, one test per rule of DESIGN.md's state machine
//! and the seed's retry semantics, on the memory backend.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::backend::memory::MemoryBackend;
use jobs::backend::ClaimRequest;
use jobs::{
    Backoff, BoxError, HandlerRegistration, Job, JobContext, JobError, JobHandler, JobId,
    JobResult, JobStatus, NewJob, Queue, ServiceRequirement, WorkerManager,
};
use serde_json::json;
use support::{eventually, wait_drained, wait_for_status};

/// One `on_failure` call: (job id, retry_count, max_retries, last attempt?, error).
type FailureSeen = (JobId, u32, u32, bool, String);

/// What a handler saw: (job id, retry_count, attempt) per call.
#[derive(Default, Clone)]
struct Log {
    handled: Arc<Mutex<Vec<(JobId, u32, u32)>>>,
    failures: Arc<Mutex<Vec<FailureSeen>>>,
}

impl Log {
    fn handled(&self) -> Vec<(JobId, u32, u32)> {
        self.handled.lock().unwrap().clone()
    }
    fn failures(&self) -> Vec<FailureSeen> {
        self.failures.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Succeed,
    FailRetryable,
    FailPermanent,
    FailedResult,
    Panic,
    /// Fails until `retry_count` reaches the value, then succeeds.
    SucceedAtRetry(u32),
    Sleep(u64),
}

#[derive(Clone, Copy, PartialEq)]
enum OnFailure {
    Quiet,
    Errors,
    Panics,
}

struct Scripted {
    job_type: &'static str,
    behaviour: Behaviour,
    on_failure: OnFailure,
    log: Log,
}

impl Scripted {
    fn new(job_type: &'static str, behaviour: Behaviour, log: &Log) -> Self {
        Scripted {
            job_type,
            behaviour,
            on_failure: OnFailure::Quiet,
            log: log.clone(),
        }
    }
}

impl JobHandler for Scripted {
    fn job_type(&self) -> &str {
        self.job_type
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        self.log
            .handled
            .lock()
            .unwrap()
            .push((job.id, job.retry_count, job.attempt));
        match self.behaviour {
            Behaviour::Succeed => Ok(JobResult::with_data(json!({ "echo": job.payload }))),
            Behaviour::FailRetryable => Err(JobError::msg("smtp timeout")),
            Behaviour::FailPermanent => Err(JobError::permanent("recipient rejected")),
            Behaviour::FailedResult => {
                Ok(JobResult::failure(JobError::msg("insufficient balance")))
            }
            Behaviour::Panic => panic!("handler bug"),
            Behaviour::SucceedAtRetry(n) if job.retry_count >= n => Ok(JobResult::success()),
            Behaviour::SucceedAtRetry(_) => Err(JobError::msg("not yet")),
            Behaviour::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(JobResult::success())
            }
        }
    }

    async fn on_failure(&self, job: &Job, error: &JobError) -> Result<(), BoxError> {
        self.log.failures.lock().unwrap().push((
            job.id,
            job.retry_count,
            job.max_retries,
            job.retry_count >= job.max_retries,
            error.to_string(),
        ));
        match self.on_failure {
            OnFailure::Quiet => Ok(()),
            OnFailure::Errors => Err("alerting service down".into()),
            OnFailure::Panics => panic!("on_failure bug"),
        }
    }
}

fn queue() -> Queue {
    Queue::new(MemoryBackend::new())
}

fn fast(queue: &Queue) -> jobs::WorkerManagerBuilder {
    WorkerManager::builder(queue.clone())
        .auto_register(false)
        .backoff(Backoff::none())
        .poll_interval(Duration::from_millis(20))
        .reap_interval(Duration::from_millis(20))
}

async fn enqueue(queue: &Queue, job: NewJob) -> JobId {
    queue.enqueue_job(job).await.unwrap().id()
}

#[tokio::test]
async fn success_stores_result_data() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("echo", json!({"n": 1}))).await;
    let m = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(job.result_data, Some(json!({"echo": {"n": 1}})));
    assert!(job.completed_at.is_some() && job.started_at.is_some());
    assert_eq!(job.locked_by, None);
    assert_eq!(log.handled(), vec![(id, 0, 1)]);
    assert!(log.failures().is_empty());
}

#[tokio::test]
async fn retry_count_starts_at_zero_and_a_job_runs_at_most_max_retries_plus_one_times() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(3)).await;
    let m = fast(&q)
        .handler(Scripted::new("flaky", Behaviour::FailRetryable, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    let handled = log.handled();
    assert_eq!(
        handled.len(),
        4,
        "max_retries 3 → 4 attempts, got {handled:?}"
    );
    let retry_counts: Vec<u32> = handled.iter().map(|h| h.1).collect();
    assert_eq!(retry_counts, vec![0, 1, 2, 3]);
    assert_eq!(job.retry_count, 3);
    assert_eq!(job.errors.len(), 4);
    assert_eq!(job.error_message.as_deref(), Some("smtp timeout"));
}

#[tokio::test]
async fn max_retries_zero_runs_once() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(0)).await;
    let m = fast(&q)
        .handler(Scripted::new("flaky", Behaviour::FailRetryable, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_for_status(&q, id, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    assert_eq!(log.handled().len(), 1);
    assert!(log.failures()[0].3, "the only attempt is the last one");
}

#[tokio::test]
async fn on_failure_runs_after_every_failure_and_knows_the_last_attempt() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(2)).await;
    let m = fast(&q)
        .handler(Scripted::new("flaky", Behaviour::FailRetryable, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_for_status(&q, id, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    let failures = log.failures();
    assert_eq!(failures.len(), 3, "called on every failure, retried or not");
    let last_flags: Vec<bool> = failures.iter().map(|f| f.3).collect();
    assert_eq!(
        last_flags,
        vec![false, false, true],
        "retry_count >= max_retries exactly on the last attempt"
    );
    assert!(failures.iter().all(|f| f.4 == "smtp timeout"));
}

#[tokio::test]
async fn a_retried_job_that_then_succeeds_completes() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("flaky", json!({}))).await;
    let m = fast(&q)
        .handler(Scripted::new("flaky", Behaviour::SucceedAtRetry(2), &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(job.retry_count, 2);
    assert_eq!(log.failures().len(), 2);
    assert_eq!(job.errors.len(), 2, "history of failed attempts is kept");
}

#[tokio::test]
async fn on_failure_that_errors_or_panics_changes_nothing() {
    for mode in [OnFailure::Errors, OnFailure::Panics] {
        let q = queue();
        let log = Log::default();
        let retried = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(1)).await;
        let mut h = Scripted::new("flaky", Behaviour::FailRetryable, &log);
        h.on_failure = mode;
        let m = fast(&q).handler(h).build().unwrap();
        m.start().await.unwrap();
        let job = wait_for_status(&q, retried, JobStatus::DeadLetter).await;
        // The worker survived and still runs jobs.
        let after = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(0)).await;
        wait_for_status(&q, after, JobStatus::DeadLetter).await;
        m.stop().await.unwrap();
        assert_eq!(job.retry_count, 1, "retry logic unaffected");
        assert_eq!(log.handled().len(), 3);
        assert_eq!(log.failures().len(), 3);
    }
}

#[tokio::test]
async fn a_failed_job_result_does_not_retry() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("pay", json!({}))).await;
    let m = fast(&q)
        .handler(Scripted::new("pay", Behaviour::FailedResult, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Failed).await;
    m.stop().await.unwrap();
    assert_eq!(log.handled().len(), 1);
    assert_eq!(log.failures().len(), 1, "on_failure still runs");
    assert_eq!(job.retry_count, 0);
    assert_eq!(job.error_message.as_deref(), Some("insufficient balance"));
    assert!(!job.errors[0].retryable);
}

#[tokio::test]
async fn a_permanent_error_does_not_retry() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("mail", json!({}))).await;
    let m = fast(&q)
        .handler(Scripted::new("mail", Behaviour::FailPermanent, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Failed).await;
    m.stop().await.unwrap();
    assert_eq!(log.handled().len(), 1);
    assert_eq!(job.error_message.as_deref(), Some("recipient rejected"));
}

#[tokio::test]
async fn a_panicking_handler_is_retried_and_the_worker_survives() {
    let q = queue();
    let log = Log::default();
    let ok_log = Log::default();
    let id = enqueue(&q, NewJob::new("boom", json!({})).max_retries(2)).await;
    let m = fast(&q)
        .concurrency(1)
        .handler(Scripted::new("boom", Behaviour::Panic, &log))
        .handler(Scripted::new("fine", Behaviour::Succeed, &ok_log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::DeadLetter).await;
    let fine = enqueue(&q, NewJob::new("fine", json!({}))).await;
    wait_for_status(&q, fine, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(log.handled().len(), 3, "a panic is a retryable failure");
    assert!(job
        .error_message
        .unwrap()
        .contains("handler panicked: handler bug"));
    assert_eq!(log.failures().len(), 3);
}

#[tokio::test]
async fn a_job_without_a_handler_is_a_retryable_failure_naming_its_type() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("video.transcode", json!({})).max_retries(1)).await;
    let m = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    assert_eq!(job.errors.len(), 2, "retried like any retryable failure");
    let msg = job.error_message.unwrap();
    assert!(
        msg.contains("no handler for job type `video.transcode`") && msg.contains("echo"),
        "{msg}"
    );
}

struct Slow(Duration);
impl JobHandler for Slow {
    fn job_type(&self) -> &str {
        "slow"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(self.0).await;
        Ok(JobResult::success())
    }
    fn timeout(&self) -> Option<jobs::Timeout> {
        Some(Duration::from_millis(50).into())
    }
}

#[tokio::test]
async fn a_timeout_is_a_retryable_failure() {
    let q = queue();
    let id = enqueue(&q, NewJob::new("slow", json!({})).max_retries(1)).await;
    let m = fast(&q)
        .handler(Slow(Duration::from_secs(60)))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    assert_eq!(job.errors.len(), 2);
    assert!(job
        .errors
        .iter()
        .all(|e| e.retryable && e.message.contains("timed out after 50ms")));
}

#[tokio::test]
async fn ordered_queues_are_drained_in_order_and_priority_orders_within_a_queue() {
    let q = queue();
    let log = Log::default();
    let mut expected = Vec::new();
    // Enqueued low queue first, so enqueue order alone would get it wrong.
    let low = enqueue(
        &q,
        NewJob::new("echo", json!({})).queue("low").priority(100),
    )
    .await;
    let d0 = enqueue(&q, NewJob::new("echo", json!({})).queue("default")).await;
    let d5 = enqueue(
        &q,
        NewJob::new("echo", json!({})).queue("default").priority(5),
    )
    .await;
    let d0b = enqueue(&q, NewJob::new("echo", json!({})).queue("default")).await;
    let high = enqueue(
        &q,
        NewJob::new("echo", json!({})).queue("high").priority(-3),
    )
    .await;
    expected.extend([high, d5, d0, d0b, low]);
    let m = fast(&q)
        .concurrency(1)
        .queues(["high", "default", "low"])
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_drained(&q).await;
    m.stop().await.unwrap();
    let order: Vec<JobId> = log.handled().iter().map(|h| h.0).collect();
    assert_eq!(order, expected);
}

#[tokio::test]
async fn a_queue_not_in_the_list_is_not_worked() {
    let q = queue();
    let log = Log::default();
    let other = enqueue(&q, NewJob::new("echo", json!({})).queue("other")).await;
    let mine = enqueue(&q, NewJob::new("echo", json!({}))).await;
    let m = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_for_status(&q, mine, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(
        q.get(other).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
}

#[tokio::test]
async fn a_scheduled_job_is_not_claimed_before_its_time() {
    let q = queue();
    let log = Log::default();
    let delay = Duration::from_millis(400);
    let id = enqueue(&q, NewJob::new("echo", json!({})).delay(delay)).await;
    assert_eq!(
        q.get(id).await.unwrap().unwrap().status,
        JobStatus::Scheduled
    );
    let m = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Completed).await;
    m.stop().await.unwrap();
    let started = job.started_at.unwrap();
    assert!(
        started >= job.run_at,
        "started {started} before run_at {}",
        job.run_at
    );
    assert!(job.run_at - job.created_at >= chrono::Duration::milliseconds(390));
}

struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    runs: AtomicUsize,
}

struct Measured(Arc<Gauge>);
impl JobHandler for Measured {
    fn job_type(&self) -> &str {
        "measured"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        self.0.runs.fetch_add(1, Ordering::SeqCst);
        Ok(JobResult::success())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_never_exceeds_the_cap() {
    let q = queue();
    let jobs: Vec<NewJob> = (0..300)
        .map(|i| NewJob::new("measured", json!({ "i": i })))
        .collect();
    q.enqueue_many(jobs).await.unwrap();
    let gauge = Arc::new(Gauge {
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        runs: AtomicUsize::new(0),
    });
    let m = fast(&q)
        .concurrency(7)
        .handler(Measured(gauge.clone()))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_drained(&q).await;
    m.stop().await.unwrap();
    assert_eq!(gauge.runs.load(Ordering::SeqCst), 300);
    let max = gauge.max.load(Ordering::SeqCst);
    assert!(max <= 7, "{max} jobs ran at once with concurrency 7");
    assert!(
        max >= 2,
        "the cap was never approached ({max}); the test measured nothing"
    );
}

/// Counts runs per job id, to catch double execution.
struct Counting {
    runs: Arc<Mutex<std::collections::HashMap<JobId, u32>>>,
    sleep: Duration,
}
impl JobHandler for Counting {
    fn job_type(&self) -> &str {
        "count"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(self.sleep).await;
        *self.runs.lock().unwrap().entry(job.id).or_default() += 1;
        Ok(JobResult::success())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_jobs_in_flight_loses_nothing_and_runs_nothing_twice() {
    let q = queue();
    let ids = q
        .enqueue_many(
            (0..200)
                .map(|i| NewJob::new("count", json!({ "i": i })))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect::<Vec<_>>();
    let runs = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let handler = || Counting {
        runs: runs.clone(),
        sleep: Duration::from_millis(20),
    };
    // Stop the first manager mid-way several times, then let a last one finish.
    for round in 0..3 {
        let m = fast(&q)
            .concurrency(8)
            .handler(handler())
            .worker_id(format!("w{round}"))
            .build()
            .unwrap();
        m.start().await.unwrap();
        // Until jobs are in flight (soon, unless the machine is very busy).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while m.in_flight() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "stop() must be tested with jobs in flight"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        m.stop().await.unwrap();
        assert_eq!(m.in_flight(), 0);
        let counts = q.counts().await.unwrap();
        assert!(
            counts.iter().all(|c| c.status != JobStatus::Running),
            "nothing left RUNNING after stop: {counts:?}"
        );
    }
    let m = fast(&q).concurrency(8).handler(handler()).build().unwrap();
    m.start().await.unwrap();
    wait_drained(&q).await;
    m.stop().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(id)
        );
    }
    for id in ids {
        assert_eq!(
            q.get(id).await.unwrap().unwrap().status,
            JobStatus::Completed
        );
    }
}

/// Stops when told (cooperatively) or never.
struct Stubborn {
    cooperative: bool,
    runs: Arc<AtomicUsize>,
}
impl JobHandler for Stubborn {
    fn job_type(&self) -> &str {
        "long"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if job.attempt > 1 {
            return Ok(JobResult::success());
        }
        if self.cooperative {
            let ctx = JobContext::current().expect("a context inside a running job");
            ctx.cancelled().await;
            return Err(JobError::msg("interrupted"));
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(JobResult::success())
    }
}

#[tokio::test]
async fn a_job_past_the_shutdown_timeout_is_released_not_failed() {
    for cooperative in [true, false] {
        let q = queue();
        let runs = Arc::new(AtomicUsize::new(0));
        let id = enqueue(&q, NewJob::new("long", json!({}))).await;
        let m = fast(&q)
            .shutdown_timeout(Duration::from_millis(100))
            .handler(Stubborn {
                cooperative,
                runs: runs.clone(),
            })
            .build()
            .unwrap();
        m.start().await.unwrap();
        eventually(Duration::from_secs(5), "the job to start", || async {
            (runs.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
        m.stop().await.unwrap();
        let job = q.get(id).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            JobStatus::Pending,
            "released, cooperative={cooperative}"
        );
        assert_eq!(job.retry_count, 0, "a release is not a failed attempt");
        assert!(job.errors.is_empty());
        assert_eq!(m.stats().released, 1);
        // Another worker picks it up.
        let m2 = fast(&q)
            .handler(Stubborn {
                cooperative,
                runs: runs.clone(),
            })
            .build()
            .unwrap();
        m2.start().await.unwrap();
        wait_for_status(&q, id, JobStatus::Completed).await;
        m2.stop().await.unwrap();
    }
}

#[tokio::test]
async fn an_expired_lease_returns_the_job_for_another_attempt() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("echo", json!({}))).await;
    // A worker claims the job and dies: it never heartbeats nor records anything.
    let claimed = q
        .backend()
        .claim(ClaimRequest::new(
            "dead-worker",
            &["default".to_owned()],
            10,
            Duration::from_millis(50),
        ))
        .await
        .unwrap()
        .jobs;
    assert_eq!(claimed.len(), 1);
    let m = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(
        job.retry_count, 1,
        "the lost attempt counts as a failed one"
    );
    assert_eq!(job.attempt, 2);
    assert!(
        job.errors[0].message.contains("lease expired"),
        "{:?}",
        job.errors
    );
    assert_eq!(
        log.failures().len(),
        1,
        "on_failure hears about the lost attempt"
    );
    assert!(m.stats().recovered >= 1);
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_leased() {
    let q = queue();
    let log = Log::default();
    let id = enqueue(&q, NewJob::new("echo", json!({}))).await;
    let m = fast(&q)
        .lease_duration(Duration::from_millis(150))
        .heartbeat_interval(Duration::from_millis(30))
        .handler(Scripted::new("echo", Behaviour::Sleep(600), &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    let job = wait_for_status(&q, id, JobStatus::Completed).await;
    m.stop().await.unwrap();
    assert_eq!(job.attempt, 1, "ran once, its lease never expired");
    assert_eq!(job.retry_count, 0);
    assert_eq!(m.stats().recovered, 0);
}

#[tokio::test]
async fn build_refuses_two_handlers_for_one_job_type_naming_both() {
    let q = queue();
    let log = Log::default();
    let err = fast(&q)
        .handler(Scripted::new("echo", Behaviour::Succeed, &log))
        .handler(Scripted::new("echo", Behaviour::Panic, &log))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("two handlers for job type `echo`"), "{err}");
    assert_eq!(
        err.matches("tests/manager.rs:").count(),
        2,
        "both origins named: {err}"
    );
}

struct Mailer;

static NEEDS_MAILER: HandlerRegistration = HandlerRegistration::new(
    "email.send",
    "SendEmailHandler",
    "SendEmail",
    "src/email.rs",
    12,
    |_| Ok(()),
    || vec![ServiceRequirement::of::<Mailer>()],
    || {
        Arc::new(Scripted::new(
            "email.send",
            Behaviour::Succeed,
            &Log::default(),
        ))
    },
);

#[tokio::test]
async fn build_refuses_a_handler_whose_data_was_not_provided() {
    let q = queue();
    let err = fast(&q)
        .register(&NEEDS_MAILER)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SendEmailHandler") && err.contains("Mailer") && err.contains(".data("),
        "{err}"
    );
    assert!(fast(&q)
        .register(&NEEDS_MAILER)
        .data(Mailer)
        .build()
        .is_ok());
}

#[tokio::test]
async fn build_refuses_bad_settings() {
    let q = queue();
    assert!(fast(&q).concurrency(0).build().is_err());
    assert!(fast(&q).queues(Vec::<String>::new()).build().is_err());
    let err = fast(&q)
        .lease_duration(Duration::from_secs(5))
        .heartbeat_interval(Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("heartbeat interval"), "{err}");
}

#[tokio::test]
async fn a_cancelled_job_never_runs_and_a_dead_job_can_be_requeued() {
    let q = queue();
    let log = Log::default();
    let cancelled = enqueue(
        &q,
        NewJob::new("flaky", json!({})).delay(Duration::from_millis(50)),
    )
    .await;
    q.cancel(cancelled).await.unwrap();
    let dead = enqueue(&q, NewJob::new("flaky", json!({})).max_retries(0)).await;
    let m = fast(&q)
        .handler(Scripted::new("flaky", Behaviour::SucceedAtRetry(1), &log))
        .build()
        .unwrap();
    m.start().await.unwrap();
    wait_for_status(&q, dead, JobStatus::DeadLetter).await;
    let requeued = q.requeue(dead).await.unwrap();
    assert_eq!(
        (requeued.status, requeued.retry_count),
        (JobStatus::Pending, 0)
    );
    // Succeeds only when retry_count >= 1, so it dead-letters again: history grows.
    let again = wait_for_status(&q, dead, JobStatus::DeadLetter).await;
    m.stop().await.unwrap();
    assert_eq!(again.errors.len(), 2);
    assert_eq!(
        q.get(cancelled).await.unwrap().unwrap().status,
        JobStatus::Failed
    );
    assert!(log.handled().iter().all(|h| h.0 != cancelled));
}

#[tokio::test]
async fn run_until_drained_waits_for_retries_and_stops() {
    let q = queue();
    let log = Log::default();
    let flaky = enqueue(&q, NewJob::new("flaky", json!({}))).await;
    let other = enqueue(&q, NewJob::new("flaky", json!({})).queue("elsewhere")).await;
    let m = fast(&q)
        .backoff(Backoff::fixed(Duration::from_millis(30)))
        .handler(Scripted::new("flaky", Behaviour::SucceedAtRetry(2), &log))
        .build()
        .unwrap();
    m.run_until_drained().await.unwrap();
    let job = q.get(flaky).await.unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Completed, 2));
    assert_eq!(m.in_flight(), 0);
    // Only its own queues count: a job it does not work does not keep it running.
    assert_eq!(
        q.get(other).await.unwrap().unwrap().status,
        JobStatus::Pending
    );
}
