//! Claiming: the fast path for jobs without limits, and the limited way.
//!
//! **Fast path** (`claim.sql`, one statement): taken whenever the request
//! carries no cluster-wide [`ClaimLimit`](jobs_core::ClaimLimit) (a global
//! cap or a rate) for its queues; a queue's share of the claim (`take`) is
//! applied here. It locks the first due rows in claim order with `SKIP
//! LOCKED` and marks them RUNNING — unless one of
//! them has limits of its own ([`JobLimits`](jobs_core::JobLimits)): then it
//! claims nothing and says so, and the claim goes the limited way. Jobs
//! without limits thus cost what they always did. A queue whose due jobs
//! had limits at the last limited claim skips the fast path for a second
//! (see `Hints`), so a queue of limited jobs does not pay for both ways.
//!
//! **Capped path** (one transaction, four round trips): taken when the
//! request's queue limits are global caps (and shares) only, no rate, and
//! no candidate has limits of its own. The caps' queue locks are taken with
//! the `BEGIN` (the same `queue:<name>` locks as the limited way's step 3, in
//! the same order), what runs of each capped queue is counted under them —
//! less the claimer's jobs whose outcomes are being recorded —, and the fast
//! path's statement claims with each capped queue's share cut to its free
//! slots. If a candidate turns out to have limits, it rolls back and the
//! claim goes the limited way.
//!
//! **Limited way** (one transaction):
//! 1. read the first due jobs per queue in claim order, with their limits,
//!    without locking them (`claim_candidates.sql`): four per job asked for
//!    (at least [`FIRST_SCAN`]), and if those are held back and more are
//!    due, up to [`SCAN`] (steps 1 and 2 again);
//! 2. read what runs per concurrency key, sequence key and capped queue,
//!    each sequence's head (its oldest unfinished job) and the starts in
//!    each rate window (`claim_counts.sql`), and pick here, in claim order,
//!    the jobs the limits admit, skipping those held back (a held-back job
//!    never blocks later ones) — as the memory backend does. If nothing can
//!    be picked, the claim ends here, having locked nothing;
//! 3. take a transaction-scoped advisory lock on every limit key of the
//!    picked jobs (concurrency, rate and sequence keys, and `queue:<name>`
//!    for a queue with a global cap or a rate), sorted by lock id — one
//!    order for every claimer, so claims that share keys run one after the
//!    other and never deadlock. Only the picked jobs' keys are locked (at
//!    most three per job claimed, plus the queues'), never a whole scan's;
//! 4. read the counts again under those locks (a new snapshot: it sees
//!    every claim committed under them) and pick again among the picked
//!    jobs only (one whose slot went meanwhile is left);
//! 5. mark the picked jobs that are still waiting RUNNING, log their starts
//!    in the rate log and forget entries no window needs any more
//!    (`claim_take.sql`), and commit, which releases the locks.
//!
//! Every claim that takes a limited job holds that job's keys' locks while
//! it counts and takes, and the fast path never takes one, so no two
//! claimers can both take a key's last slot. The bound: at most [`SCAN`]
//! due jobs per queue are looked at per claim; a job behind that many
//! held-back ones waits until some of them go (the claim says `limited`).
//! Rate-log entries of a key are forgotten when a claim next looks at the
//! key: a key never seen again leaves at most its last window's starts.

use std::collections::{HashMap, HashSet};

use jobs_core::backend::{ClaimRequest, LeaseToken};
use jobs_core::{queue_rate_key, Claimed, Error, Job, Result};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Row};
use uuid::Uuid;

use super::backend::{micros, PostgresBackend};
use super::error::{db_err, BACKEND};
use super::hints::Key;
use super::row::row_to_job;

/// At most this many due jobs of a queue are looked at per limited claim.
pub(super) const SCAN: i64 = 1_000;

/// A limited claim first reads 4 due jobs per job asked for (at least this
/// many), and reads up to [`SCAN`] only if those were held back.
const FIRST_SCAN: i64 = 32;

/// A due job as the limited way sees it.
struct Candidate {
    ord: i32,
    id: Uuid,
    /// Its position in the queue's claim order.
    key: Key,
    conc: Option<(String, i64)>,
    rate: Option<(String, i64, i64)>,
    seq: Option<String>,
}

