//! A dead-letter processor: a `#[job_handler]` that inspects the jobs that
//! exhausted their retries and requeues the ones that died of a transient
//! cause (the supplier was down), leaving the rest for a person to look at.
//! It takes the queue its job came from as an extractor (`queue: Queue`):
//! no `.data(queue.clone())` needed.
//!
//! ```text
//! cargo run --example dead_letter
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;

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
async fn sweep_dead_letters(sweep: SweepDeadLetters, queue: Queue) -> Result<Sweep, jobs::Error> {
    let mut filter = JobFilter::default().status(JobStatus::DeadLetter);
    filter.job_type = sweep.job_type;
    let mut done = Sweep::default();
    // Every dead letter, not only the first page of 100.
    for job in queue.list_all(&filter).await? {
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

/// The whole story; returns the sweep's result and the final stock jobs.
pub async fn run() -> jobs::Result<(Sweep, Vec<Job>)> {
    let queue = jobs::connect("memory://").await?;
    let supplier = Arc::new(Supplier::default());
    // Each phase runs until every job is done (the manager starts again).
    let manager = WorkerManager::builder(queue.clone())
        .data_arc(supplier.clone())
        .queues(["default", "maintenance"])
        .build()?;

    // The supplier is down: every sync dies after its retry.
    supplier.down.store(true, Ordering::SeqCst);
    let skus = ["A-100", "B-2000", "X-bogus"];
    let ids = queue
        .enqueue_batch(skus.map(|sku| SyncStock { sku: sku.into() }))
        .await?;
    manager.run_until_drained().await?;
    // The bogus SKU fails for a reason of its own once the supplier is back.
    supplier.down.store(false, Ordering::SeqCst);
    queue.requeue(ids[2]).await?;
    manager.run_until_drained().await?;

    // The sweep: requeue what died of the outage, keep the rest.
    let sweep = queue.enqueue(SweepDeadLetters { job_type: None }).await?;
    manager.run_until_drained().await?;

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
    use jobs::testing::{drain, perform};

    /// The sweep on its own: the dead letters are set up by draining the
    /// queue while the supplier is down, then the sweep runs against that
    /// queue (its `Queue` extractor gets it).
    #[tokio::test(start_paused = true)]
    async fn the_sweep_requeues_only_what_died_of_a_transient_cause() {
        let queue = jobs::connect("memory://").await.unwrap();
        let supplier = Arc::new(Supplier::default());
        let ids = queue
            .enqueue_batch(["A-100", "X-bogus"].map(|sku| SyncStock { sku: sku.into() }))
            .await
            .unwrap();
        supplier.down.store(true, Ordering::SeqCst);
        let first = drain(&queue)
            .data_arc(supplier.clone())
            .queues(["default"])
            .with_scheduled(true)
            .await
            .unwrap();
        assert_eq!(first.dead_lettered, 2);
        supplier.down.store(false, Ordering::SeqCst);
        queue.requeue(ids[1]).await.unwrap();
        drain(&queue)
            .data_arc(supplier.clone())
            .with_scheduled(true)
            .await
            .unwrap();

        let out = perform::<SweepDeadLettersHandler>(SweepDeadLetters { job_type: None })
            .queue(queue.clone())
            .await;
        let sweep: Sweep = out.result_as();
        assert_eq!(sweep.requeued, [ids[0].to_string()]);
        assert_eq!(sweep.kept, [ids[1].to_string()]);
        let requeued = queue.get(ids[0]).await.unwrap().unwrap();
        assert_eq!(requeued.status, JobStatus::Pending);

        let last = drain(&queue).data_arc(supplier).await.unwrap();
        assert_eq!(last.completed, 1);
        assert_eq!(
            queue.get(ids[0]).await.unwrap().unwrap().result_data,
            Some(serde_json::json!(50))
        );
    }

    /// What `main` does, with a real manager.
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
        assert!(jobs[2]
            .error_message
            .as_deref()
            .unwrap()
            .contains("unknown SKU"));
    }

    #[test]
    fn classification_reads_the_last_error() {
        let mut job = Job::from_new(NewJob::new("stock.sync", serde_json::json!({})));
        job.error_message = Some("supplier API unavailable (503)".into());
        assert!(died_of_transient_cause(&job));
        job.error_message = Some("unknown SKU X".into());
        assert!(!died_of_transient_cause(&job));
    }
}
