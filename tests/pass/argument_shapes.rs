//! Patterns, every built-in extractor, by value and by reference.
use jobs::prelude::*;
use jobs::{CancellationToken, Services};

#[derive(Serialize, Deserialize)]
struct Import {
    source_url: String,
    format: Option<String>,
}

struct Metrics;

#[job_handler("data.import")]
async fn import(
    Import { source_url, format }: Import,
    _job: Job,
    _job_ref: &Job,
    _ctx: JobContext,
    _ctx_ref: &JobContext,
    _services: &Services,
    _token: CancellationToken,
    _token_ref: &CancellationToken,
    _arc: std::sync::Arc<Job>,
    _queue: Queue,
    _queue_ref: &Queue,
    _optional: Option<Data<Metrics>>,
) -> JobResult {
    let _ = (source_url, format);
    JobResult::success()
}

fn main() {
    let _ = ImportHandler;
}
