//! The backend conformance suite against Redis (`JOBS_TEST_REDIS_URL`), each
//! rule on its own random key prefix, whose keys are deleted when the rule ends.

mod conformance;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    ClaimRequest, Fence, HeartbeatReply, JobListener, OutcomeUpdate, Recovered,
};
use jobs_core::{
    AuditEntry, AuditFilter, Backend, BoxFuture, CancelRequest, Claimed, Enqueued, Job, JobFilter,
    JobId, Leader, NewJob, Progress, PruneRequest, QueueCount, Result, ScheduleState, WorkerInfo,
};
use jobs_runtime::backend::redis::RedisBackend;

fn redis_url() -> String {
    match std::env::var("JOBS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "the Redis conformance suite needs JOBS_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)"
        ),
    }
}

/// Without a Redis URL (and outside CI) the suite runs on memory instead, so
/// `cargo test` still passes on a machine without Redis; CI must set the URL.
async fn redis_backend() -> Arc<dyn Backend> {
    if std::env::var("JOBS_TEST_REDIS_URL").map_or(true, |u| u.is_empty())
        && std::env::var_os("CI").is_none()
    {
        eprintln!("skipped: JOBS_TEST_REDIS_URL is not set; running this rule on memory instead");
        return Arc::new(jobs_runtime::backend::memory::MemoryBackend::new());
    }
    let url = redis_url();
    let prefix = format!("conformance-{:016x}", fastrand::u64(..));
    let backend = RedisBackend::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .expect("connect to redis");
    Arc::new(Purged { backend, url })
}

jobs_conformance_suite!(redis_backend);

/// The backend, deleting its namespace's keys when the rule drops it (also
/// after a failed assertion). A blocking connection of its own does it, since
/// the test's runtime may be shutting down by then.
struct Purged {
    backend: RedisBackend,
    url: String,
}

impl Drop for Purged {
    fn drop(&mut self) {
        let pattern = format!("{{{}}}:*", self.backend.prefix());
        let purge = || -> redis::RedisResult<()> {
            let mut con = redis::Client::open(self.url.as_str())?.get_connection()?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut con)?;
                if !keys.is_empty() {
                    redis::cmd("UNLINK").arg(&keys).exec(&mut con)?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        };
        if let Err(e) = purge() {
            eprintln!("could not delete the keys of prefix {pattern}: {e}");
        }
    }
}

impl Backend for Purged {
    fn backend_name(&self) -> &'static str {
        self.backend.backend_name()
    }
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>> {
        self.backend.enqueue_batch(jobs)
    }
    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Claimed>> {
        self.backend.claim(req)
    }
    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>> {
        self.backend.heartbeat(worker_id, fences, lease)
    }
    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        self.backend.record(worker_id, updates)
    }
    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        self.backend.recover_expired()
    }
    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        self.backend.get(id)
    }
    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        self.backend.get_many(ids)
    }
    fn settle_dependencies<'a>(
        &'a self,
        parent: JobId,
        children: &'a [JobId],
    ) -> BoxFuture<'a, Result<Vec<u32>>> {
        self.backend.settle_dependencies(parent, children)
    }
    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        self.backend.settle_many(edges)
    }
    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        self.backend.release_held(ids)
    }
    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        self.backend.list(filter)
    }
    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<jobs_core::JobPage>> {
        self.backend.list_page(filter)
    }
    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>> {
        self.backend.cancel(id, request)
    }
    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        self.backend.requeue(id)
    }
    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        self.backend.counts()
    }
    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>> {
        self.backend.prune(req)
    }
    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        self.backend.pause_queue(queue)
    }
    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        self.backend.resume_queue(queue)
    }
    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        self.backend.paused_queues()
    }
    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        self.backend.record_progress(updates)
    }
    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        self.backend.register_worker(info, ttl)
    }
    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        self.backend.deregister_worker(id)
    }
    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        self.backend.workers()
    }
    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        self.backend.try_lead(role, holder, ttl)
    }
    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        self.backend.resign(role, holder)
    }
    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        self.backend.leader(role)
    }
    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        self.backend.schedules()
    }
    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        self.backend.save_schedule(state)
    }
    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        self.backend.delete_job(id)
    }
    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        self.backend.append_audit(entry)
    }
    fn audit_log<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Result<Vec<AuditEntry>>> {
        self.backend.audit_log(filter)
    }
    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        self.backend.prune_audit(before, limit)
    }
    fn throughput(
        &self,
        since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<jobs_core::ThroughputBucket>>> {
        self.backend.throughput(since)
    }
    fn requeue_many<'a>(
        &'a self,
        filter: &'a jobs_core::RequeueFilter,
    ) -> BoxFuture<'a, Result<jobs_core::RequeueReport>> {
        self.backend.requeue_many(filter)
    }
    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        self.backend.listener(queues)
    }
    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        self.backend.wait_finished(id, timeout)
    }
}
