//! `JobHandler`: the port application code implements, and its object-safe form.

use std::future::Future;
use std::pin::Pin;

use crate::{Backoff, BoxError, Job, JobError, JobResult, ServiceRequirement, Timeout};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Business logic for one job type.
///
/// ```
/// use jobs_core::{Job, JobError, JobHandler, JobResult};
///
/// struct EmailJobHandler;
///
/// impl JobHandler for EmailJobHandler {
///     fn job_type(&self) -> &str {
///         "email.send"
///     }
///
///     async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
///         let recipient = job.payload["recipient"].as_str().ok_or_else(|| {
///             JobError::permanent("payload has no `recipient`")
///         })?;
///         Ok(JobResult::with_data(serde_json::json!({ "sent_to": recipient })))
///     }
/// }
/// ```
///
/// * `Ok(JobResult::success..)` completes the job and stores `result_data`.
/// * `Ok(JobResult::failure(..))` or `Err(JobError::permanent(..))`: FAILED, no retry.
/// * `Err(e)` (any error, via `?`) or a panic: retried with backoff while retries
///   remain, then DEAD_LETTER.
///
/// The running job's [`JobContext`](crate::JobContext) (cancellation token, services)
/// is available from `JobContext::current()` inside `handle`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a job handler",
    label = "not a `JobHandler`",
    note = "a handler is the type `#[job_handler]` generates for an `async fn` (`send_email` → `SendEmailHandler`), or a type implementing `JobHandler` (`fn job_type(&self) -> &str` and `async fn handle(&self, job: &Job) -> Result<JobResult, JobError>`)"
)]
pub trait JobHandler: Send + Sync + 'static {
    /// The job type this handler processes, e.g. `"email.send"`.
    fn job_type(&self) -> &str;

    /// Processes one attempt of the job.
    fn handle(&self, job: &Job) -> impl Future<Output = Result<JobResult, JobError>> + Send;

    /// Called after **every** failed attempt, retried or not;
    /// [`job.is_last_attempt()`](Job::is_last_attempt) is true exactly when no
    /// retry follows (retries exhausted, or a permanent failure). It runs
    /// under the attempt's time limit; its error, panic or timeout is logged
    /// and changes nothing.
    fn on_failure(
        &self,
        job: &Job,
        error: &JobError,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = (job, error);
        async { Ok(()) }
    }

    /// How long one attempt (and its `on_failure`) may run; past it the
    /// attempt is a retryable failure. `None` (the default): the manager's
    /// [`job_timeout`](crate::Timeout::DEFAULT); a job's own timeout wins over both.
    fn timeout(&self) -> Option<Timeout> {
        None
    }

    /// The backoff between retries of this type (the manager's default if `None`).
    fn backoff(&self) -> Option<Backoff> {
        None
    }

    /// The services (`Data<T>`) this handler needs: `build()` refuses a manager
    /// that lacks one. `#[job_handler]` lists its extractors' needs here.
    fn requirements(&self) -> Vec<ServiceRequirement> {
        Vec::new()
    }
}

/// `Self` is the payload the handler `H` takes: `#[job_handler]` implements it
/// (`SendEmail: PayloadOf<SendEmailHandler>`), so
/// `jobs::testing::perform::<SendEmailHandler>(SendEmail { .. })` checks the
/// payload's type at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the payload of `{H}`",
    label = "not the payload `{H}` takes",
    note = "`perform::<H>(payload)` runs a handler `#[job_handler]` generated (`send_email` → `SendEmailHandler`) on the payload its function takes; for a hand-written `JobHandler`, use `perform_with(handler, payload)`"
)]
pub trait PayloadOf<H>: crate::JobPayload {}

#[diagnostic::do_not_recommend]
impl<P: crate::JobPayload + HandledBy<H>, H> PayloadOf<H> for P {}

/// What `#[job_handler]` implements to link a payload to its handler (see
/// [`PayloadOf`], which reports a mismatch in its own words).
#[doc(hidden)]
pub trait HandledBy<H> {}

/// Implemented by every handler type `#[job_handler]` generates, and by
/// nothing else: the expansion checks with it that the handler's name, where
/// the function is, is its own type and not one of yours.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is already a type of yours, so `#[job_handler]` cannot name the handler it generates `{Self}`",
    label = "the generated handler would be named `{Self}`",
    note = "name the generated handler yourself, `#[job_handler(.., name = MyHandler)]`, or rename your type"
)]
pub trait GeneratedHandler {
    /// Naming it is the check.
    const NAME_IS_FREE: () = ();
}

/// The object-safe form of [`JobHandler`] the runtime stores; every `JobHandler`
/// is one.
pub trait DynHandler: Send + Sync + 'static {
    /// [`JobHandler::job_type`].
    fn job_type(&self) -> &str;
    /// [`JobHandler::handle`], boxed.
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<JobResult, JobError>>;
    /// [`JobHandler::on_failure`], boxed.
    fn on_failure<'a>(
        &'a self,
        job: &'a Job,
        error: &'a JobError,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
    /// [`JobHandler::timeout`].
    fn timeout(&self) -> Option<Timeout>;
    /// [`JobHandler::backoff`].
    fn backoff(&self) -> Option<Backoff>;
    /// [`JobHandler::requirements`].
    fn requirements(&self) -> Vec<ServiceRequirement>;
}

impl<H: JobHandler> DynHandler for H {
    fn job_type(&self) -> &str {
        JobHandler::job_type(self)
    }

    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<JobResult, JobError>> {
        Box::pin(JobHandler::handle(self, job))
    }

    fn on_failure<'a>(
        &'a self,
        job: &'a Job,
        error: &'a JobError,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(JobHandler::on_failure(self, job, error))
    }

    fn timeout(&self) -> Option<Timeout> {
        JobHandler::timeout(self)
    }

    fn backoff(&self) -> Option<Backoff> {
        JobHandler::backoff(self)
    }

    fn requirements(&self) -> Vec<ServiceRequirement> {
        JobHandler::requirements(self)
    }
}
