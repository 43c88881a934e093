//! `GET /metrics`: Prometheus text gauges computed from the backend at each
//! scrape — jobs by queue and status, paused queues, the oldest waiting job's
//! age per queue, the jobs that finished in the last full minute by outcome
//! (from the backend's throughput history), registered workers and the jobs
//! they run.
//!
//! `jobs_queue_jobs{queue,status}` and `jobs_running{worker}` have the names
//! and labels of the runtime's own gauges, so either source fills the same
//! panels (scrape one of them for these, or a sum counts twice).
//!
//! Counters and histograms of what happens inside the worker processes
//! (jobs enqueued, completed, failed…, run time, queue latency) are not
//! here: the runtime records them through the `metrics` facade in each
//! worker process, for the exporter that process installs.

use std::fmt::Write as _;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::live::{queue_rows, COLUMNS};
use super::util::Ctx;

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn metrics(ctx: Ctx) -> Response {
    match render(&ctx).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "# the backend failed: {}\n",
                e.to_string().replace('\n', " ")
            ),
        )
            .into_response(),
    }
}

async fn render(ctx: &Ctx) -> crate::Result<String> {
    let queue = &ctx.state.queue;
    let rows = queue_rows(queue, true).await?;
    let workers = queue.workers().await.unwrap_or_default();
    let now = Utc::now();
    let mut out = String::new();
    out.push_str(
        "# HELP jobs_queue_jobs Jobs by queue and status, as the backend counts them now.\n",
    );
    out.push_str("# TYPE jobs_queue_jobs gauge\n");
    for r in &rows {
        for (i, (status, _)) in COLUMNS.iter().enumerate() {
            let _ = writeln!(
                out,
                "jobs_queue_jobs{{queue=\"{}\",status=\"{}\"}} {}",
                label(&r.name),
                status.as_str().to_ascii_lowercase(),
                r.counts[i]
            );
        }
    }
    out.push_str("# HELP jobs_queue_paused Whether the queue is paused (1) or not (0).\n");
    out.push_str("# TYPE jobs_queue_paused gauge\n");
    for r in &rows {
        let _ = writeln!(
            out,
            "jobs_queue_paused{{queue=\"{}\"}} {}",
            label(&r.name),
            u8::from(r.paused)
        );
    }
    out.push_str(
        "# HELP jobs_queue_oldest_waiting_seconds How long the queue's oldest waiting job has been due (0: none waits).\n",
    );
    out.push_str("# TYPE jobs_queue_oldest_waiting_seconds gauge\n");
    for r in &rows {
        let age = r.oldest_waiting.map_or(0.0, |t| {
            ((now - t).num_milliseconds().max(0) as f64) / 1000.0
        });
        let _ = writeln!(
            out,
            "jobs_queue_oldest_waiting_seconds{{queue=\"{}\"}} {age}",
            label(&r.name)
        );
    }
    // The last full minute of the backend's throughput history, if it keeps one.
    let last_minute = crate::minute_of(now) - chrono::Duration::minutes(1);
    if let Ok(buckets) = queue.throughput(last_minute).await {
        out.push_str(
            "# HELP jobs_queue_finished_last_minute Jobs of the queue that ended an attempt in the last full minute, by outcome, as the backend counted them.\n",
        );
        out.push_str("# TYPE jobs_queue_finished_last_minute gauge\n");
        for b in buckets.iter().filter(|b| b.minute == last_minute) {
            for (outcome, n) in [
                ("completed", b.completed),
                ("failed", b.failed),
                ("dead", b.dead),
                ("retried", b.retried),
            ] {
                let _ = writeln!(
                    out,
                    "jobs_queue_finished_last_minute{{queue=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(&b.queue)
                );
            }
        }
    }
    out.push_str("# HELP jobs_workers Workers registered with the backend.\n");
    out.push_str("# TYPE jobs_workers gauge\n");
    let _ = writeln!(out, "jobs_workers {}", workers.len());
    out.push_str("# HELP jobs_running Jobs each worker runs now, as it last registered.\n");
    out.push_str("# TYPE jobs_running gauge\n");
    for w in &workers {
        let _ = writeln!(
            out,
            "jobs_running{{worker=\"{}\"}} {}",
            label(&w.id),
            w.running
        );
    }
    out.push_str("# HELP jobs_worker_concurrency Jobs each worker runs at most at once.\n");
    out.push_str("# TYPE jobs_worker_concurrency gauge\n");
    for w in &workers {
        let _ = writeln!(
            out,
            "jobs_worker_concurrency{{worker=\"{}\",host=\"{}\"}} {}",
            label(&w.id),
            label(&w.host),
            w.concurrency
        );
    }
    Ok(out)
}
