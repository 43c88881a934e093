//! Claiming: leasing the next due jobs of some queues. Jobs without limits
//! take the fast path, one statement; limits take the path of `limits.rs`.

use std::collections::HashMap;

use jobs_core::backend::{ClaimRequest, LeaseToken};
use jobs_core::{Claimed, Job, JobStatus, Result};
use sqlx::SqliteConnection;

use super::error::db_err;
use super::limits::claim_limited;
use super::row::job_from_row;
use super::sql;
use super::time::{add_micros, now_micros};
use super::SqliteBackend;

/// What a claim needs on the writer's thread.
pub(super) struct ClaimArgs {
    pub(super) now: i64,
    pub(super) lease_until: i64,
    pub(super) limit: usize,
    pub(super) token: LeaseToken,
    pub(super) worker: String,
    pub(super) queues: Vec<String>,
    pub(super) limits: Vec<jobs_core::ClaimLimit>,
}

impl SqliteBackend {
    pub(super) async fn claim_now(&self, req: ClaimRequest<'_>) -> Result<Claimed> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Claimed::default());
        }
        let now = now_micros();
        let args = ClaimArgs {
            now,
            lease_until: add_micros(now, req.lease),
            limit: req.limit,
            // One fresh token for every job of this claim: it is the lease's
            // identity, which outcomes and heartbeats must present.
            token: LeaseToken::random(),
            worker: req.worker_id.to_owned(),
            queues: req.queues.to_vec(),
            // Only the limits of queues this claim asks for matter.
            limits: req
                .limits
                .iter()
                .filter(|l| req.queues.contains(&l.queue))
                .cloned()
                .collect(),
        };
        let (rows, limited) = self
            .write(move |conn| {
                Box::pin(async move {
                    if args.limits.is_empty() {
                        if let Some(rows) = claim_fast(conn, &args).await? {
                            return Ok((rows, false));
                        }
                    }
                    claim_limited(conn, &args).await
                })
            })
            .await?;
        let mut jobs = rows;
        let with_limits: Vec<uuid::Uuid> = jobs
            .iter()
            .filter(|(j, _)| !j.limits.is_empty())
            .map(|(j, _)| *j.id.as_uuid())
            .collect();
        if !with_limits.is_empty() {
            self.note_limited(with_limits);
        }
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
        Ok(Claimed::limited(
            jobs.into_iter().map(|(j, _)| j).collect(),
            limited,
        ))
    }
}

/// The fast path: one statement leases the first `limit` due jobs if none
/// of them has limits of its own. `None`: some have (the statement then
/// returned them unchanged, still waiting), so the claim must take the
/// limited path.
async fn claim_fast(
    conn: &mut SqliteConnection,
    args: &ClaimArgs,
) -> Result<Option<Vec<(Job, i64)>>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    // ?1 now, ?2 worker, ?3 lease_until, ?4 limit, ?5 token, ?6.. queues.
    let sql = sql::claim(args.queues.len());
    let mut q = sqlx::query(&sql)
        .bind(args.now)
        .bind(args.worker.as_str())
        .bind(args.lease_until)
        .bind(limit)
        .bind(args.token.as_i64());
    for queue in &args.queues {
        q = q.bind(queue.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
    let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
    Ok(
        if jobs.iter().any(|(j, _)| j.status != JobStatus::Running) {
            None
        } else {
            Some(jobs)
        },
    )
}
