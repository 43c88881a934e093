//! The manager at the edges: handlers that panic where nobody looks, hang,
//! block their thread or return what no backend can store; a backend that
//! hangs, refuses an outcome, or cannot renew leases. Every test does the bad
//! thing for real (on the memory backend, behind a wrapper that injects the
//! fault) and then checks that no job was lost, stranded, or run twice.

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use jobs::backend::memory::MemoryBackend;
use jobs::backend::{
    Backend, ClaimRequest, Fence, HeartbeatReply, JobListener, Outcome, OutcomeUpdate, Recovered,
};
use jobs::{
    BackendErrorKind, Backoff, BoxError, BoxFuture, CancelReason, CancelRequest, Enqueued, Error,
    HealthState, Job, JobContext, JobError, JobFilter, JobHandler, JobId, JobResult, JobStatus,
    NewJob, PruneRequest, Queue, QueueCount, Timeout, WorkerManager,
};
use serde_json::json;
use support::{eventually, wait_drained, wait_for_status};

// ---- a backend that does what it is told to go wrong ----

#[derive(Default)]
struct Faults {
    hang_record: AtomicBool,
    hang_claim: AtomicBool,
    fail_heartbeat: AtomicBool,
    panic_recover_once: AtomicBool,
    /// `record` refuses (as a data error) any batch completing this job.
    poison: Mutex<Option<JobId>>,
    record_delay_ms: AtomicU64,
    claimed: AtomicU64,
    recorded: AtomicU64,
    max_outstanding: AtomicU64,
}

#[derive(Clone)]
struct Faulty {
    inner: MemoryBackend,
    f: Arc<Faults>,
}

impl Faulty {
    fn new() -> Self {
        Faulty {
            inner: MemoryBackend::new(),
            f: Arc::new(Faults::default()),
        }
    }
}

async fn hang() {
    std::future::pending::<()>().await
}

impl Backend for Faulty {
    fn backend_name(&self) -> &'static str {
        "faulty"
    }
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, jobs::Result<Vec<Enqueued>>> {
        self.inner.enqueue_batch(jobs)
    }
    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, jobs::Result<jobs::Claimed>> {
        Box::pin(async move {
            if self.f.hang_claim.load(Ordering::SeqCst) {
                hang().await;
            }
            let claimed_now = self.inner.claim(req).await?;
            let jobs = &claimed_now.jobs;
            let claimed = self
                .f
                .claimed
                .fetch_add(jobs.len() as u64, Ordering::SeqCst)
                + jobs.len() as u64;
            let outstanding = claimed - self.f.recorded.load(Ordering::SeqCst);
            self.f
                .max_outstanding
                .fetch_max(outstanding, Ordering::SeqCst);
            Ok(claimed_now)
        })
    }
    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, jobs::Result<HeartbeatReply>> {
        Box::pin(async move {
            if self.f.fail_heartbeat.load(Ordering::SeqCst) {
                return Err(Error::backend_msg(
                    "faulty",
                    BackendErrorKind::Unavailable,
                    "connection refused",
                ));
            }
            self.inner.heartbeat(worker_id, fences, lease).await
        })
    }
    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, jobs::Result<Vec<JobId>>> {
        Box::pin(async move {
            if self.f.hang_record.load(Ordering::SeqCst) {
                hang().await;
            }
            let delay = self.f.record_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let poison = *self.f.poison.lock().unwrap();
            if let Some(p) = poison {
                let poisoned = updates
                    .iter()
                    .any(|u| u.fence.id == p && matches!(u.outcome, Outcome::Complete { .. }));
                if poisoned {
                    return Err(Error::backend_msg(
                        "faulty",
                        BackendErrorKind::Data,
                        "value too large to store",
                    ));
                }
            }
            let lost = self.inner.record(worker_id, updates).await?;
            self.f
                .recorded
                .fetch_add(updates.len() as u64, Ordering::SeqCst);
            Ok(lost)
        })
    }
    fn recover_expired(&self) -> BoxFuture<'_, jobs::Result<Vec<Recovered>>> {
        Box::pin(async move {
            if self.f.panic_recover_once.swap(false, Ordering::SeqCst) {
                panic!("injected panic in recover_expired");
            }
            self.inner.recover_expired().await
        })
    }
    fn get(&self, id: JobId) -> BoxFuture<'_, jobs::Result<Option<Job>>> {
        self.inner.get(id)
    }
    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, jobs::Result<Vec<Job>>> {
        self.inner.list(filter)
    }
    fn cancel<'a>(&'a self, id: JobId, req: &'a CancelRequest) -> BoxFuture<'a, jobs::Result<Job>> {
        self.inner.cancel(id, req)
    }
    fn requeue(&self, id: JobId) -> BoxFuture<'_, jobs::Result<Job>> {
        self.inner.requeue(id)
    }
    fn counts(&self) -> BoxFuture<'_, jobs::Result<Vec<QueueCount>>> {
        self.inner.counts()
    }
    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, jobs::Result<u64>> {
        self.inner.prune(req)
    }
    fn listener<'a>(
        &'a self,
        queues: &'a [String],
    ) -> BoxFuture<'a, jobs::Result<Box<dyn JobListener>>> {
        self.inner.listener(queues)
    }
}

