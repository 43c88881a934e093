//! The throughput and latency benchmark, runnable against any backend URL.
//!
//! ```text
//! cargo bench --bench throughput -- --url sqlite:///tmp/bench.db
//! cargo bench --bench throughput -- --url postgres://postgres@127.0.0.1/test --workloads w1,w3
//! cargo bench --bench throughput -- --url redis://127.0.0.1:6379 --drain-sizes 20000,1000000
//! ```
//!
//! Workloads (defined so numbers compare with other libraries):
//! * limit: the backend's own limit in this run, the minimal durable protocol
//!   with no framework (see `limit.rs`); runs first, and the W1 and W2 lines
//!   print their rate as a percentage of it. Then the backend's own loop:
//!   `--limit-size` jobs claimed 16 a call and completed through the
//!   backend's `claim` and `record`, one call after the other, no manager
//!   (on every backend, the in-memory one included). W1 as a percentage of
//!   it is the manager's share of the cost; it as a percentage of the bare
//!   limits is the share of the backend's schema and guarantees. On memory,
//!   which has no database under it, also the manager's skeleton (see
//!   `skeleton.rs`): the manager's shape written directly on tokio, with
//!   none of its guarantees; memory's W1 prints its rate as a percentage of it.
//! * W1 drain: enqueue N no-op jobs (payload `{"n": i}`) with the batch API,
//!   then start one manager with concurrency 16 and time until the backend has
//!   recorded all N completed. N = 20,000 and 200,000 by default.
//! * W1g: W1 with a global limit on the queue (`QueueLimit::global`, 16 by
//!   default: `--global-limit`), the case river#1145 saw halve throughput.
//! * W1k: W1 where every job carries a per-key concurrency limit (64 keys,
//!   at most 1 running per key), what `concurrency(by = [..], max = 1)` makes.
//! * W2 enqueue: 5,000 single enqueues awaited one after another from one
//!   client; then 5 batches of 1,000.
//! * W2u: 5,000 single enqueues with a unique key each (all inserted), then
//!   the same 5,000 again (all duplicates, refused by the store).
//! * W3 pickup latency: one idle manager (concurrency 16); a producer enqueues
//!   2,000 jobs at a steady 200/s, each carrying its enqueue time; reports
//!   p50/p95/p99/max of (handler start − enqueue).
//! * Wf workflows: `--workflows` (20) workflows of 1,000 independent steps
//!   and a fan-in each, enqueued at once, then drained by one manager;
//!   jobs/s until every fan-in completed, as a share of W1 in the same run.
//!
//! * Counts: N jobs (`--counts-size`, 1,000,000 by default) COMPLETED in one
//!   queue and 1,000 PENDING in another, then 50 `counts()` calls, as a
//!   dashboard polling the backend makes them: p50 and max.
//!
//! * List: N finished jobs (`--list-size`, 1,000,000 by default; ten types,
//!   1 in 100 FAILED with an error, 1 in 10 with the word `alpha` in its
//!   payload, 10 with `zebra42`), then `list_page` of 50 as the dashboard
//!   asks for it, 30 times each: the first page (newest first), the page
//!   10,000 pages deep via its cursor (and the same depth by offset, for
//!   comparison), a status filter (FAILED), a type filter, a search for
//!   the rare term (each page looks at 10,000 jobs) and for the common one:
//!   p50 and p99.
//!
//! * W4 idle: one idle manager for 30 s; counts the backend calls it makes
//!   (each is one query or one script), and what the server saw meanwhile
//!   (PostgreSQL: transactions committed in the database; Redis: commands
//!   processed — other clients of the same server inflate that count).
//!
//! Every workload uses queues of its own (`bench-<workload>-<random>`), so use
//! a scratch database: jobs are left behind for inspection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use jobs::backend::{Backend, ClaimRequest, Fence, JobListener, OutcomeUpdate, Recovered};
use jobs::{
    BoxFuture, Job, JobError, JobFilter, JobHandler, JobId, JobResult, JobSort, JobStatus, NewJob,
    Queue, QueueCount, WorkerManager,
};
use serde_json::json;

mod cpu;
mod limit;
mod skeleton;

