//! The backend conformance suite against SQLite, each test on its own database file.

mod conformance;

use std::sync::Arc;

use jobs_core::JobQueue;
use jobs_runtime::backend::sqlite::SqliteBackend;

async fn sqlite_backend() -> Arc<dyn JobQueue> {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("conformance-sqlite")
        .join(format!("{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}", path.display());
    Arc::new(SqliteBackend::connect(&url).await.expect("open sqlite"))
}

jobs_conformance_suite!(sqlite_backend);