// ---- handlers ----

/// Runs `f` for each attempt and counts executions per job.
struct Run<F> {
    job_type: &'static str,
    f: F,
    runs: Arc<Mutex<Vec<JobId>>>,
}

impl<F, Fut> JobHandler for Run<F>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JobResult, JobError>> + Send,
{
    fn job_type(&self) -> &str {
        self.job_type
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        self.runs.lock().unwrap().push(job.id);
        (self.f)(job.clone()).await
    }
}

fn run<F, Fut>(job_type: &'static str, f: F) -> (Run<F>, Arc<Mutex<Vec<JobId>>>)
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JobResult, JobError>> + Send,
{
    let runs = Arc::new(Mutex::new(Vec::new()));
    (
        Run {
            job_type,
            f,
            runs: runs.clone(),
        },
        runs,
    )
}

/// Enqueues `n` jobs of type `quick` (`{"n": i}`); their ids, in order.
async fn enqueue_quick(queue: &Queue, n: usize) -> Vec<JobId> {
    queue
        .enqueue_many(
            (0..n)
                .map(|i| NewJob::new("quick", json!({ "n": i })))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id())
        .collect()
}

fn each_once(runs: &Mutex<Vec<JobId>>, ids: &[JobId]) {
    let runs = runs.lock().unwrap();
    for id in ids {
        let n = runs.iter().filter(|r| *r == id).count();
        assert_eq!(n, 1, "job {id} ran {n} times");
    }
}

async fn enqueue(queue: &Queue, job: NewJob) -> JobId {
    queue.enqueue_job(job).await.expect("enqueue").id()
}

// ---- 3. no attempt ends without an outcome ----

/// Its `handle` panics while building its future (a hand-written handler
/// doing work before `async move`).
struct Eager;

impl JobHandler for Eager {
    fn job_type(&self) -> &str {
        "eager"
    }
    #[allow(clippy::manual_async_fn)]
    fn handle(&self, job: &Job) -> impl Future<Output = Result<JobResult, JobError>> + Send {
        let x = job.payload["x"].as_str().unwrap().to_owned();
        async move { Ok(JobResult::with_data(json!(x))) }
    }
}

#[tokio::test]
async fn a_panic_before_the_handler_future_exists_is_a_failed_attempt() {
    let queue = Queue::new(MemoryBackend::new());
    let id = enqueue(&queue, NewJob::new("eager", json!({})).max_retries(0)).await;
    let ok = enqueue(&queue, NewJob::new("eager", json!({"x": "fine"}))).await;
    let manager = WorkerManager::builder(queue.clone())
        .handler(Eager)
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let dead = wait_for_status(&queue, id, JobStatus::DeadLetter).await;
    assert!(
        dead.error_message
            .as_deref()
            .unwrap()
            .contains("panicked before its future existed"),
        "{:?}",
        dead.error_message
    );
    wait_for_status(&queue, ok, JobStatus::Completed).await;
    let t = Instant::now();
    manager.stop().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "nothing held the stop"
    );
    assert_eq!(manager.in_flight(), 0);
}

