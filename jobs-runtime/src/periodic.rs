//! Periodic schedules: parsing them at `build()`, and the loop that fires
//! their ticks.
//!
//! **Once per tick, by the store.** A tick's job carries the unique key
//! `cron:<schedule>:<tick as Unix seconds>`, held in every status. However
//! many managers fire the same tick, and whatever their clocks say, the
//! backend stores one job; the others get `Duplicate`.
//!
//! **Who fires.** The maintainer fires each tick when it falls due. Every
//! other manager that declares the schedule stands by: once a tick is
//! [`takeover`] late and the stored state does not show it fired, it fires
//! it itself. So a tick still fires, late, when the maintainer just died or
//! does not declare that schedule (managers built from different code);
//! in the common case the standbys only read the state once per tick.
//!
//! **Missed ticks.** A tick more than the schedule's grace late (a minute by
//! default) when a manager gets to it was missed — no manager ran through
//! it. [`MissedRuns`] says what happens then: skip, run once, or catch up
//! to N. A schedule seen for the first time fires from the next tick on.
//!
//! **State.** After firing a tick, the manager that stored its job writes
//! the schedule's [`ScheduleState`] (last tick, its job, next tick), which is
//! where a restarted cluster resumes from and what `jobs schedules` shows.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use jobs_core::{
    Enqueued, Error, JobId, MissedRuns, NewJob, Periodic, Result, ScheduleState, UniqueStates,
    Uniqueness,
};
use tokio_util::sync::CancellationToken as StopToken;
use tracing::{debug, error, info, warn};

use crate::shared::Shared;
use crate::stats::Counters;

/// A parsed schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    pub(crate) periodic: Periodic,
    cron: Cron,
    tz: Tz,
}

/// Parses a cron expression: five fields, or six with seconds first, or a
/// nickname (`@daily`).
pub fn parse_cron(expr: &str) -> std::result::Result<(), String> {
    parser().parse(expr).map(drop).map_err(|e| e.to_string())
}

/// A cron expression in words (`At 03:00 AM`), or `None` if it does not parse.
pub fn describe_cron(expr: &str) -> Option<String> {
    parser().parse(expr).ok().map(|c| c.describe())
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

impl Schedule {
    /// Parses `periodic`'s expression and time zone, and checks it ever fires.
    pub(crate) fn compile(periodic: Periodic) -> Result<Schedule> {
        let name = periodic.name().to_owned();
        let bad = |why: String| Error::Config(format!("periodic schedule `{name}`: {why}"));
        periodic.job_template()?;
        let cron = parser().parse(periodic.cron_expr()).map_err(|e| {
            bad(format!(
                "invalid cron expression {:?}: {e} (five fields — minute hour day-of-month month day-of-week — or six with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly)",
                periodic.cron_expr()
            ))
        })?;
        let tz = Tz::from_str(periodic.timezone_name()).map_err(|_| {
            bad(format!(
                "unknown time zone {:?} (an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\")",
                periodic.timezone_name()
            ))
        })?;
        let schedule = Schedule { periodic, cron, tz };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(bad(format!(
                "the cron expression {:?} never fires",
                schedule.periodic.cron_expr()
            )));
        }
        Ok(schedule)
    }

    pub(crate) fn name(&self) -> &str {
        self.periodic.name()
    }

    /// The first tick strictly after `t`.
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Ticks are whole seconds; croner keeps the fraction of its input.
        self.cron
            .find_next_occurrence(&whole_seconds(t).with_timezone(&self.tz), false)
            .ok()
            .map(|d| whole_seconds(d.with_timezone(&Utc)))
    }

    /// The last tick at or before `t` (or strictly before, if not `inclusive`).
    fn last_before(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        let floor = whole_seconds(t);
        // Strictly before `t` with a fraction: `floor` itself counts.
        let inclusive = inclusive || floor < t;
        self.cron
            .find_previous_occurrence(&floor.with_timezone(&self.tz), inclusive)
            .ok()
            .map(|d| whole_seconds(d.with_timezone(&Utc)))
    }

    /// The ticks to fire among those in `(handled, latest]`, oldest first,
    /// given `now` and the schedule's policy for missed ticks. Walks back
    /// from `latest` only as far as it must (the on-time ticks, and as many
    /// missed ones as the policy keeps), so a long outage costs nothing.
    pub(crate) fn due(
        &self,
        handled: DateTime<Utc>,
        latest: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let grace = chrono::Duration::from_std(self.periodic.grace_period())
            .unwrap_or(chrono::Duration::MAX);
        let keep_missed = match self.periodic.missed_runs() {
            MissedRuns::Skip => 0,
            MissedRuns::RunOnce => 1,
            MissedRuns::CatchUp(n) => n as usize,
            _ => 1,
        };
        let mut on_time = Vec::new();
        let mut missed = Vec::new();
        let mut t = Some(latest);
        while let Some(tick) = t.filter(|t| *t > handled) {
            if now - tick <= grace {
                on_time.push(tick);
            } else if missed.len() < keep_missed {
                missed.push(tick);
            } else {
                break;
            }
            t = self.last_before(tick, false);
        }
        // "Run once": the missed ticks fold into an on-time one if there is one.
        if self.periodic.missed_runs() == MissedRuns::RunOnce && !on_time.is_empty() {
            missed.clear();
        }
        let mut ticks: Vec<_> = missed.into_iter().chain(on_time).collect();
        ticks.sort_unstable();
        ticks
    }

    /// The job for `tick`: the template, due now, unique on the schedule and
    /// the tick in every status, with both in its metadata.
    pub(crate) fn job_for(&self, tick: DateTime<Utc>) -> Result<NewJob> {
        let mut job = self.periodic.job_template()?.clone();
        job.id = JobId::new();
        job.run_at = None;
        job.delay = None;
        let key = tick_key(self.name(), tick);
        Ok(job
            .unique(Uniqueness::new(key).states(UniqueStates::ALL))
            .metadata("periodic", self.name())
            .metadata("tick", tick.to_rfc3339()))
    }

    fn state(&self, tick: DateTime<Utc>, job: JobId) -> ScheduleState {
        let mut s = ScheduleState::new(
            self.name(),
            self.periodic.cron_expr(),
            self.periodic.timezone_name(),
        );
        s.last_tick = Some(tick);
        s.last_job = Some(job);
        s.next_tick = self.next_after(tick);
        s
    }

    /// Whether `stored` describes this schedule (not an older version of it).
    fn same_as(&self, stored: &ScheduleState) -> bool {
        stored.cron == self.periodic.cron_expr() && stored.timezone == self.periodic.timezone_name()
    }
}

