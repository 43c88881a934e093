//! `list_page`: a walk of one of the state's orders from just after the
//! cursor, looking at no more than the filter's `scan_limit` jobs.

use std::ops::Bound::{Excluded, Included, Unbounded};

use jobs_core::backend::{finish_page, keyset_start};
use jobs_core::{Job, JobCursor, JobFilter, JobId, JobPage, JobSort, Result};

use super::state::{Entry, State};

impl State {
    pub(super) fn list_page(&self, filter: &JobFilter) -> Result<JobPage> {
        let after = keyset_start(filter)?;
        if filter.limit == 0 {
            return Ok(JobPage::new(Vec::new(), None, false));
        }
        let entry = |id: &JobId| -> &Entry { &self.jobs[id] };
        let walk: Box<dyn Iterator<Item = &Entry> + '_> = match filter.sort {
            JobSort::Newest => match after.and_then(|c| c.as_seq()) {
                None => Box::new(self.order.values().rev().map(entry)),
                Some(s) if s <= 0 => Box::new(std::iter::empty()),
                Some(s) => Box::new(self.order.range(..s as u64).rev().map(|(_, id)| entry(id))),
            },
            JobSort::DueSoonest => {
                let from = match after.and_then(|c| c.as_due()) {
                    None => Unbounded,
                    Some((t, s)) => Included((t, (s.max(-1) + 1) as u64, nil())),
                };
                Box::new(self.jobs.due.range((from, Unbounded)).map(|k| entry(&k.2)))
            }
            JobSort::RecentlyFinished => {
                let to = match after.and_then(|c| c.as_finished()) {
                    None => Unbounded,
                    Some((t, id)) => Excluded((t, id)),
                };
                Box::new(
                    self.jobs
                        .finished
                        .range((Unbounded, to))
                        .rev()
                        .map(|k| entry(&k.1)),
                )
            }
            // Oldest, and any order added later: enqueue order.
            _ => match after.and_then(|c| c.as_seq()) {
                Some(s) if s >= 0 => Box::new(
                    self.order
                        .range((Excluded(s as u64), Unbounded))
                        .map(|(_, id)| entry(id)),
                ),
                _ => Box::new(self.order.values().map(entry)),
            },
        };
        let key = |e: &Entry| cursor_of(filter.sort, &e.job, e.seq);
        let mut skip = if after.is_none() { filter.offset } else { 0 };
        // A first page's offset widens its window by as many jobs.
        let scan_limit = filter.scan_limit.max(1).saturating_add(skip);
        let mut out = Vec::new();
        let mut last = None;
        let mut limited = false;
        for (examined, e) in walk.enumerate() {
            if examined == scan_limit {
                limited = true;
                break;
            }
            last = Some(e);
            if !filter.matches(&e.job) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            out.push(e.job.clone());
            if out.len() > filter.limit {
                break;
            }
        }
        let last_examined = last.filter(|_| limited).map(key);
        Ok(finish_page(out, filter.limit, last_examined, |j| {
            key(&self.jobs[&j.id])
        }))
    }
}

fn nil() -> JobId {
    JobId::from_uuid(uuid::Uuid::nil())
}

fn cursor_of(sort: JobSort, job: &Job, seq: u64) -> JobCursor {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    match sort {
        JobSort::DueSoonest => JobCursor::due(job.run_at, seq),
        JobSort::RecentlyFinished => {
            JobCursor::finished(job.completed_at.unwrap_or_default(), job.id)
        }
        other => JobCursor::seq(other, seq),
    }
}