/// Every user call of a hand-written handler panics: `timeout()`,
/// `backoff()`, and the part of `on_failure` before its future.
struct Grumpy {
    failures: Arc<AtomicU32>,
}

impl JobHandler for Grumpy {
    fn job_type(&self) -> &str {
        "grumpy"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Err(JobError::msg("try again"))
    }
    #[allow(clippy::manual_async_fn)]
    fn on_failure(
        &self,
        _job: &Job,
        _error: &JobError,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        self.failures.fetch_add(1, Ordering::SeqCst);
        panic!("on_failure panicked before its future");
        #[allow(unreachable_code)]
        async {
            Ok(())
        }
    }
    fn timeout(&self) -> Option<Timeout> {
        panic!("timeout() panicked")
    }
    fn backoff(&self) -> Option<Backoff> {
        panic!("backoff() panicked")
    }
}

#[tokio::test]
async fn panics_in_timeout_backoff_and_on_failure_still_end_the_attempt() {
    let queue = Queue::new(MemoryBackend::new());
    let id = enqueue(&queue, NewJob::new("grumpy", json!({})).max_retries(1)).await;
    let failures = Arc::new(AtomicU32::new(0));
    let manager = WorkerManager::builder(queue.clone())
        .handler(Grumpy {
            failures: failures.clone(),
        })
        .backoff(Backoff::none())
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let job = wait_for_status(&queue, id, JobStatus::DeadLetter).await;
    assert_eq!(
        job.attempt, 2,
        "retried once (with the manager's backoff), then dead"
    );
    assert_eq!(failures.load(Ordering::SeqCst), 2);
    manager.stop().await.unwrap();
    assert_eq!(manager.in_flight(), 0);
}

/// What `on_failure` saw: (retry_count, is_last_attempt).
type Seen = Arc<Mutex<Vec<(String, u32, bool)>>>;

struct Teller {
    seen: Seen,
}

impl JobHandler for Teller {
    fn job_type(&self) -> &str {
        "teller"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        match job.payload["kind"].as_str().unwrap() {
            "permanent" => Err(JobError::permanent("bad input")),
            "failed-result" => {
                Ok(JobResult::failure(JobError::msg("HTTP 404")).data(json!({"status": 404})))
            }
            _ => Err(JobError::msg("flaky")),
        }
    }
    async fn on_failure(&self, job: &Job, _error: &JobError) -> Result<(), BoxError> {
        let kind = job.payload["kind"].as_str().unwrap().to_owned();
        self.seen
            .lock()
            .unwrap()
            .push((kind, job.retry_count, job.is_last_attempt()));
        Ok(())
    }
}

#[tokio::test]
async fn on_failure_is_told_whether_a_retry_follows_after_every_kind_of_failure() {
    let queue = Queue::new(MemoryBackend::new());
    let permanent = enqueue(&queue, NewJob::new("teller", json!({"kind": "permanent"}))).await;
    let result = enqueue(
        &queue,
        NewJob::new("teller", json!({"kind": "failed-result"})),
    )
    .await;
    let flaky = enqueue(
        &queue,
        NewJob::new("teller", json!({"kind": "flaky"})).max_retries(1),
    )
    .await;
    let seen = Seen::default();
    let manager = WorkerManager::builder(queue.clone())
        .handler(Teller { seen: seen.clone() })
        .backoff(Backoff::none())
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_for_status(&queue, permanent, JobStatus::Failed).await;
    let failed = wait_for_status(&queue, result, JobStatus::Failed).await;
    assert_eq!(
        failed.result_data,
        Some(json!({"status": 404})),
        "a failed JobResult keeps its data"
    );
    wait_for_status(&queue, flaky, JobStatus::DeadLetter).await;
    manager.stop().await.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("failed-result".to_owned(), 0, true),
            ("flaky".to_owned(), 0, false),
            ("flaky".to_owned(), 1, true),
            ("permanent".to_owned(), 0, true),
        ],
        "retry_count stays truthful; is_last_attempt says whether a retry follows"
    );
}

