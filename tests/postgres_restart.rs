//! Connection loss: a throwaway PostgreSQL cluster of the test's own (never the
//! shared one) is restarted while a WorkerManager drains jobs from it; every job
//! must end COMPLETED, none lost, and the backend and its listener must recover.
//!
//! Needs the PostgreSQL 15 server binaries (`initdb`, `pg_ctl`; set
//! `JOBS_TEST_PG_BIN` to their directory if not /usr/lib/postgresql/15/bin).
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user through `runuser`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{Job, JobError, JobHandler, JobId, JobQueue, JobResult, JobStatus, NewJob};
use jobs_runtime::backend::postgres::PostgresBackend;
use jobs_runtime::WorkerManager;
use serde_json::json;

/// A cluster in a temp dir, on a free port; stopped and deleted on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn bin_dir() -> Option<PathBuf> {
        let bin = std::env::var_os("JOBS_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        if bin.join("initdb").exists() && bin.join("pg_ctl").exists() {
            Some(bin)
        } else if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but no initdb/pg_ctl in {}: set JOBS_TEST_PG_BIN",
                bin.display()
            );
        } else {
            eprintln!(
                "skipped: no PostgreSQL server binaries in {} (set JOBS_TEST_PG_BIN)",
                bin.display()
            );
            None
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        out
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    fn init() -> Option<Cluster> {
        let bin = Self::bin_dir()?;
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("jobs-pg-restart-{:016x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to postgres", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run_ok(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run_ok(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "start"],
        );
    }

    fn stop(&self) {
        self.run_ok("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

/// Counts how often each job ran.
struct Counting {
    runs: Arc<Mutex<HashMap<JobId, u32>>>,
}

impl JobHandler for Counting {
    fn job_type(&self) -> &str {
        "restart.test"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self.runs.lock().unwrap().entry(job.id).or_default() += 1;
        Ok(JobResult::success())
    }
}

async fn count(backend: &PostgresBackend, status: JobStatus) -> Option<u64> {
    let counts = backend.counts().await.ok()?;
    Some(
        counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing() {
    let Some(cluster) = Cluster::init() else {
        return;
    };
    let backend = PostgresBackend::builder(cluster.url())
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect to the throwaway cluster");

    const N: usize = 2000;
    let jobs: Vec<NewJob> = (0..N)
        .map(|i| NewJob::new("restart.test", json!({ "n": i })))
        .collect();
    let ids = backend.enqueue_batch(jobs).await.unwrap();

    let runs = Arc::new(Mutex::new(HashMap::new()));
    let manager = WorkerManager::builder(backend.clone())
        .auto_register(false)
        .handler(Counting { runs: runs.clone() })
        .concurrency(8)
        // Short leases, so a claim whose reply died with the server comes back soon.
        .lease_duration(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_secs(1))
        .reap_interval(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let probe_queues = vec!["probe".to_owned()];
    let mut listener = backend.listener(&probe_queues).await.unwrap();
    manager.start().await.unwrap();

    // Let a part of the work happen, then take the server away mid-run.
    let t0 = Instant::now();
    while runs.lock().unwrap().len() < N / 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the drain never got going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.stop();
    let done_at_stop = runs.lock().unwrap().len();
    assert!(
        done_at_stop < N,
        "the drain finished before the restart; raise N"
    );

    // While it is down, calls fail with a transient backend error.
    let err = backend.get(ids[0]).await.unwrap_err();
    assert!(err.is_transient(), "not transient: {err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.start();

    // The manager reconnects and finishes the work.
    let t1 = Instant::now();
    loop {
        if count(&backend, JobStatus::Completed).await == Some(N as u64) {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(40),
            "not drained 40 s after the restart: {:?}, {:?}",
            backend.counts().await,
            manager.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    manager.stop().await.unwrap();

    // Every job COMPLETED exactly once: nothing lost, nothing left in another state.
    let counts = backend.counts().await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (counts[0].status, counts[0].count),
        (JobStatus::Completed, N as u64)
    );
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), N, "every job ran");
    let reruns = runs.values().filter(|&&n| n > 1).count();
    eprintln!(
        "restart: {done_at_stop} jobs done before the stop; {reruns} ran twice \
         (at-least-once: attempts whose outcome died with the connection); stats {:?}",
        manager.stats()
    );

    // The listener is back too: it wakes for a new job on its queue.
    for _ in 0..3 {
        // The first wait may return at once: it notices the connection was lost.
        listener.wait(Duration::from_millis(200)).await;
    }
    let producer = backend.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer
            .enqueue_batch(vec![NewJob::new("restart.test", json!({})).queue("probe")])
            .await
            .unwrap();
    });
    let t2 = Instant::now();
    listener.wait(Duration::from_secs(30)).await;
    let waited = t2.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(15),
        "listener woke after {waited:?}"
    );
}
