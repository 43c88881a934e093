//! The worker process of the chaos suite: an ordinary `WorkerManager` whose
//! one handler writes every execution to an append-only, fsynced log of its
//! own (start, finish or cancel, with job id, lease token, attempt, pid and
//! time), so the orchestrator can count what ran, and when, after the fact.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs::{BoxError, Job, JobContext, JobError, JobHandler, JobResult, Queue, WorkerManager};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The environment variable that carries a worker's [`Config`] (as JSON).
pub const ENV: &str = "JOBS_CHAOS_WORKER";

/// The job type every chaos job has.
pub const JOB_TYPE: &str = "chaos.work";

/// How a worker process runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub url: String,
    pub log: PathBuf,
    pub worker_id: String,
    pub concurrency: usize,
    pub lease_ms: u64,
    pub heartbeat_ms: u64,
    pub reap_ms: u64,
    pub job_timeout_ms: u64,
    /// PostgreSQL: claims wait for their commit.
    pub synchronous_claims: bool,
}

/// One line of a worker's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `S` started, `F` finished successfully, `C` cut short (cancelled).
    pub kind: char,
    pub job: String,
    pub token: String,
    pub attempt: u32,
    pub pid: u32,
    /// Microseconds since the Unix epoch.
    pub at: u64,
}

impl Event {
    pub fn parse(line: &str) -> Option<Event> {
        let mut f = line.split(' ');
        Some(Event {
            kind: f.next()?.chars().next()?,
            job: f.next()?.to_owned(),
            token: f.next()?.to_owned(),
            attempt: f.next()?.parse().ok()?,
            pid: f.next()?.parse().ok()?,
            at: f.next()?.parse().ok()?,
        })
    }
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The log: one line per event, each synced to disk before the handler goes on.
struct Log(Mutex<File>);

impl Log {
    fn note(&self, kind: char, job: &Job) {
        let token = job.lease_token.map(|t| t.to_string()).unwrap_or_default();
        let line = format!(
            "{kind} {} {token} {} {} {}\n",
            job.id,
            job.attempt,
            std::process::id(),
            now_us()
        );
        let mut f = self.0.lock().unwrap();
        f.write_all(line.as_bytes()).unwrap();
        f.sync_data().unwrap();
    }
}

/// What a chaos job does; its payload says, and may name a poison.
struct Chaos {
    log: Arc<Log>,
    lease: Duration,
}

impl JobHandler for Chaos {
    fn job_type(&self) -> &str {
        JOB_TYPE
    }

    #[allow(clippy::manual_async_fn)]
    fn handle(&self, job: &Job) -> impl Future<Output = Result<JobResult, JobError>> + Send {
        let poison = job.payload["poison"].as_str().map(str::to_owned);
        if poison.as_deref() == Some("panic_early") {
            panic!("poison: a panic before the handler's future exists");
        }
        let ms = job.payload["ms"].as_u64().unwrap_or(10);
        let (log, lease) = (self.log.clone(), self.lease);
        async move {
            log.note('S', job);
            match poison.as_deref() {
                Some("hung_on_failure") => {
                    log.note('C', job);
                    return Err(JobError::permanent(
                        "poison: fails, and its on_failure hangs",
                    ));
                }
                Some("blocks_thread") => {
                    // Longer than the lease: only heartbeats on their own thread keep it.
                    std::thread::sleep(lease * 2);
                }
                Some("nul_result") => {
                    log.note('F', job);
                    return Ok(JobResult::with_data(json!({"text": "bin\u{0}ary"})));
                }
                _ => {}
            }
            let ctx = JobContext::current().expect("run by a manager");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                reason = ctx.cancelled() => {
                    log.note('C', job);
                    return Err(JobError::msg(format!("cancelled: {reason:?}")));
                }
            }
            log.note('F', job);
            Ok(JobResult::success())
        }
    }

    async fn on_failure(&self, job: &Job, _error: &JobError) -> Result<(), BoxError> {
        if job.payload["poison"].as_str() == Some("hung_on_failure") {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn queue(cfg: &Config) -> Queue {
    #[cfg(feature = "postgres")]
    if cfg.url.starts_with("postgres") {
        let backend = jobs::backend::postgres::PostgresBackend::builder(cfg.url.clone())
            .synchronous_claims(cfg.synchronous_claims)
            .connect()
            .await
            .expect("connect");
        return Queue::new(backend);
    }
    jobs::connect(&cfg.url).await.expect("connect")
}

/// Runs a worker until SIGINT (a graceful stop) or SIGKILL.
pub async fn run(cfg: Config) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log)
        .expect("open the worker's log");
    let lease = Duration::from_millis(cfg.lease_ms);
    let manager = WorkerManager::builder(queue(&cfg).await)
        .auto_register(false)
        .handler(Chaos {
            log: Arc::new(Log(Mutex::new(file))),
            lease,
        })
        .worker_id(cfg.worker_id.clone())
        .concurrency(cfg.concurrency)
        .lease_duration(lease)
        .heartbeat_interval(Duration::from_millis(cfg.heartbeat_ms))
        .reap_interval(Duration::from_millis(cfg.reap_ms))
        .poll_interval(Duration::from_millis(200))
        .backoff(jobs::Backoff::fixed(Duration::from_millis(200)))
        .job_timeout(Duration::from_millis(cfg.job_timeout_ms))
        .shutdown_timeout(Duration::from_secs(3))
        .build()
        .expect("build the manager");
    manager
        .run_until(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
        .expect("run");
}
