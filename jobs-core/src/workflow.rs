//! Workflows: DAGs of ordinary `#[job_handler]` jobs whose edges the
//! compiler checks, inserted in one batch and run by any worker.
//!
//! ```
//! # use jobs_core::workflow::{Parent, Parents, Workflow};
//! # use jobs_core::{JobInput, JobOutput, JobPayload, Queue};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] struct Extract { region: String }
//! # #[derive(Serialize, Deserialize)] struct Merge;
//! # #[derive(Serialize, Deserialize)] struct Render;
//! # #[derive(Serialize, Deserialize)] struct Rows(Vec<u32>);
//! # #[derive(Serialize, Deserialize)] struct Report(u32);
//! # impl JobPayload for Extract { const JOB_TYPE: &'static str = "extract"; }
//! # impl JobPayload for Merge { const JOB_TYPE: &'static str = "merge"; }
//! # impl JobPayload for Render { const JOB_TYPE: &'static str = "render"; }
//! # impl JobOutput for Extract { type Output = Rows; }
//! # impl JobOutput for Merge { type Output = Report; }
//! # impl JobOutput for Render { type Output = String; }
//! # impl JobInput for Extract { type Input = jobs_core::workflow::NoInput; }
//! # impl JobInput for Merge { type Input = Parents<Vec<Rows>>; }
//! # impl JobInput for Render { type Input = Parent<Report>; }
//! # async fn demo(queue: Queue) -> Result<(), Box<dyn std::error::Error>> {
//! let mut wf = Workflow::new("monthly-report");
//! let parts: Vec<_> = ["eu", "us"]
//!     .into_iter()
//!     .map(|r| wf.add(Extract { region: r.into() }))
//!     .collect();
//! let merged = wf.join(&parts, Merge); // Merge's handler takes `Parents<Vec<Rows>>`
//! wf.then(&merged, Render); // Render's takes `Parent<Report>`
//! let handle = queue.enqueue_workflow(wf).await?;
//! let status = handle.status().await?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! # How it runs
//!
//! Every step is a real job, carrying the workflow's id, its step name and
//! its edges in `metadata["workflow"]`. A step with parents is stored
//! SCHEDULED at [`HELD_UNTIL`] (held): no worker claims it. When a parent
//! finishes, the worker that ran it settles the edge to each child with the
//! backend ([`Backend::settle_dependencies`](crate::Backend::settle_dependencies),
//! once per edge, atomically), and the child whose every parent settled is
//! released ([`Backend::release_held`](crate::Backend::release_held)). The
//! maintainer re-checks held steps from their parents' statuses, so a
//! worker that dies between recording an outcome and settling it delays a
//! step; it never strands it.
//!
//! A parent that fails for good (FAILED, DEAD_LETTER, cancelled) cancels its
//! held children and their descendants by default
//! ([`OnParentFailure::Cancel`]); a step marked
//! [`OnParentFailure::Run`] runs anyway once its parents finished, and sees
//! the failed parent's result as `null` (take `Parent<Option<T>>`).
//! Requeueing a failed step resumes the workflow: when it completes, the
//! steps the workflow cancelled below it are requeued in turn.

use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    CancelRequest, Error, Job, JobId, JobOptions, JobOutput, JobPayload, JobStatus, NewJob, Queue,
    Result,
};

/// The metadata key under which a workflow step keeps its [`StepInfo`].
pub const WORKFLOW_KEY: &str = "workflow";

/// Who cancels the steps a workflow cancels (`cancelled by workflow: ..`).
pub const CANCELLED_BY: &str = "workflow";

/// The reason given to a batch's failure callback that was not needed.
const NOT_NEEDED: &str = "not needed: no job of the batch failed";

/// The `run_at` of a step waiting for its parents (SCHEDULED, never due by
/// itself): 2999-01-01.
pub fn held_until() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2999, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// Whether a SCHEDULED job is held for its parents (its `run_at` is
/// [`held_until`] or later).
pub fn is_held(job: &Job) -> bool {
    job.status == JobStatus::Scheduled && job.run_at >= held_until()
}

/// What a step does when one of its parents fails for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnParentFailure {
    /// It is cancelled, and so are its descendants (the default).
    #[default]
    Cancel,
    /// It runs once every parent finished, failed or not; a failed parent's
    /// result is `null` (BullMQ's `ignoreDependencyOnFailure`).
    Run,
    /// It runs at the first failure of a parent, and is cancelled as not
    /// needed if every parent completed (a batch's `on_failure` callback).
    RunOnFirstFailure,
}

impl OnParentFailure {
    fn is_cancel(&self) -> bool {
        *self == OnParentFailure::Cancel
    }
}

