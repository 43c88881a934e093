//! Periodic jobs: a job enqueued on a cron schedule, once per tick across
//! every manager sharing a backend.
//!
//! A [`Periodic`] only declares the schedule; the manager parses it at
//! `build()` (an invalid expression or time zone is an error there, or a
//! compile error with `#[job_handler(.., cron = "..")]`) and fires it. Each
//! tick's job carries the unique key `cron:<name>:<tick>`, held in every
//! status, so however many managers fire the same tick the backend stores
//! one job.

use crate::{Error, JobPayload, NewJob};

/// What a schedule does about ticks that passed while no manager ran it
/// (a deploy, an outage). A tick is *missed* when it is more than a minute
/// late (see [`Periodic::grace`]); later ticks are on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MissedRuns {
    /// Forget missed ticks; fire from the next one on.
    Skip,
    /// Fire once for all missed ticks (for the latest of them): a daily
    /// report missed during an outage runs once, late. The default.
    #[default]
    RunOnce,
    /// Fire each of the latest `n` missed ticks, oldest first (each its own
    /// job, carrying its tick); older ones are forgotten.
    CatchUp(u32),
}

impl std::fmt::Display for MissedRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MissedRuns::Skip => f.write_str("skip"),
            MissedRuns::RunOnce => f.write_str("run once"),
            MissedRuns::CatchUp(n) => write!(f, "catch up {n}"),
        }
    }
}

/// A job enqueued on a cron schedule.
///
/// ```
/// use jobs_core::{MissedRuns, NewJob, Periodic};
/// use serde_json::json;
///
/// let nightly = Periodic::cron("0 3 * * *")
///     .timezone("Europe/Berlin")
///     .missed(MissedRuns::Skip)
///     .job(NewJob::new("report.nightly", json!({})).queue("reports"));
/// assert_eq!(nightly.name(), "report.nightly");
/// ```
///
/// The expression has five fields (minute, hour, day of month, month, day of
/// week) or six with seconds first; `@daily`, `@hourly` and the other
/// nicknames work too. Ticks fall in the schedule's time zone (UTC unless
/// set, any IANA name): across a daylight-saving change a tick at a time
/// that does not exist (02:30 when clocks jump from 02:00 to 03:00) fires at
/// the first valid time after the gap, and one at a time that exists twice
/// fires once; interval schedules (`*/5 * * * *`) skip the gap and fire in
/// both passes of a repeated hour, as Vixie cron does.
#[derive(Debug, Clone)]
pub struct Periodic {
    name: Option<String>,
    cron: String,
    timezone: String,
    missed: MissedRuns,
    grace: std::time::Duration,
    /// The job to enqueue at each tick, or why none could be made (reported
    /// by `build()`).
    job: Result<NewJob, String>,
}

/// How late a tick may fire and still count as on time.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// A [`Periodic`] waiting for its job; see [`Periodic::cron`].
#[derive(Debug, Clone)]
#[must_use = "give the schedule its job with `.payload(..)` or `.job(..)`"]
pub struct PeriodicBuilder {
    name: Option<String>,
    cron: String,
    timezone: String,
    missed: MissedRuns,
    grace: std::time::Duration,
}

impl Periodic {
    /// A schedule on the cron expression `cron`, in UTC, that runs missed
    /// ticks once; give it its job with `.payload(..)` or `.job(..)`.
    pub fn cron(cron: impl Into<String>) -> PeriodicBuilder {
        PeriodicBuilder {
            name: None,
            cron: cron.into(),
            timezone: "UTC".to_owned(),
            missed: MissedRuns::default(),
            grace: DEFAULT_GRACE,
        }
    }

    /// The schedule's name: the one given, or its job's type. Managers
    /// sharing a backend fire a name once per tick, so two different
    /// schedules need two names.
    pub fn name(&self) -> &str {
        match (&self.name, &self.job) {
            (Some(n), _) => n,
            (None, Ok(job)) => &job.job_type,
            (None, Err(_)) => "?",
        }
    }

    /// The cron expression, as written.
    pub fn cron_expr(&self) -> &str {
        &self.cron
    }

    /// The time zone's name.
    pub fn timezone_name(&self) -> &str {
        &self.timezone
    }

    /// What happens to missed ticks.
    pub fn missed_runs(&self) -> MissedRuns {
        self.missed
    }

    /// How late a tick may fire and still count as on time.
    pub fn grace_period(&self) -> std::time::Duration {
        self.grace
    }

    /// The job each tick enqueues (its id, due time and unique key are set
    /// per tick), or why there is none.
    pub fn job_template(&self) -> Result<&NewJob, Error> {
        self.job.as_ref().map_err(|reason| {
            Error::InvalidJob(format!("periodic schedule `{}`: {reason}", self.name()))
        })
    }

    /// Renames the schedule.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The same schedule in time zone `tz` (an IANA name).
    pub fn with_timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    /// The same schedule with another policy for missed ticks.
    pub fn with_missed(mut self, missed: MissedRuns) -> Self {
        self.missed = missed;
        self
    }
}

impl PeriodicBuilder {
    /// Names the schedule (default: its job's type).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Ticks fall in this IANA time zone (`"Europe/Berlin"`); default UTC.
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    /// What happens to ticks missed while no manager ran.
    pub fn missed(mut self, missed: MissedRuns) -> Self {
        self.missed = missed;
        self
    }

    /// How late a tick may fire and still count as on time (default one
    /// minute); later, it is a missed tick.
    pub fn grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Each tick enqueues `payload` (a typed payload: its job type, queue and
    /// options).
    pub fn payload<P: JobPayload>(self, payload: P) -> Periodic {
        let job = crate::client::typed_job(&payload, &P::options()).map_err(|e| e.to_string());
        self.finish(job)
    }

    /// Each tick enqueues a copy of `job` (a fresh id each time; its
    /// `run_at`/`delay` are replaced by the tick).
    pub fn job(self, job: NewJob) -> Periodic {
        self.finish(Ok(job))
    }

    fn finish(self, job: Result<NewJob, String>) -> Periodic {
        let job = job.and_then(|job| {
            if job.unique.is_some() {
                Err("a periodic job cannot have its own unique key: each tick's job is unique on the schedule and the tick".to_owned())
            } else {
                Ok(job)
            }
        });
        Periodic {
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            missed: self.missed,
            grace: self.grace,
            job,
        }
    }
}
