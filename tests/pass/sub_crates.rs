//! Users of the sub-crates point the macro at `jobs_core` with `crate = ..`.
use jobs_core::{Data, JobContext};
use jobs_macros::job_handler;

#[derive(serde::Serialize, serde::Deserialize)]
struct Resize {
    width: u32,
}

struct Images;

#[job_handler("image.resize", crate = jobs_core)]
async fn resize(resize: Resize, _images: Data<Images>, _ctx: JobContext) -> Result<u32, jobs_core::JobError> {
    Ok(resize.width)
}

fn main() {
    let _ = <ResizeHandler as jobs_core::JobHandler>::job_type(&ResizeHandler);
}