impl Candidate {
    fn has_limits(&self) -> bool {
        self.conc.is_some() || self.rate.is_some() || self.seq.is_some()
    }

    fn from_row(row: &PgRow) -> std::result::Result<Candidate, sqlx::Error> {
        let conc_key: Option<String> = row.try_get("conc_key")?;
        let conc_max: Option<i32> = row.try_get("conc_max")?;
        let rate_key: Option<String> = row.try_get("rate_key")?;
        let rate_max: Option<i32> = row.try_get("rate_max")?;
        let rate_per: Option<i64> = row.try_get("rate_per_us")?;
        let priority: i32 = row.try_get("priority")?;
        Ok(Candidate {
            ord: row.try_get("ord")?,
            id: row.try_get("id")?,
            key: (
                -i64::from(priority),
                row.try_get("run_at")?,
                row.try_get("seq")?,
            ),
            conc: conc_key.map(|k| (k, i64::from(conc_max.unwrap_or(1)))),
            rate: rate_key.map(|k| (k, i64::from(rate_max.unwrap_or(1)), rate_per.unwrap_or(0))),
            seq: row.try_get("seq_key")?,
        })
    }
}

/// The lock id of a limit key in `schema` (FNV-1a, the same in every process).
fn lock_id(schema: &str, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in schema.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// What runs and what started, as read under the keys' locks, and what
/// this claim adds as it picks.
#[derive(Default)]
struct Counts {
    conc: HashMap<String, i64>,
    seq_running: HashMap<String, i64>,
    seq_head: HashMap<String, Uuid>,
    /// Starts per (rate key, window in µs).
    rate: HashMap<(String, i64), i64>,
    queue_running: HashMap<String, i64>,
}

impl Counts {
    fn admits(&self, c: &Candidate) -> bool {
        if let Some((key, max)) = &c.conc {
            if self.conc.get(key).copied().unwrap_or(0) >= *max {
                return false;
            }
        }
        if let Some(key) = &c.seq {
            if self.seq_head.get(key) != Some(&c.id)
                || self.seq_running.get(key).copied().unwrap_or(0) > 0
            {
                return false;
            }
        }
        if let Some((key, max, per)) = &c.rate {
            if self.rate.get(&(key.clone(), *per)).copied().unwrap_or(0) >= *max {
                return false;
            }
        }
        true
    }

    fn take(&mut self, c: &Candidate) {
        if let Some((key, _)) = &c.conc {
            *self.conc.entry(key.clone()).or_insert(0) += 1;
        }
        if let Some(key) = &c.seq {
            *self.seq_running.entry(key.clone()).or_insert(0) += 1;
        }
        if let Some((key, _, _)) = &c.rate {
            // Every window of the key sees the start.
            for ((k, _), n) in self.rate.iter_mut() {
                if k == key {
                    *n += 1;
                }
            }
        }
    }
}

impl PostgresBackend {
    pub(super) async fn claim_jobs(&self, req: ClaimRequest<'_>) -> Result<Claimed> {
        if req.limit == 0 || req.queues.is_empty() {
            return Ok(Claimed::default());
        }
        // One fresh token per claim: it fences every job of this claim.
        let token = LeaseToken::random();
        let mut unreadable = Vec::new();
        let claimed = self.claim_paths(&req, token, &mut unreadable).await;
        if !unreadable.is_empty() {
            self.fail_unreadable(&req, token, unreadable).await;
        }
        claimed
    }

    /// The claim's paths: fast, capped, limited. Rows leased but unreadable
    /// go to `unreadable`, not into the answer.
    async fn claim_paths(
        &self,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        unreadable: &mut Vec<(Uuid, String)>,
    ) -> Result<Claimed> {
        // A queue's share of this claim (`take`) needs no lock: the fast
        // path applies it. A cluster-wide cap or a rate goes the limited way.
        let capped = req.queues.iter().any(|q| {
            req.limit_of(q)
                .is_some_and(|l| l.global.is_some() || l.rate.is_some())
        });
        let limited_jobs = self.inner.hints.limited_recently(req.queues);
        if !capped && !limited_jobs {
            if let Some(claimed) = self.claim_fast(req, token, unreadable).await? {
                return Ok(claimed);
            }
        }
        // Global caps only (no rate): the fast claim under the caps' locks.
        let rated = req
            .queues
            .iter()
            .any(|q| req.limit_of(q).is_some_and(|l| l.rate.is_some()));
        let mut conn = self.lease_conns.get().await?;
        if capped && !rated && !limited_jobs {
            let res = self.claim_capped(conn.get(), req, token, unreadable).await;
            match res {
                Ok(Some(claimed)) => return conn.done_mapped(Ok(claimed)),
                Ok(None) => {} // a candidate has limits: the limited way
                Err(e) => return conn.done_mapped(Err(e)),
            }
        }
        let res = self.claim_limited(conn.get(), req, token, unreadable).await;
        conn.done_mapped(res)
    }

    /// Marks leased rows that could not be read FAILED for good, the reason
    /// their error, under the claim's lease `token`: they neither reach a
    /// worker nor come back with every claim of their queue (as Redis and
    /// SQLite do). If that fails too, their lease runs out.
    async fn fail_unreadable(
        &self,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        rows: Vec<(Uuid, String)>,
    ) {
        for (id, reason) in &rows {
            tracing::error!(
                job_id = %id,
                reason = %reason,
                backend = BACKEND,
                "corrupt job data in postgres; marking the job FAILED"
            );
        }
        let done = async {
            let mut conn = self.conns.get().await?;
            let res = async {
                for (id, reason) in &rows {
                    let message = format!(
                        "corrupt job data in postgres: {reason}; fix the job's row and requeue it"
                    );
                    sqlx::query(&self.inner.sql.fail_corrupt)
                        .bind(id)
                        .bind(token.as_i64())
                        .bind(message)
                        .bind(req.worker_id)
                        .execute(conn.get())
                        .await?;
                }
                Ok(())
            }
            .await;
            conn.done(res)
        };
        if let Err(e) = done.await {
            tracing::error!(error = %e, "could not mark corrupt jobs FAILED; their leases will expire");
        }
    }

    /// The fast path; `None` if a candidate has limits.
    async fn claim_fast(
        &self,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        unreadable: &mut Vec<(Uuid, String)>,
    ) -> Result<Option<Claimed>> {
        let takes: Vec<Option<i64>> = req
            .queues
            .iter()
            .map(|q| req.limit_of(q).and_then(|l| l.take).map(i64::from))
            .collect();
        let mut conn = self.lease_conns.get().await?;
        let hints = self.inner.hints.starts(req.queues);
        let res = self.run_claim(conn.get(), req, token, &hints, &takes).await;
        let rows = conn.done(res)?;
        self.claimed(req, &hints, &takes, &rows, unreadable)
    }

    /// A claim whose queue limits are global caps (and shares) only, as
    /// [`claim_fast`](Self::claim_fast) under the caps' locks: the queues'
    /// locks with the `BEGIN`, what runs of each capped queue, then the fast
    /// claim with each capped queue's share cut to its free slots — four
    /// round trips where the limited way takes seven. `None` (nothing done)
    /// if a candidate has limits of its own.
    async fn claim_capped(
        &self,
        conn: &mut PgConnection,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        unreadable: &mut Vec<(Uuid, String)>,
    ) -> Result<Option<Claimed>> {
        let schema = &self.inner.schema;
        let mut locks: Vec<i64> = req
            .queues
            .iter()
            .filter(|q| req.limit_of(q).is_some_and(|l| l.global.is_some()))
            .map(|q| lock_id(schema, &format!("q:{q}")))
            .collect();
        // One global order with the limited way's locks (a subset of its order).
        locks.sort_unstable();
        locks.dedup();
        let ids: Vec<String> = locks.iter().map(i64::to_string).collect();
        // See `claim_limited` for the bitmap scans; the lock ids are numbers.
        let begin = format!(
            "BEGIN; SET LOCAL enable_bitmapscan = off; \
             SELECT pg_advisory_xact_lock(k) FROM unnest(ARRAY[{}]::int8[]) AS l(k)",
            ids.join(",")
        );
        let mut tx = conn.begin_with(begin).await.map_err(db_err)?;
        // Under the locks, in a snapshot taken after them: every claim
        // committed under them is counted.
        let counts = self.counts(&mut tx, req, &[]).await?;
        let takes: Vec<Option<i64>> = req
            .queues
            .iter()
            .map(|q| {
                let l = req.limit_of(q)?;
                let free = l.global.map(|g| {
                    let running = counts.queue_running.get(q).copied().unwrap_or(0);
                    (i64::from(g) - running).max(0)
                });
                match (l.take.map(i64::from), free) {
                    (Some(t), Some(f)) => Some(t.min(f)),
                    (t, f) => t.or(f),
                }
            })
            .collect();
        let hints = self.inner.hints.starts(req.queues);
        let rows = self
            .run_claim(&mut tx, req, token, &hints, &takes)
            .await
            .map_err(db_err)?;
        let claimed = self.claimed(req, &hints, &takes, &rows, unreadable)?;
        if claimed.is_some() {
            tx.commit().await.map_err(db_err)?;
        } else {
            tx.rollback().await.map_err(db_err)?;
        }
        Ok(claimed)
    }

    /// `claim.sql` from `hints` on, each queue taking at most its `takes`.
    async fn run_claim(
        &self,
        conn: &mut PgConnection,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        hints: &[Option<Key>],
        takes: &[Option<i64>],
    ) -> std::result::Result<Vec<PgRow>, sqlx::Error> {
        let no_takes = takes.iter().all(Option::is_none);
        sqlx::query(&self.inner.sql.claim)
            .bind(req.queues)
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
            .bind(req.worker_id)
            .bind(micros(req.lease))
            .bind(hints.iter().map(|h| h.map(|k| k.0)).collect::<Vec<_>>())
            .bind(hints.iter().map(|h| h.map(|k| k.1)).collect::<Vec<_>>())
            .bind(hints.iter().map(|h| h.map(|k| k.2)).collect::<Vec<_>>())
            .bind(token.as_i64())
            // `unnest` pads an empty array with NULLs.
            .bind(if no_takes { &[][..] } else { takes })
            .fetch_all(conn)
            .await
    }

    /// The jobs `claim.sql` took, in claim order; `None` if it took none
    /// because a candidate has limits. Moves the hints on.
    fn claimed(
        &self,
        req: &ClaimRequest<'_>,
        hints: &[Option<Key>],
        takes: &[Option<i64>],
        rows: &[PgRow],
        unreadable: &mut Vec<(Uuid, String)>,
    ) -> Result<Option<Claimed>> {
        let mut keyed = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for row in rows {
            if row.try_get::<bool, _>("slow").map_err(db_err)? {
                return Ok(None);
            }
            if row
                .try_get::<Option<Uuid>, _>("id")
                .map_err(db_err)?
                .is_none()
            {
                continue; // nothing claimed
            }
            let seq: i64 = row.try_get("seq").map_err(db_err)?;
            let Some(job) = readable(row, &mut bad)? else {
                continue;
            };
            let ord = req.queues.iter().position(|q| *q == job.queue_name);
            keyed.push((ord, seq, job));
        }
        // RETURNING has no order; restore the claim order.
        keyed.sort_by(|a, b| {
            (a.0, std::cmp::Reverse(a.2.priority), a.2.run_at, a.1).cmp(&(
                b.0,
                std::cmp::Reverse(b.2.priority),
                b.2.run_at,
                b.1,
            ))
        });
        let firsts: Vec<Option<Key>> = (0..req.queues.len())
            .map(|i| {
                keyed
                    .iter()
                    .find(|k| k.0 == Some(i))
                    .map(|(_, seq, job)| (-i64::from(job.priority), job.run_at, *seq))
            })
            .collect();
        // Short: fewer than the claim could take — the queues ran dry (a
        // queue whose share was all it could take did not).
        let could = if takes.len() == req.queues.len() && takes.iter().all(Option::is_some) {
            let sum: i64 = takes.iter().flatten().sum();
            usize::try_from(sum).unwrap_or(0).min(req.limit)
        } else {
            req.limit
        };
        self.inner
            .hints
            .update(req.queues, hints, &firsts, keyed.len() < could);
        // A queue that filled its share while the claim had room may have
        // more due jobs its cap held back (the manager asks again soon).
        let limited = keyed.len() < req.limit
            && takes.iter().enumerate().any(|(i, take)| {
                take.is_some_and(|t| {
                    let n = keyed.iter().filter(|k| k.0 == Some(i)).count();
                    usize::try_from(t).is_ok_and(|t| t < req.limit && n >= t)
                })
            });
        let jobs = keyed.into_iter().map(|(_, _, job)| job).collect();
        unreadable.append(&mut bad);
        Ok(Some(Claimed::limited(jobs, limited)))
    }

    /// The limited way (see the module's doc), in one transaction.
    async fn claim_limited(
        &self,
        conn: &mut PgConnection,
        req: &ClaimRequest<'_>,
        token: LeaseToken,
        unreadable: &mut Vec<(Uuid, String)>,
    ) -> Result<Claimed> {
        // Plain index scans only: a bitmap scan of the running rows' partial
        // indexes (a queue's or a key's count) visits every entry left by
        // jobs that ran since the last vacuum, and sets no hint, so each
        // count costs more than the last until the vacuum (15 ms after
        // 80,000 jobs with autovacuum off); an index scan marks the dead
        // entries it meets, and the next count skips them (0.2 ms). Sent
        // with the BEGIN: no round trip of its own.
        let mut tx = conn
            .begin_with("BEGIN; SET LOCAL enable_bitmapscan = off")
            .await
            .map_err(db_err)?;
        // 1. The candidates, in claim order: a few first, all SCAN if the
        // few were held back.
        let mut fetch = i64::try_from(req.limit.saturating_mul(4))
            .unwrap_or(SCAN)
            .clamp(FIRST_SCAN, SCAN);
        // Where each queue's scan starts: its first waiting job last time,
        // past the index entries of the jobs claimed since (see `Hints`).
        let hints = self.inner.hints.starts(req.queues);
        let (cands, first, mut limited) = loop {
            let rows = sqlx::query(&self.inner.sql.claim_candidates)
                .bind(req.queues)
                .bind(fetch)
                .bind(hints.iter().map(|h| h.map(|k| k.0)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.1)).collect::<Vec<_>>())
                .bind(hints.iter().map(|h| h.map(|k| k.2)).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let cands: Vec<Candidate> = rows
                .iter()
                .map(Candidate::from_row)
                .collect::<std::result::Result<_, _>>()
                .map_err(db_err)?;
            for (qi, queue) in req.queues.iter().enumerate() {
                let ord = i32::try_from(qi + 1).unwrap_or(i32::MAX);
                let limits = cands.iter().any(|c| c.ord == ord && c.has_limits());
                self.inner.hints.saw_limits(queue, limits);
            }
            // Nothing before a queue's first candidate waits (but for a job
            // enqueued ahead of it since, as on the fast path): the next
            // scan may start there, whether this claim takes it or not.
            let firsts: Vec<Option<Key>> = (0..req.queues.len())
                .map(|qi| {
                    let ord = i32::try_from(qi + 1).unwrap_or(i32::MAX);
                    cands.iter().find(|c| c.ord == ord).map(|c| c.key)
                })
                .collect();
            self.inner.hints.seen(req.queues, &hints, &firsts);
            if cands.is_empty() {
                tx.commit().await.map_err(db_err)?;
                return Ok(Claimed::default());
            }
            // 2. A first pick on counts read without locks.
            let all: Vec<&Candidate> = cands.iter().collect();
            let mut counts = self.counts(&mut tx, req, &all).await?;
            let (first, limited, more) = pick(req, &all, &mut counts, fetch);
            if more && fetch < SCAN {
                fetch = SCAN;
                continue;
            }
            break (cands, first, limited);
        };
        if first.is_empty() {
            // Everything is held back: no lock was needed to say so.
            tx.commit().await.map_err(db_err)?;
            return Ok(Claimed::limited(Vec::new(), limited));
        }

        // 3. The locks of the picked jobs' keys (and of their queues' caps),
        // in one global order.
        let picked: Vec<&Candidate> = cands.iter().filter(|c| first.contains(&c.id)).collect();
        let schema = &self.inner.schema;
        let mut locks: Vec<i64> = Vec::new();
        for c in &picked {
            if let Some((k, _)) = &c.conc {
                locks.push(lock_id(schema, &format!("c:{k}")));
            }
            if let Some(k) = &c.seq {
                locks.push(lock_id(schema, &format!("s:{k}")));
            }
            if let Some((k, _, _)) = &c.rate {
                locks.push(lock_id(schema, &format!("r:{k}")));
            }
            let queue = &req.queues[usize::try_from(c.ord - 1).unwrap_or(0)];
            if let Some(ql) = req.limit_of(queue) {
                if ql.global.is_some() {
                    locks.push(lock_id(schema, &format!("q:{queue}")));
                }
                if ql.rate.is_some() {
                    locks.push(lock_id(schema, &format!("r:{}", queue_rate_key(queue))));
                }
            }
        }
        locks.sort_unstable();
        locks.dedup();
        if !locks.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS l(k)")
                .bind(&locks)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }

        // 4. The pick again, among the picked jobs only, on counts read under
        // the locks: a slot another claim took meanwhile holds a job back.
        let chosen = if locks.is_empty() {
            // No limit applies to the picked jobs: nothing can have changed.
            first.clone()
        } else {
            let mut counts = self.counts(&mut tx, req, &picked).await?;
            let (chosen, held, _) = pick(req, &picked, &mut counts, SCAN);
            limited |= held;
            chosen
        };
        limited |= chosen.len() < first.len();
        if chosen.is_empty() {
            tx.commit().await.map_err(db_err)?;
            return Ok(Claimed::limited(Vec::new(), limited));
        }

        // 5. Take them, log the starts, forget what no window needs — of the
        // keys locked only, so no two claims ever delete the same entries.
        let mut longest: HashMap<String, i64> = HashMap::new();
        for c in &picked {
            if let Some((k, _, per)) = &c.rate {
                let e = longest.entry(k.clone()).or_insert(0);
                *e = (*e).max(*per);
            }
        }
        let mut rated_names = Vec::new();
        let mut rated_keys = Vec::new();
        for (qi, queue) in req.queues.iter().enumerate() {
            let ord = i32::try_from(qi + 1).unwrap_or(i32::MAX);
            if !picked.iter().any(|c| c.ord == ord) {
                // Not locked: its log is left to a claim that holds its lock.
                continue;
            }
            if let Some((_, per)) = req.limit_of(queue).and_then(|ql| ql.rate) {
                let key = queue_rate_key(queue);
                let e = longest.entry(key.clone()).or_insert(0);
                *e = (*e).max(micros(per));
                rated_names.push(queue.clone());
                rated_keys.push(key);
            }
        }
        let (prune_keys, prune_pers): (Vec<String>, Vec<i64>) = longest.into_iter().unzip();
        let rows = sqlx::query(&self.inner.sql.claim_take)
            .bind(&chosen)
            .bind(req.worker_id)
            .bind(micros(req.lease))
            .bind(token.as_i64())
            .bind(&rated_names)
            .bind(&rated_keys)
            .bind(&prune_keys)
            .bind(&prune_pers)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.extend(readable(row, unreadable)?);
        }
        jobs.sort_by_key(|j| chosen.iter().position(|id| id == j.id.as_uuid()));
        Ok(Claimed::limited(jobs, limited))
    }

    /// What runs and what started for the keys of `cands` and the capped
    /// queues of `req`.
    async fn counts(
        &self,
        conn: &mut PgConnection,
        req: &ClaimRequest<'_>,
        cands: &[&Candidate],
    ) -> Result<Counts> {
        let mut conc_keys = HashSet::new();
        let mut seq_keys = HashSet::new();
        let mut rate_windows: HashSet<(String, i64)> = HashSet::new();
        for c in cands {
            if let Some((k, _)) = &c.conc {
                conc_keys.insert(k.clone());
            }
            if let Some(k) = &c.seq {
                seq_keys.insert(k.clone());
            }
            if let Some((k, _, per)) = &c.rate {
                rate_windows.insert((k.clone(), *per));
            }
        }
        let mut global_queues = Vec::new();
        let (mut ended_ids, mut ended_tokens) = (Vec::new(), Vec::new());
        for queue in req.queues {
            if let Some(ql) = req.limit_of(queue) {
                if ql.global.is_some() {
                    global_queues.push(queue.clone());
                    for f in &ql.recording {
                        ended_ids.push(*f.id.as_uuid());
                        ended_tokens.push(f.token.as_i64());
                    }
                }
                if let Some((_, per)) = ql.rate {
                    rate_windows.insert((queue_rate_key(queue), micros(per)));
                }
            }
        }
        if conc_keys.is_empty()
            && seq_keys.is_empty()
            && rate_windows.is_empty()
            && global_queues.is_empty()
        {
            return Ok(Counts::default());
        }
        let conc_keys: Vec<String> = conc_keys.into_iter().collect();
        let seq_keys: Vec<String> = seq_keys.into_iter().collect();
        let (rate_keys, rate_pers): (Vec<String>, Vec<i64>) = rate_windows.into_iter().unzip();
        let rows = sqlx::query(&self.inner.sql.claim_counts)
            .bind(&conc_keys)
            .bind(&seq_keys)
            .bind(&rate_keys)
            .bind(&rate_pers)
            .bind(&global_queues)
            .bind(&ended_ids)
            .bind(&ended_tokens)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let mut counts = Counts::default();
        for row in &rows {
            let kind: String = row.try_get("kind").map_err(db_err)?;
            let key: String = row.try_get("key").map_err(db_err)?;
            let n: i64 = row.try_get("n").map_err(db_err)?;
            match kind.as_str() {
                "c" => {
                    counts.conc.insert(key, n);
                }
                "s" => {
                    let head: Option<Uuid> = row.try_get("head").map_err(db_err)?;
                    if let Some(head) = head {
                        counts.seq_head.insert(key.clone(), head);
                    }
                    counts.seq_running.insert(key, n);
                }
                "r" => {
                    let per: i64 = row.try_get("per").map_err(db_err)?;
                    counts.rate.insert((key, per), n);
                }
                _ => {
                    counts.queue_running.insert(key, n);
                }
            }
        }
        Ok(counts)
    }
}

