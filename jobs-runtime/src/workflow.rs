//! Moves workflows on: after a step's final outcome is recorded, settles its
//! edges and releases (or cancels, or resumes) its children; and, on the
//! maintainer, re-checks held steps from their parents' statuses, so a
//! worker that died between recording and settling never strands a step.
//!
//! Everything here is idempotent: an edge settles once in the backend,
//! releasing moves only held steps, cancelling and requeueing are
//! conditional transitions. Two workers (or a worker and the sweep) doing
//! the same step's follow-up change nothing twice.

use std::sync::Arc;

use jobs_core::workflow::{
    cancel_below, cancel_not_needed, cancelled_by_workflow, is_held, skipped_as_not_needed,
    ChildEdge, OnParentFailure, ParentResult, StepInfo,
};
use jobs_core::{Backend, Error, Job, JobFilter, JobId, JobStatus, Result};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{debug, warn};

use crate::shared::Shared;

/// Most held steps the sweep looks at per pass.
const SWEEP_PAGE: usize = 200;

/// Most steps followed up in one go.
const BATCH: usize = 64;

/// The step as it is once `outcome` is recorded, if that ends it.
pub(crate) fn finished(job: &Job, outcome: &jobs_core::backend::Outcome) -> Option<Job> {
    use jobs_core::backend::Outcome;
    let status = match outcome {
        Outcome::Complete { .. } | Outcome::CompleteAndDelete => JobStatus::Completed,
        Outcome::Fail { .. } | Outcome::Cancel { .. } => JobStatus::Failed,
        Outcome::DeadLetter { .. } => JobStatus::DeadLetter,
        _ => return None,
    };
    let mut job = job.clone();
    job.status = status;
    if matches!(outcome, Outcome::Cancel { .. }) && job.cancelled_at.is_none() {
        job.cancelled_at = Some(chrono::Utc::now());
    }
    Some(job)
}

/// Whether a recorded job is a workflow step (cheap: metadata is usually empty).
pub(crate) fn is_step(job: &Job) -> bool {
    !job.metadata.is_empty() && job.metadata.contains_key(jobs_core::workflow::WORKFLOW_KEY)
}

/// Follows up the steps the recorder wrote final outcomes for, and sweeps
/// held steps while this manager is the maintainer.
pub(crate) async fn workflow_loop(
    shared: Arc<Shared>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Arc<Job>>>>,
    stop: StopToken,
) {
    let mut rx = rx.lock().await;
    let mut sweep = tokio::time::interval(shared.cfg.reap);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor: Option<jobs_core::JobCursor> = None;
    let mut ids: Vec<Arc<Job>> = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                // What was handed over before the stop is followed up now;
                // anything later the maintainer's sweep finds.
                while let Ok(job) = rx.try_recv() {
                    ids.push(job);
                }
                follow_up(&shared, &mut ids).await;
                return;
            }
            n = rx.recv_many(&mut ids, BATCH) => {
                if n == 0 {
                    return;
                }
                follow_up(&shared, &mut ids).await;
            }
            _ = sweep.tick() => {
                if shared.is_leader() {
                    let backend = shared.backend().clone();
                    match shared.call("workflow sweep", sweep_page(backend.as_ref(), cursor)).await {
                        Ok(next) => cursor = next,
                        Err(e) => warn!(error = %e, "checking held workflow steps failed; will try again"),
                    }
                }
            }
        }
    }
}

