//! The limited claim path: claims that carry queue limits, or whose first
//! candidates have limits of their own (per-key concurrency and rate,
//! sequences).
//!
//! It runs in one `BEGIN IMMEDIATE` transaction on the writer connection:
//! within this process the writer thread runs one change at a time, and
//! across processes the transaction holds SQLite's write lock from its first
//! statement, so what it counts (running jobs per key and per queue, starts
//! in the rate log, a sequence's head) cannot change before its leases are
//! written. No two claimers can both take the last slot.
//!
//! Per queue, in the request's order, it walks the due jobs in claim order,
//! a page at a time (each twice the last), and admits each one whose limits
//! allow it, counting it at once so the next candidates see it. A job held
//! back is skipped, not waited for: the jobs behind it are still claimed.
//! The walk looks at no more than [`SCAN_LIMIT`] candidates per queue per
//! claim, so a queue full of held-back jobs costs a bounded scan (jobs
//! behind them wait for a later claim, once some of those have gone; the
//! claim says `limited`, so the manager asks again soon).

use std::collections::HashMap;
use std::time::Duration;

use jobs_core::backend::{Fence, LeaseToken};
use jobs_core::{queue_rate_key, ClaimLimit, Result};
use sqlx::{Connection, Row, SqliteConnection};
use uuid::Uuid;

use super::claim::ClaimArgs;
use super::error::db_err;
use super::row::JobRows;
use super::sql::limited as sql;

/// At most this many due jobs of a queue are looked at per claim.
pub(super) const SCAN_LIMIT: usize = 2_000;
/// Candidates read by the first statement of a walk; each next one reads
/// twice as many (so the rows that `OFFSET` skips again stay within the
/// rows read).
const FIRST_PAGE: usize = 64;
/// Expired starts of other keys forgotten per limited claim.
const SWEEP: i64 = 100;

/// A due job and its limits, as the walk sees it.
struct Candidate {
    seq: i64,
    concurrency: Option<(String, i64)>,
    rate: Option<(String, i64, i64)>,
    sequence: Option<String>,
}

/// What this claim knows of the limit keys it met, counting its own takes.
#[derive(Default)]
struct Counts {
    /// Running jobs per concurrency key.
    running: HashMap<String, i64>,
    /// Per sequence key: its head's seq, and whether one of its jobs runs.
    sequences: HashMap<String, (Option<i64>, bool)>,
    /// Starts in the window per rate key.
    starts: HashMap<String, i64>,
}

/// Claims up to `args.limit` jobs, honouring every limit; says whether a
/// limit held a due job back.
pub(super) async fn claim_limited(
    conn: &mut SqliteConnection,
    args: &ClaimArgs,
) -> Result<(JobRows, bool)> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let paused: Vec<String> = sqlx::query_scalar(super::sql::paused())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut counts = Counts::default();
    let mut taken: Vec<i64> = Vec::new();
    // Starts to log: (rate key, its window in microseconds).
    let mut logged: Vec<(String, i64)> = Vec::new();
    let mut limited = false;
    for queue in &args.queues {
        let left = args.limit - taken.len();
        if left == 0 {
            break;
        }
        if paused.contains(queue) {
            continue;
        }
        let ql = args.limits.iter().find(|l| &l.queue == queue);
        let cap = match ql {
            Some(ql) => queue_cap(&mut tx, queue, ql, left, args.now).await?,
            None => left,
        };
        let (seqs, held) = walk(
            &mut tx,
            queue,
            cap,
            left,
            args.now,
            &mut counts,
            &mut logged,
        )
        .await?;
        limited |= held;
        if let Some((_, per)) = ql.and_then(|l| l.rate) {
            let window = (queue_rate_key(queue), micros_of(per));
            logged.extend(std::iter::repeat_n(window, seqs.len()));
        }
        taken.extend(seqs);
    }
    sqlx::query(sql::rate_sweep())
        .bind(args.now)
        .bind(SWEEP)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if taken.is_empty() {
        tx.commit().await.map_err(db_err)?;
        return Ok((JobRows::default(), limited));
    }
    let seqs = serde_json::to_string(&taken).expect("integers serialize");
    let rows = sqlx::query(sql::claim_seqs())
        .bind(args.now)
        .bind(args.worker.as_str())
        .bind(args.lease_until)
        .bind(args.token.as_i64())
        .bind(seqs)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    if !logged.is_empty() {
        let keys = serde_json::to_string(&logged).expect("strings serialize");
        sqlx::query(sql::rate_log())
            .bind(args.now)
            .bind(keys)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    let rows = JobRows::of(&rows)?;
    tx.commit().await.map_err(db_err)?;
    Ok((rows, limited))
}

