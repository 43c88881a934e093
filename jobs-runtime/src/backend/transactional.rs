//! Transactional enqueue: a capability of the SQL backends only.
//!
//! A job enqueued through [`TransactionalEnqueue`] is written with the caller's
//! own database connection, inside the caller's own transaction, so it exists
//! if and only if that transaction commits — the outbox guarantee. Backends that
//! cannot honour it (memory, Redis) do not implement the trait, and the
//! [`Queue`](jobs_core::Queue) handle does not offer it, so a call that could
//! not keep the promise does not compile:
//!
//! ```compile_fail
//! use jobs_runtime::backend::{memory::MemoryBackend, transactional::TransactionalEnqueue};
//! # async fn demo(backend: MemoryBackend, conn: &mut ()) {
//! // The memory backend has no transactions to join: this does not compile.
//! backend.enqueue_in(conn, jobs_core::NewJob::new("t", serde_json::json!({}))).await;
//! # }
//! ```

use jobs_core::{BoxFuture, Error, JobId, JobPayload, JobQueue, NewJob, Result};

/// Enqueue inside the caller's own database transaction.
pub trait TransactionalEnqueue: JobQueue {
    /// The connection type a transaction derefs to (`sqlx::PgConnection`, ...).
    type Connection: ?Sized + Send;

    /// Stores the jobs with `conn` (usually `&mut *tx`), all or none. They become
    /// visible to workers when, and only if, the caller's transaction commits.
    fn enqueue_many_in<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        jobs: Vec<NewJob>,
    ) -> BoxFuture<'a, Result<Vec<JobId>>>;

    /// Stores one prepared job with `conn`; see [`enqueue_many_in`](Self::enqueue_many_in).
    fn enqueue_in<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        job: NewJob,
    ) -> BoxFuture<'a, Result<JobId>> {
        Box::pin(async move {
            let mut ids = self.enqueue_many_in(conn, vec![job]).await?;
            Ok(ids.remove(0))
        })
    }

    /// Stores a typed payload with `conn`; job type and defaults come from the type.
    fn enqueue_payload_in<'a, P: JobPayload>(
        &'a self,
        conn: &'a mut Self::Connection,
        payload: P,
    ) -> BoxFuture<'a, Result<JobId>>
    where
        Self: Sized,
    {
        let job = serde_json::to_value(&payload)
            .map(|v| NewJob::new(P::JOB_TYPE, v).with_options(&P::options()))
            .map_err(|e| Error::InvalidPayload {
                job_type: P::JOB_TYPE.to_owned(),
                reason: format!("could not serialize `{}`: {e}", std::any::type_name::<P>()),
            });
        Box::pin(async move { self.enqueue_in(conn, job?).await })
    }
}

/// What `Queue` checks before storing a job, for enqueues that bypass it.
pub(crate) fn check_new_job(job: &NewJob) -> Result<()> {
    job.validate()?;
    if let Some(reg) = jobs_core::find_registration(&job.job_type) {
        (reg.check_payload)(&job.payload).map_err(|reason| Error::InvalidPayload {
            job_type: job.job_type.clone(),
            reason: format!("does not fit `{}`: {reason}", reg.payload_type),
        })?;
    }
    Ok(())
}
