//! Generating reports (the seed's `ReportJobHandler`) on the durable SQLite
//! backend: a long job that records its progress, stops cooperatively when its
//! context is cancelled (shutdown, timeout), stores a file, and notifies the
//! user if it finally fails.
//!
//! ```text
//! cargo run --example report
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jobs::prelude::*;
use jobs::JobId;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateReport {
    pub report_type: String,
    pub start_date: String,
    pub end_date: String,
    pub user_id: u64,
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
}

impl Validate for GenerateReport {
    fn validate(&self) -> Result<(), String> {
        // ISO dates compare correctly as strings.
        if self.start_date > self.end_date {
            return Err(format!(
                "start_date {} is after end_date {}",
                self.start_date, self.end_date
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Generated {
    pub file_path: String,
    pub report_type: String,
    pub size_bytes: usize,
}

/// Builds reports a section at a time, and keeps the files and the progress
/// of each job (a real one would be a database and an object store).
#[derive(Debug, Default)]
pub struct Reports {
    pub progress: Mutex<HashMap<JobId, u32>>,
    pub files: Mutex<BTreeMap<String, Vec<u8>>>,
    pub notifications: Mutex<Vec<String>>,
    /// Per-section work, to make the report take a while.
    pub section_time: Duration,
}

const SECTIONS: u32 = 5;

#[job_handler(
    "report.generate",
    queue = "reports",
    max_retries = 1,
    timeout = "2m",
    on_failure = report_failed
)]
async fn generate_report(
    report: GenerateReport,
    reports: Data<Reports>,
    ctx: JobContext,
) -> Result<Generated, JobError> {
    tracing::info!(job_id = %ctx.id(), report_type = %report.report_type, "generating report");
    let mut body = format!(
        "{} report {}..{} {:?}\n",
        report.report_type, report.start_date, report.end_date, report.filters
    );
    for section in 1..=SECTIONS {
        // Cooperative cancellation: on shutdown or timeout, stop between
        // sections; the failed attempt is retried (or released on shutdown).
        if ctx.is_cancelled() {
            return Err(JobError::msg(format!(
                "stopped after {} of {SECTIONS} sections",
                section - 1
            )));
        }
        tokio::time::sleep(reports.section_time).await;
        body.push_str(&format!("section {section}\n"));
        reports
            .progress
            .lock()
            .unwrap()
            .insert(ctx.id(), section * 100 / SECTIONS);
    }
    let file_path = format!(
        "reports/{}/{}_{}_{}.txt",
        report.user_id, report.report_type, report.start_date, report.end_date
    );
    let size_bytes = body.len();
    reports
        .files
        .lock()
        .unwrap()
        .insert(file_path.clone(), body.into_bytes());
    Ok(Generated {
        file_path,
        report_type: report.report_type,
        size_bytes,
    })
}

async fn report_failed(job: &Job, error: &JobError, reports: Data<Reports>) {
    if job.is_last_attempt() {
        let user = job.payload["user_id"].as_u64().unwrap_or_default();
        reports.notifications.lock().unwrap().push(format!(
            "user {user}: report job {} failed: {error}",
            job.id
        ));
    }
}

fn quarterly(report_type: &str) -> GenerateReport {
    GenerateReport {
        report_type: report_type.into(),
        start_date: "2026-01-01".into(),
        end_date: "2026-03-31".into(),
        user_id: 42,
        filters: BTreeMap::from([("region".into(), "emea".into())]),
    }
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    let db = std::env::temp_dir().join(format!("jobs-report-{}.db", std::process::id()));
    let queue = jobs::connect(&format!("sqlite://{}", db.display())).await?;
    let ids = queue
        .enqueue_batch([quarterly("sales"), quarterly("churn")])
        .await?;
    let reports = std::sync::Arc::new(Reports {
        section_time: Duration::from_millis(40),
        ..Reports::default()
    });
    let manager = WorkerManager::builder(queue.clone())
        .data_arc(reports.clone())
        .queues(["reports"])
        .build()?;
    manager.start().await?;
    for id in &ids {
        loop {
            let job = queue.get(*id).await?.expect("stored");
            let pct = reports
                .progress
                .lock()
                .unwrap()
                .get(&id.id())
                .copied()
                .unwrap_or(0);
            println!("{id} {:<10} {pct:>3}%", job.status.to_string());
            if job.status.is_terminal() {
                println!("  -> {}", job.result_data.unwrap_or_default());
                break;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    manager.stop().await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::testing::{drain, perform};
    use jobs::CancelReason;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_report_is_generated_section_by_section() {
        let reports = Arc::new(Reports::default());
        let out = perform::<GenerateReportHandler>(quarterly("sales"))
            .data_arc(reports.clone())
            .await;
        let generated: Generated = out.result_as();
        assert_eq!(
            generated.file_path,
            "reports/42/sales_2026-01-01_2026-03-31.txt"
        );
        assert_eq!(reports.progress.lock().unwrap()[&out.job().id], 100);
        let files = reports.files.lock().unwrap();
        let text = String::from_utf8(files[&generated.file_path].clone()).unwrap();
        assert_eq!(text.lines().count(), 1 + SECTIONS as usize);
        assert_eq!(generated.size_bytes, text.len());
    }

    /// Stopped for a shutdown before the first section: the attempt is
    /// released back to the queue (no failure, no notification).
    #[tokio::test]
    async fn a_cancelled_attempt_stops_between_sections() {
        let reports = Arc::new(Reports::default());
        let out = perform::<GenerateReportHandler>(quarterly("sales"))
            .data_arc(reports.clone())
            .cancelled(CancelReason::Shutdown)
            .await;
        assert_eq!(out.status(), JobStatus::Pending);
        assert_eq!(
            out.error().unwrap().message(),
            "stopped after 0 of 5 sections"
        );
        assert!(reports.files.lock().unwrap().is_empty());
        assert!(reports.notifications.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_backwards_range_fails_for_good_and_notifies_the_user() {
        let reports = Arc::new(Reports::default());
        let mut backwards = quarterly("churn");
        backwards.start_date = "2026-04-01".into();
        let out = perform::<GenerateReportHandler>(backwards)
            .data_arc(reports.clone())
            .await;
        assert_eq!(out.status(), JobStatus::Failed);
        let notes = reports.notifications.lock().unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("user 42") && notes[0].contains("after end_date"));
    }

    /// On the durable SQLite backend: the queue drained in the test.
    #[tokio::test]
    async fn reports_run_on_sqlite_and_bad_ranges_notify_the_user() {
        let dir = std::env::temp_dir().join(format!(
            "jobs-report-test-{}-{}",
            std::process::id(),
            JobId::new()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let queue = jobs::connect(&format!("sqlite://{}", dir.join("jobs.db").display()))
            .await
            .unwrap();
        let ok = queue.enqueue(quarterly("sales")).await.unwrap();
        // Refused at enqueue by Validate, so stored through the backend port
        // as a producer in another process would.
        let mut backwards = quarterly("churn");
        backwards.start_date = "2026-04-01".into();
        let bad = jobs::NewJob::new("report.generate", serde_json::to_value(&backwards).unwrap())
            .queue("reports");
        assert!(queue.enqueue_job(bad.clone()).await.is_err());
        let bad = queue.backend().enqueue_batch(vec![bad]).await.unwrap()[0];

        let reports = Arc::new(Reports::default());
        let drained = drain(&queue).data_arc(reports.clone()).await.unwrap();
        assert_eq!((drained.completed, drained.failed), (1, 1));
        let ok = queue.get(ok).await.unwrap().unwrap();
        assert_eq!(ok.status, JobStatus::Completed);
        assert_eq!(ok.result_data.unwrap()["report_type"], "sales");
        let bad = queue.get(bad).await.unwrap().unwrap();
        assert_eq!((bad.status, bad.attempt), (JobStatus::Failed, 1));
        assert_eq!(reports.notifications.lock().unwrap().len(), 1);
        drop(queue);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
