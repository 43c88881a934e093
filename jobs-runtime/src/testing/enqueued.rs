//! What was enqueued: typed assertions over a queue's jobs, or over only the
//! jobs one piece of code enqueued.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::Location;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::{BoxFuture, Job, JobFilter, JobId, JobPayload, Queue};
use serde_json::Value;

/// Every job of `P`'s job type the queue holds (whatever its status), as
/// typed payloads, in enqueue order.
///
/// ```
/// # use jobs::prelude::*;
/// # #[derive(Serialize, Deserialize, PartialEq, Debug)] struct Ping { n: u32 }
/// # #[job_handler("ping")] async fn ping(_: Ping) {}
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
/// let queue = jobs::connect("memory://").await?;
/// queue.enqueue(Ping { n: 1 }).await?;
/// assert_eq!(jobs::testing::enqueued::<Ping>(&queue).await, [Ping { n: 1 }]);
/// # Ok(()) }
/// ```
pub async fn enqueued<P: JobPayload>(queue: &Queue) -> Vec<P> {
    jobs_of::<P>(queue)
        .await
        .iter()
        .filter_map(|j| serde_json::from_value(j.payload.clone()).ok())
        .collect()
}

/// Asserts that the queue holds a job of `P`'s type (in any status) that
/// passes every check chained on: a predicate on the typed payload
/// (`.with(|p| ..)`), its queue, priority, retries, metadata, when it is due
/// (`.run_at_between(..)`, `.delayed_between(..)`), how many (`.times(n)`).
/// `.await` it; it panics listing the jobs of that type and why each does
/// not match, and returns the matching payloads.
///
/// ```
/// use std::time::Duration;
/// use jobs::prelude::*;
/// use jobs::testing::{assert_enqueued, refute_enqueued};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
/// #[job_handler("email.send", queue = "emails")]
/// async fn send_email(_: SendEmail) {}
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
/// let queue = jobs::connect("memory://").await?;
/// queue.enqueue(SendEmail { to: "ada@example.com".into() })
///     .priority(10)
///     .delay(Duration::from_secs(60))
///     .await?;
///
/// assert_enqueued::<SendEmail>(&queue).await;
/// let sent = assert_enqueued::<SendEmail>(&queue)
///     .with(|e| e.to == "ada@example.com")
///     .queue("emails")
///     .priority(10)
///     .delayed_between(Duration::from_secs(59), Duration::from_secs(61))
///     .times(1)
///     .await;
/// assert_eq!(sent[0].to, "ada@example.com");
/// refute_enqueued::<SendEmail>(&queue).with(|e| e.to.ends_with("@spam.example")).await;
/// # Ok(()) }
/// ```
#[track_caller]
pub fn assert_enqueued<P: JobPayload>(queue: &Queue) -> AssertEnqueued<'_, P> {
    AssertEnqueued::new(Source::Queue(queue), Expect::Some, Location::caller())
}

/// Asserts that the queue holds no job of `P`'s type passing the chained
/// checks (see [`assert_enqueued`]). `.await` it.
#[track_caller]
pub fn refute_enqueued<P: JobPayload>(queue: &Queue) -> AssertEnqueued<'_, P> {
    AssertEnqueued::new(Source::Queue(queue), Expect::None, Location::caller())
}

/// Runs `work` and returns its output with the jobs enqueued on `queue`
/// while it ran — only those (the scoped form of [`assert_enqueued`]: what
/// the queue held before does not count).
///
/// ```
/// use jobs::prelude::*;
/// use jobs::testing::capture;
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome { user: String }
/// #[job_handler("user.welcome")]
/// async fn welcome(_: Welcome) {}
///
/// async fn sign_up(queue: &Queue, user: &str) -> jobs::Result<()> {
///     queue.enqueue(Welcome { user: user.into() }).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
/// let queue = jobs::connect("memory://").await?;
/// sign_up(&queue, "ada").await?;
/// let (result, seen) = capture(&queue, sign_up(&queue, "grace")).await;
/// result?;
/// seen.assert_enqueued::<Welcome>().with(|w| w.user == "grace").times(1).await;
/// seen.refute_enqueued::<Welcome>().with(|w| w.user == "ada").await;
/// assert_eq!(seen.jobs().len(), 1);
/// # Ok(()) }
/// ```
pub async fn capture<F: Future>(queue: &Queue, work: F) -> (F::Output, Captured) {
    let before: HashSet<JobId> = all_jobs(queue).await.iter().map(|j| j.id).collect();
    let output = work.await;
    let jobs = all_jobs(queue)
        .await
        .into_iter()
        .filter(|j| !before.contains(&j.id))
        .collect();
    (output, Captured { jobs })
}

