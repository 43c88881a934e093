//! The backend conformance suite against the in-memory backend (the reference).

mod conformance;

use std::sync::Arc;

use jobs_core::Backend;
use jobs_runtime::backend::memory::MemoryBackend;

async fn memory_backend() -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::new())
}

jobs_conformance_suite!(memory_backend);
