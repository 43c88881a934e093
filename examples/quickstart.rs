//! The quickstart: a handler written with `#[job_handler]` (typed payload,
//! injected service, validation) and one in the seed's hand-written style
//! (`impl JobHandler`) sharing one manager; a mix of jobs — one that fails once
//! and is retried, one that exhausts its retries and is dead-lettered, one
//! that fails without retry, one refused as invalid — a manager that runs until the queue is drained, and a
//! summary.
//! The jobs live in a SQLite file (the embedded, durable default).
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use jobs::prelude::*;
use jobs::JobFilter;
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

/// The email job. `Validate` runs before the handler: an address without `@`
/// is refused at enqueue, and fails without retry if another producer stored it.
#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
    subject: String,
}

impl Validate for SendEmail {
    fn validate(&self) -> Result<(), String> {
        if self.recipient.contains('@') {
            Ok(())
        } else {
            Err(format!("invalid recipient {:?}", self.recipient))
        }
    }
}

/// A handler written with the macro: the payload comes typed, the service is
/// injected, a transient error (`?`) is retried, and `email_failed` runs after
/// every failed attempt. It registers itself; it is `SendEmailHandler`.
#[job_handler("email.send", max_retries = 3, on_failure = email_failed)]
async fn send_email(
    email: SendEmail,
    email_service: Data<EmailService>,
) -> Result<serde_json::Value, SmtpUnavailable> {
    let message_id = email_service
        .send_email(&email.recipient, &email.subject)
        .await?;
    Ok(json!({ "message_id": message_id }))
}

async fn email_failed(job: &Job, error: &JobError) {
    if job.is_last_attempt() {
        eprintln!(
            "  ALERT: job {} gave up after {} retries: {error}",
            job.id, job.max_retries
        );
    }
}

/// A handler in the seed's hand-written style, in the same manager.
struct ReportJobHandler;

impl JobHandler for ReportJobHandler {
    fn job_type(&self) -> &str {
        "report.generate"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let rows = job.payload["rows"].as_u64().unwrap_or(0);
        if rows == 0 {
            // Retrying cannot help: FAILED at once, `on_failure` still runs.
            return Ok(JobResult::failure(JobError::permanent(
                "the report has no rows",
            )));
        }
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

    let email = |to: &str| SendEmail {
        recipient: to.to_owned(),
        subject: "Welcome!".to_owned(),
    };
    queue.enqueue(email("ada@example.com")).await?;
    queue.enqueue(email("flaky@example.com")).await?; // fails once, then succeeds
                                                      // Dead-letters: fails on every attempt.
    queue
        .enqueue(email("bounce@example.com"))
        .max_retries(2)
        .await?;
    // Refused before it is stored, naming the job type and the reason.
    let refused = queue.enqueue(email("not-an-address")).await.unwrap_err();
    println!("refused: {refused}");
    queue
        .enqueue_job(NewJob::new("report.generate", json!({ "rows": 100 })).queue("reports"))
        .await?;
    // Fails without retry: an expected failure the handler reports as such.
    queue
        .enqueue_job(NewJob::new("report.generate", json!({ "rows": 0 })).queue("reports"))
        .await?;

    let manager = WorkerManager::builder(queue.clone())
        // `send_email` is registered at link time; the hand-written one by hand.
        .handler(ReportJobHandler)
        .data(EmailService::default())
        .queues(["default", "reports"])
        .concurrency(4)
        .backoff(Backoff::exponential(Duration::from_millis(50)))
        .build()?;

    println!("running jobs…");
    manager.run_until_drained().await?;

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
        "the jobs are kept in {}; inspect them with `cargo run -F cli -- --url {url} list`",
        db.display()
    );
    Ok(())
}
