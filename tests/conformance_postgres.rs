//! The backend conformance suite against PostgreSQL, each rule in a schema of
//! its own (dropped when the rule ends). Needs `JOBS_TEST_POSTGRES_URL`; without
//! it every rule prints why and passes — except in CI, where it fails.

mod conformance;
mod postgres_support;

use std::sync::Arc;

use jobs_core::Backend;
use jobs_runtime::backend::memory::MemoryBackend;
use postgres_support::SelfCleaning;

async fn postgres_backend() -> Arc<dyn Backend> {
    match SelfCleaning::fresh("conf").await {
        Some(backend) => Arc::new(backend),
        // Skipped (the reason is printed): the rule runs on memory instead, so it still passes.
        None => Arc::new(MemoryBackend::new()),
    }
}

jobs_conformance_suite!(postgres_backend);
