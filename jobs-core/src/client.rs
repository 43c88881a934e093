//! `Queue`: the handle applications enqueue and inspect jobs through (the "job
//! creator").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::backend::check_new_job;
use crate::{
    Backend, BoxFuture, Error, Job, JobFilter, JobId, JobPayload, NewJob, QueueCount, Result,
};

/// The client handle applications enqueue and inspect jobs through: cheap to
/// clone, over any [`Backend`]. `connect(url)` returns one.
///
/// ```
/// # async fn demo(queue: jobs_core::Queue) -> jobs_core::Result<()> {
/// let id = queue
///     .enqueue_raw("email.send", serde_json::json!({ "recipient": "a@example.com" }))
///     .queue("emails")
///     .priority(10)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn Backend>,
    max_payload_bytes: usize,
}

/// The largest payload (as JSON) a [`Queue`] enqueues unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.backend.backend_name())
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish()
    }
}

impl<B: Backend> From<B> for Queue {
    fn from(backend: B) -> Self {
        Queue::new(backend)
    }
}

impl From<Arc<dyn Backend>> for Queue {
    fn from(backend: Arc<dyn Backend>) -> Self {
        Queue {
            backend,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

impl Queue {
    /// A handle over `backend`.
    pub fn new(backend: impl Backend) -> Self {
        Queue::from(Arc::new(backend) as Arc<dyn Backend>)
    }

    /// This handle, refusing payloads larger than `bytes` (as JSON) at
    /// enqueue with [`Error::InvalidPayload`] (default
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`], 1 MiB). A job carries its payload on
    /// every claim: put large data elsewhere and enqueue a reference to it.
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// The backend behind this handle.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Enqueues a typed payload; its job type and defaults come from the type.
    /// Options can be chained before `.await`.
    pub fn enqueue<P: JobPayload>(&self, payload: P) -> Enqueue<'_> {
        Enqueue::new(self, typed_job(&payload, &P::options()), true)
    }

    /// Enqueues by job type and JSON payload. If a handler for `job_type` is
    /// registered in this process, the payload is checked against its payload
    /// type and refused before anything is stored.
    pub fn enqueue_raw(&self, job_type: impl Into<String>, payload: Value) -> Enqueue<'_> {
        Enqueue::new(self, Ok(NewJob::new(job_type, payload)), false)
    }

    /// Enqueues a prepared job (checked as by `enqueue_raw`).
    pub async fn enqueue_job(&self, job: NewJob) -> Result<JobId> {
        let mut ids = self.enqueue_many(vec![job]).await?;
        Ok(ids.remove(0))
    }

    /// Enqueues typed payloads in one batch, all or none.
    pub async fn enqueue_batch<P: JobPayload>(
        &self,
        payloads: impl IntoIterator<Item = P>,
    ) -> Result<Vec<JobId>> {
        let options = P::options();
        let jobs = payloads
            .into_iter()
            .map(|p| typed_job(&p, &options))
            .collect::<Result<Vec<_>>>()?;
        self.store(jobs, true).await
    }

    /// Enqueues prepared jobs in one batch, all or none; each payload is checked
    /// against its registered handler first.
    pub async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        self.store(jobs, false).await
    }

    async fn store(&self, jobs: Vec<NewJob>, checked: bool) -> Result<Vec<JobId>> {
        for job in &jobs {
            let size = crate::payload::json_size(&job.payload);
            if size > self.max_payload_bytes {
                return Err(Error::InvalidPayload {
                    job_type: job.job_type.clone(),
                    reason: format!(
                        "the payload is about {size} bytes, over this queue's limit of {} \
                         (`Queue::with_max_payload_bytes`); put large data elsewhere and \
                         enqueue a reference to it",
                        self.max_payload_bytes
                    ),
                });
            }
            if checked {
                job.validate()?;
            } else {
                check_new_job(job)?;
            }
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.backend.enqueue_batch(jobs).await
    }

    /// The job with this id, if it exists.
    pub async fn get(&self, id: JobId) -> Result<Option<Job>> {
        self.backend.get(id).await
    }

    /// Jobs matching `filter`, in enqueue order: **one page** of at most
    /// `filter.limit` jobs (100 with `JobFilter::default()`), starting at
    /// `filter.offset`. For every match use [`list_all`](Self::list_all), or
    /// [`pages`](Self::pages) to walk them a page at a time.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        self.backend.list(filter).await
    }

    /// Every job matching `filter` (its `limit` is the page size, its
    /// `offset` where to start), fetched a page at a time.
    ///
    /// ```
    /// # async fn demo(queue: jobs_core::Queue) -> jobs_core::Result<()> {
    /// use jobs_core::{JobFilter, JobStatus};
    /// let dead = queue.list_all(&JobFilter::default().status(JobStatus::DeadLetter)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn list_all(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let mut pages = self.pages(filter.clone());
        let mut all = Vec::new();
        while let Some(page) = pages.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// The jobs matching `filter`, a page of `filter.limit` at a time (an
    /// async iterator: `while let Some(page) = pages.next_page().await? {..}`).
    /// Pages are read by offset, so jobs enqueued or deleted meanwhile may
    /// shift them; for a stable walk, filter on a status that does not change
    /// under you (say, `DeadLetter` while nobody requeues).
    pub fn pages(&self, filter: JobFilter) -> JobPages<'_> {
        JobPages {
            queue: self,
            filter,
            done: false,
        }
    }

    /// Cancels a waiting job (it becomes FAILED and is never claimed).
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.backend.cancel(id).await
    }

    /// Puts a FAILED or DEAD_LETTER job back in its queue with a fresh retry budget.
    pub async fn requeue(&self, id: JobId) -> Result<Job> {
        self.backend.requeue(id).await
    }

    /// How many jobs each queue has in each status.
    pub async fn counts(&self) -> Result<Vec<QueueCount>> {
        self.backend.counts().await
    }

    /// Deletes terminal jobs finished before `before`, in batches of `batch`,
    /// until none is left; returns how many went.
    pub async fn prune(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let n = self.backend.prune(before, batch).await?;
            total += n;
            if (n as usize) < batch {
                return Ok(total);
            }
        }
    }
}

