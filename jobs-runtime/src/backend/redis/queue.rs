//! The [`Backend`] implementation: each call hands over to the inherent
//! method doing the work.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::{ClaimRequest, Fence, JobListener, OutcomeUpdate, Recovered};
use jobs_core::{Backend, BoxFuture, Error, Job, JobFilter, JobId, NewJob, QueueCount, Result};

use super::backend::RedisBackend;
use super::listener::RedisListener;
use super::scripts::{BACKEND, SCRIPTS};

impl Backend for RedisBackend {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, Result<Vec<JobId>>> {
        Box::pin(self.enqueue_now(jobs))
    }

    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.claim_now(req))
    }

    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, Result<Vec<JobId>>> {
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
            let mut rows = self.get_many(&[id.to_string()]).await?;
            Ok(rows.pop().flatten())
        })
    }

    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, Result<Vec<Job>>> {
        Box::pin(self.list_now(filter))
    }

    fn cancel(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change(&SCRIPTS.cancel, id, Error::cannot_cancel))
    }

    fn requeue(&self, id: JobId) -> BoxFuture<'_, Result<Job>> {
        Box::pin(self.change(&SCRIPTS.requeue, id, Error::cannot_requeue))
    }

    fn counts(&self) -> BoxFuture<'_, Result<Vec<QueueCount>>> {
        Box::pin(self.counts_now())
    }

    fn prune(&self, before: DateTime<Utc>, limit: usize) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.prune_now(before, limit))
    }

    fn detached(&self) -> Option<Arc<dyn Backend>> {
        Some(Arc::new(self.detached_handle()))
    }

    fn listener<'a>(&'a self, queues: &'a [String]) -> BoxFuture<'a, Result<Box<dyn JobListener>>> {
        Box::pin(async move {
            let listener: Box<dyn JobListener> = Box::new(RedisListener::new(self, queues).await?);
            Ok(listener)
        })
    }
}