/// One edge from a parent to a child, as the parent stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildEdge {
    /// The child step's job.
    pub id: JobId,
    /// How many parents the child has.
    pub parents: u32,
    /// What the child does when a parent fails.
    #[serde(default, skip_serializing_if = "OnParentFailure::is_cancel")]
    pub on: OnParentFailure,
}

/// What kind of graph a step belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GraphKind {
    /// A workflow built with [`Workflow`].
    #[default]
    Workflow,
    /// A batch built with [`Batch`].
    Batch,
}

impl GraphKind {
    fn is_workflow(&self) -> bool {
        *self == GraphKind::Workflow
    }
}

/// A step's place in its workflow: `metadata["workflow"]` of its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepInfo {
    /// The workflow's id (its first step's job id).
    pub id: JobId,
    /// The workflow's name.
    #[serde(default)]
    pub name: String,
    /// The step's name (its job type unless named).
    pub step: String,
    /// Workflow or batch.
    #[serde(default, skip_serializing_if = "GraphKind::is_workflow")]
    pub kind: GraphKind,
    /// Its parents' job ids, in the order its input lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<JobId>,
    /// What it does when a parent fails.
    #[serde(default, skip_serializing_if = "OnParentFailure::is_cancel")]
    pub on_parent_failure: OnParentFailure,
    /// Its children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildEdge>,
    /// On the first step only: every step without parents (where a walk
    /// of the whole workflow starts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<JobId>,
}

impl StepInfo {
    /// The step info of a job, if it is a workflow step (`Err` if its
    /// metadata holds a `workflow` entry that does not decode).
    pub fn of(job: &Job) -> Option<std::result::Result<StepInfo, String>> {
        job.metadata.get(WORKFLOW_KEY).map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|e| format!("job {}: metadata `workflow` does not decode: {e}", job.id))
        })
    }
}

/// Whether a job was cancelled by its workflow (a parent failed, or it was
/// not needed) rather than by an operator.
pub fn cancelled_by_workflow(job: &Job) -> bool {
    job.cancelled_at.is_some()
        && job
            .error_message
            .as_deref()
            .is_some_and(|m| m.starts_with("cancelled by workflow"))
}

/// Whether a job was cancelled by its workflow as not needed (a batch's
/// failure callback after every job succeeded).
pub fn skipped_as_not_needed(job: &Job) -> bool {
    cancelled_by_workflow(job)
        && job
            .error_message
            .as_deref()
            .is_some_and(|m| m.ends_with(NOT_NEEDED))
}

/// The cancellation a workflow makes of a step below a failed parent.
pub fn cancel_below(parent: &Job) -> CancelRequest {
    let how = if parent.cancelled_at.is_some() {
        "was cancelled".to_string()
    } else if parent.status == JobStatus::DeadLetter {
        "was dead-lettered".to_string()
    } else {
        "failed".to_string()
    };
    CancelRequest::by(CANCELLED_BY).reason(format!(
        "parent step {} ({}) {how}",
        parent.id, parent.job_type
    ))
}

/// The cancellation of a batch's failure callback once every job succeeded.
pub fn cancel_not_needed() -> CancelRequest {
    CancelRequest::by(CANCELLED_BY).reason(NOT_NEEDED)
}

// ---------------------------------------------------------------------------
// Typed edges
// ---------------------------------------------------------------------------

/// What a payload's handler takes from its parents: [`NoInput`] (nothing:
/// it may be a root, or ordered after any step), [`Parent<T>`] (one
/// parent's result) or [`Parents<T>`] (the results of several, as a `Vec`
/// or a tuple). `#[job_handler]` implements it from the handler's
/// arguments; `H` is the handler, as for [`JobOutput`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a workflow step",
    label = "no `#[job_handler]` for `{Self}` says what it takes from its parents",
    note = "`#[job_handler]` implements `JobInput` for its payload; for a hand-written handler write `impl JobInput for {Self} {{ type Input = jobs::workflow::NoInput; }}` (or `Parent<T>` / `Parents<T>`)"
)]
pub trait JobInput<H = ()> {
    /// [`NoInput`], [`Parent<T>`] or [`Parents<T>`].
    type Input;
}

/// A step that takes nothing from its parents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoInput;

/// A handler argument: the result of the step's one parent, decoded as `T`
/// (`Parent<Option<T>>` for a parent that may have failed, with
/// [`OnParentFailure::Run`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Parent<T>(pub T);

/// A handler argument: the results of the step's parents in the order the
/// workflow lists them, as a `Vec<T>` (fan-in of one kind of step) or a
/// tuple `(A, B)` (fan-in of different steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Parents<T>(pub T);

