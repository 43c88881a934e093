//! `list_page`: one walk of the sort order's index from just after the
//! cursor, cut at the filter's `scan_limit` rows, with the other filters and
//! the search checked on the rows of that window only.
//!
//! The window's text depends on the order, on whether there is a cursor and
//! on a status filter (each its own index range, never a generic plan that
//! reads the whole index); the filters after it are one text for all, with
//! unset ones NULL. Binds: $1 scan limit, $2 page size + 1, $3 offset, $4
//! queue, $5 status, $6 job type, $7 the search term (lower case), $8
//! cancelled or not, $9 and $10 the cursor's key.

use chrono::{DateTime, Utc};
use jobs_core::backend::{finish_page, keyset_start};
use jobs_core::listing::search_needle;
use jobs_core::{Job, JobCursor, JobFilter, JobId, JobPage, JobSort, JobStatus, Result};
use sqlx::Row;

use super::error::db_err;
use super::options::quote_ident;
use super::row::row_to_job;
use super::PostgresBackend;

/// ASCII letters to lower case, and nothing else (as SQLite's `lower` and
/// the other backends fold), whatever the database's collation: `lower`
/// under the "C" collation (several times faster than a `translate`).
fn fold(x: &str) -> String {
    format!("lower(({x}) COLLATE \"C\")")
}

fn filters() -> String {
    format!(
        "($4::text IS NULL OR queue_name = $4) \
         AND ($5::text IS NULL OR status = $5) \
         AND ($6::text IS NULL OR job_type = $6) \
         AND ($8::bool IS NULL OR (cancelled_at IS NOT NULL) = $8) \
         AND ($7::text IS NULL OR strpos({}, $7) > 0 OR strpos({}, $7) > 0 \
              OR strpos({}, $7) > 0 \
              OR (errors <> '[]' AND EXISTS (SELECT 1 FROM jsonb_array_elements(errors) AS e \
                         WHERE strpos({}, $7) > 0)))",
        fold("job_type"),
        fold("payload::text"),
        fold("coalesce(error_message, '')"),
        fold("coalesce(e->>'message', '')"),
    )
}

/// The scope of a walk by enqueue order with a status filter (the filters
/// after the window check the status again). The statuses off a job's usual
/// path have a partial index (migration 8), which the constant IN term lets
/// even a generic plan use; RUNNING jobs are few (the lease index); PENDING
/// and COMPLETED are filtered within the scan window, walking `seq`.
fn by_status(status: Option<JobStatus>) -> &'static str {
    match status {
        Some(JobStatus::Running) => "status = 'RUNNING'",
        Some(JobStatus::Pending | JobStatus::Completed) | None => "true",
        Some(_) => "status = $5 AND status IN ('SCHEDULED', 'RETRYING', 'FAILED', 'DEAD_LETTER')",
    }
}

