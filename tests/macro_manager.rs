//! `#[job_handler]` under a real `WorkerManager` (memory backend): link-time
//! registration next to a hand-written handler, start-up checks, and the state
//! machine as the macro's options shape it.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobFilter, NewJob};
use serde_json::json;
use support::wait_for_status;

#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[derive(Debug, thiserror::Error)]
#[error("smtp unavailable")]
struct SmtpDown;

#[derive(Default)]
struct Mailer {
    sent: AtomicU32,
}

#[derive(Default)]
struct Alerts {
    failures: AtomicU32,
    last_attempt_seen: AtomicU32,
}

#[job_handler(
    "email.send",
    queue = "emails",
    max_retries = 2,
    backoff = Backoff::fixed(Duration::from_millis(1)),
    on_failure = email_failed
)]
async fn send_email(
    email: SendEmail,
    mailer: Data<Mailer>,
    ctx: JobContext,
) -> Result<serde_json::Value, SmtpDown> {
    if email.recipient.starts_with("down@") {
        return Err(SmtpDown);
    }
    mailer.sent.fetch_add(1, Ordering::SeqCst);
    Ok(json!({ "to": email.recipient, "attempt": ctx.attempt() }))
}

async fn email_failed(job: &Job, _error: &JobError, alerts: Data<Alerts>) {
    alerts.failures.fetch_add(1, Ordering::SeqCst);
    if job.retry_count >= job.max_retries {
        alerts
            .last_attempt_seen
            .store(job.attempt, Ordering::SeqCst);
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Transfer {
    amount: i64,
}

impl Validate for Transfer {
    fn validate(&self) -> Result<(), String> {
        (self.amount > 0)
            .then_some(())
            .ok_or_else(|| "amount must be positive".to_owned())
    }
}

#[job_handler("bank.transfer", max_retries = 5)]
async fn transfer(t: Transfer) -> JobResult {
    JobResult::with_data(json!({ "moved": t.amount }))
}

#[derive(Debug, Serialize, Deserialize)]
struct Slow;

#[job_handler("slow.job", timeout = "50ms", max_retries = 0)]
async fn slow(_: Slow, ctx: JobContext) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        _ = ctx.cancelled() => {}
    }
}

/// The seed's hand-written style, in the same manager as the macro handlers.
struct ReportJobHandler;

impl JobHandler for ReportJobHandler {
    fn job_type(&self) -> &str {
        "report.generate"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let rows = job.payload["rows"].as_u64().unwrap_or(0);
        Ok(JobResult::with_data(json!({ "total": rows * 2 })))
    }
}

/// Hand-written, claiming a job type a `#[job_handler]` already has.
struct RogueEmailHandler;

impl JobHandler for RogueEmailHandler {
    fn job_type(&self) -> &str {
        "email.send"
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

fn builder(queue: &Queue) -> jobs::WorkerManagerBuilder {
    WorkerManager::builder(queue.clone())
        .queues(["emails", "default"])
        .concurrency(4)
        .poll_interval(Duration::from_millis(10))
}

#[tokio::test]
async fn macro_and_hand_written_handlers_share_one_manager() {
    let queue = jobs::connect("memory://").await.unwrap();
    let email = queue
        .enqueue(SendEmail {
            recipient: "ada@example.com".into(),
        })
        .await
        .unwrap();
    let report = queue
        .enqueue_raw("report.generate", json!({ "rows": 21 }))
        .await
        .unwrap();
    // No list of macro handlers: they are all registered at link time.
    let manager = builder(&queue)
        .handler(ReportJobHandler)
        .data(Mailer::default())
        .data(Alerts::default())
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let done = wait_for_status(&queue, email, JobStatus::Completed).await;
    assert_eq!(done.queue_name, "emails");
    assert_eq!(
        done.result_data,
        Some(json!({ "to": "ada@example.com", "attempt": 1 }))
    );
    let done = wait_for_status(&queue, report, JobStatus::Completed).await;
    assert_eq!(done.result_data, Some(json!({ "total": 42 })));
    manager.stop().await.unwrap();
}

#[tokio::test]
async fn build_refuses_a_missing_service_naming_the_handler_and_the_type() {
    let queue = jobs::connect("memory://").await.unwrap();
    let err = builder(&queue).data(Alerts::default()).build().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SendEmailHandler") && msg.contains("Mailer") && msg.contains("email.send"),
        "{msg}"
    );
    // Also when the handler is given by hand, without link-time registration.
    let err = builder(&queue)
        .auto_register(false)
        .handler(SendEmailHandler)
        .data(Alerts::default())
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SendEmailHandler")
            && msg.contains("Mailer")
            && msg.contains("macro_manager.rs"),
        "{msg}"
    );
    // A service only the `on_failure` function needs is checked too.
    let err = builder(&queue).data(Mailer::default()).build().unwrap_err();
    assert!(err.to_string().contains("Alerts"), "{err}");
}

#[tokio::test]
async fn a_second_handler_for_a_job_type_is_refused_naming_both_locations() {
    let queue = jobs::connect("memory://").await.unwrap();
    let Err(err) = builder(&queue)
        .handler(RogueEmailHandler)
        .data(Mailer::default())
        .data(Alerts::default())
        .build()
    else {
        panic!("two handlers for `email.send` must be refused");
    };
    let msg = err.to_string();
    assert!(msg.contains("email.send"), "{msg}");
    assert!(msg.contains("macro_manager.rs"), "{msg}");
    let src = include_str!("macro_manager.rs");
    let line = src
        .lines()
        .position(|l| l.starts_with("async fn send_email("))
        .unwrap()
        + 1;
    assert!(msg.contains(&format!("macro_manager.rs:{line}")), "{msg}");
}

