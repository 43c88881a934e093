//! Workflow edges that type-check: one parent, a `Vec` fan-in, a tuple
//! fan-in, a run-anyway fan-in of `Option`s, and ordering-only edges.
use jobs::prelude::*;
use jobs::OnParentFailure;

#[derive(Serialize, Deserialize)]
struct Extract {
    region: String,
}

#[job_handler("pass.extract")]
async fn extract(e: Extract) -> Result<Vec<u32>, JobError> {
    Ok(vec![e.region.len() as u32])
}

#[derive(Serialize, Deserialize)]
struct Merge;

#[job_handler("pass.merge")]
async fn merge(_m: Merge, parts: Parents<Vec<Vec<u32>>>) -> Result<u32, JobError> {
    Ok(parts.iter().flatten().sum())
}

#[derive(Serialize, Deserialize)]
struct Tolerant;

#[job_handler("pass.tolerant")]
async fn tolerant(_t: Tolerant, parts: Parents<Vec<Option<Vec<u32>>>>) -> Result<usize, JobError> {
    Ok(parts.iter().flatten().count())
}

#[derive(Serialize, Deserialize)]
struct Pair;

#[job_handler("pass.pair")]
async fn pair(_p: Pair, both: Parents<(u32, usize)>) -> Result<String, JobError> {
    Ok(format!("{} {}", both.0 .0, both.0 .1))
}

#[derive(Serialize, Deserialize)]
struct Render;

#[job_handler("pass.render")]
async fn render(_r: Render, text: Parent<String>) -> Result<String, JobError> {
    Ok(text.into_inner())
}

#[derive(Serialize, Deserialize)]
struct Notify;

#[job_handler("pass.notify")]
async fn notify(_n: Notify) {}

fn main() {
    let mut wf = Workflow::new("all-shapes");
    let parts: Vec<_> = ["eu", "us"]
        .into_iter()
        .map(|r| wf.add(Extract { region: r.into() }))
        .collect();
    let merged = wf.join(&parts, Merge);
    let tolerant = wf.join(&parts, Tolerant);
    wf.on_parent_failure(&tolerant, OnParentFailure::Run);
    let pair = wf.join2(&merged, &tolerant, Pair);
    let rendered = wf.then(&pair, Render);
    // Takes nothing: may follow any step, typed or not.
    wf.then(&rendered, Notify);
    wf.after(&[merged.any(), rendered.any()], Notify);
    assert_eq!(wf.len(), 8);
}