/// How many jobs of `queue` this claim may take by the queue's limits: its
/// share (`take`), the cluster's running cap and the queue's rate.
async fn queue_cap(
    conn: &mut SqliteConnection,
    queue: &str,
    ql: &ClaimLimit,
    left: usize,
    now: i64,
) -> Result<usize> {
    let mut cap = left as i64;
    if let Some(take) = ql.take {
        cap = cap.min(i64::from(take));
    }
    if let Some(global) = ql.global {
        let running: i64 = sqlx::query_scalar(sql::running_in_queue())
            .bind(queue)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        let ended = still_held(conn, queue, &ql.recording).await?;
        cap = cap.min(i64::from(global) - (running - ended));
    }
    if let Some((max, per)) = ql.rate {
        let key = queue_rate_key(queue);
        let since = now.saturating_sub(micros_of(per));
        let started = rate_counts(conn, &[(key.as_str(), since)]).await?;
        cap = cap.min(i64::from(max) - started.first().map_or(0, |(_, n)| *n));
    }
    Ok(usize::try_from(cap.max(0)).unwrap_or(0))
}

/// How many of `fences` (the claimer's jobs of `queue` whose outcomes are
/// being recorded) still hold their lease: RUNNING here, but no longer
/// running anywhere. Read in the claim's transaction, so it agrees with the
/// count they are taken from.
async fn still_held(conn: &mut SqliteConnection, queue: &str, fences: &[Fence]) -> Result<i64> {
    let mut held = 0;
    for chunk in fences.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT id, lease_token FROM jobs_queue \
             WHERE queue = ? AND status = 'RUNNING' AND id IN ({marks})"
        );
        let mut q = sqlx::query_as::<_, (Uuid, Option<i64>)>(&sql).bind(queue);
        for f in chunk {
            q = q.bind(*f.id.as_uuid());
        }
        for (id, token) in q.fetch_all(&mut *conn).await.map_err(db_err)? {
            let token = token.map(LeaseToken::from_i64);
            held += i64::from(
                chunk
                    .iter()
                    .any(|f| *f.id.as_uuid() == id && Some(f.token) == token),
            );
        }
    }
    Ok(held)
}

/// Walks the due jobs of `queue` in claim order and takes up to `cap` that
/// their limits admit (`left` is what the claim as a whole still takes).
/// Returns their seqs and whether a limit held a due job back.
async fn walk(
    conn: &mut SqliteConnection,
    queue: &str,
    cap: usize,
    left: usize,
    now: i64,
    counts: &mut Counts,
    logged: &mut Vec<(String, i64)>,
) -> Result<(Vec<i64>, bool)> {
    let mut taken = Vec::new();
    let mut held = false;
    let mut offset = 0usize;
    let mut size = FIRST_PAGE;
    'pages: while offset < SCAN_LIMIT {
        size = size.min(SCAN_LIMIT - offset);
        let page = sqlx::query(sql::candidates())
            .bind(queue)
            .bind(now)
            .bind(size as i64)
            .bind(offset as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let n = page.len();
        let page = page.iter().map(candidate).collect::<Result<Vec<_>>>()?;
        if taken.len() < cap {
            look_up(conn, &page, now, counts).await?;
        }
        for c in &page {
            if taken.len() >= cap {
                // Due jobs remain: the queue's cap held them back (or the
                // claim is full).
                held |= cap < left;
                break 'pages;
            }
            if admits(c, counts) {
                take(c, counts, logged);
                taken.push(c.seq);
            } else {
                held = true;
            }
        }
        if n < size {
            return Ok((taken, held));
        }
        offset += n;
        size *= 2;
    }
    if offset >= SCAN_LIMIT && taken.len() < cap {
        // Jobs beyond the scan may be due: say so, so the manager asks again.
        held = true;
    }
    Ok((taken, held))
}

fn candidate(row: &sqlx::sqlite::SqliteRow) -> Result<Candidate> {
    let text = |col: usize| row.try_get::<Option<String>, _>(col).map_err(db_err);
    let int = |col: usize| {
        row.try_get::<Option<i64>, _>(col)
            .map_err(db_err)
            .map(|v| v.unwrap_or(0))
    };
    Ok(Candidate {
        seq: row.try_get(0).map_err(db_err)?,
        concurrency: text(1)?
            .map(|k| Ok::<_, jobs_core::Error>((k, int(2)?)))
            .transpose()?,
        rate: text(3)?
            .map(|k| Ok::<_, jobs_core::Error>((k, int(4)?, int(5)?)))
            .transpose()?,
        sequence: text(6)?,
    })
}

