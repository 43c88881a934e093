//! `list_page`: one walk of the sort order's index from just after the
//! cursor, cut at the filter's `scan_limit` rows, with the other filters and
//! the search checked on the rows of that window only.
//!
//! Two statements: the window's last row, found in the index alone (`LIMIT 1
//! OFFSET scan_limit - 1` from the cursor), then the page, walking the index
//! from the cursor to that row at most and stopping at `limit + 1` matches.
//! (One statement with the window as a subquery reads the whole window:
//! SQLite sorts a subquery's rows again for the outer `ORDER BY`.) The
//! statements are put together per request from the parts below (which
//! filters are set decides their text; sqlx caches each text's prepared
//! form). A first page's offset widens its window by as many rows. Binds: ?1
//! scan limit, ?2 page size + 1, ?3 offset, ?4 and ?5 the cursor's key, ?6
//! queue, ?7 status, ?8 job type, ?9 the search term (lower case), ?10 and
//! ?11 the window's last row.

use jobs_core::backend::{finish_page, keyset_start};
use jobs_core::listing::search_needle;
use jobs_core::{Job, JobCursor, JobFilter, JobPage, JobSort, JobStatus, Result};
use sqlx::Row;

use super::error::db_err;
use super::row::job_from_row;
use super::time::from_micros;
use super::SqliteBackend;

// The conditions of the indexes the walks use, word for word (migration 7).
const WAITING: &str = super::sql::WAITING;
const FINISHED: &str = "(status = 'COMPLETED' OR status = 'FAILED' OR status = 'DEAD_LETTER') \
    AND completed_at IS NOT NULL";

/// The search: the type, the payload's JSON text, the latest error and the
/// messages of the error history (ASCII case folded by `lower`).
const SEARCH: &str = " AND (instr(lower(job_type), ?9) > 0 \
    OR instr(lower(payload), ?9) > 0 \
    OR instr(lower(coalesce(error_message, '')), ?9) > 0 \
    OR (errors IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(errors) AS e \
        WHERE instr(lower(json_extract(e.value, '$.message')), ?9) > 0)))";

/// A sort's index scope, cursor condition, window end condition and order.
struct Walk {
    scope: &'static str,
    after: &'static str,
    upto: &'static str,
    order: &'static str,
}

/// The statuses of the partial status index (migration 7): those off a
/// job's usual path. The scope of a walk by status repeats this term word
/// for word, so that SQLite sees the query implies the index's condition.
const OFF_PATH: &str =
    "(status = 'SCHEDULED' OR status = 'RETRYING' OR status = 'FAILED' OR status = 'DEAD_LETTER')";

/// How a walk by enqueue order finds the jobs of one status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByStatus {
    /// No status filter.
    Any,
    /// A status of the partial status index: its entries, in order.
    Indexed,
    /// RUNNING: every running job (few: the lease index), sorted.
    Running,
    /// PENDING or COMPLETED: a filter on the rows of the scan window.
    Filtered,
}

fn by_status(status: Option<JobStatus>) -> ByStatus {
    match status {
        None => ByStatus::Any,
        Some(JobStatus::Running) => ByStatus::Running,
        Some(JobStatus::Pending | JobStatus::Completed) => ByStatus::Filtered,
        Some(_) => ByStatus::Indexed,
    }
}

fn walk(sort: JobSort, status: ByStatus) -> Walk {
    const INDEXED: &str = "status = ?7 AND (status = 'SCHEDULED' OR status = 'RETRYING' \
        OR status = 'FAILED' OR status = 'DEAD_LETTER')";
    // The running jobs' rowids from a partial index of running jobs, walked
    // in order (`status = 'RUNNING'` alone scans the table by rowid).
    const RUNNING: &str = "seq IN (SELECT seq FROM jobs_queue WHERE status = 'RUNNING')";
    debug_assert!(INDEXED.ends_with(OFF_PATH));
    let scope = match status {
        ByStatus::Indexed => INDEXED,
        ByStatus::Running => RUNNING,
        ByStatus::Any | ByStatus::Filtered => "1 = 1",
    };
    let (scope, after, upto, order) = match sort {
        JobSort::Newest => (scope, "seq < ?4", "seq >= ?10", "seq DESC"),
        JobSort::DueSoonest => (
            WAITING,
            "(run_at, seq) > (?4, ?5)",
            "(run_at, seq) <= (?10, ?11)",
            "run_at, seq",
        ),
        JobSort::RecentlyFinished => (
            FINISHED,
            "(completed_at, id) < (?4, ?5)",
            "(completed_at, id) >= (?10, ?11)",
            "completed_at DESC, id DESC",
        ),
        _ => (scope, "seq > ?4", "seq <= ?10", "seq"),
    };
    Walk {
        scope,
        after,
        upto,
        order,
    }
}

