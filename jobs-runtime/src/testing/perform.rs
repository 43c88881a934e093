//! `perform`: one attempt of one handler, with the outcome the manager would
//! record.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::{
    Backoff, BoxFuture, CancelReason, CancellationToken, Job, JobError, JobHandler, JobPayload,
    JobStatus, NewJob, PayloadOf, Queue, Services, Timeout,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::attempt::Attempt;
use crate::backend::memory::MemoryBackend;
use crate::shared::Config;

/// Runs one attempt of the handler `#[job_handler]` generated, on a typed
/// payload: `perform::<SendEmailHandler>(SendEmail { .. })`. Chain services
/// (`.data(..)`), the attempt (`.retry_count(2)`, `.last_attempt()`), then
/// `.await` the [`Performed`] outcome — the one the manager would record, after
/// running `on_failure` as the manager does. The payload is not validated at
/// "enqueue": the handler's own checks (deserializing, `Validate`) run as they
/// do in a worker, so a test sees their failures.
///
/// ```
/// use std::sync::Mutex;
/// use jobs::prelude::*;
/// use jobs::testing::perform;
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// #[derive(Default)]
/// struct FakeMailer { sent: Mutex<Vec<String>> }
///
/// #[job_handler("email.send", max_retries = 2, on_failure = alert)]
/// async fn send_email(email: SendEmail, mailer: Data<FakeMailer>) -> Result<String, String> {
///     if email.to.is_empty() {
///         return Err("no recipient".into());
///     }
///     mailer.sent.lock().unwrap().push(email.to.clone());
///     Ok(format!("sent to {}", email.to))
/// }
///
/// async fn alert(job: &Job, _error: &JobError, mailer: Data<FakeMailer>) {
///     if job.is_last_attempt() {
///         mailer.sent.lock().unwrap().push("admin".into());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mailer = std::sync::Arc::new(FakeMailer::default());
/// let out = perform::<SendEmailHandler>(SendEmail { to: "ada@example.com".into() })
///     .data_arc(mailer.clone())
///     .await;
/// assert_eq!(out.status(), JobStatus::Completed);
/// assert_eq!(out.result_as::<String>(), "sent to ada@example.com");
///
/// // The last attempt fails: dead-lettered, and `on_failure` alerts.
/// let out = perform::<SendEmailHandler>(SendEmail { to: "".into() })
///     .data_arc(mailer.clone())
///     .last_attempt()
///     .await;
/// assert_eq!(out.status(), JobStatus::DeadLetter);
/// assert_eq!(out.error().unwrap().message(), "no recipient");
/// assert_eq!(*mailer.sent.lock().unwrap(), ["ada@example.com", "admin"]);
/// # }
/// ```
#[track_caller]
pub fn perform<H: JobHandler + Default>(payload: impl PayloadOf<H>) -> Perform<H> {
    Perform::new(H::default(), typed_job(&payload))
}

fn typed_job<P: JobPayload>(payload: &P) -> Result<NewJob, String> {
    serde_json::to_value(payload)
        .map(|v| NewJob::new(P::JOB_TYPE, v).with_options(&P::options()))
        .map_err(|e| {
            format!(
                "perform: the payload `{}` could not be serialized: {e}",
                std::any::type_name::<P>()
            )
        })
}

/// Runs one attempt of any handler — a hand-written `JobHandler` with its
/// own state — on any serializable payload (a struct, or `json!({..})`);
/// the job's type is the handler's. Otherwise as [`perform`].
///
/// ```
/// use jobs::prelude::*;
/// use jobs::testing::perform_with;
///
/// struct Report { scale: u64 }
///
/// impl JobHandler for Report {
///     fn job_type(&self) -> &str { "report.generate" }
///     async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
///         let rows = job.payload["rows"].as_u64().ok_or_else(|| JobError::permanent("no rows"))?;
///         Ok(JobResult::with_data(serde_json::json!({ "total": rows * self.scale })))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let out = perform_with(Report { scale: 10 }, serde_json::json!({ "rows": 4 })).await;
/// assert_eq!(out.result_as::<serde_json::Value>()["total"], 40);
/// let out = perform_with(Report { scale: 10 }, serde_json::json!({})).await;
/// assert_eq!(out.status(), JobStatus::Failed);
/// # }
/// ```
#[track_caller]
pub fn perform_with<H: JobHandler>(handler: H, payload: impl Serialize) -> Perform<H> {
    let job = serde_json::to_value(&payload)
        .map(|v| NewJob::new(handler.job_type(), v))
        .map_err(|e| format!("perform_with: the payload could not be serialized: {e}"));
    Perform::new(handler, job)
}

