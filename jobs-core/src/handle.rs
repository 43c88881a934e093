//! Typed result handles: await a job's outcome as the type its handler returns.
//!
//! ```
//! # use jobs_core::{JobHandle, JobOutput, JobPayload, Queue};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct GenerateReport { month: u32 }
//! # #[derive(serde::Deserialize)] struct ReportReady { url: String }
//! # impl JobPayload for GenerateReport { const JOB_TYPE: &'static str = "report.generate"; }
//! # impl JobOutput for GenerateReport { type Output = ReportReady; }
//! # async fn demo(queue: Queue) -> Result<(), Box<dyn std::error::Error>> {
//! let handle = queue.enqueue(GenerateReport { month: 5 }).handle().await?;
//! let report: ReportReady = handle.result().await?;
//!
//! // Elsewhere (another process), knowing only the id:
//! let again = JobHandle::<GenerateReport>::from_id(&queue, handle.id());
//! let report = again.result_timeout(std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Backend, BoxFuture, Enqueued, Error, Job, JobId, JobStatus, Queue};

/// The type a payload's handler returns on success: what its job's
/// `result_data` decodes into, and what [`JobHandle::result`] resolves to.
///
/// `#[job_handler]` implements it for the handler's payload: the `T` of a
/// `Result<T, E>` return type, `()` for a function that returns nothing, and
/// [`serde_json::Value`] when the return type is not written out as
/// `Result<T, E>` (an alias such as `anyhow::Result<T>`, or `JobResult`) or
/// `T` borrows (`&str`). For a hand-written [`JobHandler`](crate::JobHandler),
/// implement it by hand next to [`JobPayload`](crate::JobPayload), or await
/// an untyped handle (`JobHandle<serde_json::Value>`).
///
/// `Output` has no bounds, so a handler whose result is only `Serialize` still
/// compiles; awaiting its typed result needs `Output: DeserializeOwned`.
///
/// `H` is the handler that returns it: `#[job_handler]` writes
/// `impl JobOutput<SendEmailHandler> for SendEmail`, so that a second handler
/// for the same payload is one error (the conflicting `JobPayload`), not two.
/// [`JobHandle::result`] finds `H` by itself, from the one impl there is. A
/// hand-written impl leaves it out (`impl JobOutput for MyPayload`, `H = ()`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no typed result",
    label = "no `#[job_handler]` for `{Self}` declares what it returns",
    note = "`#[job_handler]` implements `JobOutput` for its payload; for a hand-written handler write `impl JobOutput for {Self} {{ type Output = YourResult; }}`, or await the untyped result with `JobHandle<serde_json::Value>` / `result_value()`"
)]
pub trait JobOutput<H = ()> {
    /// What the handler returns on success (the `T` of its `Result<T, E>`).
    type Output;
}

/// Any job, its result as JSON: `JobHandle<serde_json::Value>` awaits a job
/// of any type (a raw enqueue, a hand-written handler) and resolves to its
/// `result_data` (`null` when none was stored).
impl JobOutput for Value {
    type Output = Value;
}

/// Why awaiting a job's result gave no result.
///
/// A job that is still waiting or running when the wait times out is left
/// untouched ([`Timeout`](JobResultError::Timeout)); the other variants are
/// terminal states (an operator may still requeue a failed or dead job, and a
/// new wait then follows its next run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobResultError {
    /// The job failed for good (FAILED: a permanent error, a failed
    /// `JobResult`, a payload that did not deserialize).
    #[error("job {id} ({job_type}) failed: {last_error}")]
    Failed {
        /// The job.
        id: JobId,
        /// Its job type.
        job_type: String,
        /// Its status (FAILED).
        status: JobStatus,
        /// Its last error.
        last_error: String,
        /// The job as last read.
        job: Box<Job>,
    },

    /// The job used up its retries (DEAD_LETTER).
    #[error("job {id} ({job_type}) is dead-lettered after {attempts} attempts: {last_error}")]
    DeadLettered {
        /// The job.
        id: JobId,
        /// Its job type.
        job_type: String,
        /// Its status (DEAD_LETTER).
        status: JobStatus,
        /// How many attempts it made.
        attempts: u32,
        /// The error of its last attempt.
        last_error: String,
        /// The job as last read.
        job: Box<Job>,
    },

    /// The job was cancelled (FAILED with a cancellation mark).
    #[error("job {id} ({job_type}) was cancelled: {last_error}")]
    Cancelled {
        /// The job.
        id: JobId,
        /// Its job type.
        job_type: String,
        /// Its status (FAILED).
        status: JobStatus,
        /// Who cancelled it and why, as its error says.
        last_error: String,
        /// The job as last read.
        job: Box<Job>,
    },

    /// The job had not finished when the wait ran out; it is left as it is
    /// and can be awaited again.
    #[error(
        "job {id} had not finished after {waited:?} (it is {status}); it was left as it is — wait again, or look at it with `queue.get(id)`"
    )]
    Timeout {
        /// The job.
        id: JobId,
        /// Its status when the wait ran out.
        status: JobStatus,
        /// How long the wait lasted.
        waited: Duration,
    },

    /// No job has this id: never enqueued on this backend, or deleted or
    /// pruned since (prune finished jobs only after their results were read).
    #[error(
        "job {id} does not exist (never enqueued on this backend, or deleted or pruned since)"
    )]
    NotFound {
        /// The id that was awaited.
        id: JobId,
    },

    /// The job completed, but its stored result does not decode into the
    /// handle's output type (a handle of the wrong payload type, or a
    /// handler whose result type changed since the job ran).
    #[error(
        "job {id} ({job_type}) completed, but its result does not decode as `{expected}`: {reason}; read it untyped with `result_value()`"
    )]
    Decode {
        /// The job.
        id: JobId,
        /// Its job type.
        job_type: String,
        /// The type the handle expected.
        expected: &'static str,
        /// What did not fit, with the field path.
        reason: String,
        /// The stored result, as JSON.
        result: Option<Value>,
    },

    /// The backend failed while the job was awaited.
    #[error(transparent)]
    Backend(#[from] Error),
}

