//! The reliability suite: it does the bad thing for real, to throwaway
//! services it starts itself on free ports (its own `initdb` cluster, its own
//! `redis-server` with AOF `appendfsync always`, SQLite files in a temp dir),
//! never the shared ones — and then counts that nothing was lost.
//!
//! Each scenario runs several worker *processes* (this test binary, re-run
//! with `JOBS_CHAOS_WORKER` set; see `chaos/worker.rs`), each logging every
//! execution to an fsynced log of its own, while the orchestrator enqueues,
//! SIGKILLs workers, crashes and restarts the database, or cuts every worker
//! connection. Once every acknowledged job is finished it reads the logs and
//! prints one row per scenario (`chaos/report.rs`): jobs acknowledged at
//! enqueue, completed, lost, ran to success twice (explained by a kill or an
//! outage, or not), ran concurrently on two workers, ended FAILED or
//! DEAD_LETTER, and how long a killed worker's jobs took to come back.
//!
//! A scenario fails on any lost job, any job that ran on two workers at once,
//! any unexplained duplicate, or a job that never finished. CI runs the short
//! form; `JOBS_CHAOS=full` runs the long one (the README's table):
//!
//! ```sh
//! JOBS_CHAOS=full cargo test --all-features --release --test chaos -- --nocapture --test-threads 1
//! ```

#[path = "postgres_support/cluster.rs"]
mod cluster;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "chaos/report.rs"]
mod report;
#[path = "chaos/worker.rs"]
mod worker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::{JobId, JobStatus, NewJob, Queue};
use report::{Fault, Row};
use serde_json::json;

/// A worker process of the suite. Does nothing unless run by a scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_worker() {
    let Ok(cfg) = std::env::var(worker::ENV) else {
        return;
    };
    worker::run(serde_json::from_str(&cfg).expect("worker config")).await;
}

/// How big a run is.
#[derive(Debug, Clone, Copy)]
struct Size {
    jobs: usize,
    workers: usize,
    kills: usize,
    /// How long faults are injected (the producer enqueues meanwhile).
    fault_window: Duration,
}

fn size() -> Size {
    if std::env::var("JOBS_CHAOS").as_deref() == Ok("full") {
        Size {
            jobs: 20_000,
            workers: 4,
            kills: 30,
            fault_window: Duration::from_secs(40),
        }
    } else {
        Size {
            jobs: 800,
            workers: 3,
            kills: 10,
            fault_window: Duration::from_secs(8),
        }
    }
}

/// The service a scenario runs against.
enum Service {
    Postgres(cluster::Cluster),
    Redis(redis_server::RedisServer),
    Sqlite(PathBuf),
}

impl Service {
    fn url(&self) -> String {
        match self {
            Service::Postgres(c) => c.url(),
            Service::Redis(r) => r.url("chaos"),
            Service::Sqlite(dir) => format!("sqlite://{}", dir.join("jobs.db").display()),
        }
    }

    /// Crashes the database and brings it back: returns the outage.
    fn crash_and_restart(&mut self, down_for: Duration) -> Fault {
        let from = worker::now_us();
        match self {
            Service::Postgres(c) => {
                c.crash();
                std::thread::sleep(down_for);
                c.start();
            }
            Service::Redis(r) => {
                r.kill();
                std::thread::sleep(down_for);
                r.restart();
            }
            Service::Sqlite(_) => unreachable!("an embedded database does not crash on its own"),
        }
        Fault::Outage {
            from,
            to: worker::now_us(),
        }
    }
}