impl<T> Parent<T> {
    /// The result inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Parents<T> {
    /// The results inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Parent<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::Deref for Parents<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A step input that can follow one parent returning `T`.
#[diagnostic::on_unimplemented(
    message = "this step cannot follow a parent that returns `{T}`",
    label = "the step's handler takes `{Self}`, but its parent's handler returns `{T}`",
    note = "a step's `Parent<X>` argument must name its parent's output type exactly (`Parent<Option<X>>` also accepts a failed parent); change the edge or the argument"
)]
pub trait FromParent<T> {}
impl<T> FromParent<T> for Parent<T> {}
impl<T> FromParent<T> for Parent<Option<T>> {}
impl<T> FromParent<T> for NoInput {}

/// A step input that can take the results of several parents, as `T`
/// (a `Vec` of one output type, or a tuple).
#[diagnostic::on_unimplemented(
    message = "this step cannot take its parents' results as `{T}`",
    label = "the step's handler takes `{Self}`, but its parents return `{T}`",
    note = "a fan-in step's `Parents<X>` argument must be a `Vec` of its parents' output type, or a tuple of their output types in edge order; change the edges or the argument"
)]
pub trait FromParents<T> {}
impl<T> FromParents<Vec<T>> for Parents<Vec<T>> {}
impl<T> FromParents<Vec<T>> for Parents<Vec<Option<T>>> {}
impl<A, B> FromParents<(A, B)> for Parents<(A, B)> {}
impl<A, B, C> FromParents<(A, B, C)> for Parents<(A, B, C)> {}
impl<A, B, C, D> FromParents<(A, B, C, D)> for Parents<(A, B, C, D)> {}
impl<T> FromParents<T> for NoInput {}

/// A step input that needs no parent (a root).
#[diagnostic::on_unimplemented(
    message = "a step whose handler takes `{Self}` needs a parent",
    label = "added as a root, but it takes its parents' results",
    note = "add it after the step(s) it takes results from: `wf.then(&parent, ..)`, `wf.join(&parents, ..)`, `wf.join2(&a, &b, ..)`"
)]
pub trait RootInput {}
impl RootInput for NoInput {}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// A step of a [`Workflow`] being built, typed by its payload; use it to
/// add edges, and later ([`WorkflowHandle::step`]) to await its result.
pub struct Step<P> {
    index: usize,
    id: JobId,
    _payload: PhantomData<fn() -> P>,
}

impl<P> Clone for Step<P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Step<P> {}

impl<P> std::fmt::Debug for Step<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("payload", &std::any::type_name::<P>())
            .finish()
    }
}

impl<P> Step<P> {
    /// The step's job id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The step without its type, for ordering-only edges ([`Workflow::after`]).
    pub fn any(&self) -> AnyStep {
        AnyStep {
            index: self.index,
            id: self.id,
        }
    }
}

/// A step of any payload type (ordering only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyStep {
    index: usize,
    id: JobId,
}

impl AnyStep {
    /// The step's job id.
    pub fn id(&self) -> JobId {
        self.id
    }
}

struct Draft {
    job: Result<NewJob>,
    step: String,
    parents: Vec<usize>,
    on_parent_failure: OnParentFailure,
}

/// A DAG of jobs, built in code and enqueued in one batch with
/// [`Queue::enqueue_workflow`]. Each method that adds a step checks, at
/// compile time, that the step's handler takes what its parents return.
pub struct Workflow {
    name: String,
    kind: GraphKind,
    drafts: Vec<Draft>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.name)
            .field("steps", &self.drafts.len())
            .finish()
    }
}

impl Workflow {
    /// An empty workflow called `name` (shown with each step).
    pub fn new(name: impl Into<String>) -> Self {
        Workflow {
            name: name.into(),
            kind: GraphKind::Workflow,
            drafts: Vec::new(),
        }
    }

    /// How many steps it has.
    pub fn len(&self) -> usize {
        self.drafts.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.drafts.is_empty()
    }

    fn push<P: JobPayload>(&mut self, payload: &P, parents: Vec<usize>) -> Step<P> {
        let job = crate::client::typed_job(payload, &P::options());
        let id = job.as_ref().map(|j| j.id).unwrap_or_default();
        self.drafts.push(Draft {
            job,
            step: P::JOB_TYPE.to_string(),
            parents,
            on_parent_failure: OnParentFailure::Cancel,
        });
        Step {
            index: self.drafts.len() - 1,
            id,
            _payload: PhantomData,
        }
    }

    /// A step with no parent (a root).
    pub fn add<P, H>(&mut self, payload: P) -> Step<P>
    where
        P: JobPayload + JobInput<H>,
        P::Input: RootInput,
    {
        self.push(&payload, Vec::new())
    }