impl JobResultError {
    /// The job's status when the wait ended, where there was a job.
    pub fn status(&self) -> Option<JobStatus> {
        match self {
            JobResultError::Failed { status, .. }
            | JobResultError::DeadLettered { status, .. }
            | JobResultError::Cancelled { status, .. }
            | JobResultError::Timeout { status, .. } => Some(*status),
            JobResultError::Decode { .. } => Some(JobStatus::Completed),
            JobResultError::NotFound { .. } | JobResultError::Backend(_) => None,
        }
    }

    /// Whether the wait ran out with the job unfinished.
    pub fn is_timeout(&self) -> bool {
        matches!(self, JobResultError::Timeout { .. })
    }
}

/// A handle on one job that resolves to its handler's result, typed by the
/// payload `P` ([`JobOutput::Output`]); `JobHandle<serde_json::Value>` is the
/// untyped one, for any job.
///
/// Get one from a typed enqueue (`queue.enqueue(p).handle().await?`), from an
/// id ([`from_id`](Self::from_id), also in another process: it only needs the
/// backend), or with [`Queue::handle`]. When a unique enqueue was refused as a
/// duplicate (or replaced a waiting job), the handle refers to the job that
/// holds the key, whose result is the one to await.
///
/// Waiting uses the backend's completion signal ([`Backend::wait_finished`]):
/// in-process for memory and SQLite, a `NOTIFY` or `PUBLISH` from the store
/// for PostgreSQL and Redis (so a handle in any process wakes at once), and
/// reads with a backoff for a backend without one. Nothing waits in the
/// background: dropping the handle or its future stops waiting (PostgreSQL
/// and Redis keep one listening connection per backend once a wait began).
///
/// A typed result needs the payload's [`JobOutput`]; a payload without one
/// (no `#[job_handler]` declares what it returns) does not compile, and says
/// to await it untyped:
///
/// ```compile_fail
/// # use jobs_core::{JobHandle, JobId, JobPayload, Queue};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Raw;
/// impl JobPayload for Raw {
///     const JOB_TYPE: &'static str = "raw";
/// }
/// # async fn demo(queue: Queue) {
/// let _ = JobHandle::<Raw>::from_id(&queue, JobId::new()).result().await;
/// # }
/// ```
pub struct JobHandle<P> {
    queue: Queue,
    id: JobId,
    enqueued: Option<Enqueued>,
    _payload: PhantomData<fn() -> P>,
}

impl<P> Clone for JobHandle<P> {
    fn clone(&self) -> Self {
        JobHandle {
            queue: self.queue.clone(),
            id: self.id,
            enqueued: self.enqueued,
            _payload: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for JobHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.id)
            .field("payload", &std::any::type_name::<P>())
            .field("enqueued", &self.enqueued)
            .finish()
    }
}

/// How long one call to [`Backend::wait_finished`] may last while a wait has
/// no deadline (the loop calls it again).
const WAIT_SLICE: Duration = Duration::from_secs(3600);