/// A scenario's SQLite database goes with it (about 20 MB of file and
/// log per scenario, which every run used to leave in the temp directory).
/// The other services' own drops stop and remove what they started.
impl Drop for Service {
    fn drop(&mut self) {
        if let Service::Sqlite(dir) = self {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// What goes wrong during a scenario.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    kill_workers: bool,
    crash_database: usize,
    cut_connections_every: Option<Duration>,
    poison: bool,
    synchronous_claims: bool,
}

struct Scenario {
    name: &'static str,
    faults: Faults,
}

/// The worker processes, restarted after each kill.
struct Workers {
    dir: PathBuf,
    cfg: worker::Config,
    children: Vec<Child>,
    spawned: usize,
}

impl Workers {
    fn spawn(&mut self) -> Child {
        self.spawned += 1;
        let mut cfg = self.cfg.clone();
        cfg.worker_id = format!("chaos-{}", self.spawned);
        cfg.log = self.dir.join(format!("worker-{}.log", self.spawned));
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "chaos_worker",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(worker::ENV, serde_json::to_string(&cfg).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a worker")
    }

    fn start(&mut self, n: usize) {
        for _ in 0..n {
            let child = self.spawn();
            self.children.push(child);
        }
    }

    /// SIGKILLs one worker at random and starts a new one in its place.
    fn kill_one(&mut self) -> Fault {
        let i = fastrand::usize(..self.children.len());
        let mut child = self.children.swap_remove(i);
        let pid = child.id();
        child.kill().ok();
        let at = worker::now_us();
        child.wait().ok();
        let fresh = self.spawn();
        self.children.push(fresh);
        Fault::Kill { pid, at }
    }

    /// SIGINT: a graceful stop; waits for every worker to exit.
    fn stop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        for mut child in self.children.drain(..) {
            let deadline = Instant::now() + Duration::from_secs(40);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    child.kill().ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.wait().ok();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jobs-chaos-{tag}-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Jobs of `n` good ones, with a few poisons among them if asked.
fn jobs(n: usize, poison: bool, start: usize) -> Vec<NewJob> {
    const POISONS: [&str; 4] = [
        "nul_result",
        "panic_early",
        "hung_on_failure",
        "blocks_thread",
    ];
    (0..n)
        .map(|i| {
            let k = start + i;
            let mut payload = json!({ "n": k, "ms": 5 + fastrand::u64(..40) });
            if poison && k % 200 == 7 {
                payload["poison"] = json!(POISONS[(k / 200) % POISONS.len()]);
            }
            NewJob::new(worker::JOB_TYPE, payload).max_retries(1)
        })
        .collect()
}

/// Enqueues in batches, retrying what fails; returns what was acknowledged.
async fn produce(queue: &Queue, jobs: Vec<NewJob>, acked: &Mutex<Vec<JobId>>) {
    for chunk in jobs.chunks(100) {
        loop {
            match queue.enqueue_many(chunk.to_vec()).await {
                Ok(ids) => {
                    acked
                        .lock()
                        .unwrap()
                        .extend(ids.into_iter().map(jobs::Enqueued::id));
                    break;
                }
                // A batch refused whole (or whose answer was lost) is sent again:
                // the ids are the producer's, so a stored one is a duplicate.
                Err(jobs::Error::DuplicateId(_)) => {
                    // Batches are all or none: an earlier try stored this one.
                    acked.lock().unwrap().extend(chunk.iter().map(|j| j.id));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

async fn run(scenario: Scenario, mut service: Service) -> Row {
    let size = size();
    let dir = temp_dir(scenario.name);
    let url = service.url();
    let lease = Duration::from_secs(2);
    let reap = Duration::from_millis(300);
    let cfg = worker::Config {
        url: url.clone(),
        log: PathBuf::new(),
        worker_id: String::new(),
        concurrency: 8,
        lease_ms: lease.as_millis() as u64,
        heartbeat_ms: 400,
        reap_ms: reap.as_millis() as u64,
        // Cuts off the poison whose `on_failure` hangs; longer than the poison
        // that blocks its thread (twice the lease).
        job_timeout_ms: 6_000,
        synchronous_claims: scenario.faults.synchronous_claims,
    };
    let queue = jobs::connect(&url).await.expect("connect");
    let acked = Arc::new(Mutex::new(Vec::new()));
    produce(&queue, jobs(size.jobs, scenario.faults.poison, 0), &acked).await;

    let mut workers = Workers {
        dir: dir.clone(),
        cfg,
        children: Vec::new(),
        spawned: 0,
    };
    workers.start(size.workers);

    // A producer keeps enqueueing while faults are injected.
    let producer = {
        let (queue, acked) = (queue.clone(), acked.clone());
        let (window, poison) = (size.fault_window, scenario.faults.poison);
        tokio::spawn(async move {
            let start = Instant::now();
            let mut n = size.jobs;
            while start.elapsed() < window {
                produce(&queue, jobs(20, poison, n), &acked).await;
                n += 20;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut faults = Vec::new();
    let started = Instant::now();
    let f = scenario.faults;
    let kill_every = size.fault_window / (size.kills as u32 + 1);
    let crash_every = size.fault_window / (f.crash_database as u32 + 1);
    let (mut next_kill, mut next_crash) = (kill_every, crash_every);
    let mut next_cut = f.cut_connections_every;
    let mut crashes = 0;
    while started.elapsed() < size.fault_window {
        let t = started.elapsed();
        if f.kill_workers && t >= next_kill {
            faults.push(workers.kill_one());
            next_kill += kill_every;
        }
        if crashes < f.crash_database && t >= next_crash {
            let outage = tokio::task::block_in_place(|| {
                service.crash_and_restart(Duration::from_millis(800))
            });
            faults.push(outage);
            crashes += 1;
            next_crash += crash_every;
        }
        if let Some(every) = f.cut_connections_every {
            if t >= next_cut.unwrap() {
                faults.push(cut_connections(&url).await);
                next_cut = Some(t + every);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.await.unwrap();

    let acked: Vec<JobId> = acked.lock().unwrap().clone();
    let mut row = Row {
        scenario: scenario.name.to_owned(),
        acknowledged: acked.len(),
        lease_plus_reap_ms: (lease + reap).as_millis() as u64,
        ..Row::default()
    };
    let statuses = wait_finished(&queue, &acked, Duration::from_secs(120)).await;
    let end_of_run = worker::now_us();
    tokio::task::block_in_place(|| workers.stop());
    for (id, status) in acked.iter().zip(&statuses) {
        match status {
            None => row.lost += 1,
            Some(JobStatus::Completed) => row.completed += 1,
            Some(JobStatus::Failed | JobStatus::DeadLetter) => row.failed_or_dead += 1,
            Some(other) => {
                row.stuck += 1;
                if row.stuck <= 3 {
                    row.notes.push(format!("job {id} is still {other}"));
                }
            }
        }
    }
    let poisons = if f.poison {
        check_poisons(&queue, &acked).await
    } else {
        Vec::new()
    };
    row.notes.extend(poisons);
    report::analyse(&mut row, &report::read_events(&dir), &faults, end_of_run);
    println!("{}", Row::header());
    println!("{row}");
    record_row(&row);
    drop(service);
    std::fs::remove_dir_all(&dir).ok();
    row
}

/// Each acked job's status once none is waiting or running any more, or at
/// the deadline (`None`: the job does not exist).
async fn wait_finished(queue: &Queue, ids: &[JobId], limit: Duration) -> Vec<Option<JobStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        let mut statuses = Vec::with_capacity(ids.len());
        let mut reachable = true;
        for id in ids {
            match queue.get(*id).await {
                Ok(job) => statuses.push(job.map(|j| j.status)),
                Err(_) => {
                    reachable = false;
                    break;
                }
            }
        }
        let done = reachable && statuses.iter().all(|s| s.is_none_or(|s| s.is_terminal()));
        if done || Instant::now() > deadline {
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Poison jobs must end as their poison says, having harmed no other job.
async fn check_poisons(queue: &Queue, ids: &[JobId]) -> Vec<String> {
    let mut problems = Vec::new();
    let want = |poison: &str| match poison {
        "panic_early" => JobStatus::DeadLetter,
        "hung_on_failure" => JobStatus::Failed,
        _ => JobStatus::Completed,
    };
    let mut seen = HashSet::new();
    for id in ids {
        let Ok(Some(job)) = queue.get(*id).await else {
            continue;
        };
        if let Some(poison) = job.payload["poison"].as_str() {
            seen.insert(poison.to_owned());
            if job.status != want(poison) {
                problems.push(format!(
                    "poison `{poison}` job {id} ended {} (want {}): {:?}",
                    job.status,
                    want(poison),
                    job.error_message
                ));
            }
        }
    }
    if seen.len() < 4 {
        problems.push(format!("only these poisons ran: {seen:?}"));
    }
    problems
}

/// Terminates every connection of the backends (`application_name = 'jobs'`).
async fn cut_connections(url: &str) -> Fault {
    use sqlx::Connection;
    let from = worker::now_us();
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'jobs' AND pid <> pg_backend_pid()",
        )
        .execute(&mut conn)
        .await;
    }
    Fault::Outage {
        from,
        to: worker::now_us(),
    }
}

/// Appends the row to `target/chaos-report.md`, for the README.
fn record_row(row: &Row) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/chaos-report.md");
    let new = !path.exists();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        use std::io::Write;
        if new {
            let _ = writeln!(f, "{}", Row::header());
        }
        let _ = writeln!(f, "{row}");
    }
}

fn assert_clean(row: &Row) {
    let problems = row.problems();
    assert!(
        problems.is_empty(),
        "{}:\n{}\n{}",
        row.scenario,
        row,
        problems.join("\n")
    );
}

fn postgres() -> Option<Service> {
    cluster::Cluster::init().map(Service::Postgres)
}

fn redis() -> Option<Service> {
    redis_server::RedisServer::start().map(Service::Redis)
}

fn sqlite() -> Service {
    Service::Sqlite(temp_dir("sqlite-db"))
}

macro_rules! scenario {
    ($name:ident, $service:expr, $faults:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if std::env::var_os(worker::ENV).is_some() {
                return;
            }
            let Some(service) = $service else {
                return;
            };
            let row = run(
                Scenario {
                    name: stringify!($name),
                    faults: $faults,
                },
                service,
            )
            .await;
            assert_clean(&row);
        }
    };
}

scenario!(
    postgres_workers_killed,
    postgres(),
    Faults {
        kill_workers: true,
        ..Faults::default()
    }
);
scenario!(
    redis_workers_killed,
    redis(),
    Faults {
        kill_workers: true,
        ..Faults::default()
    }
);
scenario!(
    sqlite_workers_killed,
    Some(sqlite()),
    Faults {
        kill_workers: true,
        ..Faults::default()
    }
);
scenario!(
    postgres_crashed_and_restarted,
    postgres(),
    Faults {
        crash_database: 2,
        synchronous_claims: true,
        ..Faults::default()
    }
);
scenario!(
    redis_crashed_and_restarted,
    redis(),
    Faults {
        crash_database: 2,
        ..Faults::default()
    }
);
scenario!(
    postgres_connections_cut,
    postgres(),
    Faults {
        cut_connections_every: Some(Duration::from_secs(2)),
        ..Faults::default()
    }
);
scenario!(
    poison_among_good_jobs,
    Some(sqlite()),
    Faults {
        poison: true,
        ..Faults::default()
    }
);