/// The jobs enqueued while a [`capture`]d piece of code ran.
#[derive(Debug, Clone)]
pub struct Captured {
    jobs: Vec<Job>,
}

impl Captured {
    /// Every job enqueued, in enqueue order (as the queue holds them now).
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// The payloads of type `P` enqueued.
    pub fn enqueued<P: JobPayload>(&self) -> Vec<P> {
        self.jobs
            .iter()
            .filter(|j| j.job_type == P::JOB_TYPE)
            .filter_map(|j| serde_json::from_value(j.payload.clone()).ok())
            .collect()
    }

    /// [`assert_enqueued`] over these jobs only.
    #[track_caller]
    pub fn assert_enqueued<P: JobPayload>(&self) -> AssertEnqueued<'_, P> {
        AssertEnqueued::new(Source::Jobs(&self.jobs), Expect::Some, Location::caller())
    }

    /// [`refute_enqueued`] over these jobs only.
    #[track_caller]
    pub fn refute_enqueued<P: JobPayload>(&self) -> AssertEnqueued<'_, P> {
        AssertEnqueued::new(Source::Jobs(&self.jobs), Expect::None, Location::caller())
    }
}

async fn all_jobs(queue: &Queue) -> Vec<Job> {
    queue
        .list_all(&JobFilter::default().limit(1000))
        .await
        .unwrap_or_else(|e| panic!("could not list the queue's jobs: {e}"))
}