#[derive(Parser)]
struct Args {
    /// Backend URL.
    #[arg(long, default_value = "memory://")]
    url: String,
    /// Which workloads: limit, w1, w1g, w1k, w2, w2u, w3, w4, wf, counts, list.
    /// `limit` runs first wherever it is listed: the figures after it are
    /// printed as percentages of it.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "limit,w1,w1g,w1k,w2,w2u,w3,w4,wf"
    )]
    workloads: Vec<String>,
    /// Backlog sizes for W1.
    #[arg(long, value_delimiter = ',', default_value = "20000,200000")]
    drain_sizes: Vec<usize>,
    /// Jobs per drain of the `limit` workload.
    #[arg(long, default_value_t = 200_000)]
    limit_size: usize,
    /// Manager concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Finished jobs in the table for the `counts` workload.
    #[arg(long, default_value_t = 1_000_000)]
    counts_size: usize,
    /// Finished jobs in the table for the `list` workload.
    #[arg(long, default_value_t = 1_000_000)]
    list_size: usize,
    /// Workflows of the `wf` workload (each 1,000 independent steps and a fan-in).
    #[arg(long, default_value_t = 20)]
    workflows: usize,
    /// The global running limit of W1g's queue.
    #[arg(long, default_value_t = 16)]
    global_limit: u32,
    /// W1's manager deletes jobs as they complete (`Retention::drop_completed`).
    #[arg(long)]
    drop_completed: bool,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