/// A typed payload as a job: checked (`JobPayload::check`, e.g. `Validate`)
/// and serialized, or refused before anything is stored.
pub(crate) fn typed_job<P: JobPayload>(payload: &P, options: &crate::JobOptions) -> Result<NewJob> {
    let refuse = |reason: String| Error::InvalidPayload {
        job_type: P::JOB_TYPE.to_owned(),
        reason,
    };
    payload.check().map_err(refuse)?;
    serde_json::to_value(payload)
        .map(|v| NewJob::new(P::JOB_TYPE, v).with_options(options))
        .map_err(|e| {
            refuse(format!(
                "could not serialize `{}`: {e}",
                std::any::type_name::<P>()
            ))
        })
}

/// A pending enqueue: chain options, then `.await` it for the job's id. It
/// is a future, so forgetting the `.await` is a warning and `enqueue(..)?`
/// without it an error that says to add it.
#[must_use = "an enqueue does nothing until it is `.await`ed: `queue.enqueue(..).await?`"]
pub struct Enqueue<'a> {
    queue: &'a Queue,
    state: EnqueueState<'a>,
}

enum EnqueueState<'a> {
    /// Options can still be chained.
    Building {
        job: Result<NewJob>,
        checked: bool,
    },
    /// Polled: the job is on its way to the backend.
    Storing(BoxFuture<'a, Result<JobId>>),
    Done,
}

impl std::fmt::Debug for Enqueue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Enqueue");
        match &self.state {
            EnqueueState::Building { job, .. } => d.field("job", job),
            EnqueueState::Storing(_) => d.field("state", &"storing"),
            EnqueueState::Done => d.field("state", &"done"),
        };
        d.finish()
    }
}

impl<'a> Enqueue<'a> {
    fn new(queue: &'a Queue, job: Result<NewJob>, checked: bool) -> Self {
        Enqueue {
            queue,
            state: EnqueueState::Building { job, checked },
        }
    }

    fn map(mut self, f: impl FnOnce(NewJob) -> NewJob) -> Self {
        if let EnqueueState::Building { job, checked } = self.state {
            self.state = EnqueueState::Building {
                job: job.map(f),
                checked,
            };
        }
        self
    }

    /// The queue the job goes to.
    pub fn queue(self, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        self.map(|j| j.queue(queue))
    }

    /// Higher runs first within a queue.
    pub fn priority(self, priority: i32) -> Self {
        self.map(|j| j.priority(priority))
    }

    /// Retries after the first attempt.
    pub fn max_retries(self, max_retries: u32) -> Self {
        self.map(|j| j.max_retries(max_retries))
    }

    /// Not before `delay` from now.
    pub fn delay(self, delay: Duration) -> Self {
        self.map(|j| j.delay(delay))
    }

    /// This job's own time limit per attempt ([`Timeout::Never`](crate::Timeout::Never) for none).
    pub fn timeout(self, timeout: impl Into<crate::Timeout>) -> Self {
        let timeout = timeout.into();
        self.map(|j| j.timeout(timeout))
    }

    /// Not before `run_at`.
    pub fn run_at(self, run_at: DateTime<Utc>) -> Self {
        self.map(|j| j.run_at(run_at))
    }

    /// Adds one metadata entry.
    pub fn metadata(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.map(|j| j.metadata(key, value))
    }

    /// The job as it would be enqueued.
    pub fn into_new_job(self) -> Result<NewJob> {
        match self.state {
            EnqueueState::Building { job, .. } => job,
            _ => Err(Error::InvalidJob(
                "this enqueue was already polled; its job is on its way".into(),
            )),
        }
    }
}

impl Future for Enqueue<'_> {
    type Output = Result<JobId>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<JobId>> {
        let this = &mut *self;
        if let EnqueueState::Building { .. } = this.state {
            let EnqueueState::Building { job, checked } =
                std::mem::replace(&mut this.state, EnqueueState::Done)
            else {
                unreachable!("just matched")
            };
            let queue = this.queue;
            this.state = EnqueueState::Storing(Box::pin(async move {
                let mut ids = queue.store(vec![job?], checked).await?;
                Ok(ids.remove(0))
            }));
        }
        match &mut this.state {
            EnqueueState::Storing(fut) => {
                let out = std::task::ready!(fut.as_mut().poll(cx));
                this.state = EnqueueState::Done;
                Poll::Ready(out)
            }
            _ => panic!("`Enqueue` polled after it completed"),
        }
    }
}

/// Pages of the jobs matching a filter; see [`Queue::pages`].
#[derive(Debug)]
pub struct JobPages<'a> {
    queue: &'a Queue,
    filter: JobFilter,
    done: bool,
}

impl JobPages<'_> {
    /// The next page (at most `filter.limit` jobs), or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Job>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.queue.list(&self.filter).await?;
        if page.len() < self.filter.limit || self.filter.limit == 0 {
            self.done = true;
        }
        self.filter.offset += page.len();
        if page.is_empty() {
            return Ok(None);
        }
        Ok(Some(page))
    }
}
