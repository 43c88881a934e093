//! Cluster properties: several managers on one backend — in this process,
//! each with connections of its own, and in several processes — on every
//! backend. A periodic schedule fires each tick once; one maintainer at a
//! time, and another when it dies (a process killed with SIGKILL); a paused
//! queue stops every manager; a cancellation reaches the worker running the
//! job; retention prunes on the maintainer; unique keys, queue and key
//! limits, rate limits, sequences, pauses and cancellations hold across
//! processes.
//!
//! Each property is one test per backend (`memory::…`, `sqlite::…`,
//! `postgres::…`, `redis::…`); the PostgreSQL and Redis ones need
//! `JOBS_TEST_POSTGRES_URL` / `JOBS_TEST_REDIS_URL` (set in CI). The child
//! processes are this test binary, re-run with `JOBS_CLUSTER_CHILD` set.

#[path = "cluster/child.rs"]
mod child;
#[path = "cluster/target.rs"]
mod target;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs::{
    CancelRequest, Job, JobContext, JobError, JobFilter, JobHandler, JobResult, JobStatus, NewJob,
    Periodic, Queue, Retention, WorkerManager,
};
use serde_json::json;
use target::Target;

/// Completes at once.
struct Noop(&'static str);

impl JobHandler for Noop {
    fn job_type(&self) -> &str {
        self.0
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

/// Runs until cancelled, counting its starts.
struct Hold(Arc<AtomicU32>);

impl JobHandler for Hold {
    fn job_type(&self) -> &str {
        "cluster.hold"
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let ctx = JobContext::current().expect("run by a manager");
        ctx.cancelled().await;
        Err(JobError::msg(format!(
            "stopped: {:?}",
            ctx.cancellation().reason()
        )))
    }
}

/// A manager for cluster tests: short leases, so hand-overs take a second.
fn manager(queue: Queue, id: &str) -> jobs::WorkerManagerBuilder {
    WorkerManager::builder(queue)
        .auto_register(false)
        .worker_id(id)
        .concurrency(4)
        .lease_duration(Duration::from_millis(1000))
        .heartbeat_interval(Duration::from_millis(250))
        .poll_interval(Duration::from_millis(100))
        .reap_interval(Duration::from_millis(200))
        .retention(Retention::keep_all())
}

/// Every second, the job `cluster.tick`.
pub fn every_second() -> Periodic {
    Periodic::cron("* * * * * *")
        .name("every-second")
        .job(NewJob::new("cluster.tick", json!({})))
}

async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tick jobs, counted per tick.
pub async fn ticks(queue: &Queue) -> BTreeMap<String, usize> {
    let jobs = queue
        .list(&JobFilter::default().job_type("cluster.tick").limit(10_000))
        .await
        .unwrap();
    let mut per_tick = BTreeMap::new();
    for job in jobs {
        let tick = job.metadata["tick"].as_str().expect("tick").to_owned();
        *per_tick.entry(tick).or_insert(0) += 1;
    }
    per_tick
}

/// Each tick once, and no tick skipped between the first and the last.
pub fn assert_once_each(per_tick: &BTreeMap<String, usize>, at_least: usize) {
    assert!(
        per_tick.len() >= at_least,
        "only {} ticks fired: {per_tick:?}",
        per_tick.len()
    );
    for (tick, n) in per_tick {
        assert_eq!(*n, 1, "tick {tick} fired {n} times: {per_tick:?}");
    }
    let secs: Vec<i64> = per_tick
        .keys()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp())
        .collect();
    for w in secs.windows(2) {
        assert_eq!(w[1] - w[0], 1, "a tick was skipped: {per_tick:?}");
    }
}

async fn cron_fires_each_tick_once(target: Target, managers: usize) {
    let mut ms = Vec::new();
    for i in 0..managers {
        let m = manager(target.queue().await, &format!("cron-{i}"))
            .handler(Noop("cluster.tick"))
            .periodic(every_second())
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(m);
    }
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for m in &ms {
        m.stop().await.unwrap();
    }
    let queue = target.queue().await;
    let per_tick = ticks(&queue).await;
    assert_once_each(&per_tick, 3);
    let fired: u64 = ms.iter().map(|m| m.stats().fired).sum();
    assert_eq!(
        fired as usize,
        per_tick.len(),
        "fired counts the jobs stored"
    );
    let states = queue.schedules().await.unwrap();
    let state = states.iter().find(|s| s.name == "every-second").unwrap();
    assert_eq!(
        state.last_tick.map(|t| t.to_rfc3339()),
        per_tick.keys().last().cloned(),
        "the state names the last tick"
    );
    assert!(state.next_tick > state.last_tick);
}

async fn one_maintainer_and_a_new_one_when_it_dies(target: Target) {
    let mut ms = Vec::new();
    for i in 0..3 {
        let m = manager(target.queue().await, &format!("lead-{i}"))
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(Some(m));
    }
    let leaders = |ms: &Vec<Option<WorkerManager>>| {
        ms.iter()
            .flatten()
            .filter(|m| m.is_maintainer())
            .map(|m| m.worker_id().to_owned())
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(5), "a maintainer", || {
        let n = leaders(&ms).len();
        async move { n == 1 }
    })
    .await;
    // Stable: one at a time.
    for _ in 0..40 {
        assert!(
            leaders(&ms).len() <= 1,
            "two maintainers: {:?}",
            leaders(&ms)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let first = leaders(&ms).remove(0);
    let queue = target.queue().await;
    let stored = queue.backend().leader("maintainer").await.unwrap();
    assert_eq!(stored.map(|l| l.holder), Some(first.clone()));
    // It dies without a word: dropped while running, its lease left to lapse.
    let at = ms
        .iter()
        .position(|m| m.as_ref().is_some_and(|m| m.worker_id() == first))
        .unwrap();
    drop(ms[at].take());
    let died = Instant::now();
    wait_until(Duration::from_secs(6), "another maintainer", || {
        let l = leaders(&ms);
        async move { l.len() == 1 }
    })
    .await;
    let second = leaders(&ms).remove(0);
    assert_ne!(second, first);
    eprintln!(
        "{}: maintainer handed over {:?} after it died",
        target.name,
        died.elapsed()
    );
    for m in ms.iter().flatten() {
        m.stop().await.unwrap();
    }
}

async fn pausing_a_queue_stops_every_manager(target: Target) {
    let queue = target.queue().await;
    queue.pause("default").await.unwrap();
    let mut ms = Vec::new();
    for i in 0..3 {
        let m = manager(target.queue().await, &format!("pause-{i}"))
            .handler(Noop("cluster.work"))
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(m);
    }
    let jobs: Vec<NewJob> = (0..20)
        .map(|i| NewJob::new("cluster.work", json!({ "i": i })))
        .collect();
    queue.enqueue_many(jobs).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let claimed: u64 = ms.iter().map(|m| m.stats().claimed).sum();
    assert_eq!(claimed, 0, "a paused queue's jobs wait");
    assert_eq!(queue.paused().await.unwrap(), vec!["default".to_owned()]);
    let resumed = Instant::now();
    queue.resume("default").await.unwrap();
    wait_until(
        Duration::from_secs(10),
        "the jobs to run once resumed",
        || {
            let ms = &ms;
            async move { ms.iter().map(|m| m.stats().completed).sum::<u64>() == 20 }
        },
    )
    .await;
    eprintln!(
        "{}: 20 jobs ran {:?} after resume",
        target.name,
        resumed.elapsed()
    );
    for m in &ms {
        m.stop().await.unwrap();
    }
}

async fn a_cancellation_reaches_the_worker_running_the_job(target: Target) {
    let starts = Arc::new(AtomicU32::new(0));
    let mut ms = Vec::new();
    for i in 0..2 {
        let m = manager(target.queue().await, &format!("cancel-{i}"))
            // Without the listener's signal the heartbeat carries the
            // request: a long one shows the signal arrives first.
            .heartbeat_interval(Duration::from_millis(900))
            .handler(Hold(starts.clone()))
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(m);
    }
    // Another handle — another process, as far as the managers know.
    let admin = target.queue().await;
    let id = admin
        .enqueue_raw("cluster.hold", json!({}))
        .await
        .unwrap()
        .id();
    wait_until(Duration::from_secs(10), "the job to start", || {
        let s = starts.clone();
        async move { s.load(Ordering::SeqCst) == 1 }
    })
    .await;
    let asked = Instant::now();
    let job = admin
        .cancel_with(id, &CancelRequest::by("ops").reason("wrong customer"))
        .await
        .unwrap();
    assert_eq!(
        job.status,
        JobStatus::Running,
        "a running job stops at its worker"
    );
    wait_until(Duration::from_secs(10), "the job to stop", || {
        let admin = admin.clone();
        async move { admin.get(id).await.unwrap().unwrap().status == JobStatus::Failed }
    })
    .await;
    let job = admin.get(id).await.unwrap().unwrap();
    eprintln!(
        "{}: cancelled job stopped {:?} after the request",
        target.name,
        asked.elapsed()
    );
    assert!(job.cancelled_at.is_some());
    assert_eq!(
        job.error_message.as_deref(),
        Some("cancelled by ops: wrong customer")
    );
    assert_eq!(starts.load(Ordering::SeqCst), 1, "never retried");
    let cancelled: u64 = ms.iter().map(|m| m.stats().cancelled).sum();
    assert_eq!(cancelled, 1);
    for m in &ms {
        m.stop().await.unwrap();
    }
}

async fn retention_prunes_on_the_maintainer(target: Target) {
    let queue = target.queue().await;
    let jobs: Vec<NewJob> = (0..30)
        .map(|i| NewJob::new("cluster.work", json!({ "i": i })))
        .chain((0..5).map(|i| NewJob::new("cluster.work", json!({ "i": i })).queue("audit")))
        .collect();
    queue.enqueue_many(jobs).await.unwrap();
    let mut ms = Vec::new();
    for i in 0..3 {
        let m = manager(target.queue().await, &format!("prune-{i}"))
            .queues(["default", "audit"])
            .handler(Noop("cluster.work"))
            .retention(
                Retention::default()
                    .completed(Some(Duration::ZERO))
                    .queue("audit", Retention::keep_all())
                    .interval(Duration::from_millis(100))
                    .batch(7),
            )
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(m);
    }
    wait_until(
        Duration::from_secs(15),
        "the finished jobs to be pruned",
        || {
            let ms = &ms;
            async move { ms.iter().map(|m| m.stats().pruned).sum::<u64>() >= 30 }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = queue.list(&JobFilter::default().limit(100)).await.unwrap();
    assert_eq!(left.len(), 5, "the audit queue keeps its jobs: {left:?}");
    assert!(left
        .iter()
        .all(|j| j.queue_name == "audit" && j.status == JobStatus::Completed));
    let pruned: Vec<u64> = ms.iter().map(|m| m.stats().pruned).collect();
    assert_eq!(pruned.iter().sum::<u64>(), 30, "{pruned:?}");
    for m in &ms {
        m.stop().await.unwrap();
    }
}

async fn missed_ticks_follow_each_policy(target: Target) {
    use chrono::{Timelike, Utc};
    let queue = target.queue().await;
    let top = |now: chrono::DateTime<Utc>| {
        now.with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap()
    };
    // Away from the top of the hour, so the latest tick is surely missed.
    if Utc::now() - top(Utc::now()) < chrono::Duration::seconds(3) {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let latest = top(Utc::now());
    let policies = [
        ("skip", jobs::MissedRuns::Skip, 0),
        ("once", jobs::MissedRuns::RunOnce, 1),
        ("catch-up", jobs::MissedRuns::CatchUp(3), 3),
    ];
    let mut builder = manager(target.queue().await, "returning").handler(Noop("cluster.tick"));
    for (name, missed, _) in policies {
        // The cluster last fired five hours ago, then went down.
        let mut state = jobs::ScheduleState::new(name, "0 * * * *", "UTC");
        state.last_tick = Some(latest - chrono::Duration::hours(5));
        queue.backend().save_schedule(&state).await.unwrap();
        builder = builder.periodic(
            Periodic::cron("0 * * * *")
                .name(name)
                .missed(missed)
                .grace(Duration::from_secs(1))
                .job(NewJob::new("cluster.tick", json!({}))),
        );
    }
    let m = builder.build().unwrap();
    m.start().await.unwrap();
    let count = |queue: Queue| async move {
        let jobs = queue
            .list(&JobFilter::default().job_type("cluster.tick").limit(100))
            .await
            .unwrap();
        let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for j in jobs {
            per.entry(j.metadata["periodic"].as_str().unwrap().to_owned())
                .or_default()
                .push(j.metadata["tick"].as_str().unwrap().to_owned());
        }
        per
    };
    wait_until(Duration::from_secs(10), "the missed ticks to fire", || {
        let q = queue.clone();
        async move { count(q).await.values().map(Vec::len).sum::<usize>() >= 4 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    m.stop().await.unwrap();
    let per = count(queue.clone()).await;
    let hour = |h: i64| (latest - chrono::Duration::hours(h)).to_rfc3339();
    assert!(!per.contains_key("skip"), "{per:?}");
    assert_eq!(
        per["once"],
        vec![hour(0)],
        "run once: the latest missed tick"
    );
    let mut caught = per["catch-up"].clone();
    caught.sort();
    assert_eq!(
        caught,
        vec![hour(2), hour(1), hour(0)],
        "catch up 3: the latest three"
    );
    let states = queue.schedules().await.unwrap();
    let once = states.iter().find(|s| s.name == "once").unwrap();
    assert_eq!(once.last_tick, Some(latest));
}

/// `Retention::drop_completed` for one queue: its jobs are gone as they
/// complete (on whichever manager), the other queue's stay COMPLETED, and
/// nothing was left for the maintainer to prune.
async fn completed_jobs_dropped_where_the_retention_says(target: Target) {
    let queue = target.queue().await;
    let jobs: Vec<NewJob> = (0..20)
        .map(|i| NewJob::new("cluster.work", json!({ "i": i })).queue("drop"))
        .chain((0..5).map(|i| NewJob::new("cluster.work", json!({ "i": i })).queue("keep")))
        .collect();
    queue.enqueue_many(jobs).await.unwrap();
    let mut ms = Vec::new();
    for i in 0..2 {
        let m = manager(target.queue().await, &format!("drop-{i}"))
            .queues(["drop", "keep"])
            .handler(Noop("cluster.work"))
            .retention(Retention::keep_all().queue("drop", Retention::keep_all().drop_completed()))
            .build()
            .unwrap();
        m.start().await.unwrap();
        ms.push(m);
    }
    wait_until(Duration::from_secs(15), "every job to complete", || {
        let ms = &ms;
        async move { ms.iter().map(|m| m.stats().completed).sum::<u64>() >= 25 }
    })
    .await;
    for m in &ms {
        m.stop().await.unwrap();
    }
    let left = queue.list(&JobFilter::default().limit(100)).await.unwrap();
    assert_eq!(
        left.len(),
        5,
        "only the kept queue's jobs are left: {left:?}"
    );
    assert!(left
        .iter()
        .all(|j| j.queue_name == "keep" && j.status == JobStatus::Completed));
    let pruned: u64 = ms.iter().map(|m| m.stats().pruned).sum();
    assert_eq!(
        pruned, 0,
        "nothing was pruned: the completions deleted them"
    );
    let counts = queue.counts().await.unwrap();
    let of = |q: &str| -> u64 {
        counts
            .iter()
            .filter(|c| c.queue == q)
            .map(|c| c.count)
            .sum()
    };
    assert_eq!((of("drop"), of("keep")), (0, 5), "{counts:?}");
}

macro_rules! cluster_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            fn target() -> Option<Target> {
                Target::$backend()
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cron_fires_each_tick_once_across_ten_managers() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::cron_fires_each_tick_once(t, 10).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_maintainer_and_a_new_one_when_it_dies() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::one_maintainer_and_a_new_one_when_it_dies(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pausing_a_queue_stops_every_manager() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::pausing_a_queue_stops_every_manager(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_cancellation_reaches_the_worker_running_the_job() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::a_cancellation_reaches_the_worker_running_the_job(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missed_ticks_follow_each_policy() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::missed_ticks_follow_each_policy(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retention_prunes_on_the_maintainer() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::retention_prunes_on_the_maintainer(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn completed_jobs_dropped_where_the_retention_says() {
                let Some(t) = target() else { return };
                let _one = child::one_at_a_time(t.name).await;
                super::completed_jobs_dropped_where_the_retention_says(t).await;
            }
        }
    };
}

/// The same properties with managers in separate processes.
#[allow(unused_macros)]
macro_rules! process_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cron_fires_each_tick_once_across_processes() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::cron_across_processes(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_killed_maintainer_process_is_replaced() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::killed_maintainer(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unique_keys_hold_across_processes() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::unique_across_processes(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn limits_and_pauses_hold_across_processes() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::limits_across_processes(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_queue_cap_alone_holds_across_processes() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::cap_alone_across_processes(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_cancellation_reaches_another_process() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::cancel_across_processes(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn batch_callbacks_run_once_across_processes() {
                let Some(t) = Target::$backend() else { return };
                let _one = child::one_at_a_time(t.name).await;
                child::batch_across_processes(t).await;
            }
        }
    };
}

cluster_suite!(memory);
#[cfg(feature = "sqlite")]
cluster_suite!(sqlite);
#[cfg(feature = "postgres")]
cluster_suite!(postgres);
#[cfg(feature = "redis")]
cluster_suite!(redis);

mod processes {
    #[allow(unused_imports)]
    use super::*;

    #[cfg(feature = "sqlite")]
    process_suite!(sqlite);
    #[cfg(feature = "postgres")]
    process_suite!(postgres);
    #[cfg(feature = "redis")]
    process_suite!(redis);
}

/// A child process: runs what `JOBS_CLUSTER_CHILD` says, then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_child() {
    child::run_child().await;
}
