//! The quickstart: two handlers written in the seed's style (constructor
//! injection, `impl JobHandler`), a mix of jobs — one that fails once and is
//! retried, one that exhausts its retries and is dead-lettered, one rejected as
//! invalid — a manager that runs until the queue is drained, and a summary.
//! The jobs live in a SQLite file (the embedded, durable default).
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{BoxError, JobFilter};
use serde_json::json;

/// A fake mail service: `flaky@` addresses fail the first time, `bounce@` always.
#[derive(Default)]
struct EmailService {
    seen: Mutex<HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("SMTP server said 451 for {0}: try again later")]
struct SmtpUnavailable(String);

impl EmailService {
    async fn send_email(&self, to: &str, subject: &str) -> Result<String, SmtpUnavailable> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let first_time = self.seen.lock().unwrap().insert(to.to_owned());
        if to.starts_with("bounce@") || (to.starts_with("flaky@") && first_time) {
            return Err(SmtpUnavailable(to.to_owned()));
        }
        Ok(format!("<{}@mail.example> {subject}", to.len()))
    }
}

struct EmailJobHandler {
    email_service: Arc<EmailService>,
}

impl JobHandler for EmailJobHandler {
    fn job_type(&self) -> &str {
        "email.send"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let recipient = job.payload["recipient"].as_str().unwrap_or_default();
        let subject = job.payload["subject"].as_str().unwrap_or_default();
        if !recipient.contains('@') {
            // An expected failure: retrying cannot fix it.
            return Ok(JobResult::failure(JobError::permanent(format!(
                "invalid recipient {recipient:?}"
            ))));
        }
        // A transient failure: `?` turns it into a retryable error.
        let message_id = self.email_service.send_email(recipient, subject).await?;
        Ok(JobResult::with_data(json!({ "message_id": message_id })))
    }

    async fn on_failure(&self, job: &Job, error: &JobError) -> Result<(), BoxError> {
        if job.retry_count >= job.max_retries {
            eprintln!(
                "  ALERT: job {} gave up after {} retries: {error}",
                job.id, job.max_retries
            );
        }
        Ok(())
    }
}

struct ReportJobHandler;

impl JobHandler for ReportJobHandler {
    fn job_type(&self) -> &str {
        "report.generate"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let rows = job.payload["rows"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(JobResult::with_data(
            json!({ "rows": rows, "total": rows * (rows + 1) / 2 }),
        ))
    }
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .init();

    // The embedded durable default: a SQLite file, created on first use.
    let db = std::env::temp_dir().join("jobs-quickstart.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let url = format!("sqlite://{}", db.display());
    let queue = jobs::connect(&url).await?;

    let email = |to: &str| {
        NewJob::new(
            "email.send",
            json!({ "recipient": to, "subject": "Welcome!" }),
        )
    };
    queue.enqueue_job(email("ada@example.com")).await?;
    queue.enqueue_job(email("flaky@example.com")).await?; // fails once, then succeeds
    queue
        .enqueue_job(email("bounce@example.com").max_retries(2))
        .await?; // dead-letters
    queue.enqueue_job(email("not-an-address")).await?; // fails without retry
    queue
        .enqueue_job(NewJob::new("report.generate", json!({ "rows": 100 })).queue("reports"))
        .await?;

    let manager = WorkerManager::builder(queue.clone())
        .handler(EmailJobHandler {
            email_service: Arc::new(EmailService::default()),
        })
        .handler(ReportJobHandler)
        .queues(["default", "reports"])
        .concurrency(4)
        .backoff(Backoff::exponential(Duration::from_millis(50)))
        .build()?;

    println!("running jobs…");
    manager.start().await?;
    while queue
        .counts()
        .await?
        .iter()
        .any(|c| !c.status.is_terminal())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    manager.stop().await?;

    println!(
        "\n{:<16} {:<12} {:>8}  outcome",
        "job type", "status", "attempts"
    );
    for job in queue.list(&JobFilter::default()).await? {
        let outcome = match job.status {
            JobStatus::Completed => job.result_data.map(|d| d.to_string()).unwrap_or_default(),
            _ => job.error_message.unwrap_or_default(),
        };
        println!(
            "{:<16} {:<12} {:>8}  {outcome}",
            job.job_type,
            job.status.to_string(),
            job.attempt
        );
    }
    let stats = manager.stats();
    println!(
        "\n{} completed, {} retried, {} failed, {} dead-lettered",
        stats.completed, stats.retried, stats.failed, stats.dead_lettered
    );
    println!(
        "the jobs are kept in {}; inspect them with `cargo run -- --url {url} list`",
        db.display()
    );
    Ok(())
}
