//! Claiming: leasing the next due jobs of some queues. Jobs without limits
//! take the fast path, one statement; limits take the path of `limits.rs`.

use std::collections::HashMap;

use jobs_core::backend::{ClaimRequest, LeaseToken};
use jobs_core::{Claimed, Result};
use sqlx::SqliteConnection;

use super::error::{db_err, BACKEND};
use super::limits::claim_limited;
use super::native::{native_err, Binder, NativeRow};
use super::row::{CorruptRow, JobRows};
use super::sql::{self, ArmCap};
use super::time::{add_micros, now_micros, rfc3339};
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
        let token = args.token;
        let writer = &self.inner.writer;
        // The fast path shares its commit with the changes queued beside it
        // (usually the outcomes of the previous claim).
        let grouped = args.limits.is_empty() && writer.groups();
        let args = if grouped {
            let (fast, args) = writer
                .write_grouped(move |native| Ok((claim_fast_native(native, &args)?, args)))
                .await?;
            match fast {
                Some(rows) => return Ok(self.claimed(&req, rows, false, token).await),
                // Some of them have limits: the limited path, below.
                None => args,
            }
        } else {
            args
        };
        let (rows, limited, fast) = writer
            .write_conns(move |conns| {
                Box::pin(async move {
                    let conn = &mut conns.sqlx;
                    if args.limits.is_empty() {
                        // Unless the grouped fast path just found jobs with
                        // limits among the candidates.
                        let fast = match &conns.native {
                            _ if grouped => None,
                            Some(native) => claim_fast_native(native, &args)?,
                            None => claim_fast(conn, &args).await?,
                        };
                        if let Some(rows) = fast {
                            return Ok((rows, false, true));
                        }
                    } else if args.limits.iter().all(|l| l.rate.is_none()) {
                        if let Some((rows, limited)) = claim_capped(conn, &args).await? {
                            return Ok((rows, limited, false));
                        }
                    }
                    let (rows, limited) = claim_limited(conn, &args).await?;
                    Ok((rows, limited, false))
                })
            })
            .await?;
        // Whether the next claims, and the outcomes written before them,
        // share commits (see `Writer::groups`).
        writer.claims_limited(!fast);
        Ok(self.claimed(&req, rows, limited, token).await)
    }

    /// The claim's answer: the jobs of `rows` (with their enqueue order) in
    /// claim order, the jobs with limits noted; its rows that could not be
    /// read are failed (they were leased under `token`).
    async fn claimed(
        &self,
        req: &ClaimRequest<'_>,
        rows: JobRows,
        limited: bool,
        token: LeaseToken,
    ) -> Claimed {
        if !rows.corrupt.is_empty() {
            self.fail_corrupt(req.worker_id, token, rows.corrupt).await;
        }
        let mut jobs = rows.jobs;
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
        Claimed::limited(jobs.into_iter().map(|(j, _)| j).collect(), limited)
    }

    /// Marks claimed rows that could not be read FAILED for good, the reason
    /// their error, under the lease `token` the claim just took on them: they
    /// neither reach a worker nor stop their queue (as Redis does with a hash
    /// it cannot read). If that fails too, their lease runs out.
    async fn fail_corrupt(&self, worker: &str, token: LeaseToken, mut rows: Vec<CorruptRow>) {
        for c in &mut rows {
            c.token = Some(token.as_i64());
        }
        let now = now_micros();
        let worker = worker.to_owned();
        let done = self
            .inner
            .writer
            .write(move |conn| {
                Box::pin(async move { fail_unreadable(conn, &rows, now, Some(&worker)).await })
            })
            .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "could not mark corrupt jobs FAILED; their leases will expire");
        }
    }
}

/// The fast path: one statement leases the first `limit` due jobs if none
/// of them has limits of its own. `None`: some have (the statement then
/// returned them unchanged, still waiting), so the claim must take the
/// limited path.
async fn claim_fast(conn: &mut SqliteConnection, args: &ClaimArgs) -> Result<Option<JobRows>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let sql = sql::claim(args.queues.len());
    let q = claim_query(&sql, args, limit);
    let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
    let rows = JobRows::of(&rows)?;
    Ok(if rows.held() { None } else { Some(rows) })
}