/// Reads what this claim does not know yet of the limit keys of `page`:
/// running jobs per concurrency key, each sequence's head and whether it
/// runs, starts per rate key in the window — one statement per kind of key.
async fn look_up(
    conn: &mut SqliteConnection,
    page: &[Candidate],
    now: i64,
    counts: &mut Counts,
) -> Result<()> {
    let mut conc: Vec<&str> = Vec::new();
    let mut seqs: Vec<&str> = Vec::new();
    let mut rates: Vec<(&str, i64)> = Vec::new();
    for c in page {
        if let Some((key, _)) = &c.concurrency {
            if !counts.running.contains_key(key) && !conc.contains(&key.as_str()) {
                conc.push(key);
            }
        }
        if let Some(key) = &c.sequence {
            if !counts.sequences.contains_key(key) && !seqs.contains(&key.as_str()) {
                seqs.push(key);
            }
        }
        if let Some((key, _, per_ms)) = &c.rate {
            if !counts.starts.contains_key(key) && !rates.iter().any(|(k, _)| k == key) {
                let per = Duration::from_millis(u64::try_from(*per_ms).unwrap_or(0));
                rates.push((key, now.saturating_sub(micros_of(per))));
            }
        }
    }
    if !conc.is_empty() {
        let keys = serde_json::to_string(&conc).expect("strings serialize");
        let rows = sqlx::query(sql::running_by_keys())
            .bind(keys)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for row in rows {
            let key: String = row.try_get(0).map_err(db_err)?;
            counts.running.insert(key, row.try_get(1).map_err(db_err)?);
        }
    }
    if !seqs.is_empty() {
        let keys = serde_json::to_string(&seqs).expect("strings serialize");
        let rows = sqlx::query(sql::sequence_states())
            .bind(keys)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for row in rows {
            let key: String = row.try_get(0).map_err(db_err)?;
            let head: Option<i64> = row.try_get(1).map_err(db_err)?;
            let running: bool = row.try_get(2).map_err(db_err)?;
            counts.sequences.insert(key, (head, running));
        }
    }
    if !rates.is_empty() {
        for (key, n) in rate_counts(conn, &rates).await? {
            counts.starts.insert(key, n);
        }
    }
    Ok(())
}

/// How many starts each `(rate key, since)` has after `since`.
async fn rate_counts(
    conn: &mut SqliteConnection,
    keys: &[(&str, i64)],
) -> Result<Vec<(String, i64)>> {
    let keys = serde_json::to_string(keys).expect("strings serialize");
    let rows = sqlx::query(sql::rate_counts())
        .bind(keys)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(db_err)?,
                row.try_get(1).map_err(db_err)?,
            ))
        })
        .collect()
}

/// Whether `c`'s own limits let it start now, by what this claim knows
/// (`look_up` read every key of its page).
fn admits(c: &Candidate, counts: &Counts) -> bool {
    if let Some((key, max)) = &c.concurrency {
        if counts.running.get(key).copied().unwrap_or(i64::MAX) >= *max {
            return false;
        }
    }
    if let Some(key) = &c.sequence {
        let (head, running) = counts.sequences.get(key).copied().unwrap_or((None, true));
        if running || head != Some(c.seq) {
            return false;
        }
    }
    if let Some((key, max, _)) = &c.rate {
        if counts.starts.get(key).copied().unwrap_or(i64::MAX) >= *max {
            return false;
        }
    }
    true
}

/// Counts `c` as started and running, for the candidates after it.
fn take(c: &Candidate, counts: &mut Counts, logged: &mut Vec<(String, i64)>) {
    if let Some((key, _)) = &c.concurrency {
        *counts.running.entry(key.clone()).or_insert(0) += 1;
    }
    if let Some(key) = &c.sequence {
        counts.sequences.insert(key.clone(), (Some(c.seq), true));
    }
    if let Some((key, _, per_ms)) = &c.rate {
        *counts.starts.entry(key.clone()).or_insert(0) += 1;
        let per = Duration::from_millis(u64::try_from(*per_ms).unwrap_or(0));
        logged.push((key.clone(), micros_of(per)));
    }
}

/// A window in microseconds, at most [`MAX_DELAY`](jobs_core::MAX_DELAY).
fn micros_of(d: Duration) -> i64 {
    i64::try_from(d.min(jobs_core::MAX_DELAY).as_micros()).unwrap_or(i64::MAX)
}
