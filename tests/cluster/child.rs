//! The multi-process cluster tests: the parent starts copies of this test
//! binary (`cluster_child`, with `JOBS_CLUSTER_CHILD` saying what to do),
//! kills them or waits for them, and then counts what they did in the
//! shared backend.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code)
)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs::{
    Backoff, CancelRequest, Enqueued, Job, JobError, JobFilter, JobHandler, JobResult, JobStatus,
    NewJob, QueueLimit, WorkerManager,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::target::Target;

const ENV: &str = "JOBS_CLUSTER_CHILD";

#[derive(Debug, Serialize, Deserialize)]
enum Mode {
    /// Runs `managers` managers firing `every_second()` for `run_ms`.
    Cron { managers: usize, run_ms: u64 },
    /// Runs one manager until killed.
    Lead,
    /// Enqueues `keys` unique keys `rounds` times each.
    Unique { keys: usize, rounds: usize },
    /// Runs one manager over the limited queues until killed, logging every
    /// start and finish of `cluster.limited` to `log`.
    Limits { log: PathBuf },
    /// Runs one manager over `cap-only` alone until killed, logging as
    /// `Limits` does.
    Capped { log: PathBuf },
    /// Runs one manager with `cluster.hold` (stops when cancelled) until killed.
    Hold,
    /// Runs one manager with a batch's item and callback handlers until
    /// killed, logging every callback run to `log`.
    Batch { log: PathBuf },
}

#[derive(Debug, Serialize, Deserialize)]
struct Config {
    url: String,
    id: String,
    mode: Mode,
}

/// At most one test per backend at a time: ten managers with their own pools
/// are about all one PostgreSQL server's connection limit allows.
pub async fn one_at_a_time(backend: &str) -> tokio::sync::MutexGuard<'static, ()> {
    static LOCKS: std::sync::OnceLock<HashMap<&'static str, tokio::sync::Mutex<()>>> =
        std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(|| {
        ["memory", "sqlite", "postgres", "redis"]
            .into_iter()
            .map(|b| (b, tokio::sync::Mutex::new(())))
            .collect()
    });
    locks[backend].lock().await
}

/// A running child; killed when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cfg: &Config) -> Proc {
        let log = std::env::temp_dir().join(format!(
            "jobs-cluster-child-{}-{:x}.log",
            cfg.id,
            fastrand::u64(..)
        ));
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "cluster_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(ENV, serde_json::to_string(cfg).unwrap())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    /// Waits for it to end by itself, and checks it succeeded.
    fn wait_ok(mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                assert!(status.success(), "child failed ({status}):\n{log}");
                return;
            }
            assert!(
                start.elapsed() < limit,
                "child still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn url(t: &Target) -> String {
    t.url.clone().expect("a backend other processes can reach")
}

/// Starts `m` and runs it until the parent kills this child process.
async fn until_killed(m: WorkerManager) {
    m.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("the parent should have killed this child long ago");
}

/// `n` child processes on `t`, named `{prefix}-0`.., each in the mode `mode` makes.
fn spawn_procs(t: &Target, n: usize, prefix: &str, mode: impl Fn() -> Mode) -> Vec<Proc> {
    (0..n)
        .map(|i| {
            Proc::spawn(&Config {
                url: url(t),
                id: format!("{prefix}-{i}"),
                mode: mode(),
            })
        })
        .collect()
}

/// How many jobs of `queues` are COMPLETED.
async fn completed_in(queue: &jobs::Queue, queues: &[&str]) -> u64 {
    queue
        .counts()
        .await
        .unwrap()
        .iter()
        .filter(|c| queues.contains(&c.queue.as_str()) && c.status == JobStatus::Completed)
        .map(|c| c.count)
        .sum()
}

pub async fn cron_across_processes(t: Target) {
    // The schema, file or prefix exists before the children race to create it.
    let queue = t.queue().await;
    let procs = spawn_procs(&t, 3, "cron-proc", || Mode::Cron {
        managers: 2,
        run_ms: 5000,
    });
    tokio::task::spawn_blocking(move || {
        for p in procs {
            p.wait_ok(Duration::from_secs(60));
        }
    })
    .await
    .unwrap();
    let per_tick = crate::ticks(&queue).await;
    crate::assert_once_each(&per_tick, 3);
    eprintln!(
        "{}: 6 managers in 3 processes fired {} ticks, each once",
        t.name,
        per_tick.len()
    );
}

