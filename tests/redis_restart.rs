//! Redis killed and restarted mid-run: with AOF (`appendfsync always`) no
//! acknowledged job is lost, and a running WorkerManager reconnects and carries
//! on. Starts its own throwaway `redis-server` on a free port (needs the
//! binary on PATH; skipped without it, except under `CI`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::backend::Backend;
use jobs::{Job, JobError, JobHandler, JobId, JobResult, JobStatus, NewJob, WorkerManager};
use jobs_runtime::backend::redis::RedisBackend;
use serde_json::json;

/// A `redis-server` child with AOF, killed when dropped.
struct Server {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Option<Server> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("cannot start redis-server (needed in CI): {e}")
            }
            Err(e) => {
                eprintln!("skipped: cannot start redis-server: {e}");
                return None;
            }
        };
        let server = Server {
            port,
            dir: dir.to_owned(),
            child: Some(child),
        };
        server.wait_ready();
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/?prefix=restart", self.port)
    }

    fn wait_ready(&self) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        let start = Instant::now();
        loop {
            if let Ok(mut con) = client.get_connection() {
                // Loading the AOF answers PING with an error until done.
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "redis-server on port {} did not come up",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, not a clean shutdown (which would flush on its own).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let restarted = Server::start(&self.dir, self.port).expect("restart redis-server");
        self.child = restarted.into_child();
        self.wait_ready();
    }

    fn into_child(mut self) -> Option<Child> {
        self.child.take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Work {
    runs: Arc<Mutex<HashSet<JobId>>>,
}

impl JobHandler for Work {
    fn job_type(&self) -> &str {
        "restart.work"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.runs.lock().unwrap().insert(job.id);
        Ok(JobResult::success())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_job_is_lost_across_a_redis_crash() {
    let dir = std::env::temp_dir().join(format!("jobs-redis-restart-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let Some(mut server) = Server::start(&dir, free_port()) else {
        return;
    };
    let backend = RedisBackend::connect(&server.url()).await.unwrap();
    let queue = jobs::Queue::new(backend.clone());

    let runs = Arc::new(Mutex::new(HashSet::new()));
    let manager = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Work { runs: runs.clone() })
        .concurrency(8)
        .lease_duration(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(500))
        .reap_interval(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(200))
        .backoff(jobs::Backoff::fixed(Duration::from_millis(100)))
        .build()
        .unwrap();
    manager.start().await.unwrap();

    // A producer enqueues one job at a time and remembers what was acknowledged.
    let acked = Arc::new(Mutex::new(Vec::<JobId>::new()));
    let refused = Arc::new(Mutex::new(0usize));
    let producer = {
        let (backend, acked, refused) = (backend.clone(), acked.clone(), refused.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let mut i = 0u64;
            while start.elapsed() < Duration::from_secs(4) {
                let job = NewJob::new("restart.work", json!({ "i": i }));
                let id = job.id;
                match backend.enqueue_batch(vec![job]).await {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(e) => {
                        assert!(e.is_transient(), "only backend errors while down: {e}");
                        *refused.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    // A listener of its own, to see that wake-ups come back after the crash.
    let wake_queue = vec!["restart-wake".to_string()];
    let mut listener = backend.listener(&wake_queue).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = acked.lock().unwrap().len();
    server.kill();
    // Calls fail while Redis is down, instead of hanging or panicking.
    let err = backend.counts().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();
    producer.await.unwrap();

    let acked: Vec<JobId> = acked.lock().unwrap().clone();
    assert!(
        before > 50 && acked.len() > before + 50,
        "enqueued {before} then {}",
        acked.len()
    );
    eprintln!(
        "{} jobs acknowledged ({} before the crash), {} enqueues refused while down",
        acked.len(),
        before,
        refused.lock().unwrap()
    );

    // The listener notices its connection died, resubscribes, and wakes on
    // the next enqueue again (not only at its timeout).
    for _ in 0..3 {
        listener.wait(Duration::from_millis(300)).await;
    }
    let woke = {
        let backend = backend.clone();
        let enqueue = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            backend
                .enqueue_batch(vec![
                    NewJob::new("restart.work", json!({})).queue("restart-wake")
                ])
                .await
                .unwrap();
        });
        let start = Instant::now();
        listener.wait(Duration::from_secs(30)).await;
        enqueue.await.unwrap();
        start.elapsed()
    };
    assert!(
        woke < Duration::from_secs(10),
        "no wake-up after the restart: {woke:?}"
    );

    // Every acknowledged job is still there and gets done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut missing = 0;
        let mut unfinished = 0;
        for chunk in acked.chunks(500) {
            for id in chunk {
                match backend.get(*id).await.unwrap() {
                    None => missing += 1,
                    Some(job) if job.status != JobStatus::Completed => unfinished += 1,
                    Some(_) => {}
                }
            }
        }
        assert_eq!(missing, 0, "acknowledged jobs lost in the crash");
        if unfinished == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} acknowledged jobs never completed; stats {:?}",
            manager.stats()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    manager.stop().await.unwrap();
    let ran = runs.lock().unwrap().clone();
    assert!(acked.iter().all(|id| ran.contains(id)));
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
}