struct Noop;
impl JobHandler for Noop {
    fn job_type(&self) -> &str {
        "bench.noop"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

/// A workflow step of the `wf` workload (run by `Noop`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Step(u32);
impl jobs::JobPayload for Step {
    const JOB_TYPE: &'static str = "bench.noop";
}
impl jobs::JobOutput for Step {
    type Output = ();
}
impl jobs::JobInput for Step {
    type Input = jobs::workflow::NoInput;
}

/// The fan-in of the `wf` workload: runs after its 1,000 steps.
#[derive(serde::Serialize, serde::Deserialize)]
struct FanIn;
impl jobs::JobPayload for FanIn {
    const JOB_TYPE: &'static str = "bench.fanin";
}
impl jobs::JobInput for FanIn {
    type Input = jobs::workflow::NoInput;
}

struct FanInHandler;
impl JobHandler for FanInHandler {
    fn job_type(&self) -> &str {
        "bench.fanin"
    }
    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

/// `workflows` workflows of 1,000 independent steps and a fan-in each,
/// enqueued at once, drained by one manager: jobs per second until every
/// fan-in completed, and that rate as a share of W1's in this run.
async fn wf(
    queue: &Queue,
    workflows: usize,
    concurrency: usize,
    w1: Option<f64>,
) -> jobs::Result<()> {
    const STEPS: usize = 1_000;
    let q = queue_name("wf");
    let options = jobs::JobOptions::default().queue(&q);
    let mut handles = Vec::new();
    let t = Instant::now();
    for _ in 0..workflows {
        let mut flow = jobs::Workflow::new("bench");
        let steps: Vec<_> = (0..STEPS as u32)
            .map(|i| {
                let s = flow.add(Step(i));
                flow.options(&s, &options);
                s
            })
            .collect();
        let fan_in = flow.join(&steps, FanIn);
        flow.options(&fan_in, &options);
        handles.push((queue.enqueue_workflow(flow).await?, fan_in.id()));
    }
    let enqueue_secs = t.elapsed().as_secs_f64();
    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Noop)
        .handler(FanInHandler)
        .queues([q.as_str()])
        .concurrency(concurrency)
        .build()?;
    let total = workflows * (STEPS + 1);
    let t = Instant::now();
    m.start().await?;
    while (m.stats().completed as usize) < total {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    m.stop().await?;
    for (_, fan_in) in &handles {
        let job = queue.get(*fan_in).await?.expect("stored");
        assert_eq!(job.status, JobStatus::Completed, "every fan-in completed");
    }
    let rate = total as f64 / secs;
    let pct = of_limit(rate, &[("W1 (this run)", w1)]);
    println!(
        "| Workflows {workflows} × ({STEPS} steps + fan-in) {total:>7} jobs | {secs:>8.2} s | {rate:>9.0} jobs/s |{pct} (setup: workflow enqueue {:.0} jobs/s)",
        total as f64 / enqueue_secs
    );
    Ok(())
}

struct Latency(Arc<Mutex<Vec<Duration>>>);
impl JobHandler for Latency {
    fn job_type(&self) -> &str {
        "bench.latency"
    }
    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let now = chrono::Utc::now().timestamp_micros();
        let sent = job.payload["sent_us"].as_i64().unwrap_or(now);
        let us = u64::try_from(now - sent).unwrap_or(0);
        self.0.lock().unwrap().push(Duration::from_micros(us));
        Ok(JobResult::success())
    }
}

fn queue_name(workload: &str) -> String {
    format!("bench-{workload}-{:08x}", fastrand::u32(..))
}

fn manager(queue: &Queue, q: &str, concurrency: usize) -> jobs::Result<WorkerManager> {
    WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Noop)
        .queues([q])
        .concurrency(concurrency)
        .build()
}

/// The limits a W1 variant runs under.
#[derive(Clone, Copy)]
enum Limits {
    None,
    Global(u32),
    PerKey,
}

/// `rate` as a percentage of the limits measured in this run, if any.
fn of_limit(rate: f64, parts: &[(&str, Option<f64>)]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .filter_map(|(name, l)| l.map(|l| format!("{:.0} % of {name}", 100.0 * rate / l)))
        .collect();
    if shown.is_empty() {
        String::new()
    } else {
        format!(" {} |", shown.join(", "))
    }
}

/// What a W1 figure is printed as a percentage of, where measured in the run.
#[derive(Clone, Copy)]
struct Bounds {
    /// The database's bare limits.
    bare: Option<limit::Limits>,
    /// The backend's own claim + record loop.
    own: Option<f64>,
    /// The manager's skeleton (memory only).
    skeleton: Option<f64>,
}

async fn w1(
    queue: &Queue,
    n: usize,
    concurrency: usize,
    limits: Limits,
    bounds: Bounds,
    drop_completed: bool,
) -> jobs::Result<f64> {
    let Bounds {
        bare,
        own,
        skeleton,
    } = bounds;
    let (name, label) = match limits {
        Limits::None => ("w1", "W1 drain".to_owned()),
        Limits::Global(g) => ("w1g", format!("W1g drain, global limit {g}")),
        Limits::PerKey => ("w1k", "W1k drain, 64 keys of max 1".to_owned()),
    };
    let label = if drop_completed {
        format!("{label}, completed dropped")
    } else {
        label
    };
    let q = queue_name(name);
    let t = Instant::now();
    enqueue_backlog(queue, &q, n, limits).await?;
    let enqueue_secs = t.elapsed().as_secs_f64();
    let mut builder = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Noop)
        .queues([q.as_str()])
        .concurrency(concurrency);
    if let Limits::Global(g) = limits {
        builder = builder.queue_limit(&q, jobs::QueueLimit::new().global(g));
    }
    if drop_completed {
        builder = builder.retention(jobs::Retention::default().drop_completed());
    }
    let m = builder.build()?;
    let cpu = cpu::Clock::start();
    let t = Instant::now();
    m.start().await?;
    while (m.stats().completed as usize) < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu.per_job(n);
    m.stop().await?;
    let counts = queue.counts().await?;
    let of_q = |s: Option<JobStatus>| -> u64 {
        counts
            .iter()
            .filter(|c| c.queue == q && s.is_none_or(|s| c.status == s))
            .map(|c| c.count)
            .sum()
    };
    if drop_completed {
        assert_eq!(of_q(None), 0, "every job must be gone");
    } else {
        assert_eq!(
            of_q(Some(JobStatus::Completed)) as usize,
            n,
            "the backend must report every job completed"
        );
    }
    forget(queue, &q).await?;
    let rate = n as f64 / secs;
    let pct = of_limit(
        rate,
        &[
            ("the one-statement limit", bare.map(|b| b.one_statement)),
            ("claim-then-complete", bare.map(|b| b.claim_complete)),
            ("the backend's loop", own),
            ("the manager's skeleton", skeleton),
        ],
    );
    println!(
        "| {label} {n:>9} jobs | {secs:>8.2} s | {rate:>9.0} jobs/s |{pct}{cpu} (setup: batch enqueue {:.0} jobs/s)",
        n as f64 / enqueue_secs
    );
    Ok(rate)
}