    /// A step after `parent`, taking its result (`Parent<A's output>`) or
    /// nothing.
    pub fn then<A, HA, C, HC>(&mut self, parent: &Step<A>, payload: C) -> Step<C>
    where
        A: JobOutput<HA>,
        C: JobPayload + JobInput<HC>,
        C::Input: FromParent<A::Output>,
    {
        self.push(&payload, vec![parent.index])
    }

    /// A fan-in step after every step of `parents`, taking their results
    /// in this order (`Parents<Vec<A's output>>`) or nothing.
    pub fn join<A, HA, C, HC>(&mut self, parents: &[Step<A>], payload: C) -> Step<C>
    where
        A: JobOutput<HA>,
        C: JobPayload + JobInput<HC>,
        C::Input: FromParents<Vec<A::Output>>,
    {
        self.push(&payload, parents.iter().map(|p| p.index).collect())
    }

    /// A fan-in step after `a` and `b`, taking `Parents<(A's, B's output)>`.
    pub fn join2<A, HA, B, HB, C, HC>(&mut self, a: &Step<A>, b: &Step<B>, payload: C) -> Step<C>
    where
        A: JobOutput<HA>,
        B: JobOutput<HB>,
        C: JobPayload + JobInput<HC>,
        C::Input: FromParents<(A::Output, B::Output)>,
    {
        self.push(&payload, vec![a.index, b.index])
    }

    /// A fan-in step after `a`, `b` and `c`, taking `Parents<(A's, B's, C's output)>`.
    #[allow(clippy::type_complexity)]
    pub fn join3<A, HA, B, HB, C, HC, D, HD>(
        &mut self,
        a: &Step<A>,
        b: &Step<B>,
        c: &Step<C>,
        payload: D,
    ) -> Step<D>
    where
        A: JobOutput<HA>,
        B: JobOutput<HB>,
        C: JobOutput<HC>,
        D: JobPayload + JobInput<HD>,
        D::Input: FromParents<(A::Output, B::Output, C::Output)>,
    {
        self.push(&payload, vec![a.index, b.index, c.index])
    }

    /// A step ordered after `parents` of any types, taking none of their
    /// results.
    pub fn after<C, HC>(&mut self, parents: &[AnyStep], payload: C) -> Step<C>
    where
        C: JobPayload + JobInput<HC, Input = NoInput>,
    {
        self.push(&payload, parents.iter().map(|p| p.index).collect())
    }

    /// Names a step (its job type by default); shown with its job.
    pub fn name<P>(&mut self, step: &Step<P>, name: impl Into<String>) -> &mut Self {
        self.drafts[step.index].step = name.into();
        self
    }

    /// What `step` does when a parent fails ([`OnParentFailure::Cancel`]
    /// by default).
    pub fn on_parent_failure<P>(&mut self, step: &Step<P>, policy: OnParentFailure) -> &mut Self {
        self.drafts[step.index].on_parent_failure = policy;
        self
    }

    /// Sets a step's job options (queue, priority, retries) over its
    /// handler's.
    pub fn options<P>(&mut self, step: &Step<P>, options: &JobOptions) -> &mut Self {
        let draft = &mut self.drafts[step.index];
        if let Ok(job) = std::mem::replace(&mut draft.job, Err(Error::InvalidJob(String::new()))) {
            draft.job = Ok(job.with_options(options));
        }
        self
    }

    /// Changes a step's job (any [`NewJob`] setting: timeout, limits,
    /// metadata). Its id and workflow entry are kept.
    pub fn configure<P>(&mut self, step: &Step<P>, f: impl FnOnce(NewJob) -> NewJob) -> &mut Self {
        let draft = &mut self.drafts[step.index];
        if let Ok(job) = std::mem::replace(&mut draft.job, Err(Error::InvalidJob(String::new()))) {
            let id = job.id;
            draft.job = Ok(f(job).id(id));
        }
        self
    }

