//! `list_page`: one walk of a sorted set from just after the cursor (page.lua),
//! then the jobs it found, read in one go.

use chrono::DateTime;
use jobs_core::backend::{finish_page, keyset_start};
use jobs_core::listing::search_needle;
use jobs_core::{JobCursor, JobFilter, JobId, JobPage, JobSort, JobStatus, Result};
use redis::Value;

use super::backend::RedisBackend;
use super::row::{array, text};
use super::scripts::{backend_err, unexpected, SCRIPTS};

/// Jobs one call of page.lua looks at, at most.
const SCAN_PER_CALL: usize = 1_000;

impl RedisBackend {
    /// Fills `{P}:due` (the due-soonest order) with the jobs that waited
    /// before this version kept it, once per namespace: a slice of 1,000
    /// members per script call, so Redis is never blocked for long.
    pub(super) async fn build_due_index(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let ns = &self.inner.ns;
        let built: i64 = SCRIPTS
            .due_index
            .key(ns)
            .arg("check")
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        if built == 1 {
            return Ok(());
        }
        // The queues with jobs: `{P}:counts` has a field "<STATUS> <queue>" for each.
        let fields: Vec<String> = redis::cmd("HKEYS")
            .arg(format!("{ns}:counts"))
            .query_async(&mut conn)
            .await
            .map_err(backend_err)?;
        let mut queues: Vec<&str> = fields
            .iter()
            .filter_map(|f| f.split_once(' ').map(|p| p.1))
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for q in queues {
            for lane in ["ready", "lready", "delayed"] {
                let mut start = 0usize;
                loop {
                    let n: i64 = SCRIPTS
                        .due_index
                        .key(ns)
                        .arg("add")
                        .arg(format!("{lane}:{q}"))
                        .arg(start)
                        .arg(1_000)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(backend_err)?;
                    if n < 1_000 {
                        break;
                    }
                    start += 1_000;
                }
            }
        }
        let _: i64 = SCRIPTS
            .due_index
            .key(ns)
            .arg("done")
            .invoke_async(&mut conn)
            .await
            .map_err(backend_err)?;
        tracing::info!(prefix = %self.inner.prefix, "redis: built the due-order index of waiting jobs");
        Ok(())
    }

    pub(super) async fn list_page_now(&self, filter: &JobFilter) -> Result<JobPage> {
        let after = keyset_start(filter)?;
        if filter.limit == 0 {
            return Ok(JobPage::new(Vec::new(), None, false));
        }
        let sort = filter.sort;
        let order = match sort {
            JobSort::Newest => "n",
            JobSort::DueSoonest => "d",
            JobSort::RecentlyFinished => "f",
            _ => "o",
        };
        let (c1, c2) = match after {
            None => (String::new(), String::new()),
            Some(c) => {
                if let Some(s) = c.as_seq() {
                    (s.to_string(), String::new())
                } else if let Some((at, seq)) = c.as_due() {
                    (at.max(0).to_string(), seq.max(0).to_string())
                } else if let Some((at, id)) = c.as_finished() {
                    (at.to_string(), id.to_string())
                } else {
                    (String::new(), String::new())
                }
            }
        };
        let skip = if after.is_none() { filter.offset } else { 0 };
        // A first page's offset widens its window by as many jobs.
        let scan = filter
            .scan_limit
            .clamp(1, i64::MAX as usize)
            .saturating_add(skip)
            .min(i64::MAX as usize);
        let want = filter.limit.min(i64::MAX as usize - 1) + 1;
        let cursor = |k1: &str, k2: &str| -> Result<JobCursor> {
            let bad = || unexpected("page.lua replied with a malformed order key");
            let n1: i64 = k1.parse().map_err(|_| bad())?;
            Ok(match sort {
                JobSort::DueSoonest => JobCursor::due(
                    DateTime::from_timestamp_micros(n1).ok_or_else(bad)?,
                    k2.parse().map_err(|_| bad())?,
                ),
                JobSort::RecentlyFinished => JobCursor::finished(
                    DateTime::from_timestamp_micros(n1).ok_or_else(bad)?,
                    k2.parse::<JobId>().map_err(|_| bad())?,
                ),
                other => JobCursor::seq(other, n1),
            })
        };
        let needle = search_needle(filter.search.as_deref()).unwrap_or_default();
        let mut conn = self.conn().await?;
        let (mut c1, mut c2, mut skip) = (c1, c2, skip);
        let mut left = scan;
        let mut ids = Vec::new();
        let mut keys = std::collections::HashMap::new();
        let mut last_examined = None;
        // A slice of the walk per script call (Redis runs nothing else meanwhile).
        loop {
            let slice = left.min(SCAN_PER_CALL);
            let reply: Value = SCRIPTS
                .page
                .key(&self.inner.ns)
                .arg(order)
                .arg(&c1)
                .arg(&c2)
                .arg(slice)
                .arg(want - ids.len())
                .arg(skip.min(i64::MAX as usize))
                .arg(filter.queue.as_deref().unwrap_or(""))
                .arg(filter.status.map(JobStatus::as_str).unwrap_or(""))
                .arg(filter.job_type.as_deref().unwrap_or(""))
                .arg(match filter.cancelled {
                    None => "",
                    Some(true) => "1",
                    Some(false) => "0",
                })
                .arg(&needle)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_err)?;
            let items: Vec<String> = array(reply)
                .iter()
                .map(|v| text(v).unwrap_or_default())
                .collect();
            if items.len() < 4 || !(items.len() - 4).is_multiple_of(3) {
                return Err(unexpected("page.lua replied with a malformed page"));
            }
            for m in items[4..].chunks(3) {
                let id: JobId = m[0]
                    .parse()
                    .map_err(|_| unexpected("page.lua replied with a malformed job id"))?;
                keys.insert(id, cursor(&m[1], &m[2])?);
                ids.push(m[0].clone());
            }
            skip = items[3].parse().unwrap_or(0);
            left -= slice;
            let more = items[0] == "1";
            if ids.len() >= want || !more {
                break;
            }
            if left == 0 {
                last_examined = Some(cursor(&items[1], &items[2])?);
                break;
            }
            c1.clone_from(&items[1]);
            c2.clone_from(&items[2]);
        }
        // Jobs deleted between the walk and this read are left out.
        let jobs = self.get_rows(&ids).await?.into_iter().flatten().collect();
        Ok(finish_page(jobs, filter.limit, last_examined, |j| {
            keys[&j.id]
        }))
    }
}