/// `t` without its fraction of a second.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The unique key of `schedule`'s job for `tick`.
pub fn tick_key(schedule: &str, tick: DateTime<Utc>) -> String {
    format!("cron:{schedule}:{}", tick.timestamp())
}

/// How late a tick must be before a manager that is not the maintainer
/// fires it: time for a new maintainer to be elected (the old one's lease
/// running out, plus a renewal round) and fire it first.
pub(crate) fn takeover(lease: Duration) -> Duration {
    lease + lease / 2 + Duration::from_secs(1)
}

/// Fires the manager's schedules until `stop`.
pub(crate) async fn periodic_loop(shared: Arc<Shared>, stop: StopToken) {
    let schedules = &shared.schedules;
    if schedules.is_empty() {
        return;
    }
    let mut handled: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut was_leader = false;
    let takeover =
        chrono::Duration::from_std(takeover(shared.cfg.lease)).unwrap_or(chrono::Duration::MAX);
    loop {
        let leader = shared.is_leader();
        // Where each schedule stands: read once at start, and again on
        // becoming the maintainer (another may have fired ticks since).
        if handled.is_empty() || leader && !was_leader {
            match load(&shared, schedules, leader, &mut handled).await {
                Ok(()) => shared.health.ok("periodic"),
                Err(e) => {
                    shared.health.failed("periodic", &e);
                    warn!(error = %e, "could not read the schedules' state; will try again");
                    if pause(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            }
        }
        was_leader = leader;
        let now = crate::clock::now();
        let horizon = if leader { now } else { now - takeover };
        let mut stored: Option<HashMap<String, ScheduleState>> = None;
        let mut next_wake = Duration::from_secs(1);
        for s in schedules.iter() {
            let Some(done) = handled.get(s.name()).copied() else {
                continue;
            };
            if let Some(latest) = s.last_before(horizon, true).filter(|t| *t > done) {
                let mut ticks = s.due(done, latest, now);
                if !leader && !ticks.is_empty() {
                    // Standing by: fire only what no manager has.
                    if stored.is_none() {
                        stored = match read_states(&shared).await {
                            Ok(states) => Some(states),
                            Err(e) => {
                                warn!(error = %e, "could not read the schedules' state; will try again");
                                continue;
                            }
                        };
                    }
                    if let Some(last) = stored
                        .as_ref()
                        .and_then(|m| m.get(s.name()))
                        .and_then(|st| st.last_tick)
                    {
                        ticks.retain(|t| *t > last);
                    }
                }
                match fire(&shared, s, &ticks).await {
                    Ok(()) => {
                        handled.insert(s.name().to_owned(), latest);
                    }
                    Err(e) => {
                        shared.health.failed("periodic", &e);
                        warn!(schedule = s.name(), error = %e, "could not enqueue a periodic job; will try again");
                        continue;
                    }
                }
            }
            let done = handled.get(s.name()).copied().unwrap_or(now);
            if let Some(next) = s.next_after(done.max(horizon)) {
                let wait = (next - horizon).to_std().unwrap_or_default();
                next_wake = next_wake.min(wait);
            }
        }
        if pause(&stop, next_wake.max(Duration::from_millis(10))).await {
            return;
        }
    }
}

/// Sleeps `d` unless stopped first (then `true`).
async fn pause(stop: &StopToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn read_states(shared: &Shared) -> Result<HashMap<String, ScheduleState>> {
    let states = shared
        .call("schedules", shared.backend().schedules())
        .await?;
    Ok(states.into_iter().map(|s| (s.name.clone(), s)).collect())
}

/// Sets where each schedule resumes from the stored state; as the
/// maintainer, writes a state for schedules never seen (or changed).
async fn load(
    shared: &Shared,
    schedules: &[Schedule],
    leader: bool,
    handled: &mut HashMap<String, DateTime<Utc>>,
) -> Result<()> {
    let stored = match read_states(shared).await {
        Ok(s) => s,
        // A backend that keeps no schedules: every manager starts afresh.
        Err(Error::Unsupported { .. }) => HashMap::new(),
        Err(e) => return Err(e),
    };
    let now = crate::clock::now();
    for s in schedules {
        let from = match stored.get(s.name()).filter(|st| s.same_as(st)) {
            Some(st) => st.last_tick.unwrap_or(st.updated_at).min(now),
            None => {
                if leader {
                    let mut fresh = ScheduleState::new(
                        s.name(),
                        s.periodic.cron_expr(),
                        s.periodic.timezone_name(),
                    );
                    fresh.next_tick = s.next_after(now);
                    match shared
                        .call("save schedule", shared.backend().save_schedule(&fresh))
                        .await
                    {
                        Ok(()) | Err(Error::Unsupported { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    info!(schedule = s.name(), cron = s.periodic.cron_expr(), timezone = s.periodic.timezone_name(), next = ?fresh.next_tick, "new periodic schedule");
                }
                now
            }
        };
        // Never move back: ticks this manager handled stay handled.
        let e = handled.entry(s.name().to_owned()).or_insert(from);
        *e = (*e).max(from);
    }
    Ok(())
}

/// Enqueues the jobs of `ticks`, oldest first, and records each one stored.
/// A job that can never be stored (its template is refused) is logged and
/// skipped; an unavailable backend stops here (the ticks are tried again).
async fn fire(shared: &Shared, s: &Schedule, ticks: &[DateTime<Utc>]) -> Result<()> {
    for &tick in ticks {
        let job = match s.job_for(tick) {
            Ok(job) => job,
            Err(e) => {
                error!(schedule = s.name(), error = %e, "periodic job refused; tick skipped");
                continue;
            }
        };
        let outcome = match shared.call("fire", shared.queue.enqueue_job(job)).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                error!(schedule = s.name(), %tick, error = %e, "periodic job refused; tick skipped");
                continue;
            }
        };
        match outcome {
            Enqueued::Inserted(id) => {
                Counters::bump(&shared.counters.fired, 1);
                info!(schedule = s.name(), %tick, job_id = %id, "periodic job enqueued");
                let state = s.state(tick, id);
                match shared
                    .call("save schedule", shared.backend().save_schedule(&state))
                    .await
                {
                    Ok(()) | Err(Error::Unsupported { .. }) => {}
                    // The job is stored; the state catches up at the next tick.
                    Err(e) => {
                        warn!(schedule = s.name(), error = %e, "could not save the schedule's state")
                    }
                }
            }
            other => {
                debug!(schedule = s.name(), %tick, job_id = %other.id(), "tick already fired");
            }
        }
    }
    shared.health.ok("periodic");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn schedule(expr: &str, tz: &str, missed: MissedRuns) -> Schedule {
        Schedule::compile(
            Periodic::cron(expr)
                .timezone(tz)
                .missed(missed)
                .job(NewJob::new("t", json!({}))),
        )
        .unwrap()
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, h, m, s).unwrap()
    }

    #[test]
    fn bad_expressions_and_zones_are_clear_errors() {
        let err = |expr: &str, tz: &str| {
            Schedule::compile(
                Periodic::cron(expr)
                    .timezone(tz)
                    .job(NewJob::new("t", json!({}))),
            )
            .unwrap_err()
            .to_string()
        };
        let e = err("61 * * * *", "UTC");
        assert!(e.contains("invalid cron expression \"61 * * * *\""), "{e}");
        let e = err("* * *", "UTC");
        assert!(e.contains("five fields"), "{e}");
        let e = err("0 3 * * *", "Europe/Berlinn");
        assert!(e.contains("unknown time zone \"Europe/Berlinn\""), "{e}");
        let e = err("0 0 30 2 *", "UTC");
        assert!(e.contains("never fires"), "{e}");
    }

    #[test]
    fn on_time_ticks_fire_and_missed_ones_follow_the_policy() {
        let every_minute = |m| schedule("* * * * *", "UTC", m);
        // Handled up to 10:00; now 10:05:30 → 10:05 on time (30 s late),
        // 10:01..10:04 missed (more than a minute late).
        let (done, now) = (at(10, 0, 0), at(10, 5, 30));
        let latest = at(10, 5, 0);
        let s = every_minute(MissedRuns::Skip);
        assert_eq!(s.due(done, latest, now), vec![at(10, 5, 0)]);
        let s = every_minute(MissedRuns::RunOnce);
        assert_eq!(s.due(done, latest, now), vec![at(10, 5, 0)]);
        let s = every_minute(MissedRuns::CatchUp(2));
        assert_eq!(
            s.due(done, latest, now),
            vec![at(10, 3, 0), at(10, 4, 0), at(10, 5, 0)]
        );
        let s = every_minute(MissedRuns::CatchUp(100));
        assert_eq!(s.due(done, latest, now).len(), 5);

        // A daily tick missed by hours: run once fires it, skip does not.
        let daily = |m| schedule("0 3 * * *", "UTC", m);
        let (done, now, latest) = (at(2, 0, 0), at(9, 0, 0), at(3, 0, 0));
        assert_eq!(
            daily(MissedRuns::RunOnce).due(done, latest, now),
            vec![latest]
        );
        assert!(daily(MissedRuns::Skip).due(done, latest, now).is_empty());
    }

    #[test]
    fn a_long_outage_costs_only_the_ticks_kept() {
        // Every second, down for a year: catch-up 3 walks back 3 ticks.
        let s = schedule("* * * * * *", "UTC", MissedRuns::CatchUp(3));
        let now = at(10, 0, 0);
        let done = now - chrono::Duration::days(365);
        let t = std::time::Instant::now();
        let due = s.due(done, now - chrono::Duration::seconds(120), now);
        assert_eq!(due.len(), 3);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn ticks_follow_the_time_zone_across_daylight_saving() {
        // Europe/Berlin springs forward on 2026-03-29 at 02:00 → 03:00.
        let s = schedule("30 2 * * *", "Europe/Berlin", MissedRuns::Skip);
        let before = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        let t1 = s.next_after(before).unwrap();
        assert_eq!(
            t1,
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(),
            "02:30 does not exist: fires at 03:00 CEST"
        );
        let t2 = s.next_after(t1).unwrap();
        assert_eq!(
            t2,
            Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap(),
            "then 02:30 CEST"
        );
        // Falls back on 2026-10-25 at 03:00 → 02:00: 02:30 exists twice, fires once.
        let before = Utc.with_ymd_and_hms(2026, 10, 24, 12, 0, 0).unwrap();
        let t1 = s.next_after(before).unwrap();
        assert_eq!(t1, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
        let t2 = s.next_after(t1).unwrap();
        assert_eq!(t2, Utc.with_ymd_and_hms(2026, 10, 26, 1, 30, 0).unwrap());
    }

    #[test]
    fn ticks_are_whole_seconds_whatever_the_clock_says() {
        let s = schedule("0 * * * *", "UTC", MissedRuns::Skip);
        let now = at(10, 20, 0) + chrono::Duration::milliseconds(552);
        assert_eq!(s.last_before(now, true), Some(at(10, 0, 0)));
        assert_eq!(s.next_after(now), Some(at(11, 0, 0)));
        let s = schedule("* * * * * *", "UTC", MissedRuns::Skip);
        let t = at(10, 0, 5) + chrono::Duration::milliseconds(300);
        assert_eq!(
            s.last_before(t, false),
            Some(at(10, 0, 5)),
            "10:00:05 is before 10:00:05.3"
        );
        assert_eq!(s.last_before(at(10, 0, 5), false), Some(at(10, 0, 4)));
    }

    #[test]
    fn a_tick_key_names_the_schedule_and_the_instant() {
        let s = schedule("0 3 * * *", "UTC", MissedRuns::Skip);
        let job = s.job_for(at(3, 0, 0)).unwrap();
        let u = job.unique.unwrap();
        assert_eq!(u.key, format!("cron:t:{}", at(3, 0, 0).timestamp()));
        assert_eq!(u.states, UniqueStates::ALL);
        assert_eq!(job.metadata["periodic"], json!("t"));
    }
}