async fn jobs_of<P: JobPayload>(queue: &Queue) -> Vec<Job> {
    queue
        .list_all(&JobFilter::default().job_type(P::JOB_TYPE).limit(1000))
        .await
        .unwrap_or_else(|e| panic!("could not list the `{}` jobs: {e}", P::JOB_TYPE))
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Queue(&'a Queue),
    Jobs(&'a [Job]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Some,
    None,
    Times(usize),
}

type Check<'a, P> = Box<dyn Fn(&Job, &P) -> bool + Send + Sync + 'a>;

/// An assertion on enqueued jobs; see [`assert_enqueued`]. `.await` it.
#[must_use = "an assertion checks nothing until it is `.await`ed"]
pub struct AssertEnqueued<'a, P> {
    source: Source<'a>,
    expect: Expect,
    checks: Vec<(String, Check<'a, P>)>,
    caller: &'static Location<'static>,
    _payload: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for AssertEnqueued<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertEnqueued")
            .field("expect", &self.expect)
            .field(
                "checks",
                &self.checks.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'a, P: JobPayload> AssertEnqueued<'a, P> {
    fn new(source: Source<'a>, expect: Expect, caller: &'static Location<'static>) -> Self {
        AssertEnqueued {
            source,
            expect,
            checks: Vec::new(),
            caller,
            _payload: PhantomData,
        }
    }

    fn check(
        mut self,
        what: impl Into<String>,
        f: impl Fn(&Job, &P) -> bool + Send + Sync + 'a,
    ) -> Self {
        self.checks.push((what.into(), Box::new(f)));
        self
    }

    /// The typed payload passes `predicate`.
    pub fn with(self, predicate: impl Fn(&P) -> bool + Send + Sync + 'a) -> Self {
        self.check("the payload passes `with(..)`", move |_, p| predicate(p))
    }

    /// The job went to `queue`.
    pub fn queue(self, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        self.check(format!("queue is {queue:?}"), move |j, _| {
            j.queue_name == queue
        })
    }

    /// The job has `priority`.
    pub fn priority(self, priority: i32) -> Self {
        self.check(format!("priority is {priority}"), move |j, _| {
            j.priority == priority
        })
    }

    /// The job may be retried `max_retries` times.
    pub fn max_retries(self, max_retries: u32) -> Self {
        self.check(format!("max_retries is {max_retries}"), move |j, _| {
            j.max_retries == max_retries
        })
    }

    /// The job carries `key` = `value` in its metadata.
    pub fn metadata(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.check(format!("metadata {key:?} is {value}"), move |j, _| {
            j.metadata.get(&key) == Some(&value)
        })
    }

    /// The job is due between `from` and `to` (inclusive; by the backend's
    /// clock — [`now`](super::now) for the memory backend).
    pub fn run_at_between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.check(format!("run_at is between {from} and {to}"), move |j, _| {
            j.run_at >= from && j.run_at <= to
        })
    }

    /// The job is due between `min` and `max` after it was enqueued (a
    /// `.delay(..)`, or a `run_at` that far ahead).
    pub fn delayed_between(self, min: Duration, max: Duration) -> Self {
        self.check(
            format!("delayed by {min:?} to {max:?}"),
            move |j, _| match (j.run_at - j.created_at).to_std() {
                Ok(d) => d >= min && d <= max,
                Err(_) => min.is_zero(),
            },
        )
    }

    /// Anything else about the job (status, attempts, ...).
    pub fn job(self, predicate: impl Fn(&Job) -> bool + Send + Sync + 'a) -> Self {
        self.check("the job passes `job(..)`", move |j, _| predicate(j))
    }

    /// Exactly `n` matching jobs (for `assert_enqueued`; `refute_enqueued`
    /// means none).
    pub fn times(mut self, n: usize) -> Self {
        if self.expect != Expect::None {
            self.expect = Expect::Times(n);
        }
        self
    }

    fn verdict(self, jobs: &[Job]) -> Vec<P> {
        let mut matched = Vec::new();
        let mut report = String::new();
        for job in jobs.iter().filter(|j| j.job_type == P::JOB_TYPE) {
            let payload: P = match serde_json::from_value(job.payload.clone()) {
                Ok(p) => p,
                Err(e) => {
                    let _ = writeln!(
                        report,
                        "  - {}: the payload is not a `{}`: {e}",
                        describe(job),
                        std::any::type_name::<P>()
                    );
                    continue;
                }
            };
            match self.checks.iter().find(|(_, check)| !check(job, &payload)) {
                None => {
                    let _ = writeln!(report, "  - {}: matches", describe(job));
                    matched.push(payload);
                }
                Some((what, _)) => {
                    let _ = writeln!(report, "  - {}: not so: {what}", describe(job));
                }
            }
        }
        let wanted = if self.checks.is_empty() {
            String::new()
        } else {
            let list: Vec<&str> = self.checks.iter().map(|(d, _)| d.as_str()).collect();
            format!(" where {}", list.join(", "))
        };
        if report.is_empty() {
            report.push_str("  (none)\n");
        }
        let (ok, expected) = match self.expect {
            Expect::Some => (!matched.is_empty(), "at least one".to_owned()),
            Expect::None => (matched.is_empty(), "no".to_owned()),
            Expect::Times(n) => (matched.len() == n, format!("exactly {n}")),
        };
        if !ok {
            let verb = if self.expect == Expect::None {
                "refute_enqueued"
            } else {
                "assert_enqueued"
            };
            panic!(
                "{verb}::<{}> at {}: expected {expected} `{}` job(s){wanted}, found {}; the `{}` jobs:\n{report}",
                std::any::type_name::<P>(),
                self.caller,
                P::JOB_TYPE,
                matched.len(),
                P::JOB_TYPE,
            );
        }
        matched
    }
}

fn describe(job: &Job) -> String {
    let delay = (job.run_at - job.created_at).num_milliseconds();
    format!(
        "job {} ({}) in queue {:?}, priority {}, max_retries {}, due {}, payload {}",
        job.id,
        job.status,
        job.queue_name,
        job.priority,
        job.max_retries,
        if delay > 0 {
            format!("{:?} after enqueue", Duration::from_millis(delay as u64))
        } else {
            "at enqueue".to_owned()
        },
        job.payload
    )
}

impl<'a, P: JobPayload> IntoFuture for AssertEnqueued<'a, P> {
    type Output = Vec<P>;
    type IntoFuture = BoxFuture<'a, Vec<P>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match self.source {
                Source::Jobs(jobs) => self.verdict(jobs),
                Source::Queue(queue) => {
                    let jobs = jobs_of::<P>(queue).await;
                    self.verdict(&jobs)
                }
            }
        })
    }
}
