//! A workflow: a monthly report that fans out one extraction job per
//! region, fans in to a merge, then renders. Each step is an ordinary
//! `#[job_handler]`; the edges are typed — `merge` takes
//! `Parents<Vec<RegionRows>>` because `extract` returns `RegionRows`, and
//! wiring it after a step that returns anything else does not compile.
//!
//! Two things go wrong on the way, as they do in production:
//! - the `apac` source times out on its first try: the step is retried, and
//!   the workflow waits for it;
//! - the `latam` source is down: its step dead-letters, and the workflow
//!   cancels the merge and the render below it. Once the source is back, an
//!   operator requeues the dead step (`jobs requeue <id>`, the dashboard, or
//!   `queue.requeue(id)` as here) and the workflow resumes where it stopped.
//!
//! Runs on the embedded SQLite default:
//!
//! ```text
//! cargo run --example report_pipeline
//! ```
//!
//! `tests/workflows.rs` runs this same pipeline on every backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{OnParentFailure, Step, WorkflowHandle, WorkflowState};

/// Extract one region's sales for a month.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExtractRegion {
    pub month: String,
    pub region: String,
}

/// What an extraction returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRows {
    pub region: String,
    pub orders: u64,
    pub revenue_cents: u64,
}

/// Merge every region's rows.
#[derive(Debug, Serialize, Deserialize)]
pub struct MergeRegions {
    pub month: String,
}

/// What the merge returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedReport {
    pub month: String,
    pub regions: Vec<String>,
    pub orders: u64,
    pub revenue_cents: u64,
}

/// Render the merged report.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenderReport {
    pub format: String,
}

/// Where the rendered report is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportReady {
    pub url: String,
    pub orders: u64,
}

/// The regions' data sources; `latam` can be down.
#[derive(Debug, Default)]
pub struct Sources {
    latam_down: AtomicBool,
}

impl Sources {
    pub fn with_latam_down() -> Self {
        Sources {
            latam_down: AtomicBool::new(true),
        }
    }

    pub fn bring_latam_back(&self) {
        self.latam_down.store(false, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the {0} source timed out")]
    Timeout(String),
    #[error("the {0} source is down")]
    Down(String),
}

#[job_handler("pipeline.extract", max_retries = 1)]
pub async fn extract(
    job: ExtractRegion,
    sources: Data<Sources>,
    ctx: JobContext,
) -> Result<RegionRows, SourceError> {
    if job.region == "apac" && ctx.attempt() == 1 {
        return Err(SourceError::Timeout(job.region));
    }
    if job.region == "latam" && sources.latam_down.load(Ordering::SeqCst) {
        return Err(SourceError::Down(job.region));
    }
    let seed = job.region.bytes().map(u64::from).sum::<u64>();
    Ok(RegionRows {
        region: job.region,
        orders: seed * 10,
        revenue_cents: seed * 12_345,
    })
}

#[job_handler("pipeline.merge")]
pub async fn merge(
    job: MergeRegions,
    parts: Parents<Vec<RegionRows>>,
) -> Result<MergedReport, JobError> {
    let parts = parts.into_inner();
    Ok(MergedReport {
        month: job.month,
        regions: parts.iter().map(|p| p.region.clone()).collect(),
        orders: parts.iter().map(|p| p.orders).sum(),
        revenue_cents: parts.iter().map(|p| p.revenue_cents).sum(),
    })
}

#[job_handler("pipeline.render")]
pub async fn render(
    job: RenderReport,
    merged: Parent<MergedReport>,
) -> Result<ReportReady, JobError> {
    Ok(ReportReady {
        url: format!("s3://reports/{}.{}", merged.month, job.format),
        orders: merged.orders,
    })
}

// Every manager of this binary checks at build() that it can run each step.
jobs::workflow_steps!("monthly-report": ExtractRegion, MergeRegions, RenderReport);

pub const REGIONS: [&str; 4] = ["emea", "amer", "apac", "latam"];

/// The workflow for `month`: extract per region → merge → render.
pub fn report_workflow(month: &str) -> (Workflow, Step<RenderReport>, Vec<Step<ExtractRegion>>) {
    let mut wf = Workflow::new(format!("monthly-report-{month}"));
    let parts: Vec<_> = REGIONS
        .iter()
        .map(|r| {
            let step = wf.add(ExtractRegion {
                month: month.into(),
                region: (*r).into(),
            });
            wf.name(&step, format!("extract-{r}"));
            step
        })
        .collect();
    let merged = wf.join(
        &parts,
        MergeRegions {
            month: month.into(),
        },
    );
    let rendered = wf.then(
        &merged,
        RenderReport {
            format: "pdf".into(),
        },
    );
    // Cancel below a failure (the default), spelled out.
    wf.on_parent_failure(&merged, OnParentFailure::Cancel);
    (wf, rendered, parts)
}

/// Waits until the workflow has no unfinished step.
pub async fn settled(handle: &WorkflowHandle) -> jobs::Result<jobs::WorkflowStatus> {
    loop {
        let status = handle.wait(Duration::from_secs(60)).await?;
        if status.is_finished() {
            return Ok(status);
        }
    }
}

/// Runs the pipeline on `queue` (with a manager running on it that has
/// `sources`), fixing the `latam` source and requeueing its dead step once
/// the workflow stopped on it. Returns the rendered report.
pub async fn run(
    queue: &Queue,
    sources: &Sources,
) -> Result<ReportReady, Box<dyn std::error::Error>> {
    let (wf, rendered, parts) = report_workflow("2026-11");
    let handle = queue.enqueue_workflow(wf).await?;
    println!("workflow {} enqueued", handle.id());

    // latam is down: its step dead-letters and the rest of the graph below
    // it is cancelled.
    let status = settled(&handle).await?;
    assert_eq!(status.state, WorkflowState::Failed);
    for step in &status.steps {
        println!(
            "  {:<14} {:<12} {}",
            step.step,
            step.status.as_str(),
            if step.cancelled {
                "(cancelled by the workflow)"
            } else {
                ""
            }
        );
    }

    // The source is back: requeue the dead step, and the workflow resumes.
    sources.bring_latam_back();
    let latam = parts[3].id();
    queue.requeue(latam).await?;
    println!("requeued {latam}; the workflow resumes");
    let status = settled(&handle).await?;
    assert_eq!(status.state, WorkflowState::Completed, "{status:#?}");
    let report = handle
        .step(&rendered)
        .result_timeout(Duration::from_secs(60))
        .await?;
    Ok(report)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::temp_dir().join(format!("jobs-pipeline-{}.db", std::process::id()));
    let queue = jobs::connect(&format!("sqlite://{}", db.display())).await?;
    let sources = std::sync::Arc::new(Sources::with_latam_down());
    let manager = WorkerManager::builder(queue.clone())
        .data_arc(sources.clone())
        .backoff(Backoff::fixed(Duration::from_millis(100)))
        .build()?;
    manager.start().await?;
    let report = run(&queue, &sources).await?;
    println!("report ready: {} ({} orders)", report.url, report.orders);
    manager.stop().await?;
    let _ = std::fs::remove_file(&db);
    Ok(())
}