/// W1's backlog: `n` no-op jobs in queue `q`, enqueued in batches of 5,000
/// (each with a per-key limit for W1k).
async fn enqueue_backlog(queue: &Queue, q: &str, n: usize, limits: Limits) -> jobs::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        let jobs = chunk
            .iter()
            .map(|i| {
                let job = NewJob::new("bench.noop", json!({ "n": i })).queue(q);
                match limits {
                    Limits::PerKey => job.concurrency(format!("bench.noop:{}", i % 64), 1),
                    _ => job,
                }
            })
            .collect();
        queue.enqueue_many(jobs).await?;
    }
    Ok(())
}

/// The backend's own loop: `n` jobs enqueued as W1's are, then claimed 16 a
/// call and completed (or deleted, with `drop_completed`) through the
/// backend's own `claim` and `record` — its statements, scripts and schema,
/// one call after the other on one task, with no manager. W1 at the
/// concurrency of 16 is printed as a percentage of it: what the manager
/// costs on top of the backend; and it is printed as a percentage of the
/// bare limits: what the backend's schema and guarantees cost.
async fn backend_loop(
    queue: &Queue,
    n: usize,
    bare: Option<limit::Limits>,
    drop_completed: bool,
) -> jobs::Result<f64> {
    let q = queue_name("loop");
    enqueue_backlog(queue, &q, n, Limits::None).await?;
    let backend = queue.backend();
    let queues = [q.clone()];
    let worker = "bench-loop";
    let t = Instant::now();
    let mut done = 0;
    loop {
        let round =
            claim_and_complete(backend.as_ref(), worker, &queues, 16, drop_completed).await?;
        if round == 0 {
            break;
        }
        done += round;
    }
    let rate = done as f64 / t.elapsed().as_secs_f64();
    assert_eq!(done, n, "the backend's loop must finish every job");
    forget(queue, &q).await?;
    let label = if drop_completed {
        "limit: the backend's claim + record, deleting"
    } else {
        "limit: the backend's claim + record"
    };
    let pct = of_limit(
        rate,
        &[
            ("the one-statement limit", bare.map(|b| b.one_statement)),
            ("claim-then-complete", bare.map(|b| b.claim_complete)),
        ],
    );
    println!(
        "| {label} {n:>9} jobs | {:>8.2} s | {rate:>9.0} jobs/s |{pct}",
        n as f64 / rate
    );
    Ok(rate)
}

/// One claim of up to `batch` jobs of `queues` straight through the backend,
/// then one record completing them (deleting them, with `drop_completed`).
/// Returns how many it completed: 0 once nothing is due.
async fn claim_and_complete(
    backend: &dyn Backend,
    worker: &str,
    queues: &[String],
    batch: usize,
    drop_completed: bool,
) -> jobs::Result<usize> {
    let claimed = backend
        .claim(ClaimRequest::new(
            worker,
            queues,
            batch,
            Duration::from_secs(600),
        ))
        .await?;
    let outcome = if drop_completed {
        jobs::backend::Outcome::CompleteAndDelete
    } else {
        jobs::backend::Outcome::Complete { result: None }
    };
    let updates: Vec<OutcomeUpdate> = claimed
        .jobs
        .iter()
        .map(|j| OutcomeUpdate::new(j.fence(), outcome.clone()))
        .collect();
    if updates.is_empty() {
        return Ok(0);
    }
    let lost = backend.record(worker, &updates).await?;
    assert!(
        lost.is_empty(),
        "no lease is lost straight through the backend"
    );
    Ok(updates.len())
}

/// Deletes the finished jobs of the bench's queue `q` (after its figure is
/// taken), so a database the bench runs against does not keep every run's
/// backlog.
async fn forget(queue: &Queue, q: &str) -> jobs::Result<()> {
    let everything = chrono::Utc::now() + chrono::Duration::seconds(1);
    queue
        .prune_matching(jobs::PruneRequest::new(everything, 10_000).queue(q))
        .await?;
    Ok(())
}