impl<P> JobHandle<P> {
    /// A handle on job `id` of `queue`'s backend: from another process, a
    /// stored id, a web request. Nothing is read until it is awaited, so an
    /// id that does not exist resolves to [`JobResultError::NotFound`].
    pub fn from_id(queue: &Queue, id: impl Into<JobId>) -> Self {
        JobHandle {
            queue: queue.clone(),
            id: id.into(),
            enqueued: None,
            _payload: PhantomData,
        }
    }

    pub(crate) fn from_enqueued(queue: &Queue, enqueued: Enqueued) -> Self {
        JobHandle {
            enqueued: Some(enqueued),
            ..JobHandle::from_id(queue, enqueued.id())
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// How the enqueue that made this handle went (inserted, or a duplicate
    /// or replacement of the job that holds the unique key); `None` for a
    /// handle made [`from_id`](Self::from_id).
    pub fn enqueued(&self) -> Option<Enqueued> {
        self.enqueued
    }

    /// The same job, its result typed as `Q` says (say,
    /// `JobHandle<serde_json::Value>` for the raw JSON).
    pub fn cast<Q>(self) -> JobHandle<Q> {
        JobHandle {
            queue: self.queue,
            id: self.id,
            enqueued: self.enqueued,
            _payload: PhantomData,
        }
    }

    /// The job as stored now, if it exists.
    pub async fn job(&self) -> Result<Option<Job>, Error> {
        self.queue.get(self.id).await
    }

    /// The job's status now ([`JobResultError::NotFound`] if it is gone).
    pub async fn status(&self) -> Result<JobStatus, JobResultError> {
        match self.job().await? {
            Some(job) => Ok(job.status),
            None => Err(JobResultError::NotFound { id: self.id }),
        }
    }

    /// Waits until the job has finished — COMPLETED, FAILED or DEAD_LETTER —
    /// or `timeout` (if any) passes, and returns it as it then is, whatever
    /// the outcome; see [`result`](Self::result) for the outcome as a `Result`.
    pub async fn wait_job(&self, timeout: Option<Duration>) -> Result<Job, JobResultError> {
        let backend: &dyn Backend = self.queue.backend().as_ref();
        let start = tokio::time::Instant::now();
        loop {
            let slice = match timeout {
                Some(t) => t.saturating_sub(start.elapsed()),
                None => WAIT_SLICE,
            };
            let job = backend
                .wait_finished(self.id, slice)
                .await?
                .ok_or(JobResultError::NotFound { id: self.id })?;
            if job.status.is_terminal() {
                return Ok(job);
            }
            if let Some(t) = timeout {
                if start.elapsed() >= t {
                    return Err(JobResultError::Timeout {
                        id: self.id,
                        status: job.status,
                        waited: start.elapsed(),
                    });
                }
            }
        }
    }

    /// Waits for the job to finish (no time limit) and returns its stored
    /// result as JSON (`None` when the handler stored none), or why it has none.
    pub async fn result_value(&self) -> Result<Option<Value>, JobResultError> {
        outcome(self.wait_job(None).await?)
    }

    /// [`result_value`](Self::result_value), waiting at most `timeout`.
    pub async fn result_value_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Value>, JobResultError> {
        outcome(self.wait_job(Some(timeout)).await?)
    }
}

impl<P> JobHandle<P> {
    /// Waits for the job to finish, with no time limit, and returns what its
    /// handler returned — or why it did not: [`JobResultError::Failed`],
    /// [`DeadLettered`](JobResultError::DeadLettered),
    /// [`Cancelled`](JobResultError::Cancelled) (each with the job's last
    /// error), [`NotFound`](JobResultError::NotFound),
    /// [`Decode`](JobResultError::Decode). A job that completed with no
    /// stored result decodes from `null` (so `()` and `Option<T>` work).
    ///
    /// `H` (the handler) and `T` (its output) are inferred from the payload's
    /// one [`JobOutput`] impl. The future is boxed, so a payload without one
    /// is a single error, at the call.
    pub fn result<H, T>(&self) -> BoxFuture<'_, Result<T, JobResultError>>
    where
        P: JobOutput<H, Output = T>,
        T: DeserializeOwned + Send,
    {
        Box::pin(async move {
            let job = self.wait_job(None).await?;
            decode::<T>(&job, outcome(job.clone())?)
        })
    }

    /// [`result`](Self::result), waiting at most `timeout`:
    /// [`JobResultError::Timeout`] if the job has not finished by then (it
    /// is left untouched; wait again as often as you like).
    pub fn result_timeout<H, T>(
        &self,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<T, JobResultError>>
    where
        P: JobOutput<H, Output = T>,
        T: DeserializeOwned + Send,
    {
        Box::pin(async move {
            let job = self.wait_job(Some(timeout)).await?;
            decode::<T>(&job, outcome(job.clone())?)
        })
    }

    /// Another name for [`result_timeout`](Self::result_timeout).
    pub fn wait<H, T>(&self, timeout: Duration) -> BoxFuture<'_, Result<T, JobResultError>>
    where
        P: JobOutput<H, Output = T>,
        T: DeserializeOwned + Send,
    {
        self.result_timeout(timeout)
    }
}

/// A finished job's result, or the error its terminal state stands for.
fn outcome(job: Job) -> Result<Option<Value>, JobResultError> {
    let last_error = || {
        job.error_message
            .clone()
            .or_else(|| job.errors.last().map(|e| e.message.clone()))
            .unwrap_or_else(|| "(no error recorded)".to_owned())
    };
    match job.status {
        JobStatus::Completed => Ok(job.result_data),
        JobStatus::Failed if job.cancelled_at.is_some() => Err(JobResultError::Cancelled {
            id: job.id,
            job_type: job.job_type.clone(),
            status: job.status,
            last_error: last_error(),
            job: Box::new(job),
        }),
        JobStatus::Failed => Err(JobResultError::Failed {
            id: job.id,
            job_type: job.job_type.clone(),
            status: job.status,
            last_error: last_error(),
            job: Box::new(job),
        }),
        JobStatus::DeadLetter => Err(JobResultError::DeadLettered {
            id: job.id,
            job_type: job.job_type.clone(),
            status: job.status,
            attempts: job.attempt,
            last_error: last_error(),
            job: Box::new(job),
        }),
        status => Err(JobResultError::Timeout {
            id: job.id,
            status,
            waited: Duration::ZERO,
        }),
    }
}

fn decode<T: DeserializeOwned>(job: &Job, result: Option<Value>) -> Result<T, JobResultError> {
    let value = result.clone().unwrap_or(Value::Null);
    crate::payload::parse_payload::<T>(&value).map_err(|reason| JobResultError::Decode {
        id: job.id,
        job_type: job.job_type.clone(),
        expected: std::any::type_name::<T>(),
        reason,
        result,
    })
}

/// The default [`Backend::wait_finished`]: reads the job with a backoff
/// from 20 ms to 1 s until it has finished or `timeout` passes.
pub(crate) async fn poll_finished<B: Backend + ?Sized>(
    backend: &B,
    id: JobId,
    timeout: Duration,
) -> Result<Option<Job>, Error> {
    let deadline = tokio::time::Instant::now() + timeout.min(WAIT_SLICE);
    let mut pause = Duration::from_millis(20);
    loop {
        let job = backend.get(id).await?;
        let now = tokio::time::Instant::now();
        match job {
            Some(job) if !job.status.is_terminal() && now < deadline => {
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            job => return Ok(job),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus) -> Job {
        let mut job = Job::new(JobId::new(), "t", Value::Null);
        job.status = status;
        job
    }

    #[test]
    fn terminal_states_become_typed_errors() {
        let mut done = job(JobStatus::Completed);
        done.result_data = Some(serde_json::json!({"n": 3}));
        assert_eq!(outcome(done).unwrap(), Some(serde_json::json!({"n": 3})));

        let mut failed = job(JobStatus::Failed);
        failed.error_message = Some("bad input".into());
        match outcome(failed).unwrap_err() {
            JobResultError::Failed {
                last_error, status, ..
            } => {
                assert_eq!(
                    (last_error.as_str(), status),
                    ("bad input", JobStatus::Failed)
                );
            }
            other => panic!("{other:?}"),
        }

        let mut cancelled = job(JobStatus::Failed);
        cancelled.cancelled_at = Some(chrono::Utc::now());
        assert!(matches!(
            outcome(cancelled).unwrap_err(),
            JobResultError::Cancelled { .. }
        ));

        let mut dead = job(JobStatus::DeadLetter);
        dead.attempt = 4;
        dead.error_message = Some("smtp down".into());
        let err = outcome(dead).unwrap_err();
        assert!(err.to_string().contains("4 attempts: smtp down"), "{err}");
        assert_eq!(err.status(), Some(JobStatus::DeadLetter));
    }

    #[test]
    fn results_decode_into_the_output_type_or_say_why_not() {
        let j = job(JobStatus::Completed);
        decode::<()>(&j, None).unwrap();
        assert_eq!(decode::<Option<u32>>(&j, None).unwrap(), None);
        assert_eq!(decode::<u32>(&j, Some(Value::from(7))).unwrap(), 7);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Report {
            url: String,
        }
        let err = decode::<Report>(&j, Some(serde_json::json!({"url": 5}))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("url") && msg.contains("Report"), "{msg}");
    }
}
