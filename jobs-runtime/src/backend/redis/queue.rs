//! The [`Backend`] implementation: each call hands over to the inherent
//! method doing the work.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{
    ClaimRequest, Fence, HeartbeatReply, JobListener, OutcomeUpdate, Recovered,
};
use jobs_core::{
    AuditEntry, AuditFilter, Backend, BoxFuture, CancelRequest, Claimed, Enqueued, Error, Job,
    JobFilter, JobId, JobPage, Leader, NewJob, Progress, PruneRequest, QueueCount, Result,
    ScheduleState, WorkerInfo,
};

use super::backend::RedisBackend;
use super::listener::RedisListener;
use super::scripts::{BACKEND, SCRIPTS};

impl Backend for RedisBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<Enqueued>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Claimed>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<HeartbeatReply>> {
        Box::pin(self.heartbeat_now(worker_id, fences, lease))
    }

    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.record_now(worker_id, updates))
    }

    fn recover_expired(&self) -> BoxFuture<'_, Result<Vec<Recovered>>> {
        Box::pin(self.recover_now())
    }

    fn get(&self, id: JobId) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(async move {
            let mut rows = self.get_rows(&[id.to_string()]).await?;
            Ok(rows.pop().flatten())
        })
    }

    fn get_many<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<Option<Job>>>> {
        Box::pin(async move {
            let ids: Vec<String> = ids.iter().map(JobId::to_string).collect();
            self.get_rows(&ids).await
        })
    }

    fn settle_many<'a>(&'a self, edges: &'a [(JobId, JobId)]) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(self.settle_pairs(edges))
    }

    fn release_held<'a>(&'a self, ids: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>>> {
        Box::pin(self.release_now(ids))
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(async move {
            if filter.is_keyset() {
                return Ok(self.list_page_now(filter).await?.jobs);
            }
            self.list_now(filter).await
        })
    }

    fn list_page<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<JobPage>> {
        Box::pin(self.list_page_now(filter))
    }

    fn cancel<'a>(&'a self, id: JobId, request: &'a CancelRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move {
            let message = request.message();
            self.change(&SCRIPTS.cancel, id, &[&message], Error::cannot_cancel)
                .await
        })
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change(&SCRIPTS.requeue, id, &[], Error::cannot_requeue))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(self.counts_now())
    }

    fn prune<'a>(&'a self, req: &'a PruneRequest) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.prune_now(req))
    }

    fn throughput(
        &self,
        since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<jobs_core::ThroughputBucket>>> {
        Box::pin(self.throughput_now(since))
    }

    fn requeue_many<'a>(
        &'a self,
        filter: &'a jobs_core::RequeueFilter,
    ) -> BoxFuture<'a, Result<jobs_core::RequeueReport>> {
        Box::pin(self.requeue_many_now(filter))
    }

    fn detached(&self) -> Option<Arc<dyn Backend>> {
        Some(Arc::new(self.detached_handle()))
    }

    fn pause_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.pause_now(queue, true))
    }

    fn resume_queue<'a>(&'a self, queue: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.pause_now(queue, false))
    }

    fn paused_queues(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.paused_now())
    }

    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, Progress)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.progress_now(updates))
    }

    fn register_worker<'a>(
        &'a self,
        info: &'a WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.register_now(info, ttl))
    }

    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.deregister_now(id))
    }

    fn workers(&self) -> BoxFuture<'_, Result<Vec<WorkerInfo>>> {
        Box::pin(self.workers_now())
    }

    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.try_lead_now(role, holder, ttl))
    }

    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.resign_now(role, holder))
    }

    fn leader<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<Leader>>> {
        Box::pin(self.leader_now(role))
    }

    fn schedules(&self) -> BoxFuture<'_, Result<Vec<ScheduleState>>> {
        Box::pin(self.schedules_now())
    }

    fn save_schedule<'a>(&'a self, state: &'a ScheduleState) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_schedule_now(state))
    }

    fn delete_job(&self, id: JobId) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.delete_now(id))
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.append_audit_now(entry))
    }

    fn audit_log<'a>(&'a self, filter: &'a AuditFilter) -> BoxFuture<'a, Result<Vec<AuditEntry>>> {
        Box::pin(self.audit_log_now(filter))
    }

    fn prune_audit(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune_audit_now(before, limit))
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(RedisListener::new(self, queues).await?);
            Ok(listener)
        })
    }

    /// Woken by the `{P}:finished` channel, so a handle in any process
    /// resolves as soon as its job finishes (see `finished.rs`).
    fn wait_finished(&self, id: JobId, timeout: Duration) -> BoxFuture<'_, Result<Option<Job>>> {
        Box::pin(self.wait_finished_now(id, timeout))
    }
}