async fn w2(queue: &Queue, bare: Option<limit::Limits>) -> jobs::Result<()> {
    let q = queue_name("w2");
    let n = 5_000;
    let t = Instant::now();
    for i in 0..n {
        queue
            .enqueue_job(NewJob::new("bench.noop", json!({ "n": i })).queue(&q))
            .await?;
    }
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    let pct = of_limit(rate, &[("single inserts", bare.map(|b| b.insert))]);
    println!("| W2 single enqueue {n} | {secs:>8.2} s | {rate:>9.0} jobs/s |{pct}");
    let t = Instant::now();
    for b in 0..5 {
        let jobs = (0..1_000)
            .map(|i| NewJob::new("bench.noop", json!({ "n": b * 1_000 + i })).queue(&q))
            .collect();
        queue.enqueue_many(jobs).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "| W2 batch enqueue 5x1000 | {secs:>8.2} s | {:>9.0} jobs/s |",
        5_000.0 / secs
    );
    Ok(())
}

async fn w2u(queue: &Queue) -> jobs::Result<()> {
    let q = queue_name("w2u");
    let n = 5_000;
    let job = |i: usize| {
        NewJob::new("bench.noop", json!({ "n": i }))
            .queue(&q)
            .unique(jobs::Uniqueness::new(format!("{q}:{i}")))
    };
    for round in ["inserted", "duplicate"] {
        let t = Instant::now();
        let mut kept = 0;
        for i in 0..n {
            if queue.enqueue_job(job(i)).await?.is_inserted() {
                kept += 1;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let want = if round == "inserted" { n } else { 0 };
        assert_eq!(kept, want, "every {round} enqueue must say so");
        println!(
            "| W2u single unique enqueue {n}, all {round} | {secs:>8.2} s | {:>9.0} jobs/s |",
            n as f64 / secs
        );
    }
    Ok(())
}

async fn w3(queue: &Queue, concurrency: usize) -> jobs::Result<()> {
    let q = queue_name("w3");
    let seen = Arc::new(Mutex::new(Vec::with_capacity(2_000)));
    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .handler(Latency(seen.clone()))
        .queues([q.as_str()])
        .concurrency(concurrency)
        .build()?;
    m.start().await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // let it go idle
    let n = 2_000;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        tick.tick().await;
        let sent_us = chrono::Utc::now().timestamp_micros();
        queue
            .enqueue_job(
                NewJob::new("bench.latency", json!({ "n": i, "sent_us": sent_us })).queue(&q),
            )
            .await?;
    }
    while seen.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    m.stop().await?;
    let mut lat = seen.lock().unwrap().clone();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| W3 pickup latency 200/s | p50 {:.2} ms | p95 {:.2} ms | p99 {:.2} ms | max {:.2} ms |",
        ms(pct(0.50)),
        ms(pct(0.95)),
        ms(pct(0.99)),
        ms(*lat.last().unwrap())
    );
    Ok(())
}

/// A server-side count of the work done so far, where the server can tell.
async fn server_ops(url: &str) -> Option<u64> {
    if url.starts_with("postgres") {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url.split('?').next()?)
            .await
            .ok()?;
        let n: i64 = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .ok()?;
        u64::try_from(n).ok()
    } else if url.starts_with("redis") {
        let client = redis::Client::open(url.split('?').next()?).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
    } else {
        None
    }
}

/// Forwards to a backend, counting the calls a manager makes (the listener's
/// own waiting is inside `JobListener::wait` and not counted here).
struct Counted {
    inner: Arc<dyn Backend>,
    calls: Arc<AtomicU64>,
}

