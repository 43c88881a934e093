//! Shared by the PostgreSQL tests: the server URL, and a fresh schema per test.
#![allow(dead_code)]

pub mod cluster;

use jobs_runtime::backend::postgres::PostgresBackend;

/// `JOBS_TEST_POSTGRES_URL`, or `None` (with the reason printed) when unset —
/// except in CI, where a missing database is a failure, never a skip.
pub fn url() -> Option<String> {
    match std::env::var("JOBS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set but JOBS_TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI"
            )
        }
        _ => {
            eprintln!("skipped: set JOBS_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema(tag: &str) -> String {
    format!("jobs_test_{tag}_{:016x}", fastrand::u64(..))
        .chars()
        .take(40)
        .collect()
}

/// A backend on a schema of its own (dropped with the guard, even on panic);
/// `None` when the tests are skipped.
pub async fn fresh_backend(tag: &str) -> Option<SelfCleaning> {
    SelfCleaning::fresh(tag).await
}

/// Drops the backend's schema and everything in it.
pub async fn drop_schema(backend: &PostgresBackend) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", backend.schema());
    sqlx::query(&sql)
        .execute(backend.pool())
        .await
        .expect("drop test schema");
}

/// A backend that drops its own schema when the last handle to it goes, so
/// tests that only hand out `Arc<dyn Backend>` (the conformance suite) clean up.
pub struct SelfCleaning {
    backend: PostgresBackend,
    url: String,
}

impl SelfCleaning {
    pub async fn fresh(tag: &str) -> Option<SelfCleaning> {
        let url = url()?;
        let backend = PostgresBackend::builder(url.clone())
            .schema(fresh_schema(tag))
            .connect()
            .await
            .expect("connect to JOBS_TEST_POSTGRES_URL");
        Some(SelfCleaning { backend, url })
    }
}

impl std::ops::Deref for SelfCleaning {
    type Target = PostgresBackend;
    fn deref(&self) -> &PostgresBackend {
        &self.backend
    }
}

impl Drop for SelfCleaning {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime, which can't be blocked on:
        // drop the schema from a thread with a runtime of its own.
        let sql = format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.backend.schema()
        );
        let url = self.url.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(&sql).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop test schema: {e}");
        }
    }
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $name<'a>(&'a self, $($arg: $ty),*) -> jobs_core::BoxFuture<'a, $out> {
            self.backend.$name($($arg),*)
        })*
    };
}

impl jobs_core::Backend for SelfCleaning {
    fn backend_name(&self) -> &'static str {
        self.backend.backend_name()
    }
    fn detached(&self) -> Option<std::sync::Arc<dyn jobs_core::Backend>> {
        self.backend.detached()
    }
    delegate! {
        enqueue_batch(jobs: Vec<jobs_core::NewJob>) -> jobs_core::Result<Vec<jobs_core::Enqueued>>;
        claim(req: jobs_core::backend::ClaimRequest<'a>) -> jobs_core::Result<jobs_core::Claimed>;
        heartbeat(worker_id: &'a str, fences: &'a [jobs_core::backend::Fence], lease: std::time::Duration)
            -> jobs_core::Result<jobs_core::backend::HeartbeatReply>;
        record(worker_id: &'a str, updates: &'a [jobs_core::backend::OutcomeUpdate])
            -> jobs_core::Result<Vec<jobs_core::JobId>>;
        recover_expired() -> jobs_core::Result<Vec<jobs_core::backend::Recovered>>;
        get(id: jobs_core::JobId) -> jobs_core::Result<Option<jobs_core::Job>>;
        list(filter: &'a jobs_core::JobFilter) -> jobs_core::Result<Vec<jobs_core::Job>>;
        list_page(filter: &'a jobs_core::JobFilter) -> jobs_core::Result<jobs_core::JobPage>;
        cancel(id: jobs_core::JobId, request: &'a jobs_core::CancelRequest) -> jobs_core::Result<jobs_core::Job>;
        requeue(id: jobs_core::JobId) -> jobs_core::Result<jobs_core::Job>;
        counts() -> jobs_core::Result<Vec<jobs_core::QueueCount>>;
        prune(req: &'a jobs_core::PruneRequest) -> jobs_core::Result<u64>;
        pause_queue(queue: &'a str) -> jobs_core::Result<()>;
        resume_queue(queue: &'a str) -> jobs_core::Result<()>;
        paused_queues() -> jobs_core::Result<Vec<String>>;
        record_progress(updates: &'a [(jobs_core::backend::Fence, jobs_core::Progress)]) -> jobs_core::Result<()>;
        register_worker(info: &'a jobs_core::WorkerInfo, ttl: std::time::Duration) -> jobs_core::Result<()>;
        deregister_worker(id: &'a str) -> jobs_core::Result<()>;
        workers() -> jobs_core::Result<Vec<jobs_core::WorkerInfo>>;
        try_lead(role: &'a str, holder: &'a str, ttl: std::time::Duration) -> jobs_core::Result<bool>;
        resign(role: &'a str, holder: &'a str) -> jobs_core::Result<()>;
        leader(role: &'a str) -> jobs_core::Result<Option<jobs_core::Leader>>;
        schedules() -> jobs_core::Result<Vec<jobs_core::ScheduleState>>;
        save_schedule(state: &'a jobs_core::ScheduleState) -> jobs_core::Result<()>;
        delete_job(id: jobs_core::JobId) -> jobs_core::Result<()>;
        append_audit(entry: &'a jobs_core::AuditEntry) -> jobs_core::Result<()>;
        audit_log(filter: &'a jobs_core::AuditFilter) -> jobs_core::Result<Vec<jobs_core::AuditEntry>>;
        prune_audit(before: chrono::DateTime<chrono::Utc>, limit: usize) -> jobs_core::Result<u64>;
        listener(queues: &'a [String]) -> jobs_core::Result<Box<dyn jobs_core::backend::JobListener>>;
        throughput(since: chrono::DateTime<chrono::Utc>) -> jobs_core::Result<Vec<jobs_core::ThroughputBucket>>;
        requeue_many(filter: &'a jobs_core::RequeueFilter) -> jobs_core::Result<jobs_core::RequeueReport>;
        get_many(ids: &'a [jobs_core::JobId]) -> jobs_core::Result<Vec<Option<jobs_core::Job>>>;
        settle_dependencies(parent: jobs_core::JobId, children: &'a [jobs_core::JobId]) -> jobs_core::Result<Vec<u32>>;
        settle_many(edges: &'a [(jobs_core::JobId, jobs_core::JobId)]) -> jobs_core::Result<Vec<u32>>;
        release_held(ids: &'a [jobs_core::JobId]) -> jobs_core::Result<Vec<jobs_core::JobId>>;
        wait_finished(id: jobs_core::JobId, timeout: std::time::Duration) -> jobs_core::Result<Option<jobs_core::Job>>;
    }
}
