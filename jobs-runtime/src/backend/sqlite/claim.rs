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
        // The fast path, capped or not, shares its commit with the changes
        // queued beside it (usually the outcomes of the previous claim). A
        // capped claim may: the group's transaction holds the write lock
        // from its first change to its commit, so the running jobs it counts
        // are the cluster's, as in a transaction of its own.
        let one_statement = args.limits.iter().all(|l| l.rate.is_none());
        let grouped = one_statement && writer.groups();
        let args = if grouped {
            let (fast, args) = writer
                .write_grouped(move |native| {
                    let fast = if args.limits.is_empty() {
                        claim_fast_native(native, &args)?.map(|rows| (rows, false))
                    } else {
                        claim_capped_native(native, &args)?
                    };
                    Ok((fast, args))
                })
                .await?;
            match fast {
                Some((rows, limited)) => return Ok(self.claimed(&req, rows, limited, token).await),
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
                    } else if one_statement && !grouped {
                        let capped = match &conns.native {
                            Some(native) => claim_capped_native(native, &args)?,
                            None => claim_capped(conn, &args).await?,
                        };
                        if let Some((rows, limited)) = capped {
                            return Ok((rows, limited, true));
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
    let rows = native_claim(conn, &sql::claim(args.queues.len()), args, |_| Ok(()))?;
    Ok(if rows.held() { None } else { Some(rows) })
}

/// Runs the claim statement `sql` on the native connection with its
/// leading parameters bound (as [`claim_query`] binds them) and then those
/// `more` binds, and reads its rows.
fn native_claim(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &ClaimArgs,
    more: impl FnOnce(&mut Binder<'_, '_>) -> Result<()>,
) -> Result<JobRows> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(sql).map_err(native_err)?;
    let mut b = Binder::new(&mut stmt);
    b.bind(args.now)?
        .bind(args.worker.as_str())?
        .bind(args.lease_until)?
        .bind(limit)?
        .bind(args.token.as_i64())?;
    for queue in &args.queues {
        b.bind(queue.as_str())?;
    }
    more(&mut b)?;
    let mut rows = stmt.raw_query();
    let mut out = JobRows {
        jobs: Vec::with_capacity(args.limit),
        corrupt: Vec::new(),
    };
    while let Some(row) = rows.next().map_err(native_err)? {
        out.push(&NativeRow(row))?;
    }
    Ok(out)
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

/// A capped claim's caps and its per-queue parameters: each queue's share
/// (or the claim's size), its cluster cap (0 if none), and the JSON
/// `[[id hex, token], ..]` of the claimer's jobs of the queue being recorded.
struct Capped {
    caps: Vec<ArmCap>,
    params: Vec<(i64, i64, String)>,
}

impl Capped {
    fn of(args: &ClaimArgs, limit: i64) -> Capped {
        let of = |queue: &String| args.limits.iter().find(|l| &l.queue == queue);
        let caps = args
            .queues
            .iter()
            .map(|q| match of(q) {
                Some(l) if l.global.is_some() => ArmCap::Global,
                Some(l) if l.take.is_some() => ArmCap::Take,
                _ => ArmCap::None,
            })
            .collect();
        let params = args
            .queues
            .iter()
            .map(|queue| {
                let l = of(queue);
                let held: Vec<(String, i64)> = l
                    .map(|l| {
                        l.recording
                            .iter()
                            .map(|f| (f.id.as_uuid().simple().to_string(), f.token.as_i64()))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    l.and_then(|l| l.take).map_or(limit, i64::from),
                    l.and_then(|l| l.global).map_or(0, i64::from),
                    serde_json::to_string(&held).expect("strings and integers serialize"),
                )
            })
            .collect();
        Capped { caps, params }
    }

    /// Whether a cap held due jobs back, as far as `rows` tell, or which
    /// globally capped queues to look in for due jobs to know.
    fn limited(&self, args: &ClaimArgs, rows: &JobRows) -> Held {
        // Short of the claim's size: a cap held due jobs back if its queue
        // filled its share, or if a capped queue still has due jobs.
        if rows.jobs.len() + rows.corrupt.len() >= args.limit {
            return Held::Known(false);
        }
        let mut limited = false;
        for ((queue, cap), (share, _, _)) in args.queues.iter().zip(&self.caps).zip(&self.params) {
            let took = rows
                .jobs
                .iter()
                .filter(|(j, _)| &j.queue_name == queue)
                .count();
            let share = usize::try_from(*share).unwrap_or(usize::MAX);
            limited |= *cap != ArmCap::None && took >= share;
        }
        let capped: Vec<&String> = args
            .queues
            .iter()
            .zip(&self.caps)
            .filter(|(_, c)| **c == ArmCap::Global)
            .map(|(q, _)| q)
            .collect();
        if limited || capped.is_empty() {
            return Held::Known(limited);
        }
        Held::IfDueIn(serde_json::to_string(&capped).expect("strings serialize"))
    }
}

/// What a capped claim's rows say of whether a cap held due jobs back.
enum Held {
    Known(bool),
    /// Yes if any of these globally capped queues (a JSON array) has a job
    /// due (`sql::due_in_queues`).
    IfDueIn(String),
}

/// The fast path under queue caps without a rate (global caps and shares):
/// one statement, whose write lock covers the counts its caps are cut by.
/// `None`, as for [`claim_fast`], if a candidate has limits of its own.
async fn claim_capped(
    conn: &mut SqliteConnection,
    args: &ClaimArgs,
) -> Result<Option<(JobRows, bool)>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let capped = Capped::of(args, limit);
    let sql = sql::claim_capped(&capped.caps);
    let mut q = claim_query(&sql, args, limit);
    for (share, global, held) in &capped.params {
        q = q.bind(*share).bind(*global).bind(held.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
    let rows = JobRows::of(&rows)?;
    if rows.held() {
        return Ok(None);
    }
    let limited = match capped.limited(args, &rows) {
        Held::Known(limited) => limited,
        Held::IfDueIn(names) => sqlx::query_scalar(sql::due_in_queues())
            .bind(args.now)
            .bind(names)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?,
    };
    Ok(Some((rows, limited)))
}

/// [`claim_capped`] on the writer's native connection (statements prepared
/// once, no driver thread), as the fast path runs.
fn claim_capped_native(
    conn: &rusqlite::Connection,
    args: &ClaimArgs,
) -> Result<Option<(JobRows, bool)>> {
    let limit = i64::try_from(args.limit).unwrap_or(i64::MAX);
    let capped = Capped::of(args, limit);
    let out = native_claim(conn, &sql::claim_capped(&capped.caps), args, |b| {
        // An uncapped queue's three go unused, and SQLite counts a
        // statement's parameters up to the last one it uses.
        for (share, global, held) in &capped.params {
            b.bind_if_used(*share)?
                .bind_if_used(*global)?
                .bind_if_used(held.as_str())?;
        }
        Ok(())
    })?;
    if out.held() {
        return Ok(None);
    }
    let limited = match capped.limited(args, &out) {
        Held::Known(limited) => limited,
        Held::IfDueIn(names) => {
            let mut due = conn
                .prepare_cached(sql::due_in_queues())
                .map_err(native_err)?;
            due.query_row(rusqlite::params![args.now, names], |r| r.get(0))
                .map_err(native_err)?
        }
    };
    Ok(Some((out, limited)))
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