    /// The jobs to insert: roots due as their options say, every other
    /// step held, each with its [`StepInfo`].
    pub fn into_jobs(self) -> Result<Vec<NewJob>> {
        if self.drafts.is_empty() {
            return Err(Error::InvalidJob(format!(
                "workflow `{}` has no steps",
                self.name
            )));
        }
        let ids: Vec<JobId> = self
            .drafts
            .iter()
            .map(|d| d.job.as_ref().map(|j| j.id).unwrap_or_default())
            .collect();
        let roots: Vec<JobId> = self
            .drafts
            .iter()
            .zip(&ids)
            .filter(|(d, _)| d.parents.is_empty())
            .map(|(_, id)| *id)
            .collect();
        let wf_id = roots[0];
        let mut children: Vec<Vec<ChildEdge>> = vec![Vec::new(); self.drafts.len()];
        for (i, d) in self.drafts.iter().enumerate() {
            for &p in &d.parents {
                children[p].push(ChildEdge {
                    id: ids[i],
                    parents: d.parents.len() as u32,
                    on: d.on_parent_failure,
                });
            }
        }
        let held = held_until();
        let mut jobs = Vec::with_capacity(self.drafts.len());
        for (i, (d, kids)) in self.drafts.into_iter().zip(children).enumerate() {
            let mut job = d.job?;
            if job.metadata.contains_key(WORKFLOW_KEY) {
                return Err(Error::InvalidJob(format!(
                    "step `{}` of workflow `{}` already has a `workflow` metadata entry",
                    d.step, self.name
                )));
            }
            // A step is never refused as a duplicate: its children would
            // wait for it forever.
            job.unique = None;
            let info = StepInfo {
                id: wf_id,
                name: self.name.clone(),
                step: d.step,
                kind: self.kind,
                parents: d.parents.iter().map(|&p| ids[p]).collect(),
                on_parent_failure: d.on_parent_failure,
                children: kids,
                roots: if ids[i] == wf_id {
                    roots.clone()
                } else {
                    Vec::new()
                },
            };
            if !info.parents.is_empty() {
                job.run_at = Some(held);
                job.delay = None;
            }
            job.metadata.insert(
                WORKFLOW_KEY.to_string(),
                serde_json::to_value(&info).expect("step info serializes"),
            );
            jobs.push(job);
        }
        Ok(jobs)
    }
}

// ---------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------

/// Many jobs enqueued as one, with callback jobs that run once: when all of
/// them finished ([`on_finished`](Batch::on_finished)), when all completed
/// ([`on_success`](Batch::on_success)), or at the first that fails for good
/// ([`on_failure`](Batch::on_failure)). A callback's handler reads what
/// happened with the [`BatchResults`] argument.
///
/// A batch is a workflow whose jobs are roots and whose callbacks are
/// children of every job, so it runs durably on every backend, and a
/// callback runs once however many workers finish its jobs.
pub struct Batch {
    wf: Workflow,
    jobs: Vec<AnyStep>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("name", &self.wf.name)
            .field("jobs", &self.jobs.len())
            .finish()
    }
}

impl Batch {
    /// An empty batch called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        let mut wf = Workflow::new(name);
        wf.kind = GraphKind::Batch;
        Batch {
            wf,
            jobs: Vec::new(),
        }
    }

    /// Adds one job.
    pub fn add<P: JobPayload>(&mut self, payload: P) -> &mut Self {
        let step = self.wf.push(&payload, Vec::new());
        self.jobs.push(step.any());
        self
    }

    /// Adds many jobs.
    pub fn extend<P: JobPayload>(&mut self, payloads: impl IntoIterator<Item = P>) -> &mut Self {
        for p in payloads {
            self.add(p);
        }
        self
    }

    /// Adds a job of yours (untyped, e.g. `NewJob::new(type, json)`).
    pub fn add_job(&mut self, job: NewJob) -> &mut Self {
        let step = job.job_type.clone();
        let id = job.id;
        self.wf.drafts.push(Draft {
            job: Ok(job),
            step,
            parents: Vec::new(),
            on_parent_failure: OnParentFailure::Cancel,
        });
        self.jobs.push(AnyStep {
            index: self.wf.drafts.len() - 1,
            id,
        });
        self
    }

    fn callback<P: JobPayload>(
        &mut self,
        payload: P,
        on: OnParentFailure,
        name: &str,
    ) -> &mut Self {
        let parents = self.jobs.iter().map(|s| s.index).collect();
        let step = self.wf.push(&payload, parents);
        self.wf.drafts[step.index].on_parent_failure = on;
        self.wf.drafts[step.index].step = name.to_string();
        self
    }

    /// A callback that runs once when every job finished (completed,
    /// failed or dead-lettered).
    pub fn on_finished<P: JobPayload>(&mut self, payload: P) -> &mut Self {
        self.callback(payload, OnParentFailure::Run, "on_finished")
    }

    /// A callback that runs once when every job completed; cancelled at
    /// the first failure.
    pub fn on_success<P: JobPayload>(&mut self, payload: P) -> &mut Self {
        self.callback(payload, OnParentFailure::Cancel, "on_success")
    }

    /// A callback that runs once, at the first job that fails for good;
    /// cancelled as not needed when every job completed.
    pub fn on_failure<P: JobPayload>(&mut self, payload: P) -> &mut Self {
        self.callback(payload, OnParentFailure::RunOnFirstFailure, "on_failure")
    }

    /// The jobs to insert.
    pub fn into_jobs(self) -> Result<Vec<NewJob>> {
        if self.jobs.is_empty() {
            return Err(Error::InvalidJob(format!(
                "batch `{}` has no jobs",
                self.wf.name
            )));
        }
        self.wf.into_jobs()
    }
}

