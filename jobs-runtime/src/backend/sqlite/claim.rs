//! Claiming: leasing the next due jobs of some queues in one statement.

use std::collections::HashMap;

use jobs_core::backend::{ClaimRequest, LeaseToken};
use jobs_core::{Job, Result};

use super::error::db_err;
use super::row::job_from_row;
use super::sql;
use super::time::{add_micros, now_micros};
use super::SqliteBackend;

impl SqliteBackend {
    pub(super) async fn claim_now(&self, req: ClaimRequest<'_>) -> Result<Vec<Job>> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_micros();
        let lease_until = add_micros(now, req.lease);
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        // One fresh token for every job of this claim: it is the lease's
        // identity, which outcomes and heartbeats must present.
        let token = LeaseToken::random();
        // ?1 now, ?2 worker, ?3 lease_until, ?4 limit, ?5 token, ?6.. queues.
        let sql = sql::claim(req.queues.len());
        let worker = req.worker_id.to_owned();
        let queues = req.queues.to_vec();
        let mut jobs = self
            .write(move |conn| {
                Box::pin(async move {
                    let mut q = sqlx::query(&sql)
                        .bind(now)
                        .bind(worker.as_str())
                        .bind(lease_until)
                        .bind(limit)
                        .bind(token.as_i64());
                    for queue in &queues {
                        q = q.bind(queue.as_str());
                    }
                    q.fetch_all(conn).await.map_err(db_err)
                })
            })
            .await?
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<(Job, i64)>>>()?;
        let pos: HashMap<&str, usize> = req
            .queues
            .iter()
            .enumerate()
            .rev()
            .map(|(i, q)| (q.as_str(), i))
            .collect();
        jobs.sort_by_key(|(j, seq)| {
            (
                pos.get(j.queue_name.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
                std::cmp::Reverse(j.priority),
                j.run_at,
                *seq,
            )
        });
        Ok(jobs.into_iter().map(|(j, _)| j).collect())
    }
}