/// [`claim_fast`] on the writer's native connection.
fn claim_fast_native(conn: &rusqlite::Connection, args: &ClaimArgs) -> Result<Option<JobRows>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&sql::claim(args.queues.len()))
        .map_err(native_err)?;
    let mut b = Binder::new(&mut stmt);
    b.bind(args.now)?
        .bind(args.worker.as_str())?
        .bind(args.lease_until)?
        .bind(limit)?
        .bind(args.token.as_i64())?;
    for queue in &args.queues {
        b.bind(queue.as_str())?;
    }
    let mut rows = stmt.raw_query();
    let mut out = JobRows {
        jobs: Vec::with_capacity(args.limit),
        corrupt: Vec::new(),
    };
    while let Some(row) = rows.next().map_err(native_err)? {
        out.push(&NativeRow(row))?;
    }
    Ok(if out.held() { None } else { Some(out) })
}

/// A claim statement with its leading parameters bound: ?1 now, ?2 worker,
/// ?3 lease_until, ?4 limit, ?5 token, ?6.. the queues.
fn claim_query<'q>(
    sql: &'q str,
    args: &'q ClaimArgs,
    limit: i64,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let mut q = sqlx::query(sql)
        .bind(args.now)
        .bind(args.worker.as_str())
        .bind(args.lease_until)
        .bind(limit)
        .bind(args.token.as_i64());
    for queue in &args.queues {
        q = q.bind(queue.as_str());
    }
    q
}

/// The fast path under queue caps without a rate (global caps and shares):
/// one statement, whose write lock covers the counts its caps are cut by.
/// `None`, as for [`claim_fast`], if a candidate has limits of its own.
async fn claim_capped(
    conn: &mut SqliteConnection,
    args: &ClaimArgs,
) -> Result<Option<(JobRows, bool)>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let of = |queue: &String| args.limits.iter().find(|l| &l.queue == queue);
    let caps: Vec<ArmCap> = args
        .queues
        .iter()
        .map(|q| match of(q) {
            Some(l) if l.global.is_some() => ArmCap::Global,
            Some(l) if l.take.is_some() => ArmCap::Take,
            _ => ArmCap::None,
        })
        .collect();
    let sql = sql::claim_capped(&caps);
    let mut q = claim_query(&sql, args, limit);
    for queue in &args.queues {
        let l = of(queue);
        let held: Vec<(String, i64)> = l
            .map(|l| {
                l.recording
                    .iter()
                    .map(|f| (f.id.as_uuid().simple().to_string(), f.token.as_i64()))
                    .collect()
            })
            .unwrap_or_default();
        q = q
            .bind(l.and_then(|l| l.take).map_or(limit, i64::from))
            .bind(l.and_then(|l| l.global).map_or(0, i64::from))
            .bind(serde_json::to_string(&held).expect("strings and integers serialize"));
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
    let rows = JobRows::of(&rows)?;
    if rows.held() {
        return Ok(None);
    }
    // Short of the claim's size: a cap held due jobs back if its queue
    // filled its share, or if a capped queue still has due jobs.
    let mut limited = false;
    if rows.jobs.len() + rows.corrupt.len() < args.limit {
        for (queue, cap) in args.queues.iter().zip(&caps) {
            let took = rows
                .jobs
                .iter()
                .filter(|(j, _)| &j.queue_name == queue)
                .count();
            let share = of(queue)
                .and_then(|l| l.take)
                .map_or(args.limit, |t| t as usize);
            limited |= *cap != ArmCap::None && took >= share;
        }
        let capped: Vec<&String> = args
            .queues
            .iter()
            .zip(&caps)
            .filter(|(_, c)| **c == ArmCap::Global)
            .map(|(q, _)| q)
            .collect();
        if !limited && !capped.is_empty() {
            let names = serde_json::to_string(&capped).expect("strings serialize");
            limited = sqlx::query_scalar(sql::due_in_queues())
                .bind(args.now)
                .bind(names)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
        }
    }
    Ok(Some((rows, limited)))
}

/// Fails `rows`, leased jobs whose rows could not be read, for good under
/// their leases (`sql/fail_corrupt.sql`), each logged; `worker` goes in
/// their error history.
pub(super) async fn fail_unreadable(
    conn: &mut SqliteConnection,
    rows: &[CorruptRow],
    now: i64,
    worker: Option<&str>,
) -> Result<()> {
    for c in rows {
        tracing::error!(
            job_id = %c.id,
            seq = c.seq,
            reason = %c.reason,
            backend = BACKEND,
            "corrupt job data in sqlite; marking the job FAILED"
        );
        let message = format!(
            "corrupt job data in sqlite: {}; fix the row of jobs_queue with seq {} \
             and requeue the job",
            c.reason, c.seq
        );
        sqlx::query(sql::fail_corrupt())
            .bind(c.seq)
            .bind(c.token)
            .bind(now)
            .bind(rfc3339(now))
            .bind(message)
            .bind(worker)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