pub async fn killed_maintainer(t: Target) {
    let queue = t.queue().await;
    let mut procs: HashMap<String, Proc> = (0..3)
        .map(|i| {
            let id = format!("lead-proc-{i}");
            let p = Proc::spawn(&Config {
                url: url(&t),
                id: id.clone(),
                mode: Mode::Lead,
            });
            (id, p)
        })
        .collect();
    let holder = |queue: jobs::Queue| async move {
        queue
            .backend()
            .leader("maintainer")
            .await
            .unwrap()
            .map(|l| l.holder)
    };
    let start = Instant::now();
    let first = loop {
        if let Some(h) = holder(queue.clone()).await {
            break h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no maintainer was elected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut doomed = procs.remove(&first).expect("the maintainer is one of ours");
    doomed.kill();
    let killed = Instant::now();
    let second = loop {
        match holder(queue.clone()).await {
            Some(h) if h != first => break h,
            _ => {}
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no new maintainer after the old one was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(procs.contains_key(&second));
    eprintln!(
        "{}: maintainer {first} killed; {second} took over after {:?}",
        t.name,
        killed.elapsed()
    );
    // The dead worker's registry entry lapses; the others stay listed.
    let start = Instant::now();
    loop {
        let ids: HashSet<String> = queue
            .workers()
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.id)
            .collect();
        if !ids.contains(&first) && procs.keys().all(|p| ids.contains(p)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "registry: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn unique_across_processes(t: Target) {
    let queue = t.queue().await;
    let (keys, rounds) = (25, 8);
    let procs = spawn_procs(&t, 4, "unique-proc", || Mode::Unique { keys, rounds });
    tokio::task::spawn_blocking(move || {
        for p in procs {
            p.wait_ok(Duration::from_secs(60));
        }
    })
    .await
    .unwrap();
    let jobs = queue
        .list(&JobFilter::default().job_type("cluster.unique").limit(1000))
        .await
        .unwrap();
    let distinct: HashSet<_> = jobs.iter().map(|j| j.unique_key.clone()).collect();
    assert_eq!(
        jobs.len(),
        keys,
        "one job per key, from 4 processes × {rounds} rounds"
    );
    assert_eq!(distinct.len(), keys);
}

/// The queues of the limits test, each a limit of its own kind.
const LIMITED_QUEUES: [&str; 5] = [
    "lim-global",
    "lim-keyed",
    "lim-rated",
    "lim-seq",
    "lim-paused",
];
/// At most this many `lim-global` jobs run at once, across processes.
const GLOBAL: usize = 3;
/// `lim-rated`: at most RATE_MAX starts per RATE_PER.
const RATE_MAX: usize = 4;
const RATE_PER: Duration = Duration::from_millis(1000);

/// Logs each start and finish, with the wall clock in µs (one machine, one
/// clock), one `O_APPEND` line per event so processes never interleave.
struct Limited(PathBuf);

#[derive(Debug, Serialize, Deserialize)]
struct Event {
    group: String,
    i: u64,
    key: String,
    attempt: u32,
    start_us: i64,
    end_us: i64,
    ok: bool,
    pid: u32,
}

impl JobHandler for Limited {
    fn job_type(&self) -> &str {
        "cluster.limited"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let start_us = chrono::Utc::now().timestamp_micros();
        let p = &job.payload;
        tokio::time::sleep(Duration::from_millis(p["sleep_ms"].as_u64().unwrap_or(0))).await;
        // `fail_first`: the first attempt fails, so order must survive a retry.
        let ok = !(p["fail_first"].as_bool().unwrap_or(false) && job.attempt == 1);
        let event = Event {
            group: p["group"].as_str().unwrap_or_default().to_owned(),
            i: p["i"].as_u64().unwrap_or_default(),
            key: p["key"].as_str().unwrap_or_default().to_owned(),
            attempt: job.attempt,
            start_us,
            end_us: chrono::Utc::now().timestamp_micros(),
            ok,
            pid: std::process::id(),
        };
        let mut line = serde_json::to_string(&event).unwrap();
        line.push('\n');
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.0)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
        if ok {
            Ok(JobResult::success())
        } else {
            Err(JobError::msg("first attempts fail"))
        }
    }
}

/// The jobs of the limits test.
fn limited_jobs() -> Vec<NewJob> {
    let job = |group: &str, i: u64, sleep_ms: u64| {
        NewJob::new(
            "cluster.limited",
            json!({ "group": group, "i": i, "sleep_ms": sleep_ms }),
        )
        .queue(format!("lim-{group}"))
        .max_retries(3)
    };
    let mut jobs = Vec::new();
    for i in 0..24 {
        jobs.push(job("global", i, 60));
    }
    for i in 0..24 {
        let key = format!("acct-{}", i % 3);
        let mut j = job("keyed", i, 40).concurrency(key.clone(), 1);
        j.payload["key"] = json!(key);
        jobs.push(j);
    }
    for i in 0..12 {
        jobs.push(job("rated", i, 0).rate_limit("rated", RATE_MAX as u32, RATE_PER));
    }
    for i in 0..12 {
        let mut j = job("seq", i, 20).sequence("seq-1");
        j.payload["key"] = json!("seq-1");
        j.payload["fail_first"] = json!(i % 4 == 1);
        jobs.push(j);
    }
    for i in 0..6 {
        jobs.push(job("paused", i, 0));
    }
    jobs
}

fn read_events(log: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The most intervals of `events` open at one instant (a finish at the
/// same instant as a start counts as before it).
fn most_at_once<'a>(events: impl Iterator<Item = &'a Event>) -> usize {
    let mut edges: Vec<(i64, i32)> = events
        .flat_map(|e| [(e.start_us, 1), (e.end_us, -1)])
        .collect();
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// `cap-only`: at most this many running at once, across processes.
const CAP_ONLY: usize = 4;
/// Jobs enqueued in `cap-only`.
const CAP_ONLY_JOBS: u64 = 120;

/// Three worker processes (concurrency 8, at most 2 of this queue each:
/// 6 together) work one queue whose only limits are a cluster-wide running
/// cap of 4 and those shares: every claim takes the backend's capped claim
/// (on SQLite, the one statement that shares the group commit), whose count
/// of running jobs is the cluster's only if each claim sees every other
/// process's claims. The log of starts and finishes never has more than the
/// cap running at once.
pub async fn cap_alone_across_processes(t: Target) {
    let queue = t.queue().await;
    let jobs = (0..CAP_ONLY_JOBS)
        .map(|i| {
            NewJob::new(
                "cluster.limited",
                json!({ "group": "caponly", "i": i, "sleep_ms": 20 }),
            )
            .queue("cap-only")
        })
        .collect();
    let log = std::env::temp_dir().join(format!("jobs-cap-only-{:x}.log", fastrand::u64(..)));
    let procs = spawn_procs(&t, 3, "cap-proc", || Mode::Capped { log: log.clone() });
    // The jobs come once all three work the queue (each says so in the
    // worker registry), so the first to start cannot take them all.
    let started = |queue: jobs::Queue| async move {
        let workers = queue.workers().await.unwrap();
        workers
            .iter()
            .filter(|w| w.id.starts_with("cap-proc-"))
            .count()
            == 3
    };
    crate::wait_until(
        Duration::from_secs(30),
        "the three workers to start",
        || started(queue.clone()),
    )
    .await;
    queue.enqueue_many(jobs).await.unwrap();
    let finished = move |queue: jobs::Queue| async move {
        completed_in(&queue, &["cap-only"]).await == CAP_ONLY_JOBS
    };
    crate::wait_until(Duration::from_secs(60), "the capped jobs to finish", || {
        finished(queue.clone())
    })
    .await;
    drop(procs);
    let events = read_events(&log);
    let _ = std::fs::remove_file(&log);
    let mut ran: Vec<u64> = events.iter().map(|e| e.i).collect();
    ran.sort_unstable();
    ran.dedup();
    assert_eq!(ran.len() as u64, CAP_ONLY_JOBS, "every job ran");
    let most = most_at_once(events.iter());
    assert!(
        most <= CAP_ONLY,
        "{most} cap-only jobs ran at once (cap {CAP_ONLY})"
    );
    assert!(
        most >= 2,
        "the processes ran jobs side by side ({most} at most)"
    );
    let pids: HashSet<u32> = events.iter().map(|e| e.pid).collect();
    // Each process runs 2 at most, so filling the cap takes two of them;
    // which of the three win the slots is up to timing.
    assert!(pids.len() >= 2, "the jobs ran in {} processes", pids.len());
    eprintln!(
        "{}: cap-only at most {most} at once (cap {CAP_ONLY}) over {} processes",
        t.name,
        pids.len()
    );
}

/// Three worker processes share a global queue limit, per-key concurrency,
/// a rate limit and a sequence; a paused queue sees no claim from any of
/// them. Every start and finish is logged with its time, and the log is
/// checked against each limit.
pub async fn limits_across_processes(t: Target) {
    let queue = t.queue().await;
    queue.pause("lim-paused").await.unwrap();
    let jobs = limited_jobs();
    let total = jobs.len();
    queue.enqueue_many(jobs).await.unwrap();
    let log = std::env::temp_dir().join(format!("jobs-limits-{:x}.log", fastrand::u64(..)));
    let procs = spawn_procs(&t, 3, "limits-proc", || Mode::Limits { log: log.clone() });
    let done = total - 6; // all but the paused queue's
    let finished = move |queue: jobs::Queue| async move {
        completed_in(&queue, &LIMITED_QUEUES[..4]).await as usize == done
    };
    crate::wait_until(
        Duration::from_secs(60),
        "the limited jobs to finish",
        || finished(queue.clone()),
    )
    .await;
    let events = read_events(&log);
    fn group<'a>(events: &'a [Event], g: &'a str) -> impl Iterator<Item = &'a Event> {
        events.iter().filter(move |e| e.group == g)
    }
    let of = |g: &'static str| group(&events, g);

    // A paused queue: nothing claimed by any process.
    let paused = queue
        .list(&JobFilter::default().queue("lim-paused").limit(100))
        .await
        .unwrap();
    assert_eq!(paused.len(), 6);
    assert!(
        paused
            .iter()
            .all(|j| j.status == JobStatus::Pending && j.attempt == 0),
        "a paused queue was claimed: {paused:?}"
    );
    assert_eq!(of("paused").count(), 0);

    // Global: never more than GLOBAL running at once, over all processes.
    let global = most_at_once(of("global"));
    assert!(global <= GLOBAL, "{global} lim-global jobs ran at once");
    let pids: HashSet<u32> = of("global").map(|e| e.pid).collect();

    // Per key: never two of one key at once; keys ran side by side.
    for k in 0..3 {
        let key = format!("acct-{k}");
        let n = most_at_once(of("keyed").filter(|e| e.key == key));
        assert!(n <= 1, "{n} jobs of {key} ran at once");
    }
    let keyed_overlap = most_at_once(of("keyed"));

    // Rate: the stored start times (the backend's clock at claim) never put
    // more than RATE_MAX starts in one window of RATE_PER (less 50 ms for
    // the gap between a claim's clock reading and the one it stores).
    let rated = queue
        .list(&JobFilter::default().queue("lim-rated").limit(100))
        .await
        .unwrap();
    let mut starts: Vec<i64> = rated
        .iter()
        .map(|j| j.started_at.expect("started").timestamp_micros())
        .collect();
    starts.sort();
    let window = (RATE_PER - Duration::from_millis(50)).as_micros() as i64;
    for (a, s) in starts.iter().enumerate() {
        let within = starts[a..].iter().take_while(|x| **x - s < window).count();
        assert!(
            within <= RATE_MAX,
            "{within} lim-rated starts within {window} µs: {starts:?}"
        );
    }
    let rated_span = (starts.last().unwrap() - starts[0]) as f64 / 1e6;

    // Sequence: one at a time, and the successes in enqueue order although
    // some first attempts failed and were retried.
    assert!(
        most_at_once(of("seq")) <= 1,
        "two jobs of a sequence ran at once"
    );
    let mut seq: Vec<&Event> = of("seq").collect();
    seq.sort_by_key(|e| e.start_us);
    let order: Vec<u64> = seq.iter().filter(|e| e.ok).map(|e| e.i).collect();
    assert_eq!(
        order,
        (0..12).collect::<Vec<_>>(),
        "sequence order: {seq:?}"
    );
    assert!(seq.iter().any(|e| !e.ok), "some first attempts failed");
    for w in seq.windows(2) {
        if !w[0].ok {
            assert_eq!(
                w[1].i, w[0].i,
                "a failed job is retried before the next one runs"
            );
        }
    }

    // Then resumed: every process takes the paused queue's jobs.
    queue.resume("lim-paused").await.unwrap();
    crate::wait_until(
        Duration::from_secs(30),
        "the resumed queue to drain",
        || {
            let queue = queue.clone();
            async move {
                queue
                    .list(&JobFilter::default().queue("lim-paused").limit(100))
                    .await
                    .unwrap()
                    .iter()
                    .all(|j| j.status == JobStatus::Completed)
            }
        },
    )
    .await;
    let all = queue
        .list(&JobFilter::default().job_type("cluster.limited").limit(1000))
        .await
        .unwrap();
    assert_eq!(all.len(), total);
    assert!(all.iter().all(|j| j.status == JobStatus::Completed));
    eprintln!(
        "{}: 3 processes; lim-global at most {global} at once (limit {GLOBAL}) on {} processes; \
         keyed at most 1 per key, {keyed_overlap} keys at once; 12 rated starts over {rated_span:.2} s \
         (limit {RATE_MAX}/{RATE_PER:?}); sequence of 12 in order through retries; paused queue untouched",
        t.name,
        pids.len()
    );
    drop(procs);
    let _ = std::fs::remove_file(&log);
}

/// A job running in another process is cancelled from here: its handler
/// stops, and the job ends FAILED with the cancellation mark.
pub async fn cancel_across_processes(t: Target) {
    let queue = t.queue().await;
    let procs = spawn_procs(&t, 2, "hold-proc", || Mode::Hold);
    let id = queue
        .enqueue_raw("cluster.hold", json!({}))
        .await
        .unwrap()
        .id();
    crate::wait_until(Duration::from_secs(30), "the job to start", || {
        let queue = queue.clone();
        async move { queue.get(id).await.unwrap().unwrap().status == JobStatus::Running }
    })
    .await;
    let asked = Instant::now();
    queue
        .cancel_with(id, &CancelRequest::by("ops").reason("across processes"))
        .await
        .unwrap();
    crate::wait_until(Duration::from_secs(10), "the cancelled job to stop", || {
        let queue = queue.clone();
        async move { queue.get(id).await.unwrap().unwrap().status == JobStatus::Failed }
    })
    .await;
    let job = queue.get(id).await.unwrap().unwrap();
    assert!(job.cancelled_at.is_some());
    assert_eq!(job.attempt, 1, "stopped, not retried");
    assert_eq!(
        job.error_message.as_deref(),
        Some("cancelled by ops: across processes")
    );
    eprintln!(
        "{}: a job running in another process stopped {:?} after its cancellation",
        t.name,
        asked.elapsed()
    );
    drop(procs);
}

/// A batch item: fails for good when its payload says so.
struct BatchItem;

impl JobHandler for BatchItem {
    fn job_type(&self) -> &str {
        "cluster.batch_item"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
        if job.payload["fail"].as_bool().unwrap_or(false) {
            return Err(JobError::permanent("declined"));
        }
        Ok(JobResult::success())
    }
}

macro_rules! batch_callback {
    ($name:ident, $job_type:literal) => {
        #[derive(Debug, Serialize, Deserialize)]
        pub struct $name;
        impl jobs::JobPayload for $name {
            const JOB_TYPE: &'static str = $job_type;
        }
    };
}
batch_callback!(BatchDone, "cluster.batch_done");
batch_callback!(BatchOk, "cluster.batch_ok");
batch_callback!(BatchFailed, "cluster.batch_failed");

/// A batch callback: appends `<job type> <pid> <completed> <failed>` to the log.
struct BatchCallback(&'static str, PathBuf);

impl JobHandler for BatchCallback {
    fn job_type(&self) -> &str {
        self.0
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        use std::io::Write;
        let ctx = jobs::JobContext::current().expect("run by a manager");
        let r = jobs::BatchResults::of(ctx.parents().expect("a batch callback has parents"));
        let line = format!(
            "{} {} {} {}\n",
            self.0,
            std::process::id(),
            r.completed,
            r.failed
        );
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.1)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| JobError::msg(e.to_string()))?;
        Ok(JobResult::success())
    }
}

/// A batch of 60 jobs (6 failing) and its three callbacks, worked by three
/// processes: `on_finished` and `on_failure` run exactly once each, with the
/// batch's counts, and `on_success` never.
pub async fn batch_across_processes(t: Target) {
    let queue = t.queue().await;
    let log = std::env::temp_dir().join(format!("jobs-cluster-batch-{:x}.log", fastrand::u64(..)));
    let procs = spawn_procs(&t, 3, "batch-proc", || Mode::Batch { log: log.clone() });
    let mut batch = jobs::Batch::new("cluster-batch");
    for i in 0..60 {
        batch.add_job(NewJob::new(
            "cluster.batch_item",
            json!({ "i": i, "fail": i % 10 == 7 }),
        ));
    }
    batch
        .on_finished(BatchDone)
        .on_success(BatchOk)
        .on_failure(BatchFailed);
    let handle = queue.enqueue_batch_with_callbacks(batch).await.unwrap();
    let status = handle.wait(Duration::from_secs(60)).await.unwrap();
    assert!(status.is_finished(), "{status:#?}");
    // Every callback that ran has written its line.
    drop(procs);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let lines: Vec<&str> = text.lines().collect();
    let of = |t: &str| lines.iter().filter(|l| l.starts_with(t)).count();
    assert_eq!(of("cluster.batch_done "), 1, "{text}");
    assert_eq!(of("cluster.batch_failed "), 1, "{text}");
    assert_eq!(of("cluster.batch_ok "), 0, "{text}");
    let done = lines
        .iter()
        .find(|l| l.starts_with("cluster.batch_done "))
        .unwrap();
    let fields: Vec<&str> = done.split(' ').collect();
    assert_eq!(&fields[2..], ["54", "6"], "{done}");
    let pids: HashSet<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    eprintln!(
        "{}: 60 batch jobs over 3 processes; callbacks ran once each, in {} process(es)",
        t.name,
        pids.len()
    );
    let counts = status.count(JobStatus::Completed);
    assert_eq!(
        counts,
        54 + 2,
        "54 jobs and 2 callbacks completed: {status:#?}"
    );
}

/// The child's side.
pub async fn run_child() {
    let Ok(cfg) = std::env::var(ENV) else {
        return; // only meaningful when started by a cluster test
    };
    let cfg: Config = serde_json::from_str(&cfg).unwrap();
    match cfg.mode {
        Mode::Cron { managers, run_ms } => {
            let mut ms = Vec::new();
            for i in 0..managers {
                let queue = jobs::connect(&cfg.url).await.unwrap();
                let m = crate::manager(queue, &format!("{}-{i}", cfg.id))
                    .handler(crate::Noop("cluster.tick"))
                    .periodic(crate::every_second())
                    .build()
                    .unwrap();
                m.start().await.unwrap();
                ms.push(m);
            }
            tokio::time::sleep(Duration::from_millis(run_ms)).await;
            for m in &ms {
                m.stop().await.unwrap();
            }
        }
        Mode::Lead => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let m: WorkerManager = crate::manager(queue, &cfg.id).build().unwrap();
            until_killed(m).await;
        }
        Mode::Unique { keys, rounds } => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let mut inserted = 0;
            for _ in 0..rounds {
                let batch: Vec<NewJob> = (0..keys)
                    .map(|k| {
                        NewJob::new("cluster.unique", json!({ "k": k }))
                            .unique(jobs::Uniqueness::new(format!("key-{k}")))
                    })
                    .collect();
                for r in queue.enqueue_many(batch).await.unwrap() {
                    if let Enqueued::Inserted(_) = r {
                        inserted += 1;
                    }
                }
            }
            eprintln!("{} inserted {inserted}", cfg.id);
        }
        Mode::Limits { log } => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let m = crate::manager(queue, &cfg.id)
                .concurrency(8)
                .queues(LIMITED_QUEUES)
                .queue_limit("lim-global", QueueLimit::new().global(GLOBAL as u32))
                .backoff(Backoff::fixed(Duration::from_millis(50)))
                .handler(Limited(log))
                .build()
                .unwrap();
            until_killed(m).await;
        }
        Mode::Capped { log } => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let m = crate::manager(queue, &cfg.id)
                .auto_register(true)
                .concurrency(8)
                // A manager whose jobs hold the cap claims again the moment
                // its outcomes are written; the others look every 10 ms.
                .limit_poll(Duration::from_millis(10))
                .queues(["cap-only"])
                // Each process may run 2 at most, three of them 6: the
                // cluster's cap is what holds them to 4.
                .queue_limit(
                    "cap-only",
                    QueueLimit::new().global(CAP_ONLY as u32).local(2),
                )
                .handler(Limited(log))
                .build()
                .unwrap();
            until_killed(m).await;
        }
        Mode::Batch { log } => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let m = crate::manager(queue, &cfg.id)
                .handler(BatchItem)
                .handler(BatchCallback("cluster.batch_done", log.clone()))
                .handler(BatchCallback("cluster.batch_ok", log.clone()))
                .handler(BatchCallback("cluster.batch_failed", log))
                .build()
                .unwrap();
            until_killed(m).await;
        }
        Mode::Hold => {
            let queue = jobs::connect(&cfg.url).await.unwrap();
            let m = crate::manager(queue, &cfg.id)
                // A long lease and heartbeat: the cancellation must come by
                // the listener's signal or the heartbeat's reply, not expiry.
                .lease_duration(Duration::from_secs(30))
                .heartbeat_interval(Duration::from_secs(1))
                .handler(crate::Hold(Default::default()))
                .build()
                .unwrap();
            until_killed(m).await;
        }
    }
}