impl PostgresBackend {
    pub(super) async fn list_page_now(&self, filter: &JobFilter) -> Result<JobPage> {
        let after = keyset_start(filter)?;
        if filter.limit == 0 {
            return Ok(JobPage::new(Vec::new(), None, false));
        }
        let sort = filter.sort;
        let t = format!("{}.jobs", quote_ident(&self.inner.schema));
        let (scope, keyset, order) = match sort {
            JobSort::DueSoonest => (
                "status IN ('PENDING', 'SCHEDULED', 'RETRYING')",
                "(run_at, seq) > ($9, $10)",
                "run_at, seq",
            ),
            JobSort::RecentlyFinished => (
                "status IN ('COMPLETED', 'FAILED', 'DEAD_LETTER') AND completed_at IS NOT NULL",
                "(completed_at, id) < ($9, $10)",
                "completed_at DESC, id DESC",
            ),
            JobSort::Newest => (by_status(filter.status), "seq < $9", "seq DESC"),
            _ => (by_status(filter.status), "seq > $9", "seq"),
        };
        let mut window = format!("SELECT * FROM {t} WHERE {scope}");
        if after.is_some() {
            window.push_str(" AND ");
            window.push_str(keyset);
        }
        window.push_str(&format!(" ORDER BY {order} LIMIT $1 + $3"));
        let cols = super::sql::job_columns();
        let page_sql = format!(
            "SELECT {cols} FROM ({window}) AS w WHERE {} ORDER BY {order} LIMIT $2 OFFSET $3",
            filters()
        );
        let scan = i64::try_from(filter.scan_limit.max(1)).unwrap_or(i64::MAX);
        let take = i64::try_from(filter.limit).unwrap_or(i64::MAX - 1) + 1;
        let offset = if after.is_none() {
            i64::try_from(filter.offset).unwrap_or(i64::MAX)
        } else {
            0
        };
        let needle = search_needle(filter.search.as_deref());
        let status = filter.status.map(JobStatus::as_str);
        let binds = Binds {
            scan,
            take,
            offset,
            queue: filter.queue.clone(),
            status,
            job_type: filter.job_type.clone(),
            needle,
            cancelled: filter.cancelled,
            after,
        };
        let mut conn = self.conns.get().await?;
        let res = binds
            .apply(sqlx::query(&page_sql))
            .fetch_all(conn.get())
            .await;
        let rows = conn.done(res)?;
        let mut jobs = Vec::with_capacity(rows.len());
        let mut seqs = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let job = row_to_job(r)?;
            let seq: i64 = r.try_get("seq").map_err(db_err)?;
            seqs.insert(job.id, seq);
            jobs.push(job);
        }
        let key = |j: &Job| cursor_of(sort, j, seqs.get(&j.id).copied().unwrap_or_default());
        let mut last_examined = None;
        if jobs.len() <= filter.limit {
            // Did the window stop at the scan limit? Its last row says where to go on.
            let probe_sql = format!(
                "SELECT seq, run_at, completed_at, id FROM ({window}) AS w \
                 WHERE num_nulls($2::bigint, $3::bigint, $4::text, $5::text, $6::text, $7::text, $8::bool) >= 0 \
                 ORDER BY {order} OFFSET $1 + $3 - 1 LIMIT 1"
            );
            let mut conn = self.conns.get().await?;
            let res = binds
                .apply(sqlx::query(&probe_sql))
                .fetch_optional(conn.get())
                .await;
            if let Some(r) = conn.done(res)? {
                let seq: i64 = r.try_get(0).map_err(db_err)?;
                let run_at: DateTime<Utc> = r.try_get(1).map_err(db_err)?;
                let done: Option<DateTime<Utc>> = r.try_get(2).map_err(db_err)?;
                let id: uuid::Uuid = r.try_get(3).map_err(db_err)?;
                last_examined = Some(match sort {
                    JobSort::DueSoonest => JobCursor::due(run_at, seq),
                    JobSort::RecentlyFinished => {
                        JobCursor::finished(done.unwrap_or_default(), JobId::from_uuid(id))
                    }
                    other => JobCursor::seq(other, seq),
                });
            }
        }
        Ok(finish_page(jobs, filter.limit, last_examined, key))
    }
}

/// $1 to $8, then the cursor's key.
struct Binds {
    scan: i64,
    take: i64,
    offset: i64,
    queue: Option<String>,
    status: Option<&'static str>,
    job_type: Option<String>,
    needle: Option<String>,
    cancelled: Option<bool>,
    after: Option<JobCursor>,
}

impl Binds {
    fn apply<'q>(&self, q: PgQuery<'q>) -> PgQuery<'q> {
        let q = q
            .bind(self.scan)
            .bind(self.take)
            .bind(self.offset)
            .bind(self.queue.clone())
            .bind(self.status)
            .bind(self.job_type.clone())
            .bind(self.needle.clone())
            .bind(self.cancelled);
        bind_key(q, self.after)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_key(q: PgQuery<'_>, after: Option<JobCursor>) -> PgQuery<'_> {
    let Some(c) = after else { return q };
    if let Some(s) = c.as_seq() {
        q.bind(s)
    } else if let Some((at, seq)) = c.as_due() {
        q.bind(time(at)).bind(seq)
    } else if let Some((at, id)) = c.as_finished() {
        q.bind(time(at)).bind(*id.as_uuid())
    } else {
        q
    }
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

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}