/// One attempt to run; see [`perform`]. `.await` it for the [`Performed`]
/// outcome.
#[must_use = "nothing runs until the attempt is `.await`ed"]
pub struct Perform<H> {
    handler: H,
    job: Result<NewJob, String>,
    retry_count: u32,
    services: Services,
    queue: Option<Queue>,
    cfg: Config,
    cancel: Option<CancelReason>,
    parents: Option<Arc<[jobs_core::workflow::ParentResult]>>,
    caller: &'static std::panic::Location<'static>,
}

impl<H> std::fmt::Debug for Perform<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Perform")
            .field("job", &self.job)
            .field("retry_count", &self.retry_count)
            .finish_non_exhaustive()
    }
}

impl<H: JobHandler> Perform<H> {
    #[track_caller]
    fn new(handler: H, job: Result<NewJob, String>) -> Self {
        Perform {
            handler,
            job,
            retry_count: 0,
            services: Services::new(),
            queue: None,
            cfg: Config::default(),
            cancel: None,
            parents: None,
            caller: std::panic::Location::caller(),
        }
    }

    fn map(mut self, f: impl FnOnce(NewJob) -> NewJob) -> Self {
        self.job = self.job.map(f);
        self
    }

    /// A service for `Data<T>` (as the builder's `.data(..)`).
    pub fn data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.services.insert(value);
        self
    }

    /// A shared service, also a trait object: `.data_arc(fake as Arc<dyn Mailer>)`
    /// for `Data<dyn Mailer>`.
    pub fn data_arc<T: ?Sized + Send + Sync + 'static>(mut self, value: Arc<T>) -> Self {
        self.services.insert_arc(value);
        self
    }

    /// The queue handle the job comes from (what a `Queue` extractor gets).
    /// Default: a fresh `memory://` queue, [`Performed::queue`] after the run.
    pub fn queue(mut self, queue: Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Runs a workflow step as if its parents had completed with these
    /// results, in edge order: what its `Parent<T>`, `Parents<T>` and
    /// `BatchResults` arguments get. `serde_json::Value::Null` stands for a
    /// parent that failed (as a step that runs after failures sees it).
    pub fn parents(mut self, results: impl IntoIterator<Item = serde_json::Value>) -> Self {
        self.parents = Some(
            results
                .into_iter()
                .map(|r| {
                    let failed = r.is_null();
                    let mut job =
                        Job::new(jobs_core::JobId::new(), "parent", serde_json::Value::Null);
                    job.status = if failed {
                        jobs_core::JobStatus::Failed
                    } else {
                        jobs_core::JobStatus::Completed
                    };
                    job.result_data = Some(r);
                    jobs_core::workflow::ParentResult::new(job.id, Some(&job))
                })
                .collect(),
        );
        self
    }

    /// Runs the attempt as retry number `n` (`retry_count` = n, `attempt` =
    /// n + 1); the default is the first attempt.
    pub fn retry_count(mut self, n: u32) -> Self {
        self.retry_count = n;
        self
    }

    /// The job's retry budget (default: the handler's `max_retries`, else 3).
    pub fn max_retries(self, n: u32) -> Self {
        self.map(|j| j.max_retries(n))
    }

    /// Runs the attempt as the last one the retry budget allows: a retryable
    /// failure is then dead-lettered.
    pub fn last_attempt(mut self) -> Self {
        self.retry_count = self.job.as_ref().map_or(0, |j| j.max_retries);
        self
    }

    /// This job's own time limit (over the handler's and the manager's).
    pub fn timeout(self, timeout: impl Into<Timeout>) -> Self {
        let timeout = timeout.into();
        self.map(|j| j.timeout(timeout))
    }

    /// The manager's backoff, for handlers without their own (default: 2 s
    /// doubling).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.cfg.backoff = backoff;
        self
    }

    /// One metadata entry of the job.
    pub fn metadata(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.map(|j| j.metadata(key, value))
    }

    /// Fires the job's cancellation token before the handler runs, as a
    /// shutdown, a timeout or a lost lease would: for testing that a handler
    /// stops cooperatively. (After a shutdown, a retryable failure is a
    /// release: [`Performed::status`] is then `PENDING`.)
    pub fn cancelled(mut self, reason: CancelReason) -> Self {
        self.cancel = Some(reason);
        self
    }
}

