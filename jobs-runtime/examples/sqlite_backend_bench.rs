//! Backend-level throughput of the SQLite backend, without the worker manager:
//! what the port itself costs. The framework-level numbers come from the
//! `jobs` bench program; this one helps find where time goes.
//!
//! ```text
//! cargo run --release -p jobs-runtime --features sqlite --example sqlite_backend_bench [-- DIR]
//! ```
//!
//! `BENCH=w2` runs only the enqueue workloads, `BENCH=w1` only the 20,000-job
//! drains, `BENCH=w1big` only the 200,000-job ones;
//! `PRAGMAS=page_size=1024,wal_autocheckpoint=4000` tries extra pragmas on
//! fresh files. Besides jobs/s it prints CPU time per job (user + system,
//! all threads), which stays meaningful on a busy machine where wall time
//! does not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::backend::{ClaimRequest, Outcome, OutcomeUpdate};
use jobs_core::{Backend, NewJob};
use jobs_runtime::backend::sqlite::SqliteBackend;
use serde_json::json;

async fn fresh(dir: &std::path::Path, name: &str) -> Arc<SqliteBackend> {
    let path = dir.join(format!("{name}-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}", path.display());
    let mut options = SqliteBackend::options(&url).expect("options");
    // Extra pragmas to try, e.g. PRAGMAS=page_size=1024,wal_autocheckpoint=4000
    for kv in std::env::var("PRAGMAS").unwrap_or_default().split(',') {
        if let Some((k, v)) = kv.split_once('=') {
            options = options.pragma(k.to_owned(), v.to_owned());
        }
    }
    let q = Arc::new(
        SqliteBackend::connect_with(&url, options, false)
            .await
            .expect("open"),
    );
    q
}

fn jobs(n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| NewJob::new("noop", json!({ "n": i })))
        .collect()
}

/// Claims `limit` at a time and completes them, on `loops` concurrent tasks.
async fn drain(q: Arc<SqliteBackend>, total: usize, limit: usize, loops: usize) -> Duration {
    let start = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..loops)
        .map(|l| {
            let q = q.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let worker = format!("w{l}");
                let queues = vec!["default".to_owned()];
                loop {
                    let claimed = q
                        .claim(ClaimRequest::new(
                            &worker,
                            &queues,
                            limit,
                            Duration::from_secs(30),
                        ))
                        .await
                        .expect("claim")
                        .jobs;
                    if claimed.is_empty() {
                        if done.load(std::sync::atomic::Ordering::SeqCst) >= total {
                            return;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let updates: Vec<OutcomeUpdate> = claimed
                        .iter()
                        .map(|j| OutcomeUpdate::new(j.fence(), Outcome::Complete { result: None }))
                        .collect();
                    q.record(&worker, &updates).await.expect("record");
                    done.fetch_add(claimed.len(), std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

/// CPU seconds this process has used (user + system), from /proc (Linux only; 0 elsewhere).
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("jobs-sqlite-bench"));
    std::fs::create_dir_all(&dir).expect("dir");
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();

    let only = std::env::var("BENCH").unwrap_or_default();

    // W2: single enqueues, then batches.
    let q = fresh(&dir, "w2").await;
    let (start, cpu) = (Instant::now(), cpu_secs());
    for i in 0..5000 {
        q.enqueue_batch(vec![NewJob::new("noop", json!({ "n": i }))])
            .await
            .expect("enqueue");
    }
    let single = start.elapsed();
    let single_cpu = cpu_secs() - cpu;
    let (start, cpu) = (Instant::now(), cpu_secs());
    for _ in 0..5 {
        q.enqueue_batch(jobs(1000)).await.expect("enqueue");
    }
    let batched = start.elapsed();
    let batched_cpu = cpu_secs() - cpu;
    println!(
        "{:<36} {:>10} {:>14}",
        "workload", "jobs/s", "µs CPU per job"
    );
    let line = |name: String, n: usize, wall: Duration, cpu: f64| {
        println!(
            "{name:<36} {:>10.0} {:>14.1}",
            rate(n, wall),
            cpu * 1e6 / n as f64
        );
    };
    line("W2 single enqueue".into(), 5000, single, single_cpu);
    line("W2 batch of 1000".into(), 5000, batched, batched_cpu);

    if only == "w2" {
        return;
    }
    let totals: &[usize] = if only == "w1big" {
        &[200_000]
    } else if only == "w1" {
        &[20_000]
    } else {
        &[20_000, 200_000]
    };
    for &total in totals {
        let configs: &[(usize, usize)] = if only.starts_with("w1") {
            &[(8, 1), (16, 1), (64, 1)]
        } else {
            &[(8, 1), (16, 1), (64, 1), (16, 2), (64, 2)]
        };
        for &(limit, loops) in configs {
            let q = fresh(&dir, "w1").await;
            for _ in 0..total / 1000 {
                q.enqueue_batch(jobs(1000)).await.expect("enqueue");
            }
            let cpu = cpu_secs();
            let took = drain(q, total, limit, loops).await;
            line(
                format!("drain {total} (claim {limit}, {loops} loops)"),
                total,
                took,
                cpu_secs() - cpu,
            );
        }
    }
}