// ---------------------------------------------------------------------------
// Running: parents' results for the extractors
// ---------------------------------------------------------------------------

/// One parent of the running step, as the runtime read it before the
/// handler ran.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParentResult {
    /// The parent's job id.
    pub id: JobId,
    /// Its job type.
    pub job_type: String,
    /// Its status (COMPLETED unless the step runs after a failure).
    pub status: JobStatus,
    /// Whether it was cancelled.
    pub cancelled: bool,
    /// What its handler returned (`null` when it did not complete).
    pub result: Value,
}

impl ParentResult {
    /// From a parent's job as read (`None`: it no longer exists).
    pub fn new(id: JobId, job: Option<&Job>) -> Self {
        match job {
            Some(job) => ParentResult {
                id,
                job_type: job.job_type.clone(),
                status: job.status,
                cancelled: job.cancelled_at.is_some(),
                result: if job.status == JobStatus::Completed {
                    job.result_data.clone().unwrap_or(Value::Null)
                } else {
                    Value::Null
                },
            },
            None => ParentResult {
                id,
                job_type: String::new(),
                status: JobStatus::Completed,
                cancelled: false,
                result: Value::Null,
            },
        }
    }
}

fn no_parents(ctx: &crate::JobContext) -> crate::JobError {
    crate::JobError::msg(format!(
        "job {} ({}) takes its parents' results, but it is not a workflow step with parents (enqueue it with `Workflow::then`/`join`, or run it with `jobs::testing` giving the parents' results)",
        ctx.id(),
        ctx.job_type()
    ))
    .into_permanent()
}

fn decode_parents<T: serde::de::DeserializeOwned>(
    ctx: &crate::JobContext,
    value: Value,
    parents: &[ParentResult],
) -> std::result::Result<T, crate::JobError> {
    serde_json::from_value(value).map_err(|e| {
        let seen: Vec<String> = parents
            .iter()
            .map(|p| format!("{} ({}) {}", p.id, p.job_type, p.status))
            .collect();
        crate::JobError::msg(format!(
            "the results of job {}'s parents do not decode as `{}`: {e} (parents: {}); a failed parent's result is null — take `Option<_>` for a step that runs after failures",
            ctx.id(),
            std::any::type_name::<T>(),
            seen.join(", ")
        ))
        .into_permanent()
    })
}

impl<T: serde::de::DeserializeOwned> crate::FromJobContext for Parent<T> {
    fn from_context(ctx: &crate::JobContext) -> std::result::Result<Self, crate::JobError> {
        let parents = ctx.parents().ok_or_else(|| no_parents(ctx))?;
        let [one] = parents else {
            return Err(crate::JobError::msg(format!(
                "job {} takes one `Parent<..>`, but it has {} parents; take `Parents<..>`",
                ctx.id(),
                parents.len()
            ))
            .into_permanent());
        };
        decode_parents(ctx, one.result.clone(), parents).map(Parent)
    }
}

impl<T: serde::de::DeserializeOwned> crate::FromJobContext for Parents<T> {
    fn from_context(ctx: &crate::JobContext) -> std::result::Result<Self, crate::JobError> {
        let parents = ctx.parents().ok_or_else(|| no_parents(ctx))?;
        let all = Value::Array(parents.iter().map(|p| p.result.clone()).collect());
        decode_parents(ctx, all, parents).map(Parents)
    }
}

/// A handler argument for a batch's callback: how the batch's jobs ended
/// (as they stood when the callback started).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchResults {
    /// How many jobs the batch has.
    pub total: usize,
    /// How many completed.
    pub completed: usize,
    /// How many failed for good (FAILED, cancelled included).
    pub failed: usize,
    /// How many were dead-lettered.
    pub dead_lettered: usize,
    /// How many had not finished (only for an `on_failure` callback).
    pub unfinished: usize,
    /// The ids of the jobs that did not complete.
    pub not_completed: Vec<JobId>,
}

impl BatchResults {
    /// Counts the parents' statuses.
    pub fn of(parents: &[ParentResult]) -> Self {
        let mut r = BatchResults {
            total: parents.len(),
            ..Default::default()
        };
        for p in parents {
            match p.status {
                JobStatus::Completed => r.completed += 1,
                JobStatus::Failed => r.failed += 1,
                JobStatus::DeadLetter => r.dead_lettered += 1,
                _ => r.unfinished += 1,
            }
            if p.status != JobStatus::Completed {
                r.not_completed.push(p.id);
            }
        }
        r
    }

