//! SQLite-specific rules beyond the conformance suite, one concern a file.

mod counts;
mod runtimes;
mod storage;
mod urls;

use std::time::Duration;

use jobs_core::backend::ClaimRequest;
use jobs_core::{Backend, Job};
use jobs_runtime::backend::sqlite::SqliteBackend;

/// Claims up to `n` jobs of `queue` for worker `w`.
async fn claim(q: &SqliteBackend, queue: &str, n: usize, lease: Duration) -> Vec<Job> {
    q.claim(ClaimRequest::new("w", &[queue.to_owned()], n, lease))
        .await
        .expect("claim")
        .jobs
}
