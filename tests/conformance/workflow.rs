//! Workflows at the backend: what the runtime's coordinator relies on.
//! Edges settle once each and their counts survive; only held steps are
//! released, and a released step is claimable; `get_many` keeps order; a
//! workflow goes in as one batch, its roots claimable and the rest held;
//! deleting a child forgets its settled edges.

use std::time::Duration;

use jobs_core::workflow::{held_until, is_held, StepInfo, Workflow, WORKFLOW_KEY};
use jobs_core::{
    JobId, JobInput, JobOutput, JobPayload, JobStatus, NewJob, Parent, Parents, Queue,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::support::{claim, complete, enqueue, get, ids_of, set, LONG, W1};
use super::Backend;

fn held(job_type: &str) -> NewJob {
    NewJob::new(job_type, json!({})).run_at(held_until())
}

pub async fn dependencies_settle_once_per_edge(q: Backend) {
    let (p1, p2) = (JobId::new(), JobId::new());
    let c1 = enqueue(&q, held("wf.child")).await;
    let c2 = enqueue(&q, held("wf.child")).await;
    assert_eq!(
        q.settle_dependencies(p1, &[c1, c2]).await.unwrap(),
        vec![1, 1]
    );
    // Again (a worker that crashed and the sweep, or two workers): no change.
    assert_eq!(
        q.settle_dependencies(p1, &[c1, c2]).await.unwrap(),
        vec![1, 1]
    );
    assert_eq!(q.settle_dependencies(p2, &[c1]).await.unwrap(), vec![2]);
    assert_eq!(
        q.settle_dependencies(p2, &[c2, c1]).await.unwrap(),
        vec![2, 2]
    );
    // An empty call is a no-op.
    assert!(q.settle_dependencies(p1, &[]).await.unwrap().is_empty());
}

pub async fn edges_of_many_parents_settle_in_one_call(q: Backend) {
    let (p1, p2, p3) = (JobId::new(), JobId::new(), JobId::new());
    let c1 = enqueue(&q, held("wf.child")).await;
    let c2 = enqueue(&q, held("wf.child")).await;
    assert_eq!(q.settle_dependencies(p1, &[c1]).await.unwrap(), vec![1]);
    // p1→c1 again (no change), p2→c1, p3→c1, p2→c2, and a duplicate.
    let edges = [(p1, c1), (p2, c1), (p3, c1), (p2, c2), (p2, c2)];
    assert_eq!(q.settle_many(&edges).await.unwrap(), vec![3, 3, 3, 1, 1]);
    assert_eq!(q.settle_many(&edges).await.unwrap(), vec![3, 3, 3, 1, 1]);
    assert_eq!(q.settle_dependencies(p3, &[c2]).await.unwrap(), vec![2]);
    assert!(q.settle_many(&[]).await.unwrap().is_empty());
}

pub async fn many_workers_settling_one_child_count_each_edge_once(q: Backend) {
    let child = enqueue(&q, held("wf.child")).await;
    let parents: Vec<JobId> = (0..40).map(|_| JobId::new()).collect();
    let mut tasks = Vec::new();
    for p in &parents {
        let (q, p) = (q.clone(), *p);
        tasks.push(tokio::spawn(async move {
            // Every edge settled twice, concurrently.
            let a = q.settle_dependencies(p, &[child]).await.unwrap()[0];
            let b = q.settle_dependencies(p, &[child]).await.unwrap()[0];
            (a, b)
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        let (a, b) = t.await.unwrap();
        assert!(b >= a);
        seen.push(a);
    }
    // Each first settle saw a distinct count: exactly one saw the last.
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 40, "each edge counted once: {seen:?}");
    assert_eq!(*seen.last().unwrap(), 40);
}

pub async fn only_held_steps_are_released(q: Backend) {
    let step = enqueue(&q, held("wf.step")).await;
    let later = enqueue(
        &q,
        NewJob::new("wf.later", json!({})).delay(Duration::from_secs(3600)),
    )
    .await;
    let now = enqueue(&q, NewJob::new("wf.now", json!({}))).await;
    assert!(is_held(&get(&q, step).await));
    assert!(!is_held(&get(&q, later).await));
    assert!(claim(&q, W1, &["default"], 10, LONG)
        .await
        .iter()
        .all(|j| j.id == now));

    let missing = JobId::new();
    let released = q.release_held(&[step, later, missing]).await.unwrap();
    assert_eq!(released, vec![step]);
    let job = get(&q, step).await;
    assert_eq!(job.status, JobStatus::Pending);
    assert!(job.run_at <= chrono::Utc::now() + chrono::Duration::seconds(1));
    assert_eq!(get(&q, later).await.status, JobStatus::Scheduled);
    // A second release changes nothing.
    assert!(q.release_held(&[step]).await.unwrap().is_empty());

    let claimed = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(ids_of(&claimed), vec![step]);
    // Running: not held, not released.
    assert!(q.release_held(&[step]).await.unwrap().is_empty());
    assert_eq!(get(&q, step).await.status, JobStatus::Running);

    let counts = q.counts().await.unwrap();
    let scheduled: u64 = counts
        .iter()
        .filter(|c| c.status == JobStatus::Scheduled)
        .map(|c| c.count)
        .sum();
    assert_eq!(scheduled, 1, "counts follow a release: {counts:?}");
}

pub async fn get_many_keeps_order_and_reports_missing(q: Backend) {
    let a = enqueue(&q, NewJob::new("wf.a", json!({"n": 1}))).await;
    let b = enqueue(&q, NewJob::new("wf.b", json!({"n": 2}))).await;
    let missing = JobId::new();
    let got = q.get_many(&[b, missing, a, b]).await.unwrap();
    let ids: Vec<Option<JobId>> = got.iter().map(|j| j.as_ref().map(|j| j.id)).collect();
    assert_eq!(ids, vec![Some(b), None, Some(a), Some(b)]);
    assert_eq!(got[0].as_ref().unwrap().payload, json!({"n": 2}));
    assert!(q.get_many(&[]).await.unwrap().is_empty());
}

#[derive(Serialize, Deserialize)]
struct Extract {
    region: String,
}
impl JobPayload for Extract {
    const JOB_TYPE: &'static str = "wf.extract";
}
impl JobOutput for Extract {
    type Output = Vec<u32>;
}
impl JobInput for Extract {
    type Input = jobs_core::workflow::NoInput;
}

#[derive(Serialize, Deserialize)]
struct Merge;
impl JobPayload for Merge {
    const JOB_TYPE: &'static str = "wf.merge";
}
impl JobOutput for Merge {
    type Output = u32;
}
impl JobInput for Merge {
    type Input = Parents<Vec<Vec<u32>>>;
}

#[derive(Serialize, Deserialize)]
struct Render;
impl JobPayload for Render {
    const JOB_TYPE: &'static str = "wf.render";
}
impl JobOutput for Render {
    type Output = String;
}
impl JobInput for Render {
    type Input = Parent<u32>;
}

pub async fn a_workflow_goes_in_as_one_batch_with_its_steps_held(q: Backend) {
    let queue = Queue::from(q.clone());
    let mut wf = Workflow::new("report");
    let parts: Vec<_> = ["eu", "us", "apac"]
        .into_iter()
        .map(|r| wf.add(Extract { region: r.into() }))
        .collect();
    let merge = wf.join(&parts, Merge);
    let render = wf.then(&merge, Render);
    let handle = queue.enqueue_workflow(wf).await.unwrap();
    assert_eq!(handle.id(), parts[0].id());

    // Only the roots are claimable.
    let claimed = claim(&q, W1, &["default"], 10, LONG).await;
    assert_eq!(
        set(&ids_of(&claimed)),
        set(&parts.iter().map(|p| p.id()).collect::<Vec<_>>())
    );
    let m = get(&q, merge.id()).await;
    assert!(is_held(&m), "a step with parents is held: {m:?}");
    let info = StepInfo::of(&m).unwrap().unwrap();
    assert_eq!(info.id, handle.id());
    assert_eq!(info.name, "report");
    assert_eq!(info.step, "wf.merge");
    assert_eq!(
        info.parents,
        parts.iter().map(|p| p.id()).collect::<Vec<_>>()
    );
    assert_eq!(info.children.len(), 1);
    assert_eq!(info.children[0].id, render.id());
    let head = get(&q, handle.id()).await;
    assert_eq!(StepInfo::of(&head).unwrap().unwrap().roots.len(), 3);
    assert!(head.metadata.contains_key(WORKFLOW_KEY));

    // The whole graph is found from its id.
    let status = handle.status().await.unwrap();
    assert_eq!(status.steps.len(), 5);
    assert_eq!(status.count(JobStatus::Running), 3);
    assert_eq!(status.count(JobStatus::Scheduled), 2);
    assert!(status.steps.iter().filter(|s| s.held).count() == 2);
    assert_eq!(status.state, jobs_core::WorkflowState::Running);
    for job in &claimed {
        complete(&q, W1, job).await;
    }
}

pub async fn a_batch_with_a_bad_step_stores_nothing(q: Backend) {
    let queue = Queue::from(q.clone());
    let mut wf = Workflow::new("bad");
    let a = wf.add(Extract {
        region: "eu".into(),
    });
    let m = wf.join(&[a], Merge);
    // A queue name no backend accepts.
    wf.configure(&m, |j| j.queue("has space"));
    assert!(queue.enqueue_workflow(wf).await.is_err());
    assert!(q.get(a.id()).await.unwrap().is_none());
    assert!(claim(&q, W1, &["default"], 10, LONG).await.is_empty());
}

pub async fn deleting_a_child_forgets_its_settled_edges(q: Backend) {
    let (p1, p2) = (JobId::new(), JobId::new());
    let c = enqueue(&q, held("wf.child")).await;
    assert_eq!(q.settle_dependencies(p1, &[c]).await.unwrap(), vec![1]);
    q.cancel(c, &jobs_core::CancelRequest::by("test"))
        .await
        .unwrap();
    q.delete_job(c).await.unwrap();
    assert!(q.get(c).await.unwrap().is_none());
    // Its settled edges went with it: another parent counts from zero.
    assert_eq!(q.settle_dependencies(p2, &[c]).await.unwrap(), vec![1]);
}
