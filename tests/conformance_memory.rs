//! The backend conformance suite against the in-memory backend (the reference).

mod conformance;

use std::sync::Arc;

use jobs_core::JobQueue;
use jobs_runtime::backend::memory::MemoryBackend;

async fn memory_backend() -> Arc<dyn JobQueue> {
    Arc::new(MemoryBackend::new())
}

jobs_conformance_suite!(memory_backend);
