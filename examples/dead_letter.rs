//! A dead-letter processor: a `#[job_handler]` that inspects the jobs that
//! exhausted their retries and requeues the ones that died of a transient
//! cause (the supplier was down), leaving the rest for a person to look at.
//! It gets the queue itself injected as `Data<Queue>`.
//!
//! ```text
//! cargo run --example dead_letter
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;
use jobs::JobFilter;

#[derive(Debug, Serialize, Deserialize)]
pub struct SyncStock {
    pub sku: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SupplierError {
    #[error("supplier API unavailable (503)")]
    Unavailable,
    #[error("unknown SKU {0}")]
    UnknownSku(String),
}

/// A supplier API that can be switched off.
#[derive(Debug, Default)]
pub struct Supplier {
    pub down: AtomicBool,
}

#[job_handler(
    "stock.sync",
    max_retries = 1,
    backoff = Backoff::fixed(Duration::from_millis(5))
)]
async fn sync_stock(job: SyncStock, supplier: Data<Supplier>) -> Result<u32, SupplierError> {
    if supplier.down.load(Ordering::SeqCst) {
        return Err(SupplierError::Unavailable);
    }
    if job.sku.starts_with("X-") {
        return Err(SupplierError::UnknownSku(job.sku));
    }
    Ok(job.sku.len() as u32 * 10)
}

/// Sweep the dead letters of one job type (all types if `None`).
#[derive(Debug, Serialize, Deserialize)]
pub struct SweepDeadLetters {
    pub job_type: Option<String>,
}

/// What the sweep did, stored as its `result_data`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sweep {
    pub requeued: Vec<String>,
    pub kept: Vec<String>,
}

/// Causes worth another try: the service was away, not the job wrong.
const TRANSIENT: &[&str] = &["unavailable", "timed out", "connection"];

fn died_of_transient_cause(job: &Job) -> bool {
    let last = job.errors.last().map(|e| e.message.as_str());
    let last = last.or(job.error_message.as_deref()).unwrap_or_default();
    TRANSIENT.iter().any(|t| last.contains(t))
}

#[job_handler("dead_letter.sweep", queue = "maintenance", max_retries = 0)]
async fn sweep_dead_letters(
    sweep: SweepDeadLetters,
    queue: Data<Queue>,
) -> Result<Sweep, jobs::Error> {
    let mut filter = JobFilter::default().status(JobStatus::DeadLetter);
    filter.job_type = sweep.job_type;
    let mut done = Sweep::default();
    for job in queue.list(&filter).await? {
        if died_of_transient_cause(&job) {
            tracing::info!(job_id = %job.id, job_type = %job.job_type, "requeueing dead job");
            queue.requeue(job.id).await?;
            done.requeued.push(job.id.to_string());
        } else {
            done.kept.push(job.id.to_string());
        }
    }
    Ok(done)
}

async fn drain(queue: &Queue) -> jobs::Result<()> {
    while queue
        .counts()
        .await?
        .iter()
        .any(|c| !c.status.is_terminal())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The whole story; returns the sweep's result and the final stock jobs.
pub async fn run() -> jobs::Result<(Sweep, Vec<Job>)> {
    let queue = jobs::connect("memory://").await?;
    let supplier = Arc::new(Supplier::default());
    let manager = WorkerManager::builder(queue.clone())
        .data_arc(supplier.clone())
        .data(queue.clone())
        .queues(["default", "maintenance"])
        .build()?;
    manager.start().await?;

    // The supplier is down: every sync dies after its retry.
    supplier.down.store(true, Ordering::SeqCst);
    let skus = ["A-100", "B-2000", "X-bogus"];
    let ids = queue
        .enqueue_batch(skus.map(|sku| SyncStock { sku: sku.into() }))
        .await?;
    drain(&queue).await?;
    // The bogus SKU fails for a reason of its own once the supplier is back.
    supplier.down.store(false, Ordering::SeqCst);
    let bogus = queue.get(ids[2]).await?.expect("stored");
    queue.requeue(bogus.id).await?;
    drain(&queue).await?;

    // The sweep: requeue what died of the outage, keep the rest.
    let sweep = queue.enqueue(SweepDeadLetters { job_type: None }).await?;
    drain(&queue).await?;
    manager.stop().await?;

    let sweep: Sweep = queue
        .get(sweep)
        .await?
        .and_then(|j| j.result_data)
        .map(|d| serde_json::from_value(d).expect("a Sweep"))
        .unwrap_or_default();
    let mut jobs = Vec::new();
    for id in ids {
        jobs.extend(queue.get(id).await?);
    }
    Ok((sweep, jobs))
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    let (sweep, jobs) = run().await?;
    println!(
        "sweep requeued {} job(s), kept {}",
        sweep.requeued.len(),
        sweep.kept.len()
    );
    for job in jobs {
        let outcome = match job.status {
            JobStatus::Completed => job.result_data.map(|d| d.to_string()),
            _ => job.error_message,
        };
        println!(
            "{:<8} {:<11} {}",
            job.payload["sku"].as_str().unwrap_or_default(),
            job.status.to_string(),
            outcome.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transient_dead_letters_are_requeued_and_complete() {
        let (sweep, jobs) = run().await.unwrap();
        let states: Vec<_> = jobs
            .iter()
            .map(|j| (j.payload["sku"].as_str().unwrap(), j.status))
            .collect();
        assert_eq!(
            states,
            [
                ("A-100", JobStatus::Completed),
                ("B-2000", JobStatus::Completed),
                ("X-bogus", JobStatus::DeadLetter),
            ]
        );
        assert_eq!(sweep.requeued.len(), 2);
        assert_eq!(sweep.kept, [jobs[2].id.to_string()]);
        assert_eq!(jobs[0].result_data, Some(serde_json::json!(50)));
        assert!(jobs[2]
            .error_message
            .as_deref()
            .unwrap()
            .contains("unknown SKU"));
    }

    #[test]
    fn classification_reads_the_last_error() {
        let mut job = Job::from_new(jobs::NewJob::new("stock.sync", serde_json::json!({})));
        job.error_message = Some("supplier API unavailable (503)".into());
        assert!(died_of_transient_cause(&job));
        job.error_message = Some("unknown SKU X".into());
        assert!(!died_of_transient_cause(&job));
    }
}