impl Counted {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Backend for Counted {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn enqueue_batch(&self, jobs: Vec<NewJob>) -> BoxFuture<'_, jobs::Result<Vec<jobs::Enqueued>>> {
        self.tick();
        self.inner.enqueue_batch(jobs)
    }
    fn claim<'a>(&'a self, req: ClaimRequest<'a>) -> BoxFuture<'a, jobs::Result<jobs::Claimed>> {
        self.tick();
        self.inner.claim(req)
    }
    fn heartbeat<'a>(
        &'a self,
        worker_id: &'a str,
        fences: &'a [Fence],
        lease: Duration,
    ) -> BoxFuture<'a, jobs::Result<jobs::backend::HeartbeatReply>> {
        self.tick();
        self.inner.heartbeat(worker_id, fences, lease)
    }
    fn record<'a>(
        &'a self,
        worker_id: &'a str,
        updates: &'a [OutcomeUpdate],
    ) -> BoxFuture<'a, jobs::Result<Vec<JobId>>> {
        self.tick();
        self.inner.record(worker_id, updates)
    }
    fn recover_expired(&self) -> BoxFuture<'_, jobs::Result<Vec<Recovered>>> {
        self.tick();
        self.inner.recover_expired()
    }
    fn get(&self, id: JobId) -> BoxFuture<'_, jobs::Result<Option<Job>>> {
        self.tick();
        self.inner.get(id)
    }
    fn list<'a>(&'a self, filter: &'a JobFilter) -> BoxFuture<'a, jobs::Result<Vec<Job>>> {
        self.tick();
        self.inner.list(filter)
    }
    fn cancel<'a>(
        &'a self,
        id: JobId,
        req: &'a jobs::CancelRequest,
    ) -> BoxFuture<'a, jobs::Result<Job>> {
        self.tick();
        self.inner.cancel(id, req)
    }
    fn requeue(&self, id: JobId) -> BoxFuture<'_, jobs::Result<Job>> {
        self.tick();
        self.inner.requeue(id)
    }
    fn counts(&self) -> BoxFuture<'_, jobs::Result<Vec<QueueCount>>> {
        self.tick();
        self.inner.counts()
    }
    fn prune<'a>(&'a self, req: &'a jobs::PruneRequest) -> BoxFuture<'a, jobs::Result<u64>> {
        self.tick();
        self.inner.prune(req)
    }
    fn record_progress<'a>(
        &'a self,
        updates: &'a [(Fence, jobs::Progress)],
    ) -> BoxFuture<'a, jobs::Result<()>> {
        self.tick();
        self.inner.record_progress(updates)
    }
    fn register_worker<'a>(
        &'a self,
        info: &'a jobs::WorkerInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, jobs::Result<()>> {
        self.tick();
        self.inner.register_worker(info, ttl)
    }
    fn deregister_worker<'a>(&'a self, id: &'a str) -> BoxFuture<'a, jobs::Result<()>> {
        self.tick();
        self.inner.deregister_worker(id)
    }
    fn try_lead<'a>(
        &'a self,
        role: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, jobs::Result<bool>> {
        self.tick();
        self.inner.try_lead(role, holder, ttl)
    }
    fn resign<'a>(&'a self, role: &'a str, holder: &'a str) -> BoxFuture<'a, jobs::Result<()>> {
        self.tick();
        self.inner.resign(role, holder)
    }
    fn listener<'a>(
        &'a self,
        queues: &'a [String],
    ) -> BoxFuture<'a, jobs::Result<Box<dyn JobListener>>> {
        self.inner.listener(queues)
    }
}

async fn w4(queue: &Queue, url: &str, concurrency: usize) -> jobs::Result<()> {
    let q = queue_name("w4");
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Queue::from(Arc::new(Counted {
        inner: queue.backend().clone(),
        calls: calls.clone(),
    }) as Arc<dyn Backend>);
    let m = manager(&counted, &q, concurrency)?;
    m.start().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server_ops(url).await;
    let calls_before = calls.load(Ordering::Relaxed);
    let secs = 30.0;
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let made = calls.load(Ordering::Relaxed) - calls_before;
    let after = server_ops(url).await;
    m.stop().await?;
    let server = match before.zip(after) {
        // Each reading costs one operation itself; other clients add theirs.
        Some((a, b)) => format!(
            "{:.2} server ops/s (whole server)",
            (b.saturating_sub(a).saturating_sub(1)) as f64 / secs
        ),
        None => "no server to ask".to_owned(),
    };
    println!(
        "| W4 idle manager, {secs:.0} s | {:.2} backend calls/s | {server} |",
        made as f64 / secs
    );
    Ok(())
}