#[tokio::test]
async fn explicit_registration_works_with_or_without_link_time_registration() {
    let queue = jobs::connect("memory://").await.unwrap();
    let id = queue.enqueue(Transfer { amount: 3 }).await.unwrap();
    let manager = builder(&queue)
        .auto_register(false)
        .register(&TransferHandler::REGISTRATION)
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_for_status(&queue, id, JobStatus::Completed).await;
    manager.stop().await.unwrap();

    // Registering by hand what is also registered at link time is not a duplicate.
    builder(&queue)
        .register(&TransferHandler::REGISTRATION)
        .data(Mailer::default())
        .data(Alerts::default())
        .build()
        .unwrap();
}

#[tokio::test]
async fn failures_follow_the_state_machine() {
    let queue = jobs::connect("memory://").await.unwrap();
    let alerts = std::sync::Arc::new(Alerts::default());
    // Retryable: max_retries = 2 from the attribute, so three attempts, then dead.
    let down = queue
        .enqueue(SendEmail {
            recipient: "down@example.com".into(),
        })
        .await
        .unwrap();
    // Validation: refused by a typed enqueue; stored by another producer, it
    // is FAILED on the first attempt, though 5 retries are allowed.
    let err = queue.enqueue(Transfer { amount: -1 }).await.unwrap_err();
    assert!(err.to_string().contains("amount must be positive"), "{err}");
    let invalid = NewJob::new("bank.transfer", json!({ "amount": -1 }));
    let invalid = queue.backend().enqueue_batch(vec![invalid]).await.unwrap()[0];
    // A payload of the wrong shape that got past enqueue (another producer):
    // FAILED on the first attempt, naming the job type and the field.
    let malformed = NewJob::new("email.send", json!({ "recipient": 42 })).queue("emails");
    let malformed = queue
        .backend()
        .enqueue_batch(vec![malformed])
        .await
        .unwrap()[0];

    let manager = builder(&queue)
        .data(Mailer::default())
        .data_arc(alerts.clone())
        .build()
        .unwrap();
    manager.start().await.unwrap();

    let dead = wait_for_status(&queue, down, JobStatus::DeadLetter).await;
    assert_eq!((dead.attempt, dead.retry_count), (3, 2));
    assert_eq!(dead.error_message.as_deref(), Some("smtp unavailable"));

    let failed = wait_for_status(&queue, invalid, JobStatus::Failed).await;
    assert_eq!(failed.attempt, 1);
    assert!(
        failed
            .error_message
            .as_deref()
            .unwrap()
            .contains("`bank.transfer` failed validation: amount must be positive"),
        "{failed:?}"
    );

    let failed = wait_for_status(&queue, malformed, JobStatus::Failed).await;
    assert_eq!(failed.attempt, 1);
    let msg = failed.error_message.unwrap();
    assert!(
        msg.contains("`email.send`") && msg.contains("recipient") && msg.contains("integer"),
        "{msg}"
    );
    manager.stop().await.unwrap();
    // on_failure ran after every failed attempt of the email jobs (3 + 1), and
    // knew which one was the last.
    assert_eq!(alerts.failures.load(Ordering::SeqCst), 4);
    assert_eq!(alerts.last_attempt_seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_timeout_option_bounds_an_attempt() {
    let queue = jobs::connect("memory://").await.unwrap();
    let id = queue.enqueue(Slow).await.unwrap();
    let manager = builder(&queue)
        .data(Mailer::default())
        .data(Alerts::default())
        .build()
        .unwrap();
    manager.start().await.unwrap();
    let dead = wait_for_status(&queue, id, JobStatus::DeadLetter).await;
    assert!(
        dead.error_message.unwrap().contains("timed out"),
        "{:?}",
        queue.list(&JobFilter::default()).await.unwrap()
    );
    manager.stop().await.unwrap();
}

#[derive(Debug, Serialize, Deserialize)]
struct Crunch {
    millis: u64,
}

#[job_handler("blocking.crunch", queue = "blocking", blocking = true)]
async fn crunch(job: Crunch) -> Result<u64, std::io::Error> {
    // Blocking on purpose: with `blocking = true` this holds a thread of the
    // blocking pool, not the runtime's only worker thread.
    std::thread::sleep(Duration::from_millis(job.millis));
    Ok(job.millis)
}

#[derive(Debug, Serialize, Deserialize)]
struct Tick {}

#[job_handler("blocking.tick", queue = "blocking")]
async fn tick(_job: Tick) {}

/// On a single-threaded runtime a blocking handler would stall every other
/// job; with `blocking = true` the quick job finishes while it still blocks.
#[tokio::test(flavor = "current_thread")]
async fn a_blocking_handler_runs_on_the_blocking_pool() {
    let queue = jobs::connect("memory://").await.unwrap();
    let slow = queue.enqueue(Crunch { millis: 1_500 }).await.unwrap();
    let quick = queue.enqueue(Tick {}).await.unwrap();
    let manager = WorkerManager::builder(queue.clone())
        .queues(["blocking"])
        .data(Mailer::default())
        .data(Alerts::default())
        .build()
        .unwrap();
    manager.start().await.unwrap();
    wait_for_status(&queue, quick, JobStatus::Completed).await;
    let crunched = queue.get(slow).await.unwrap().unwrap();
    assert_eq!(
        crunched.status,
        JobStatus::Running,
        "the quick job finished while the blocking one still ran"
    );
    let done = wait_for_status(&queue, slow, JobStatus::Completed).await;
    assert_eq!(done.result_data, Some(json!(1_500)));
    manager.stop().await.unwrap();
}