struct HangingOnFailure;

impl JobHandler for HangingOnFailure {
    fn job_type(&self) -> &str {
        "hangs-after"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Err(JobError::permanent("no"))
    }
    async fn on_failure(&self, _job: &Job, _error: &JobError) -> Result<(), BoxError> {
        hang().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_hung_on_failure_is_cut_off_by_the_time_limit() {
    let queue = Queue::new(MemoryBackend::new());
    let id = enqueue(&queue, NewJob::new("hangs-after", json!({}))).await;
    let manager = WorkerManager::builder(queue.clone())
        .handler(HangingOnFailure)
        .job_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_for_status(&queue, id, JobStatus::Failed).await;
    eventually(Duration::from_secs(5), "the job to be released", || async {
        (manager.in_flight() == 0).then_some(())
    })
    .await;
    manager.stop().await.unwrap();
}

#[tokio::test]
async fn time_limits_come_from_the_job_then_the_handler_then_the_manager() {
    let queue = Queue::new(MemoryBackend::new());
    let (stuck, _) = run("stuck", |_| async {
        hang().await;
        Ok(JobResult::success())
    });
    let (slow, _) = run("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(JobResult::success())
    });
    let cut = enqueue(&queue, NewJob::new("stuck", json!({})).max_retries(0)).await;
    let patient = enqueue(
        &queue,
        NewJob::new("slow", json!({})).timeout(Timeout::Never),
    )
    .await;
    let impatient = enqueue(
        &queue,
        NewJob::new("slow", json!({}))
            .timeout(Duration::from_millis(100))
            .max_retries(0),
    )
    .await;
    let manager = WorkerManager::builder(queue.clone())
        .handler(stuck)
        .handler(slow)
        .job_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let dead = wait_for_status(&queue, cut, JobStatus::DeadLetter).await;
    assert!(dead
        .error_message
        .unwrap()
        .contains("timed out after 200ms"));
    wait_for_status(&queue, patient, JobStatus::Completed).await;
    let dead = wait_for_status(&queue, impatient, JobStatus::DeadLetter).await;
    assert!(dead
        .error_message
        .unwrap()
        .contains("timed out after 100ms"));
    manager.stop().await.unwrap();
}

// ---- 4. deadlines ----

#[tokio::test]
async fn stop_keeps_its_deadline_when_the_backend_hangs() {
    let backend = Faulty::new();
    let queue = Queue::new(backend.clone());
    let (quick, _) = run("quick", |_| async { Ok(JobResult::success()) });
    let manager = WorkerManager::builder(queue.clone())
        .handler(quick)
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    backend.f.hang_record.store(true, Ordering::SeqCst);
    enqueue(&queue, NewJob::new("quick", json!({}))).await;
    eventually(Duration::from_secs(5), "the job to run", || async {
        (backend.f.claimed.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let t = Instant::now();
    manager.stop().await.unwrap();
    let took = t.elapsed();
    // shutdown timeout + 5 s for recording, plus scheduling slack.
    assert!(
        took < Duration::from_millis(300 + 5_000 + 1_500),
        "stop took {took:?}"
    );
}

#[tokio::test]
async fn a_hung_backend_call_times_out_and_the_manager_says_so() {
    let backend = Faulty::new();
    backend.f.hang_claim.store(true, Ordering::SeqCst);
    let queue = Queue::new(backend.clone());
    let manager = WorkerManager::builder(queue.clone())
        .backend_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(manager.health().state, HealthState::NotStarted);
    manager.start().await.unwrap();
    let health = eventually(
        Duration::from_secs(5),
        "the manager to report trouble",
        || async { Some(manager.health()).filter(|h| h.state == HealthState::Degraded) },
    )
    .await;
    let error = health.last_error.unwrap();
    assert_eq!(error.part, "claim");
    assert!(
        error.message.contains("did not answer within 200ms"),
        "{}",
        error.message
    );
    backend.f.hang_claim.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(5), "the manager to recover", || async {
        manager.health().is_ready().then_some(())
    })
    .await;
    manager.stop().await.unwrap();
    assert_eq!(manager.health().state, HealthState::Stopped);
}

struct WaitsForCancel {
    reason: Arc<Mutex<Option<CancelReason>>>,
}

impl JobHandler for WaitsForCancel {
    fn job_type(&self) -> &str {
        "waits"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        let ctx = JobContext::current().expect("in a manager");
        let reason = ctx.cancelled().await;
        *self.reason.lock().unwrap() = Some(reason);
        Err(JobError::msg("cancelled"))
    }
}

#[tokio::test]
async fn a_lease_that_cannot_be_renewed_is_cancelled_locally() {
    let backend = Faulty::new();
    backend.f.fail_heartbeat.store(true, Ordering::SeqCst);
    let queue = Queue::new(backend.clone());
    enqueue(&queue, NewJob::new("waits", json!({}))).await;
    let reason = Arc::new(Mutex::new(None));
    let manager = WorkerManager::builder(queue.clone())
        .handler(WaitsForCancel {
            reason: reason.clone(),
        })
        .lease_duration(Duration::from_millis(600))
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let t = Instant::now();
    manager.start().await.unwrap();
    let got = eventually(
        Duration::from_secs(5),
        "the job to be cancelled",
        || async { *reason.lock().unwrap() },
    )
    .await;
    assert_eq!(got, CancelReason::LeaseLost);
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "not before the lease ran out"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "soon after: {:?}",
        t.elapsed()
    );
    assert_eq!(manager.health().last_error.unwrap().part, "heartbeat");
    manager.stop().await.unwrap();
}

// ---- 4b. a handler that blocks its thread ----

/// Everything logged by this test binary, from every thread.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    static INSTALL: OnceLock<()> = OnceLock::new();
    let buffer = LOGS.get_or_init(|| Mutex::new(Vec::new()));
    INSTALL.get_or_init(|| {
        struct W;
        impl std::io::Write for W {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(|| W)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .try_init();
    });
    buffer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_block_their_threads_cost_no_lease_and_are_named() {
    let logs = logs();
    let backend = MemoryBackend::new();
    let queue = Queue::new(backend.clone());
    let runs = Arc::new(Mutex::new(Vec::new()));
    let make = |runs: &Arc<Mutex<Vec<JobId>>>| {
        let (blocker, _) = run("block", |_| async {
            std::thread::sleep(Duration::from_millis(2_500));
            Ok(JobResult::success())
        });
        let (napper, _) = run("nap", |_| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(JobResult::success())
        });
        (
            Run {
                runs: runs.clone(),
                ..blocker
            },
            Run {
                runs: runs.clone(),
                ..napper
            },
        )
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(enqueue(&queue, NewJob::new("block", json!({}))).await);
    }
    for _ in 0..6 {
        ids.push(enqueue(&queue, NewJob::new("nap", json!({}))).await);
    }
    let (blocker, napper) = make(&runs);
    let manager = WorkerManager::builder(queue.clone())
        .handler(blocker)
        .handler(napper)
        .concurrency(8)
        .lease_duration(Duration::from_millis(1_000))
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    // A second worker, on a runtime of its own, ready to take over any job
    // whose lease runs out — as another process would.
    let (stop_rival, rival_stopped) = std::sync::mpsc::channel::<()>();
    let rival_runs = runs.clone();
    let rival_queue = Queue::new(backend.clone());
    let rival = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let (blocker, napper) = make(&rival_runs);
            let rival = WorkerManager::builder(rival_queue)
                .handler(blocker)
                .handler(napper)
                .reap_interval(Duration::from_millis(100))
                .build()
                .unwrap();
            rival.start().await.unwrap();
            tokio::task::spawn_blocking(move || rival_stopped.recv())
                .await
                .unwrap()
                .ok();
            rival.stop().await.unwrap();
            rival.stats()
        })
    });
    manager.start().await.unwrap();
    wait_drained(&queue).await;
    manager.stop().await.unwrap();
    stop_rival.send(()).unwrap();
    let rival_stats = rival.join().unwrap();
    each_once(&runs, &ids);
    let stats = manager.stats();
    assert_eq!((stats.lost, stats.recovered), (0, 0), "{stats:?}");
    assert_eq!(
        rival_stats.recovered, 0,
        "no lease ran out: {rival_stats:?}"
    );
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let named = ids[..2].iter().any(|id| {
        text.lines()
            .any(|l| l.contains("has blocked its thread") && l.contains(&id.to_string()))
    });
    assert!(named, "the watchdog names a blocking job:\n{text}");
}