/// `counts()` on a table of `n` finished jobs (and 1,000 waiting ones).
async fn counts(queue: &Queue, n: usize) -> jobs::Result<()> {
    let done = queue_name("counts-done");
    let waiting = queue_name("counts-waiting");
    let backend = queue.backend();
    let queues = [done.clone()];
    let worker = "bench-counts";
    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(5_000);
        let jobs = (0..k)
            .map(|i| NewJob::new("bench.noop", json!({ "n": i })).queue(&done))
            .collect();
        queue.enqueue_many(jobs).await?;
        // Straight through the backend: claim and complete in big batches.
        let mut taken = 0;
        while taken < k {
            let round = claim_and_complete(backend.as_ref(), worker, &queues, 1_000, false).await?;
            if round == 0 {
                break;
            }
            taken += round;
        }
        left -= k;
    }
    let jobs = (0..1_000)
        .map(|i| NewJob::new("bench.noop", json!({ "n": i })).queue(&waiting))
        .collect();
    queue.enqueue_many(jobs).await?;
    let setup = t.elapsed().as_secs_f64();
    let mut took = Vec::with_capacity(50);
    for _ in 0..50 {
        let t = Instant::now();
        let counts = queue.counts().await?;
        took.push(t.elapsed());
        let of = |q: &str| {
            counts
                .iter()
                .filter(|c| c.queue == q)
                .map(|c| c.count)
                .sum::<u64>()
        };
        assert_eq!(of(&done), n as u64);
        assert_eq!(of(&waiting), 1_000);
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| counts() with {n} finished jobs | p50 {:.2} ms | max {:.2} ms | (setup {setup:.0} s) |",
        ms(took[took.len() / 2]),
        ms(*took.last().unwrap())
    );
    Ok(())
}

