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

use jobs::{Enqueued, JobFilter, NewJob, WorkerManager};
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

pub async fn cron_across_processes(t: Target) {
    // The schema, file or prefix exists before the children race to create it.
    let queue = t.queue().await;
    let procs: Vec<Proc> = (0..3)
        .map(|i| {
            Proc::spawn(&Config {
                url: url(&t),
                id: format!("cron-proc-{i}"),
                mode: Mode::Cron {
                    managers: 2,
                    run_ms: 5000,
                },
            })
        })
        .collect();
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
    let procs: Vec<Proc> = (0..4)
        .map(|i| {
            Proc::spawn(&Config {
                url: url(&t),
                id: format!("unique-proc-{i}"),
                mode: Mode::Unique { keys, rounds },
            })
        })
        .collect();
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
            m.start().await.unwrap();
            tokio::time::sleep(Duration::from_secs(120)).await;
            panic!("the parent should have killed this child long ago");
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
    }
}