/// Picks, queue by queue in claim order, the candidates the limits admit,
/// counting each one taken (as the memory backend does); says whether any
/// due job was held back, and whether a queue may have more due jobs past
/// the `scanned` it was read up to that the claim could have taken.
fn pick(
    req: &ClaimRequest<'_>,
    cands: &[&Candidate],
    counts: &mut Counts,
    scanned: i64,
) -> (Vec<Uuid>, bool, bool) {
    let mut chosen: Vec<Uuid> = Vec::new();
    let mut limited = false;
    let mut more = false;
    for (qi, queue) in req.queues.iter().enumerate() {
        if chosen.len() >= req.limit {
            break;
        }
        let ord = i32::try_from(qi + 1).unwrap_or(i32::MAX);
        let mine: Vec<&Candidate> = cands.iter().copied().filter(|c| c.ord == ord).collect();
        if mine.is_empty() {
            continue;
        }
        let remaining = req.limit - chosen.len();
        let mut cap = remaining;
        if let Some(ql) = req.limit_of(queue) {
            if let Some(take) = ql.take {
                cap = cap.min(take as usize);
            }
            if let Some(global) = ql.global {
                let running = counts.queue_running.get(queue).copied().unwrap_or(0);
                cap = cap.min(usize::try_from(i64::from(global) - running).unwrap_or(0));
            }
            if let Some((max, per)) = ql.rate {
                let started = counts
                    .rate
                    .get(&(queue_rate_key(queue), micros(per)))
                    .copied()
                    .unwrap_or(0);
                cap = cap.min(usize::try_from(i64::from(max) - started).unwrap_or(0));
            }
        }
        let mut taken = 0;
        for c in &mine {
            if taken >= cap {
                // Due jobs remain: a queue cap held them back (or the claim is full).
                limited |= cap < remaining;
                break;
            }
            if !counts.admits(c) {
                limited = true;
                continue;
            }
            counts.take(c);
            chosen.push(c.id);
            taken += 1;
        }
        if taken < cap && mine.len() as i64 >= scanned {
            // More due jobs may lie past the scan.
            limited = true;
            more = true;
        }
    }
    (chosen, limited, more)
}

/// `row` as a job, or `None` if it is corrupt (then noted in `unreadable`:
/// its id and why).
fn readable(row: &PgRow, unreadable: &mut Vec<(Uuid, String)>) -> Result<Option<Job>> {
    match row_to_job(row) {
        Ok(job) => Ok(Some(job)),
        Err(Error::Corrupt { reason, .. }) => {
            let id: Uuid = row.try_get("id").map_err(db_err)?;
            unreadable.push((id, reason));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