// ---- 6b / 7. bounded work in flight ----

/// Runs 60 quick jobs at concurrency 4 against a recorder that takes 50 ms
/// a call, with `window` (or the default); the most jobs ever claimed but
/// not recorded.
async fn most_unrecorded(window: Option<usize>) -> u64 {
    let backend = Faulty::new();
    backend.f.record_delay_ms.store(50, Ordering::SeqCst);
    let queue = Queue::new(backend.clone());
    let ids = enqueue_quick(&queue, 60).await;
    let (quick, runs) = run("quick", |_| async { Ok(JobResult::success()) });
    let mut builder = WorkerManager::builder(queue.clone())
        .handler(quick)
        .concurrency(4);
    if let Some(window) = window {
        builder = builder.recording_window(window);
    }
    let manager = builder.build().unwrap();
    manager.start().await.unwrap();
    wait_drained(&queue).await;
    manager.stop().await.unwrap();
    each_once(&runs, &ids);
    backend.f.max_outstanding.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_worker_never_outruns_its_recorder() {
    let max = most_unrecorded(Some(4)).await;
    assert!(
        max <= 8,
        "at most concurrency + window claimed-but-unrecorded, saw {max}"
    );
}

/// The default window is twice the concurrency: room for one claim's
/// outcomes to be written while the next claim's jobs end, and no more.
#[tokio::test]
async fn the_default_recording_window_is_twice_the_concurrency() {
    let max = most_unrecorded(None).await;
    assert!(
        (9..=12).contains(&max),
        "concurrency 4 + a window of 8: up to 12 claimed-but-unrecorded, and more \
         than a window of 4 allows while the recorder is slow; saw {max}"
    );
}

/// A job whose outcome waits for a slow recorder is still this worker's: the
/// heartbeat keeps its lease, so nobody runs it again while the outcome is
/// on its way. (The recorder here takes 1.5 s a call, three leases.)
#[tokio::test]
async fn an_outcome_waiting_to_be_recorded_keeps_its_lease() {
    let backend = Faulty::new();
    backend.f.record_delay_ms.store(1_500, Ordering::SeqCst);
    let queue = Queue::new(backend.clone());
    let ids = enqueue_quick(&queue, 4).await;
    let (quick, runs) = run("quick", |_| async { Ok(JobResult::success()) });
    let manager = WorkerManager::builder(queue.clone())
        .handler(quick)
        .concurrency(4)
        .lease_duration(Duration::from_millis(500))
        .heartbeat_interval(Duration::from_millis(100))
        .reap_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_drained(&queue).await;
    manager.stop().await.unwrap();
    each_once(&runs, &ids);
    let stats = manager.stats();
    assert_eq!(
        (stats.lost, stats.recovered, stats.completed),
        (0, 0, 4),
        "{stats:?}"
    );
}

// ---- 1. one outcome the backend cannot store ----

#[tokio::test]
async fn an_outcome_the_backend_cannot_store_fails_its_job_and_no_other() {
    let backend = Faulty::new();
    let queue = Queue::new(backend.clone());
    let ids = enqueue_quick(&queue, 50).await;
    *backend.f.poison.lock().unwrap() = Some(ids[17]);
    let (quick, runs) = run("quick", |_| async { Ok(JobResult::success()) });
    let manager = WorkerManager::builder(queue.clone())
        .handler(quick)
        .concurrency(16)
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_drained(&queue).await;
    manager.stop().await.unwrap();
    each_once(&runs, &ids);
    for (i, id) in ids.iter().enumerate() {
        let job = queue.get(*id).await.unwrap().unwrap();
        if i == 17 {
            assert_eq!(job.status, JobStatus::Failed);
            let msg = job.error_message.unwrap();
            assert!(
                msg.contains("could not be stored") && msg.contains("value too large"),
                "{msg}"
            );
        } else {
            assert_eq!(job.status, JobStatus::Completed, "job {i}");
        }
    }
    let stats = manager.stats();
    assert_eq!((stats.completed, stats.failed), (49, 1), "{stats:?}");
}

#[tokio::test]
async fn results_and_errors_over_their_limits_are_refused_where_they_enter() {
    let queue = Queue::new(MemoryBackend::new());
    let (big, _) = run("big", |_| async {
        Ok(JobResult::with_data(json!("x".repeat(5_000))))
    });
    let (wordy, _) = run("wordy", |_| async {
        Err(JobError::permanent("é".repeat(1_000)))
    });
    let big_id = enqueue(&queue, NewJob::new("big", json!({}))).await;
    let wordy_id = enqueue(&queue, NewJob::new("wordy", json!({}))).await;
    let manager = WorkerManager::builder(queue.clone())
        .handler(big)
        .handler(wordy)
        .max_result_bytes(1_000)
        .max_error_bytes(100)
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let job = wait_for_status(&queue, big_id, JobStatus::Failed).await;
    assert!(job.error_message.unwrap().contains("too large to store"));
    assert_eq!(job.result_data, None);
    let job = wait_for_status(&queue, wordy_id, JobStatus::Failed).await;
    let msg = job.error_message.unwrap();
    assert!(msg.len() < 200 && msg.contains("truncated"), "{msg}");
    manager.stop().await.unwrap();

    let err = queue
        .clone()
        .with_max_payload_bytes(100)
        .enqueue_raw("big", json!({"blob": "y".repeat(500)}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPayload { .. }), "{err}");
    assert!(err.to_string().contains("limit of 100"), "{err}");
}

// ---- 3 / 5. loops keep going ----

#[tokio::test]
async fn a_loop_that_panics_is_restarted_and_reported() {
    let backend = Faulty::new();
    backend.f.panic_recover_once.store(true, Ordering::SeqCst);
    let queue = Queue::new(backend.clone());
    let (quick, _) = run("quick", |_| async { Ok(JobResult::success()) });
    let manager = WorkerManager::builder(queue.clone())
        .handler(quick)
        .reap_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let health = eventually(Duration::from_secs(5), "a restart", || async {
        Some(manager.health()).filter(|h| h.loop_restarts > 0)
    })
    .await;
    assert!(health
        .last_error
        .unwrap()
        .message
        .contains("injected panic"));
    let id = enqueue(&queue, NewJob::new("quick", json!({}))).await;
    wait_for_status(&queue, id, JobStatus::Completed).await;
    manager.stop().await.unwrap();
}

// ---- time arithmetic saturates ----

#[tokio::test]
async fn huge_delays_and_backoffs_saturate_instead_of_panicking() {
    let queue = Queue::new(MemoryBackend::new());
    let later = queue
        .enqueue_raw("never", json!({}))
        .delay(Duration::MAX)
        .await
        .unwrap();
    assert_eq!(
        queue.get(later).await.unwrap().unwrap().status,
        JobStatus::Scheduled
    );
    let (flaky, _) = run("flaky", |_| async { Err(JobError::msg("later")) });
    let id = enqueue(&queue, NewJob::new("flaky", json!({}))).await;
    let manager = WorkerManager::builder(queue.clone())
        .handler(flaky)
        .backoff(Backoff::fixed(Duration::MAX))
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let job = wait_for_status(&queue, id, JobStatus::Retrying).await;
    assert!(job.run_at > Utc::now() + chrono::Duration::days(365 * 90));
    manager.stop().await.unwrap();
    assert!(
        manager.health().last_error.is_none(),
        "{:?}",
        manager.health()
    );
}