/// Follows up a batch of finished steps: the completed ones' edges in one
/// backend call, the failed ones side by side.
async fn follow_up(shared: &Arc<Shared>, jobs: &mut Vec<Arc<Job>>) {
    let (done, failed): (Vec<Arc<Job>>, Vec<Arc<Job>>) = jobs
        .drain(..)
        .partition(|j| j.status == JobStatus::Completed);
    if !done.is_empty() {
        let backend = shared.backend().clone();
        let parents: Vec<&Job> = done.iter().map(|j| &**j).collect();
        if let Err(e) = shared
            .call("workflow", completed(backend.as_ref(), &parents))
            .await
        {
            warn!(steps = done.len(), error = %e, "could not move workflows on after these steps; the maintainer's sweep will");
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for job in failed {
        let shared = shared.clone();
        set.spawn(async move {
            let backend = shared.backend().clone();
            if let Err(e) = shared
                .call("workflow", advance_job(backend.as_ref(), &job))
                .await
            {
                warn!(job_id = %job.id, error = %e, "could not move the workflow on after this step; the maintainer's sweep will");
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// After step `id` finished: settles its edges and releases, cancels or
/// resumes its children as their policies say. Does nothing for a step that
/// has not finished.
pub async fn advance(backend: &dyn Backend, id: JobId) -> Result<()> {
    match backend.get(id).await? {
        Some(job) => advance_job(backend, &job).await,
        None => Ok(()),
    }
}

/// [`advance`] for a step known to have finished (its status final),
/// without reading it again.
pub async fn advance_job(backend: &dyn Backend, job: &Job) -> Result<()> {
    let mut todo = Vec::new();
    let mut next = Some(job.clone());
    loop {
        if let Some(job) = next.take() {
            if let Some(info) = step_info(&job) {
                if job.status.is_terminal() && !info.children.is_empty() {
                    if job.status == JobStatus::Completed {
                        completed(backend, &[&job]).await?;
                    } else {
                        todo.extend(failed(backend, &job, &info.children).await?);
                    }
                }
            }
        }
        let Some(id) = todo.pop() else {
            return Ok(());
        };
        next = backend.get(id).await?;
    }
}

fn step_info(job: &Job) -> Option<StepInfo> {
    match StepInfo::of(job)? {
        Ok(info) => Some(info),
        Err(e) => {
            warn!(job_id = %job.id, error = %e, "a workflow step's metadata does not decode; it is left as it is");
            None
        }
    }
}

/// A parent completed: settle every edge; release the children whose every
/// edge is settled, resume those the workflow had cancelled, and cancel a
/// failure callback that is not needed.
async fn completed(backend: &dyn Backend, parents: &[&Job]) -> Result<()> {
    let mut edges = Vec::new();
    let mut kids: Vec<ChildEdge> = Vec::new();
    for p in parents {
        if let Some(info) = step_info(p) {
            for c in info.children {
                edges.push((p.id, c.id));
                kids.push(c);
            }
        }
    }
    if edges.is_empty() {
        return Ok(());
    }
    // One call for every edge: a fan-in's count is written once per batch.
    let settled = backend.settle_many(&edges).await?;
    let mut ready = Vec::new();
    let mut not_needed = Vec::new();
    for (edge, n) in kids.iter().zip(settled) {
        if n < edge.parents {
            continue;
        }
        let list = match edge.on {
            OnParentFailure::RunOnFirstFailure => &mut not_needed,
            _ => &mut ready,
        };
        if !list.contains(&edge.id) {
            list.push(edge.id);
        }
    }
    if !ready.is_empty() {
        let released = backend.release_held(&ready).await?;
        debug!(released = released.len(), "workflow steps released");
        let rest: Vec<JobId> = ready
            .into_iter()
            .filter(|id| !released.contains(id))
            .collect();
        // Not held: running or done already, or cancelled below a parent
        // that failed before it was requeued — resume those.
        if !rest.is_empty() {
            for (id, job) in rest.iter().zip(backend.get_many(&rest).await?) {
                if let Some(job) = job {
                    if cancelled_by_workflow(&job) && !skipped_as_not_needed(&job) {
                        resume(backend, *id).await?;
                    }
                }
            }
        }
    }
    for id in not_needed {
        cancel_if_held(backend, id, &cancel_not_needed()).await?;
    }
    Ok(())
}

/// A parent failed for good: cancel the children that cancel (returned, to
/// follow up their own children), settle the edges of those that run
/// anyway, release failure callbacks.
async fn failed(backend: &dyn Backend, parent: &Job, children: &[ChildEdge]) -> Result<Vec<JobId>> {
    let mut cancelled = Vec::new();
    let mut first_failure = Vec::new();
    let mut run_anyway = Vec::new();
    for edge in children {
        match edge.on {
            OnParentFailure::Run => run_anyway.push(edge),
            OnParentFailure::RunOnFirstFailure => first_failure.push(edge.id),
            _ => {
                if cancel_if_held(backend, edge.id, &cancel_below(parent)).await? {
                    cancelled.push(edge.id);
                }
            }
        }
    }
    if !run_anyway.is_empty() {
        let ids: Vec<JobId> = run_anyway.iter().map(|c| c.id).collect();
        let settled = backend.settle_dependencies(parent.id, &ids).await?;
        let ready: Vec<JobId> = run_anyway
            .iter()
            .zip(settled)
            .filter(|(e, n)| *n >= e.parents)
            .map(|(e, _)| e.id)
            .collect();
        if !ready.is_empty() {
            backend.release_held(&ready).await?;
        }
    }
    if !first_failure.is_empty() {
        backend.release_held(&first_failure).await?;
    }
    Ok(cancelled)
}

async fn cancel_if_held(
    backend: &dyn Backend,
    id: JobId,
    request: &jobs_core::CancelRequest,
) -> Result<bool> {
    match backend.get(id).await? {
        Some(job) if is_held(&job) => match backend.cancel(id, request).await {
            Ok(_) => Ok(true),
            // Released or cancelled in between.
            Err(Error::InvalidState { .. } | Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        },
        _ => Ok(false),
    }
}

async fn resume(backend: &dyn Backend, id: JobId) -> Result<()> {
    match backend.requeue(id).await {
        Ok(_) => {
            debug!(job_id = %id, "workflow step resumed: its failed parent completed after a requeue");
            Ok(())
        }
        Err(Error::InvalidState { .. } | Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the results of a step's parents, in edge order, for its extractors.
pub(crate) async fn parent_results(
    backend: &dyn Backend,
    job: &Job,
) -> Result<Option<Arc<[ParentResult]>>> {
    let Some(info) = step_info(job) else {
        return Ok(None);
    };
    if info.parents.is_empty() {
        return Ok(None);
    }
    let jobs = backend.get_many(&info.parents).await?;
    Ok(Some(
        info.parents
            .iter()
            .zip(&jobs)
            .map(|(id, j)| ParentResult::new(*id, j.as_ref()))
            .collect(),
    ))
}

/// Looks at one page of held steps (after `cursor`) and moves on those
/// whose parents' statuses say so; returns where the next pass starts.
pub async fn sweep_page(
    backend: &dyn Backend,
    cursor: Option<jobs_core::JobCursor>,
) -> Result<Option<jobs_core::JobCursor>> {
    let mut filter = JobFilter::default()
        .status(JobStatus::Scheduled)
        .limit(SWEEP_PAGE);
    filter.after = cursor;
    let page = backend.list_page(&filter).await?;
    for job in page.jobs.iter().filter(|j| is_held(j)) {
        if let Some(info) = step_info(job) {
            check_held(backend, job, &info).await?;
        }
    }
    Ok(page.next)
}

/// A held step, judged from its parents as they are now.
pub async fn check_held(backend: &dyn Backend, job: &Job, info: &StepInfo) -> Result<()> {
    let parents = backend.get_many(&info.parents).await?;
    let mut all_done = true;
    let mut any_failed: Option<&Job> = None;
    for p in parents.iter() {
        match p {
            // A parent pruned or deleted counts as completed.
            None => {}
            Some(p) if p.status == JobStatus::Completed => {}
            Some(p) if p.status.is_terminal() => {
                any_failed.get_or_insert(p);
            }
            Some(_) => all_done = false,
        }
    }
    match (info.on_parent_failure, any_failed) {
        (OnParentFailure::RunOnFirstFailure, Some(_)) => {
            backend.release_held(&[job.id]).await?;
        }
        (OnParentFailure::RunOnFirstFailure, None) if all_done => {
            cancel_if_held(backend, job.id, &cancel_not_needed()).await?;
        }
        (OnParentFailure::Run, _) if all_done => {
            backend.release_held(&[job.id]).await?;
        }
        (OnParentFailure::Cancel, Some(parent))
            if cancel_if_held(backend, job.id, &cancel_below(parent)).await? =>
        {
            advance(backend, job.id).await?;
        }
        (OnParentFailure::Cancel, None) if all_done => {
            backend.release_held(&[job.id]).await?;
        }
        _ => {}
    }
    Ok(())
}
