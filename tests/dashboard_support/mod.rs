//! What the dashboard tests share: a queue seeded with jobs in every
//! finished and waiting state, some carrying XSS payloads.
#![allow(dead_code)]

use std::time::Duration;

use jobs::{
    Job, JobError, JobHandler, JobId, JobResult, Queue, ScheduleState, WorkerManager,
    WorkerManagerBuilder,
};
use serde_json::json;

/// Payloads and names that would run script if shown unescaped.
pub const XSS_SCRIPT: &str = "<script>alert(1)</script>";
pub const XSS_IMG: &str = "\"><img src=x onerror=alert(1)>";
/// A job type and a queue name may hold no whitespace.
pub const XSS_TYPE: &str = "<script>alert(1)</script>";
pub const XSS_QUEUE: &str = "\"><img/src=x/onerror=alert(1)>";

/// Does what its payload's `outcome` says: `ok`, `fail` (retryable, with
/// `error` as the message), `permanent`, or `sleep` (for `ms`).
pub struct Scripted(pub String);

impl JobHandler for Scripted {
    fn job_type(&self) -> &str {
        &self.0
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let error = job.payload["error"].as_str().unwrap_or("boom").to_owned();
        match job.payload["outcome"].as_str() {
            Some("fail") => Err(JobError::retryable(error)),
            Some("permanent") => Err(JobError::permanent(error)),
            Some("sleep") => {
                let ms = job.payload["ms"].as_u64().unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(JobResult::success())
            }
            _ => Ok(JobResult::with_data(
                json!({ "pages": 12, "url": "https://example.invalid/r/1.pdf" }),
            )),
        }
    }
}

/// The queues the seed uses.
pub fn queues() -> Vec<String> {
    vec!["reports".into(), "emails".into(), XSS_QUEUE.into()]
}

/// A manager of every seeded job type over `queues`.
pub fn manager(queue: &Queue, queues: &[String]) -> WorkerManager {
    builder(queue, queues).build().expect("a manager")
}

/// The builder of [`manager`].
pub fn builder(queue: &Queue, queues: &[String]) -> WorkerManagerBuilder {
    WorkerManager::builder(queue.clone())
        .handler(Scripted("report.build".into()))
        .handler(Scripted("email.send".into()))
        .handler(Scripted(XSS_TYPE.into()))
        .queues(queues.iter().cloned())
        .poll_interval(Duration::from_millis(50))
        .worker_id("test-worker-1")
        .version("1.2.3")
}

/// The seeded jobs, by what happened to them.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub completed: JobId,
    pub failed: JobId,
    pub dead_reports: Vec<JobId>,
    pub dead_emails: Vec<JobId>,
    pub xss: JobId,
    pub pending: Vec<JobId>,
    pub scheduled: JobId,
}

/// Seeds `queue`: completed, failed and dead jobs (run by a manager that
/// then stops), then waiting ones nobody runs.
pub async fn seed(queue: &Queue) -> Seeded {
    let mut completed = None;
    for i in 0..3 {
        let id = queue
            .enqueue_raw(
                "report.build",
                json!({ "outcome": "ok", "report": i, "format": "pdf" }),
            )
            .queue("reports")
            .metadata("tenant", "acme")
            .await
            .unwrap()
            .id();
        completed.get_or_insert(id);
    }
    let failed = queue
        .enqueue_raw(
            "report.build",
            json!({ "outcome": "permanent", "error": "template `q4` not found" }),
        )
        .queue("reports")
        .await
        .unwrap()
        .id();
    let mut dead_reports = Vec::new();
    for i in 0..2 {
        dead_reports.push(
            queue
                .enqueue_raw(
                    "report.build",
                    json!({ "outcome": "fail", "report": 100 + i, "error": "database timeout after 30s" }),
                )
                .queue("reports")
                .max_retries(0)
                .await
                .unwrap()
                .id(),
        );
    }
    let mut dead_emails = Vec::new();
    for i in 0..3 {
        dead_emails.push(
            queue
                .enqueue_raw(
                    "email.send",
                    json!({ "outcome": "fail", "to": format!("user{i}@example.com"), "error": "SMTP 451: mailbox busy" }),
                )
                .queue("emails")
                .max_retries(0)
                .await
                .unwrap()
                .id(),
        );
    }
    let xss = queue
        .enqueue_raw(
            XSS_TYPE,
            json!({
                "outcome": "fail",
                "html": XSS_SCRIPT,
                "attr": XSS_IMG,
                "error": format!("{XSS_SCRIPT} {XSS_IMG}"),
            }),
        )
        .queue(XSS_QUEUE)
        .metadata(XSS_IMG, XSS_SCRIPT)
        .max_retries(0)
        .await
        .unwrap()
        .id();
    manager(queue, &queues()).run_until_drained().await.unwrap();

    // Waiting jobs: a queue no manager works now, and one due in an hour.
    let mut pending = Vec::new();
    for i in 0..3 {
        pending.push(
            queue
                .enqueue_raw(
                    "email.send",
                    json!({ "outcome": "ok", "to": format!("later{i}@example.com") }),
                )
                .queue("emails")
                .await
                .unwrap()
                .id(),
        );
    }
    let scheduled = queue
        .enqueue_raw(
            "report.build",
            json!({ "outcome": "ok", "report": "nightly" }),
        )
        .queue("reports")
        .delay(Duration::from_secs(3600))
        .await
        .unwrap()
        .id();
    let mut schedule = ScheduleState::new("nightly-report", "0 3 * * *", "Europe/Paris");
    schedule.next_tick = Some(chrono::Utc::now() + chrono::Duration::hours(5));
    let _ = queue.backend().save_schedule(&schedule).await;
    Seeded {
        completed: completed.unwrap(),
        failed,
        dead_reports,
        dead_emails,
        xss,
        pending,
        scheduled,
    }
}

/// The backends the dashboard tests run on: memory, and SQLite (a fresh file
/// under `target/tmp`) when the `sqlite` feature is on.
/// `JOBS_TEST_DASHBOARD_URL` replaces the list with one URL (any backend).
pub fn backend_urls() -> Vec<String> {
    if let Ok(url) = std::env::var("JOBS_TEST_DASHBOARD_URL") {
        // `{unique}` becomes a fresh name for each test (a PostgreSQL
        // `?schema=dash_{unique}`, a Redis `?prefix=dash_{unique}`).
        return vec![url.replace("{unique}", &uuid::Uuid::new_v4().simple().to_string())];
    }
    #[allow(unused_mut)]
    let mut urls = vec!["memory://".to_owned()];
    #[cfg(feature = "sqlite")]
    urls.push(sqlite_url());
    urls
}

/// A fresh SQLite file, in cargo's directory for test files (under `target/`).
pub fn sqlite_url() -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "jobs-dashboard-{}-{}.db",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    format!("sqlite://{}", path.display())
}
