//! Retention: the maintainer deletes finished jobs once they are old enough,
//! in bounded batches, so tables, sets and counters do not grow for ever.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::backend::Outcome;
use jobs_core::{Error, JobStatus, PruneRequest};
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{debug, info, warn};

use crate::shared::Shared;
use crate::stats::Counters;

/// How long finished jobs are kept, per status and optionally per queue.
///
/// The default keeps COMPLETED jobs a day and FAILED and DEAD_LETTER jobs a
/// week (as River does), checked every minute, deleting at most 1,000 jobs
/// per statement. `None` keeps a status for ever.
///
/// ```
/// use std::time::Duration;
/// use jobs_runtime::Retention;
///
/// let r = Retention::default()
///     .completed(Some(Duration::from_secs(3600)))
///     .queue("audit", Retention::keep_all());
/// # let _ = r;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    completed: Option<Duration>,
    failed: Option<Duration>,
    dead_letter: Option<Duration>,
    per_queue: BTreeMap<String, Retention>,
    interval: Duration,
    batch: usize,
    /// Completed jobs are deleted by their completion (never kept at all).
    drop_completed: bool,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            completed: Some(DAY),
            failed: Some(7 * DAY),
            dead_letter: Some(7 * DAY),
            per_queue: BTreeMap::new(),
            interval: Duration::from_secs(60),
            batch: 1000,
            drop_completed: false,
        }
    }
}

impl Retention {
    /// Keep every finished job (no pruning).
    pub fn keep_all() -> Self {
        Retention {
            completed: None,
            failed: None,
            dead_letter: None,
            ..Retention::default()
        }
    }

    /// Keep COMPLETED jobs this long (`None`: for ever); the maintainer
    /// prunes them at its next pass once they are older. To never keep them
    /// at all, see [`Retention::drop_completed`].
    pub fn completed(mut self, keep: Option<Duration>) -> Self {
        self.completed = keep;
        self
    }

    /// Delete COMPLETED jobs as they complete: the completion itself deletes
    /// the job (no pruning pass, and no write of a row that is deleted a
    /// moment later), so nothing is left to show on the dashboard, nor for
    /// a result handle to read. Counts and the throughput history still
    /// count the completions. Per queue too:
    /// `Retention::default().queue("fire-and-forget", Retention::default().drop_completed())`.
    ///
    /// ```
    /// use jobs_runtime::Retention;
    ///
    /// let r = Retention::default().drop_completed();
    /// # let _ = r;
    /// ```
    pub fn drop_completed(mut self) -> Self {
        self.drop_completed = true;
        self
    }

    /// Keep FAILED jobs (cancelled ones included) this long.
    pub fn failed(mut self, keep: Option<Duration>) -> Self {
        self.failed = keep;
        self
    }

    /// Keep DEAD_LETTER jobs this long.
    pub fn dead_letter(mut self, keep: Option<Duration>) -> Self {
        self.dead_letter = keep;
        self
    }

    /// Jobs of `queue` follow `rules` instead (their own per-queue rules
    /// are ignored).
    pub fn queue(mut self, queue: impl Into<String>, mut rules: Retention) -> Self {
        rules.per_queue.clear();
        self.per_queue.insert(queue.into(), rules);
        self
    }

    /// How often the maintainer prunes (default a minute).
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(10));
        self
    }

    /// At most this many jobs per delete statement (default 1,000), so no
    /// delete holds locks for long.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The outcome to record for an attempt of a job of `queue`: a
    /// completion becomes [`Outcome::CompleteAndDelete`] when the rules of
    /// that queue keep completed jobs for no time at all.
    pub(crate) fn on_finish(&self, queue: &str, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Complete { .. } if self.drops_completed(queue) => Outcome::CompleteAndDelete,
            other => other,
        }
    }

    fn drops_completed(&self, queue: &str) -> bool {
        let rules = if self.per_queue.is_empty() {
            self
        } else {
            self.per_queue.get(queue).unwrap_or(self)
        };
        rules.drop_completed
    }

    /// Whether anything is ever pruned.
    pub fn prunes(&self) -> bool {
        self.ages().next().is_some() || self.per_queue.values().any(Retention::prunes)
    }

    /// How long audit entries are kept: as long as the longest-kept
    /// finished jobs (`None`: for ever, as some jobs are).
    fn audit_age(&self) -> Option<Duration> {
        let all = std::iter::once(self).chain(self.per_queue.values());
        let mut longest = Duration::ZERO;
        for r in all {
            for age in [r.completed, r.failed, r.dead_letter] {
                longest = longest.max(age?);
            }
        }
        Some(longest)
    }

    fn ages(&self) -> impl Iterator<Item = (JobStatus, Duration)> + '_ {
        [
            (JobStatus::Completed, self.completed),
            (JobStatus::Failed, self.failed),
            (JobStatus::DeadLetter, self.dead_letter),
        ]
        .into_iter()
        .filter_map(|(s, age)| Some((s, age?)))
    }

    /// The prune requests of one pass, for `now`: one per age (statuses of
    /// the same age together), per queue with its own rules, and for the
    /// other `queues` when some have their own (so the general rules skip
    /// those).
    fn requests(&self, now: chrono::DateTime<chrono::Utc>, queues: &[String]) -> Vec<PruneRequest> {
        let mut out = Vec::new();
        let mut add = |rules: &Retention, queue: Option<&str>| {
            let mut by_age: BTreeMap<Duration, Vec<JobStatus>> = BTreeMap::new();
            for (status, age) in rules.ages() {
                by_age.entry(age).or_default().push(status);
            }
            for (age, statuses) in by_age {
                let before = jobs_core::sub_saturating(now, age);
                let mut req = PruneRequest::new(before, self.batch).statuses(statuses);
                if let Some(q) = queue {
                    req = req.queue(q);
                }
                out.push(req);
            }
        };
        if self.per_queue.is_empty() {
            add(self, None);
        } else {
            for q in queues.iter().filter(|q| !self.per_queue.contains_key(*q)) {
                add(self, Some(q));
            }
            for (q, rules) in &self.per_queue {
                add(rules, Some(q));
            }
        }
        out
    }
}