/// `list_page` on a table of `n` finished jobs.
async fn list(queue: &Queue, n: usize) -> jobs::Result<()> {
    let q = queue_name("list");
    let backend = queue.backend();
    let queues = [q.clone()];
    let worker = "bench-list";
    let t = Instant::now();
    let mut i = 0usize;
    while i < n {
        let k = (n - i).min(5_000);
        let jobs = (i..i + k)
            .map(|j| {
                let word = if j % 10 == 0 { "alpha" } else { "omega" };
                let rare = if j % (n / 10).max(1) == 7 { " zebra42" } else { "" };
                NewJob::new(
                    format!("bench.type{}", j % 10),
                    json!({ "n": j, "text": format!("{word}{rare}"), "user": format!("user{}", j % 9973) }),
                )
                .queue(&q)
            })
            .collect();
        queue.enqueue_many(jobs).await?;
        let mut taken = 0;
        while taken < k {
            let claimed = backend
                .claim(ClaimRequest::new(
                    worker,
                    &queues,
                    1_000,
                    Duration::from_secs(600),
                ))
                .await?;
            if claimed.jobs.is_empty() {
                break;
            }
            taken += claimed.jobs.len();
            let updates: Vec<OutcomeUpdate> = claimed
                .jobs
                .iter()
                .map(|j| {
                    let n = j.payload["n"].as_u64().unwrap_or(0);
                    let outcome = if n % 100 == 3 {
                        jobs::backend::Outcome::Fail {
                            error: jobs::backend::AttemptFailure::new(
                                format!("upstream said 503 for user{}", n % 9973),
                                false,
                            ),
                            result: None,
                        }
                    } else {
                        jobs::backend::Outcome::Complete { result: None }
                    };
                    OutcomeUpdate::new(j.fence(), outcome)
                })
                .collect();
            backend.record(worker, &updates).await?;
        }
        i += k;
    }
    let setup = t.elapsed().as_secs_f64();
    let base = JobFilter::default()
        .queue(&q)
        .sort(JobSort::Newest)
        .limit(50);
    // The cursor 10,000 pages of 50 deep, walked in pages of 1,000.
    let depth = 10_000 * 50;
    let mut deep = base.clone().limit(1_000);
    let mut walked = 0;
    let t_walk = Instant::now();
    while walked < depth.min(n.saturating_sub(1_000)) {
        let page = queue.list_page(&deep).await?;
        walked += page.jobs.len();
        match page.next {
            Some(next) => deep.after = Some(next),
            None => break,
        }
    }
    let walk = t_walk.elapsed().as_secs_f64();
    let deep = deep.limit(50);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let time = |name: &str, filter: JobFilter, reps: usize| {
        let name = name.to_owned();
        async move {
            let mut took = Vec::with_capacity(reps);
            let mut found = 0;
            for _ in 0..reps {
                let t = Instant::now();
                let page = queue.list_page(&filter).await?;
                took.push(t.elapsed());
                found = page.jobs.len();
            }
            took.sort();
            let p99 = took[((took.len() * 99) / 100).min(took.len() - 1)];
            println!(
                "| list: {name} | p50 {:.2} ms | p99 {:.2} ms | {found} jobs |",
                ms(took[took.len() / 2]),
                ms(p99)
            );
            Ok::<(), jobs::Error>(())
        }
    };
    println!("| list: {n} finished jobs | setup {setup:.0} s | walk to {walked} deep in pages of 1,000: {walk:.1} s |");
    time("first page, newest first", base.clone(), 30).await?;
    time(&format!("page {} deep by cursor", walked / 50), deep, 30).await?;
    // The older way to the same depth: `list` by offset, in enqueue order.
    let by_offset = base
        .clone()
        .sort(JobSort::Oldest)
        .offset(n.saturating_sub(walked + 50));
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let jobs = queue.list(&by_offset).await?;
        took.push(t.elapsed());
        assert_eq!(jobs.len(), 50);
    }
    took.sort();
    println!(
        "| list: the same depth by offset (`list`) | p50 {:.2} ms | max {:.2} ms | 50 jobs |",
        ms(took[took.len() / 2]),
        ms(*took.last().unwrap())
    );
    time(
        "status FAILED (1 %)",
        base.clone().status(JobStatus::Failed),
        30,
    )
    .await?;
    time(
        "type bench.type3 (10 %)",
        base.clone().job_type("bench.type3"),
        30,
    )
    .await?;
    time(
        "search rare `zebra42` (10 jobs)",
        base.clone().search("zebra42"),
        30,
    )
    .await?;
    time(
        "search common `alpha` (10 %)",
        base.clone().search("alpha"),
        30,
    )
    .await?;
    time(
        "search in errors `USER42 ` (failed)",
        base.clone().search("for user42"),
        30,
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), limit::Error> {
    let args = Args::parse();
    let queue = jobs::connect(&args.url).await?;
    println!(
        "backend {} ({}), concurrency {}, {} cores",
        queue.backend().backend_name(),
        args.url,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let with_limits = args.workloads.iter().any(|w| w == "limit");
    let bare = if with_limits {
        limit::measure(&args.url, args.limit_size).await?
    } else {
        None
    };
    let own = if with_limits {
        Some(backend_loop(&queue, args.limit_size, bare, args.drop_completed).await?)
    } else {
        None
    };
    // The manager's own limit, where no database is under it.
    let skeleton = if with_limits && queue.backend().backend_name() == "memory" {
        Some(skeleton::measure(args.limit_size, args.concurrency).await)
    } else {
        None
    };
    let mut w1_rate = None;
    for w in &args.workloads {
        match w.as_str() {
            "limit" => {}
            "w1" | "w1g" | "w1k" => {
                let limits = match w.as_str() {
                    "w1g" => Limits::Global(args.global_limit),
                    "w1k" => Limits::PerKey,
                    _ => Limits::None,
                };
                for &n in &args.drain_sizes {
                    let rate = w1(
                        &queue,
                        n,
                        args.concurrency,
                        limits,
                        Bounds {
                            bare,
                            own,
                            skeleton,
                        },
                        args.drop_completed,
                    )
                    .await?;
                    if matches!(limits, Limits::None) {
                        w1_rate = Some(rate);
                    }
                }
            }
            "w2" => w2(&queue, bare).await?,
            "w2u" => w2u(&queue).await?,
            "w3" => w3(&queue, args.concurrency).await?,
            "w4" => w4(&queue, &args.url, args.concurrency).await?,
            "wf" => wf(&queue, args.workflows, args.concurrency, w1_rate).await?,
            "counts" => counts(&queue, args.counts_size).await?,
            "list" => list(&queue, args.list_size).await?,
            other => {
                eprintln!(
                    "unknown workload `{other}` (limit, w1, w1g, w1k, w2, w2u, w3, w4, wf, counts, list)"
                )
            }
        }
    }
    Ok(())
}