    /// Whether every job completed.
    pub fn all_completed(&self) -> bool {
        self.completed == self.total
    }
}

impl crate::FromJobContext for BatchResults {
    fn from_context(ctx: &crate::JobContext) -> std::result::Result<Self, crate::JobError> {
        ctx.parents()
            .map(BatchResults::of)
            .ok_or_else(|| no_parents(ctx))
    }
}

// ---------------------------------------------------------------------------
// Handles and status
// ---------------------------------------------------------------------------

/// Where a workflow is, derived from its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum WorkflowState {
    /// Some step has not finished.
    Running,
    /// Every step completed (a batch's unneeded failure callback aside).
    Completed,
    /// Every step finished, and some failed, were dead-lettered or cancelled.
    Failed,
}

/// One step of a workflow, as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepStatus {
    /// Its job id.
    pub id: JobId,
    /// Its step name.
    pub step: String,
    /// Its job type.
    pub job_type: String,
    /// Its job's status.
    pub status: JobStatus,
    /// Held for its parents (SCHEDULED until they finish).
    pub held: bool,
    /// Cancelled by the workflow (a parent failed) or by an operator.
    pub cancelled: bool,
    /// Its parents' ids.
    pub parents: Vec<JobId>,
}

/// A workflow's steps and overall state, read in one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowStatus {
    /// The workflow's id.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// Its overall state.
    pub state: WorkflowState,
    /// Every step, in the order they were found (roots first).
    pub steps: Vec<StepStatus>,
}

impl WorkflowStatus {
    /// How many steps are in `status`.
    pub fn count(&self, status: JobStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// The step called `name`, if any (the first one).
    pub fn step(&self, name: &str) -> Option<&StepStatus> {
        self.steps.iter().find(|s| s.step == name)
    }

    /// Whether every step finished.
    pub fn is_finished(&self) -> bool {
        self.state != WorkflowState::Running
    }
}

/// A handle on an enqueued workflow (or batch): its status, cancelling it,
/// waiting for it, and typed results of its steps. Rebuild it anywhere from
/// its id with [`from_id`](WorkflowHandle::from_id).
#[derive(Debug, Clone)]
pub struct WorkflowHandle {
    queue: Queue,
    id: JobId,
}

impl WorkflowHandle {
    /// The handle of workflow `id` (as [`id`](Self::id) gave it).
    pub fn from_id(queue: &Queue, id: impl Into<JobId>) -> Self {
        WorkflowHandle {
            queue: queue.clone(),
            id: id.into(),
        }
    }

    /// The workflow's id: its first step's job id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// A typed handle on one of its steps' results.
    pub fn step<P>(&self, step: &Step<P>) -> crate::JobHandle<P> {
        crate::JobHandle::from_id(&self.queue, step.id)
    }

    /// Every step's job, found by walking the workflow from its roots.
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        let backend = self.queue.backend();
        let head = backend.get(self.id).await?.ok_or_else(|| {
            Error::InvalidJob(format!(
                "workflow {} does not exist (no job has its id, or its first step was pruned)",
                self.id
            ))
        })?;
        let info = match StepInfo::of(&head) {
            Some(Ok(info)) if info.id == self.id => info,
            _ => {
                return Err(Error::InvalidJob(format!(
                    "job {} is not the first step of a workflow",
                    self.id
                )))
            }
        };
        let mut seen: std::collections::HashSet<JobId> = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut level: Vec<JobId> = info.roots.clone();
        seen.extend(level.iter().copied());
        while !level.is_empty() {
            let jobs = backend.get_many(&level).await?;
            let mut next = Vec::new();
            for job in jobs.into_iter().flatten() {
                if let Some(Ok(i)) = StepInfo::of(&job) {
                    for c in &i.children {
                        if seen.insert(c.id) {
                            next.push(c.id);
                        }
                    }
                }
                out.push(job);
            }
            level = next;
        }
        Ok(out)
    }