/// At most this many batches per request and pass, so one pass ends even
/// while jobs finish faster than they are deleted.
const MAX_BATCHES: usize = 100;

/// On the maintainer, every `interval`, deletes what the retention says.
pub(crate) async fn retention_loop(shared: Arc<Shared>, stop: StopToken) {
    let rules = shared.cfg.retention.clone();
    if !rules.prunes() {
        return;
    }
    let mut tick = tokio::time::interval(rules.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !shared.is_leader() {
            continue;
        }
        match prune_once(&shared, &rules, &stop).await {
            Ok(0) => shared.health.ok("prune"),
            Ok(n) => {
                shared.health.ok("prune");
                info!(jobs = n, "pruned finished jobs past their retention");
            }
            Err(Error::Unsupported { .. }) => {
                debug!("the backend cannot prune; retention is off");
                return;
            }
            Err(e) => {
                shared.health.failed("prune", &e);
                warn!(error = %e, "pruning finished jobs failed; will try again");
            }
        }
    }
}

async fn prune_once(
    shared: &Shared,
    rules: &Retention,
    stop: &StopToken,
) -> jobs_core::Result<u64> {
    let queues = if rules.per_queue.is_empty() {
        Vec::new()
    } else {
        // The queues there are, to apply the general rules to the others.
        let mut qs: Vec<String> = shared
            .call("counts", shared.backend().counts())
            .await?
            .into_iter()
            .map(|c| c.queue)
            .collect();
        qs.sort_unstable();
        qs.dedup();
        qs
    };
    let mut total = 0;
    for req in rules.requests(crate::clock::now(), &queues) {
        for _ in 0..MAX_BATCHES {
            if stop.is_cancelled() {
                return Ok(total);
            }
            let n = shared.call("prune", shared.backend().prune(&req)).await?;
            total += n;
            Counters::bump(&shared.counters.pruned, n);
            if (n as usize) < req.limit {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    if let Some(age) = rules.audit_age() {
        let before = jobs_core::sub_saturating(crate::clock::now(), age);
        for _ in 0..MAX_BATCHES {
            match shared
                .call(
                    "prune audit",
                    shared.backend().prune_audit(before, rules.batch),
                )
                .await
            {
                Ok(n) if (n as usize) < rules.batch => break,
                Ok(_) => tokio::task::yield_now().await,
                // A backend without an audit log has nothing to prune.
                Err(Error::Unsupported { .. }) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_drop_completed_turns_a_completion_into_a_deletion() {
        let done = || Outcome::Complete { result: None };
        let dropped =
            |r: &Retention, q: &str| matches!(r.on_finish(q, done()), Outcome::CompleteAndDelete);
        // Kept for no time is still kept until the maintainer's next pass.
        assert!(!dropped(
            &Retention::default().completed(Some(Duration::ZERO)),
            "a"
        ));
        assert!(!dropped(&Retention::default(), "a"));
        assert!(dropped(&Retention::default().drop_completed(), "a"));
        let per_queue = Retention::default().queue("drop", Retention::default().drop_completed());
        assert!(dropped(&per_queue, "drop"));
        assert!(!dropped(&per_queue, "other"));
        // Only completions: a failure is recorded as it is.
        let fail = Outcome::Release;
        assert!(matches!(
            Retention::default().drop_completed().on_finish("a", fail),
            Outcome::Release
        ));
    }

    #[test]
    fn statuses_of_one_age_go_together() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
        let reqs = Retention::default().requests(now, &[]);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].statuses, vec![JobStatus::Completed]);
        assert_eq!(reqs[0].before, now - chrono::Duration::days(1));
        assert_eq!(
            reqs[1].statuses,
            vec![JobStatus::Failed, JobStatus::DeadLetter]
        );
        assert_eq!(reqs[1].before, now - chrono::Duration::days(7));
        assert!(reqs.iter().all(|r| r.queue.is_none() && r.limit == 1000));
    }

    #[test]
    fn queues_with_their_own_rules_are_left_to_them() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
        let r = Retention::default().queue("audit", Retention::keep_all().dead_letter(Some(DAY)));
        let qs = ["audit".to_owned(), "default".to_owned()];
        let reqs = r.requests(now, &qs);
        let audit: Vec<_> = reqs
            .iter()
            .filter(|r| r.queue.as_deref() == Some("audit"))
            .collect();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].statuses, vec![JobStatus::DeadLetter]);
        assert_eq!(
            reqs.iter()
                .filter(|r| r.queue.as_deref() == Some("default"))
                .count(),
            2
        );
        assert!(reqs.iter().all(|r| r.queue.is_some()));
        assert!(!Retention::keep_all().prunes());
        assert!(Retention::keep_all()
            .queue("q", Retention::default())
            .prunes());
    }
}