impl<H: JobHandler> IntoFuture for Perform<H> {
    type Output = Performed;
    type IntoFuture = BoxFuture<'static, Performed>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let caller = self.caller;
            let new = self
                .job
                .unwrap_or_else(|why| panic!("{why} (perform at {caller})"));
            let now = crate::clock::now();
            let mut job = Job::from_new(new);
            job.retry_count = self.retry_count;
            job.attempt = self.retry_count.saturating_add(1);
            job.status = JobStatus::Running;
            job.created_at = now;
            job.run_at = now;
            job.started_at = Some(now);
            job.locked_by = Some("test".to_owned());
            let job = Arc::new(job);
            let queue = self
                .queue
                .unwrap_or_else(|| Queue::new(MemoryBackend::new()));
            let cancel = CancellationToken::new();
            if let Some(reason) = self.cancel {
                cancel.cancel(reason);
            }
            let worker_id: Arc<str> = Arc::from("test");
            let attempt = Attempt {
                cfg: &self.cfg,
                services: &self.services,
                queue: &queue,
                worker_id: &worker_id,
                watch: None,
                progress: None,
                parents: self.parents.clone(),
            };
            let attempted = attempt.run(&self.handler, &job, &cancel).await;
            Performed {
                outcome: attempted.outcome,
                error: attempted.error,
                job: Job::clone(&job),
                queue,
            }
        })
    }
}

/// The outcome of one attempt, as the manager would record it; see [`perform`].
pub struct Performed {
    outcome: Outcome,
    error: Option<JobError>,
    job: Job,
    queue: Queue,
}

impl Performed {
    /// The status the job would have now: `COMPLETED`, `RETRYING` (a retry
    /// follows), `FAILED` (a permanent failure, or cancelled), `DEAD_LETTER`
    /// (no retry left), `SCHEDULED` (snoozed), or `PENDING` (released by a
    /// shutdown).
    pub fn status(&self) -> JobStatus {
        match self.outcome {
            Outcome::Complete { .. } | Outcome::CompleteAndDelete => JobStatus::Completed,
            Outcome::Retry { .. } => JobStatus::Retrying,
            Outcome::Fail { .. } | Outcome::Cancel { .. } => JobStatus::Failed,
            Outcome::DeadLetter { .. } => JobStatus::DeadLetter,
            Outcome::Release => JobStatus::Pending,
            Outcome::Snooze { .. } => JobStatus::Scheduled,
        }
    }

    /// How long the handler snoozed the job for, if it did.
    pub fn snoozed_for(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Snooze { delay } => Some(delay),
            _ => None,
        }
    }

    /// Whether the job completed.
    pub fn is_completed(&self) -> bool {
        self.status() == JobStatus::Completed
    }

    /// What would be stored as the job's `result_data`: the handler's
    /// result, or the data a failed `JobResult` carried.
    pub fn result(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Complete { result } | Outcome::Fail { result, .. } => result.as_ref(),
            _ => None,
        }
    }

    /// The result of a completed job, as `T`. Panics, saying what happened
    /// instead, if the job did not complete or its result is not a `T`.
    #[track_caller]
    pub fn result_as<T: DeserializeOwned>(&self) -> T {
        if !self.is_completed() {
            panic!("expected the job to complete, but it is {self:?}");
        }
        let value = self.result().cloned().unwrap_or(Value::Null);
        serde_json::from_value(value.clone()).unwrap_or_else(|e| {
            panic!(
                "the result {value} is not a `{}`: {e}",
                std::any::type_name::<T>()
            )
        })
    }

    /// Why the attempt failed (also for a release on shutdown).
    pub fn error(&self) -> Option<&JobError> {
        self.error.as_ref()
    }

    /// The backoff before the retry, when one follows.
    pub fn retry_in(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Retry { delay, .. } => Some(delay),
            _ => None,
        }
    }

    /// The job as the handler saw it.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The queue handle the job came from: what the handler enqueued is
    /// there (see [`assert_enqueued`](super::assert_enqueued)).
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

impl std::fmt::Debug for Performed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Performed");
        d.field("status", &self.status());
        if let Some(result) = self.result() {
            d.field("result", result);
        }
        if let Some(error) = &self.error {
            d.field("error", &error.message());
            d.field("permanent", &error.is_permanent());
        }
        if let Some(delay) = self.retry_in() {
            d.field("retry_in", &delay);
        }
        d.field("job_type", &self.job.job_type)
            .field("attempt", &self.job.attempt)
            .finish()
    }
}
