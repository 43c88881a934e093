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
    Backend, BoxFuture, CancelRequest, Enqueued, Error, Job, JobFilter, JobHandle, JobId, JobPage,
    JobPayload, NewJob, PruneRequest, QueueCount, Result, ScheduleState, Uniqueness, WorkerInfo,
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
    /// Who acts through this handle, for the audit log (`api` unless set).
    actor: Arc<str>,
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
            actor: Arc::from("api"),
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

    /// This handle, acting as `actor` (`alice`, `cli:ops`, `dashboard`):
    /// its operator actions — requeue, cancel, delete, pause, resume, prune
    /// — are written to the audit log under that name (`api` by default).
    pub fn with_actor(mut self, actor: impl AsRef<str>) -> Self {
        self.actor = Arc::from(actor.as_ref());
        self
    }

    /// Who acts through this handle.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Writes an operator action and how it went to the audit log. A backend
    /// without one, or one that fails to write, does not fail the action.
    async fn audit<T>(
        &self,
        action: &str,
        target: String,
        result: &Result<T>,
        summary: impl FnOnce(&T) -> String,
    ) {
        let entry =
            crate::AuditEntry::new(self.actor.as_ref(), action, target).result(match result {
                Ok(v) => Ok(summary(v)),
                Err(e) => Err(e.to_string()),
            });
        let _ = self.backend.append_audit(&entry).await;
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, filter: &crate::AuditFilter) -> Result<Vec<crate::AuditEntry>> {
        self.backend.audit_log(filter).await
    }

    /// The backend behind this handle.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Enqueues a typed payload; its job type and defaults come from the type.
    /// Options can be chained before `.await`; end with
    /// [`.handle()`](Enqueue::handle) instead of `.await` alone to get a
    /// [`JobHandle`] that awaits the handler's typed result.
    pub fn enqueue<P: JobPayload>(&self, payload: P) -> Enqueue<'_, P> {
        Enqueue::new(self, typed_job(&payload, &P::options()), true)
    }

    /// A handle on job `id` whose result is typed as `P`'s handler returns
    /// it (`Queue::handle::<serde_json::Value>(id)` for any job, untyped);
    /// see [`JobHandle::from_id`].
    pub fn handle<P>(&self, id: impl Into<JobId>) -> JobHandle<P> {
        JobHandle::from_id(self, id)
    }

    /// Enqueues by job type and JSON payload. If a handler for `job_type` is
    /// registered in this process, the payload is checked against its payload
    /// type and refused before anything is stored.
    pub fn enqueue_raw(&self, job_type: impl Into<String>, payload: Value) -> Enqueue<'_, Value> {
        Enqueue::new(self, Ok(NewJob::new(job_type, payload)), false)
    }

    /// Enqueues a prepared job (checked as by `enqueue_raw`).
    pub async fn enqueue_job(&self, job: NewJob) -> Result<Enqueued> {
        let mut ids = self.enqueue_many(vec![job]).await?;
        Ok(ids.remove(0))
    }

    /// Enqueues typed payloads in one batch, all or none; with unique keys,
    /// each item says how it went.
    pub async fn enqueue_batch<P: JobPayload>(
        &self,
        payloads: impl IntoIterator<Item = P>,
    ) -> Result<Vec<Enqueued>> {
        let options = P::options();
        let jobs = payloads
            .into_iter()
            .map(|p| typed_job(&p, &options))
            .collect::<Result<Vec<_>>>()?;
        self.store(jobs, true).await
    }

    /// Enqueues prepared jobs in one batch, all or none; each payload is checked
    /// against its registered handler first.
    pub async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        self.store(jobs, false).await
    }

    async fn store(&self, jobs: Vec<NewJob>, checked: bool) -> Result<Vec<Enqueued>> {
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
        #[cfg(feature = "otel")]
        let jobs = {
            let mut jobs = jobs;
            for job in &mut jobs {
                crate::trace::inject(&mut job.metadata);
            }
            jobs
        };
        let labels: Vec<_> = jobs
            .iter()
            .map(|j| (j.queue_name.clone(), j.job_type.clone()))
            .collect();
        let results = self.backend.enqueue_batch(jobs).await?;
        for ((queue, job_type), result) in labels.into_iter().zip(&results) {
            crate::metrics::enqueued(queue, job_type, result);
        }
        Ok(results)
    }

    /// The job with this id, if it exists.
    pub async fn get(&self, id: impl Into<JobId>) -> Result<Option<Job>> {
        self.backend.get(id.into()).await
    }

    /// Jobs matching `filter`, in enqueue order: **one page** of at most
    /// `filter.limit` jobs (100 with `JobFilter::default()`), starting at
    /// `filter.offset`. For every match use [`list_all`](Self::list_all), or
    /// [`pages`](Self::pages) to walk them a page at a time.
    ///
    /// A filter that searches, sorts other than by enqueue order or starts at
    /// a cursor is one page of [`list_page`](Self::list_page) (which may end
    /// early, at the filter's `scan_limit`).
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        if filter.is_keyset() {
            return Ok(self.backend.list_page(filter).await?.jobs);
        }
        self.backend.list(filter).await
    }

    /// One page of the jobs matching `filter`, in its order, with the cursor
    /// of the next one: deep pages cost what the first does, and jobs
    /// enqueued meanwhile neither repeat nor shift a page. See
    /// [`Backend::list_page`].
    ///
    /// ```
    /// # async fn demo(queue: jobs_core::Queue) -> jobs_core::Result<()> {
    /// use jobs_core::{JobFilter, JobSort};
    /// let mut filter = JobFilter::default().search("timeout").sort(JobSort::Newest).limit(50);
    /// loop {
    ///     let page = queue.list_page(&filter).await?;
    ///     for job in &page.jobs { println!("{} {}", job.id, job.job_type) }
    ///     match page.next {
    ///         Some(next) => filter.after = Some(next), // or carry `next.to_string()` in a URL
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_page(&self, filter: &JobFilter) -> Result<JobPage> {
        self.backend.list_page(filter).await
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
    /// Pages are read with [`list_page`](Self::list_page)'s cursor, so jobs
    /// enqueued or deleted meanwhile do not shift them (with an `offset`,
    /// the older offset paging is used instead, which they may shift).
    pub fn pages(&self, filter: JobFilter) -> JobPages<'_> {
        JobPages {
            queue: self,
            filter,
            done: false,
        }
    }

    /// Cancels a job: a waiting one becomes FAILED (marked cancelled) and is
    /// never claimed; a running one is stopped by its worker — its
    /// cancellation token fires within about a second, wherever it runs —
    /// and then becomes FAILED, marked cancelled.
    pub async fn cancel(&self, id: impl Into<JobId>) -> Result<Job> {
        self.cancel_with(id, &CancelRequest::default()).await
    }

    /// [`cancel`](Self::cancel), saying who asks and why (shown as the job's error).
    pub async fn cancel_with(&self, id: impl Into<JobId>, request: &CancelRequest) -> Result<Job> {
        let id = id.into();
        let mut request = request.clone();
        if request.by.is_none() {
            request.by = Some(self.actor.to_string());
        }
        let result = self.backend.cancel(id, &request).await;
        self.audit("cancel", id.to_string(), &result, |j| {
            format!("{} ({})", request.message(), j.status)
        })
        .await;
        result
    }

    /// Deletes a job that is not running (cancel a running one first).
    pub async fn delete(&self, id: impl Into<JobId>) -> Result<()> {
        let id = id.into();
        let result = self.backend.delete_job(id).await;
        self.audit("delete", id.to_string(), &result, |_| String::new())
            .await;
        result
    }

    /// Puts a FAILED or DEAD_LETTER job back in its queue with a fresh retry budget.
    pub async fn requeue(&self, id: impl Into<JobId>) -> Result<Job> {
        let id = id.into();
        let result = self.backend.requeue(id).await;
        self.audit("requeue", id.to_string(), &result, |j| j.status.to_string())
            .await;
        result
    }

    /// Requeues every job `filter` takes (FAILED or DEAD_LETTER ones of a
    /// queue, a job type...) in batches the backend applies atomically, and
    /// writes one audit entry (`requeue-many`) with how many went back.
    /// Unique jobs whose key is taken meanwhile are skipped and reported.
    pub async fn requeue_many(
        &self,
        filter: &crate::RequeueFilter,
    ) -> Result<crate::RequeueReport> {
        let result = match filter.validate() {
            Ok(()) => self.backend.requeue_many(filter).await,
            Err(e) => Err(e),
        };
        self.audit("requeue-many", filter.describe(), &result, |r| r.summary())
            .await;
        result
    }

    /// What the jobs did per minute and per queue since `since` (see
    /// [`Backend::throughput`]).
    pub async fn throughput(&self, since: DateTime<Utc>) -> Result<Vec<crate::ThroughputBucket>> {
        self.backend.throughput(since).await
    }

    /// Appends `entry` to the audit log: for an application's own operator
    /// actions, beside the ones this handle writes itself.
    pub async fn append_audit(&self, entry: &crate::AuditEntry) -> Result<()> {
        self.backend.append_audit(entry).await
    }

    /// How many jobs each queue has in each status.
    pub async fn counts(&self) -> Result<Vec<QueueCount>> {
        self.backend.counts().await
    }

    /// Deletes terminal jobs finished before `before`, in batches of `batch`,
    /// until none is left; returns how many went.
    pub async fn prune(&self, before: DateTime<Utc>, batch: usize) -> Result<u64> {
        self.prune_matching(PruneRequest::new(before, batch)).await
    }

    /// Deletes the finished jobs `req` describes, `req.limit` at a time,
    /// until none is left; returns how many went.
    pub async fn prune_matching(&self, mut req: PruneRequest) -> Result<u64> {
        req.limit = req.limit.max(1);
        let mut total = 0;
        let result = loop {
            match self.backend.prune(&req).await {
                Ok(n) => {
                    total += n;
                    if (n as usize) < req.limit {
                        break Ok(total);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let target = format!(
            "{} finished before {}{}",
            req.statuses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            req.before.to_rfc3339(),
            req.queue
                .as_deref()
                .map(|q| format!(" in queue {q}"))
                .unwrap_or_default()
        );
        self.audit("prune", target, &result, |n| format!("{n} jobs"))
            .await;
        result
    }

    /// Pauses `queue` for every worker (persisted): its jobs wait, running
    /// ones finish.
    pub async fn pause(&self, queue: &str) -> Result<()> {
        let result = self.backend.pause_queue(queue).await;
        self.audit("pause", queue.to_owned(), &result, |_| String::new())
            .await;
        result
    }

    /// Resumes a paused queue; idle workers wake at once.
    pub async fn resume(&self, queue: &str) -> Result<()> {
        let result = self.backend.resume_queue(queue).await;
        self.audit("resume", queue.to_owned(), &result, |_| String::new())
            .await;
        result
    }

    /// The paused queues.
    pub async fn paused(&self) -> Result<Vec<String>> {
        self.backend.paused_queues().await
    }

    /// The running workers, as they registered themselves.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.backend.workers().await
    }

    /// The periodic schedules, as the backend remembers them.
    pub async fn schedules(&self) -> Result<Vec<ScheduleState>> {
        self.backend.schedules().await
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
    let unique = payload.uniqueness();
    let limits = payload.limits();
    serde_json::to_value(payload)
        .map(|v| {
            let job = NewJob::new(P::JOB_TYPE, v)
                .with_options(options)
                .limits(limits);
            match unique {
                Some(u) => job.unique(u),
                None => job,
            }
        })
        .map_err(|e| {
            refuse(format!(
                "could not serialize `{}`: {e}",
                std::any::type_name::<P>()
            ))
        })
}

/// A pending enqueue: chain options, then `.await` it for the job's id
/// ([`Enqueued`]), or `.handle().await` for a [`JobHandle`] on the job. It
/// is a future, so forgetting the `.await` is a warning and `enqueue(..)?`
/// without it an error that says to add it.
///
/// `P` is the payload type of a typed enqueue ([`Queue::enqueue`]), which
/// types the handle's result; `serde_json::Value` for `enqueue_raw`.
#[must_use = "an enqueue does nothing until it is `.await`ed: `queue.enqueue(..).await?`"]
pub struct Enqueue<'a, P = Value> {
    queue: &'a Queue,
    state: EnqueueState<'a>,
    _payload: std::marker::PhantomData<fn() -> P>,
}

enum EnqueueState<'a> {
    /// Options can still be chained.
    Building {
        /// Boxed: a job is large next to a future.
        job: Box<Result<NewJob>>,
        checked: bool,
    },
    /// Polled: the job is on its way to the backend.
    Storing(BoxFuture<'a, Result<Enqueued>>),
    Done,
}

impl<P> std::fmt::Debug for Enqueue<'_, P> {
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

impl<'a, P> Enqueue<'a, P> {
    fn new(queue: &'a Queue, job: Result<NewJob>, checked: bool) -> Self {
        Enqueue {
            queue,
            state: EnqueueState::Building {
                job: Box::new(job),
                checked,
            },
            _payload: std::marker::PhantomData,
        }
    }

    /// Enqueues the job and returns a [`JobHandle`] on it, whose
    /// [`result`](JobHandle::result) awaits what the handler returns. For a
    /// unique job refused as a duplicate (or merged into a waiting one), the
    /// handle refers to the job that holds the key;
    /// [`JobHandle::enqueued`] says which happened.
    ///
    /// ```
    /// # use jobs_core::{JobOutput, JobPayload, Queue};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { width: u32 }
    /// # impl JobPayload for Resize { const JOB_TYPE: &'static str = "image.resize"; }
    /// # impl JobOutput for Resize { type Output = u64; }
    /// # async fn demo(queue: Queue) -> Result<(), Box<dyn std::error::Error>> {
    /// let bytes: u64 = queue.enqueue(Resize { width: 640 }).priority(5).handle().await?.result().await?;
    /// # Ok(()) }
    /// ```
    pub async fn handle(self) -> Result<JobHandle<P>> {
        let queue = self.queue;
        let enqueued = self.await?;
        Ok(JobHandle::from_enqueued(queue, enqueued))
    }

    fn map(mut self, f: impl FnOnce(NewJob) -> NewJob) -> Self {
        if let EnqueueState::Building { job, checked } = self.state {
            self.state = EnqueueState::Building {
                job: Box::new(job.map(f)),
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

    /// Makes the job unique as `unique` says (over its type's own, if any).
    pub fn unique(self, unique: Uniqueness) -> Self {
        self.map(|j| j.unique(unique))
    }

    /// At most `max` jobs with `key` run at once, across every worker
    /// (overrides the key its type declares).
    pub fn concurrency(self, key: impl Into<String>, max: u32) -> Self {
        let key = key.into();
        self.map(|j| j.concurrency(key, max))
    }

    /// At most `max` jobs with `key` start per `per`, across every worker.
    pub fn rate_limit(self, key: impl Into<String>, max: u32, per: Duration) -> Self {
        let key = key.into();
        self.map(|j| j.rate_limit(key, max, per))
    }

    /// Jobs with `key` run one at a time, in enqueue order.
    pub fn sequence(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.map(|j| j.sequence(key))
    }

    /// Unique on `key` (a [`UniqueKey`](crate::UniqueKey) or any text of
    /// yours), keeping the period and states its type declares, if any.
    pub fn unique_key(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.map(|j| {
            let unique = match j.unique.clone() {
                Some(mut u) => {
                    u.key = key;
                    u
                }
                None => Uniqueness::new(key),
            };
            j.unique(unique)
        })
    }

    /// Unique once per `period` (on its type's key, or on the whole payload
    /// if the type declares none).
    pub fn unique_for(self, period: Duration) -> Self {
        self.map(|j| {
            let u = j.unique.clone().unwrap_or_else(|| {
                Uniqueness::new(
                    crate::UniqueKey::new(&j.job_type)
                        .payload(&j.payload)
                        .finish(),
                )
            });
            j.unique(u.period(period))
        })
    }

    /// The job as it would be enqueued.
    pub fn into_new_job(self) -> Result<NewJob> {
        match self.state {
            EnqueueState::Building { job, .. } => *job,
            _ => Err(Error::InvalidJob(
                "this enqueue was already polled; its job is on its way".into(),
            )),
        }
    }
}

impl<P> Future for Enqueue<'_, P> {
    type Output = Result<Enqueued>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Enqueued>> {
        let this = &mut *self;
        if let EnqueueState::Building { .. } = this.state {
            let EnqueueState::Building { job, checked } =
                std::mem::replace(&mut this.state, EnqueueState::Done)
            else {
                unreachable!("just matched")
            };
            let queue = this.queue;
            this.state = EnqueueState::Storing(Box::pin(async move {
                let mut ids = queue.store(vec![(*job)?], checked).await?;
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
        if self.filter.offset == 0 && self.filter.limit > 0 {
            // A page that stopped at the scan limit may hold no match: go on.
            loop {
                let page = self.queue.list_page(&self.filter).await?;
                match page.next {
                    Some(next) => self.filter.after = Some(next),
                    None => self.done = true,
                }
                if !page.jobs.is_empty() {
                    return Ok(Some(page.jobs));
                }
                if self.done {
                    return Ok(None);
                }
            }
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