    /// Every step's status, and the workflow's.
    pub async fn status(&self) -> Result<WorkflowStatus> {
        let jobs = self.jobs().await?;
        let done: std::collections::HashSet<JobId> = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Completed)
            .map(|j| j.id)
            .collect();
        let mut name = String::new();
        let mut running = false;
        let mut failed = false;
        let mut steps = Vec::with_capacity(jobs.len());
        for job in jobs {
            let info = match StepInfo::of(&job) {
                Some(Ok(i)) => i,
                _ => continue,
            };
            name.clone_from(&info.name);
            let skipped = skipped_as_not_needed(&job);
            // Cancelled below a parent that has completed since (it was
            // requeued): the workflow is about to resume it.
            let resuming = cancelled_by_workflow(&job)
                && !skipped
                && info.parents.iter().all(|p| done.contains(p));
            if !job.status.is_terminal() || resuming {
                running = true;
            } else if job.status != JobStatus::Completed && !skipped {
                failed = true;
            }
            steps.push(StepStatus {
                id: job.id,
                step: info.step,
                job_type: job.job_type.clone(),
                status: job.status,
                held: is_held(&job),
                cancelled: job.cancelled_at.is_some(),
                parents: info.parents,
            });
        }
        let state = if running {
            WorkflowState::Running
        } else if failed {
            WorkflowState::Failed
        } else {
            WorkflowState::Completed
        };
        Ok(WorkflowStatus {
            id: self.id,
            name,
            state,
            steps,
        })
    }

    /// Cancels every unfinished step: waiting ones at once, running ones
    /// are signalled (as [`Queue::cancel`]). Returns how many were asked.
    pub async fn cancel(&self, request: &CancelRequest) -> Result<usize> {
        let mut n = 0;
        let mut jobs = self.jobs().await?;
        // Waiting steps first: a running one that ends on its cancellation
        // would have the workflow cancel those below it in its own name.
        jobs.sort_by_key(|j| j.status == JobStatus::Running);
        for job in jobs {
            if job.status.is_terminal() {
                continue;
            }
            match self.queue.cancel_with(job.id, request).await {
                Ok(_) => n += 1,
                // It finished in between.
                Err(Error::InvalidState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Waits until every step finished (or `timeout` passed), then returns
    /// the status.
    pub async fn wait(&self, timeout: Duration) -> Result<WorkflowStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let status = self.status().await?;
            let now = tokio::time::Instant::now();
            if status.is_finished() || now >= deadline {
                return Ok(status);
            }
            // Wait on one unfinished, unheld step's signal, bounded.
            let slice = pause.min(deadline - now);
            if let Some(s) = status
                .steps
                .iter()
                .find(|s| !s.status.is_terminal() && !s.held)
            {
                self.queue.backend().wait_finished(s.id, slice).await?;
            } else {
                tokio::time::sleep(slice).await;
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl Queue {
    /// Enqueues a workflow: every step in one batch (one transaction where
    /// the backend has them), roots due at once, the others held until
    /// their parents finish.
    pub async fn enqueue_workflow(&self, workflow: Workflow) -> Result<WorkflowHandle> {
        let jobs = workflow.into_jobs()?;
        let id = jobs[0].id;
        self.enqueue_many(jobs).await?;
        Ok(WorkflowHandle::from_id(self, id))
    }

    /// Enqueues a batch with its callbacks, in one batch.
    pub async fn enqueue_batch_with_callbacks(&self, batch: Batch) -> Result<WorkflowHandle> {
        let jobs = batch.into_jobs()?;
        let id = jobs[0].id;
        self.enqueue_many(jobs).await?;
        Ok(WorkflowHandle::from_id(self, id))
    }

    /// A handle on workflow `id`.
    pub fn workflow(&self, id: impl Into<JobId>) -> WorkflowHandle {
        WorkflowHandle::from_id(self, id)
    }
}

// ---------------------------------------------------------------------------
// Declared workflows, checked by managers at build()
// ---------------------------------------------------------------------------

/// A workflow's step types, declared with `jobs::workflow_steps!` so that
/// every manager checks at `build()` that it has a handler for each step
/// whose queue it works (as it checks `Data<T>`), instead of the step
/// waiting forever for a handler nobody linked.
#[derive(Debug)]
pub struct WorkflowSteps {
    /// The workflow's name.
    pub name: &'static str,
    /// Each step's job type and queue.
    pub steps: fn() -> Vec<(&'static str, String)>,
}

impl WorkflowSteps {
    /// A declaration (what `jobs::workflow_steps!` submits).
    pub const fn new(name: &'static str, steps: fn() -> Vec<(&'static str, String)>) -> Self {
        WorkflowSteps { name, steps }
    }
}

inventory::collect!(WorkflowSteps);

/// The job type and queue of payload `P`, for `workflow_steps!`.
pub fn step_of<P: JobPayload>() -> (&'static str, String) {
    (
        P::JOB_TYPE,
        P::options()
            .queue
            .unwrap_or_else(|| crate::new_job::DEFAULT_QUEUE.to_string()),
    )
}

/// Every declared workflow.
pub fn declared() -> impl Iterator<Item = &'static WorkflowSteps> {
    inventory::iter::<WorkflowSteps>.into_iter()
}