impl SqliteBackend {
    pub(super) async fn list_page_now(&self, filter: &JobFilter) -> Result<JobPage> {
        let after = keyset_start(filter)?;
        if filter.limit == 0 {
            return Ok(JobPage::new(Vec::new(), None, false));
        }
        let sort = filter.sort;
        let by_seq = !matches!(sort, JobSort::DueSoonest | JobSort::RecentlyFinished);
        let status = if by_seq {
            by_status(filter.status)
        } else {
            ByStatus::Filtered
        };
        let w = walk(sort, status);
        let mut from = format!("FROM jobs_queue WHERE {}", w.scope);
        if after.is_some() {
            from.push_str(" AND ");
            from.push_str(w.after);
        }
        let needle = search_needle(filter.search.as_deref());
        let mut filters = String::new();
        if filter.queue.is_some() {
            filters.push_str(" AND queue = ?6");
        }
        if filter.status.is_some() && status == ByStatus::Filtered {
            filters.push_str(" AND status = ?7");
        }
        if filter.job_type.is_some() {
            filters.push_str(" AND job_type = ?8");
        }
        match filter.cancelled {
            Some(true) => filters.push_str(" AND cancelled_at IS NOT NULL"),
            Some(false) => filters.push_str(" AND cancelled_at IS NULL"),
            None => {}
        }
        if needle.is_some() {
            filters.push_str(SEARCH);
        }
        let (k1, k2): (Option<i64>, Option<Vec<u8>>) = match after {
            Some(c) => match (c.as_seq(), c.as_due(), c.as_finished()) {
                (Some(s), _, _) => (Some(s), None),
                (_, Some((at, _)), _) => (Some(at), None),
                (_, _, Some((at, id))) => (Some(at), Some(id.as_uuid().as_bytes().to_vec())),
                _ => (None, None),
            },
            None => (None, None),
        };
        // The due order's second key is an integer; bind it as one.
        let k2_int = after.and_then(|c| c.as_due()).map(|(_, seq)| seq);
        let scan = i64::try_from(filter.scan_limit.max(1)).unwrap_or(i64::MAX);
        let take = i64::try_from(filter.limit).unwrap_or(i64::MAX - 1) + 1;
        let offset = if after.is_none() {
            i64::try_from(filter.offset).unwrap_or(i64::MAX)
        } else {
            0
        };
        let binds = Binds {
            scan,
            take,
            offset,
            k1,
            k2,
            k2_int,
            queue: filter.queue.clone(),
            status: filter.status.map(JobStatus::as_str),
            job_type: filter.job_type.clone(),
            needle,
            end: None,
        };

        // The window's last row, if the rows from the cursor on are more than it holds.
        let end_sql = format!(
            "SELECT seq, run_at, completed_at, id {from} ORDER BY {} LIMIT 1 OFFSET ?1 + ?3 - 1",
            w.order
        );
        let b = binds.clone();
        let end = match self
            .read_optional(end_sql.into(), move |q| b.apply(q))
            .await?
        {
            None => None,
            Some(r) => {
                let seq: i64 = r.try_get(0).map_err(db_err)?;
                let run_at: i64 = r.try_get(1).map_err(db_err)?;
                let done: Option<i64> = r.try_get(2).map_err(db_err)?;
                let id: uuid::Uuid = r.try_get(3).map_err(db_err)?;
                Some(match sort {
                    JobSort::DueSoonest => (
                        JobCursor::due(from_micros(run_at), seq),
                        End::Ints(run_at, seq),
                    ),
                    JobSort::RecentlyFinished => {
                        let at = done.unwrap_or_default();
                        (
                            JobCursor::finished(from_micros(at), jobs_core::JobId::from_uuid(id)),
                            End::Id(at, id.as_bytes().to_vec()),
                        )
                    }
                    other => (JobCursor::seq(other, seq), End::Ints(seq, 0)),
                })
            }
        };
        let cols = super::sql::job_cols();
        let upto = if end.is_some() {
            format!(" AND {}", w.upto)
        } else {
            String::new()
        };
        let page_sql = format!(
            "SELECT {cols} {from}{upto}{filters} ORDER BY {} LIMIT ?2 OFFSET ?3",
            w.order
        );
        let mut b = binds;
        b.end = end.as_ref().map(|e| e.1.clone());
        let rows = self.read_all(page_sql.into(), move |q| b.apply(q)).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        let mut seqs = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let (job, seq) = job_from_row(r)?;
            seqs.insert(job.id, seq);
            jobs.push(job);
        }
        let key = |j: &Job| cursor_of(sort, j, seqs.get(&j.id).copied().unwrap_or_default());
        Ok(finish_page(jobs, filter.limit, end.map(|e| e.0), key))
    }
}

/// The window's last row, bound as ?10 and ?11.
#[derive(Clone)]
enum End {
    Ints(i64, i64),
    Id(i64, Vec<u8>),
}

fn cursor_of(sort: JobSort, job: &Job, seq: i64) -> JobCursor {
    match sort {
        JobSort::DueSoonest => JobCursor::due(job.run_at, seq),
        JobSort::RecentlyFinished => {
            JobCursor::finished(job.completed_at.unwrap_or_default(), job.id)
        }
        other => JobCursor::seq(other, seq),
    }
}

/// ?1 to ?11.
#[derive(Clone)]
struct Binds {
    scan: i64,
    take: i64,
    offset: i64,
    k1: Option<i64>,
    k2: Option<Vec<u8>>,
    k2_int: Option<i64>,
    queue: Option<String>,
    status: Option<&'static str>,
    job_type: Option<String>,
    needle: Option<String>,
    end: Option<End>,
}

impl Binds {
    fn apply(self, q: super::conn::Query<'_>) -> super::conn::Query<'_> {
        let q = q
            .bind(self.scan)
            .bind(self.take)
            .bind(self.offset)
            .bind(self.k1);
        let q = match self.k2_int {
            Some(seq) => q.bind(seq),
            None => q.bind(self.k2),
        };
        let q = q
            .bind(self.queue)
            .bind(self.status)
            .bind(self.job_type)
            .bind(self.needle);
        match self.end {
            Some(End::Ints(a, b)) => q.bind(a).bind(b),
            Some(End::Id(a, b)) => q.bind(a).bind(b),
            None => q,
        }
    }
}
