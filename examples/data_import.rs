//! Importing data with validation (the seed's `DataImportJobHandler`): the
//! payload is validated before any work, and a validation error fails the job
//! for good, while a flaky source is retried. `on_failure` cleans up a partial
//! import and tells the user once no retry follows.
//!
//! ```text
//! cargo run --example data_import
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jobs::prelude::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Csv,
    Json,
}

/// The job. Its shape is checked by deserialization (a `format` of `"xml"` is
/// refused naming the field), its meaning by `Validate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataImport {
    pub source_url: String,
    #[serde(default)]
    pub format: Format,
    pub user_id: u64,
}

impl Validate for DataImport {
    fn validate(&self) -> Result<(), String> {
        if !(self.source_url.starts_with("https://") || self.source_url.starts_with("http://")) {
            return Err(format!(
                "source_url must be an http(s) URL, got {:?}",
                self.source_url
            ));
        }
        if self.user_id == 0 {
            return Err("user_id is required".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("fetching {url} failed: {reason}")]
pub struct FetchError {
    url: String,
    reason: String,
}

/// Where imports come from and go to; a fake in-memory one for the example.
#[derive(Debug, Default)]
pub struct ImportService {
    /// url → the body it serves; `flaky` URLs fail on their first fetch.
    sources: HashMap<String, String>,
    fetched: Mutex<Vec<String>>,
    stored: Mutex<HashMap<u64, Vec<String>>>,
    pub notices: Mutex<Vec<String>>,
}

impl ImportService {
    pub fn with_source(mut self, url: &str, body: &str) -> Self {
        self.sources.insert(url.into(), body.into());
        self
    }

    async fn fetch(&self, url: &str) -> Result<String, FetchError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let first = {
            let mut fetched = self.fetched.lock().unwrap();
            fetched.push(url.into());
            fetched.iter().filter(|u| *u == url).count() == 1
        };
        let fail = |reason: &str| FetchError {
            url: url.into(),
            reason: reason.into(),
        };
        if url.contains("flaky") && first {
            return Err(fail("connection reset"));
        }
        self.sources.get(url).cloned().ok_or_else(|| fail("404"))
    }

    fn parse(body: &str, format: Format) -> Vec<String> {
        match format {
            Format::Csv => body.lines().skip(1).map(str::to_owned).collect(),
            Format::Json => serde_json::from_str::<Vec<serde_json::Value>>(body)
                .map(|rows| rows.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default(),
        }
    }
}

#[job_handler(
    "data.import",
    queue = "imports",
    max_retries = 2,
    backoff = Backoff::fixed(Duration::from_millis(10)),
    on_failure = import_failed
)]
async fn import_data(
    import: DataImport,
    service: Data<ImportService>,
    job: &Job,
) -> Result<serde_json::Value, FetchError> {
    tracing::info!(job_id = %job.id, source_url = %import.source_url, "starting data import");
    let body = service.fetch(&import.source_url).await?;
    let rows = ImportService::parse(&body, import.format);
    let count = rows.len();
    service.stored.lock().unwrap().insert(import.user_id, rows);
    Ok(serde_json::json!({ "records_imported": count, "import_id": job.id }))
}

async fn import_failed(job: &Job, error: &JobError, service: Data<ImportService>) {
    // Clean up whatever a failed attempt may have stored.
    if let Some(user) = job.payload["user_id"].as_u64() {
        service.stored.lock().unwrap().remove(&user);
        if job.is_last_attempt() {
            service
                .notices
                .lock()
                .unwrap()
                .push(format!("user {user}: import failed: {error}"));
        }
    }
}

fn demo_service() -> ImportService {
    ImportService::default()
        .with_source(
            "https://data.example/users.csv",
            "name\nada\ngrace\nbarbara",
        )
        .with_source(
            "https://flaky.example/orders.json",
            r#"[{"id":1},{"id":2}]"#,
        )
}

async fn run(queue: &Queue, service: ImportService) -> jobs::Result<Vec<Job>> {
    let import = |url: &str, format| DataImport {
        source_url: url.into(),
        format,
        user_id: 7,
    };
    // Invalid payloads are refused at enqueue when the handler is in this
    // process; a producer elsewhere could still store one, as here:
    let invalid = jobs::NewJob::new(
        "data.import",
        serde_json::to_value(import("ftp://old.example/x", Format::Csv)).unwrap(),
    )
    .queue("imports");
    let ids = vec![
        queue
            .enqueue(import("https://data.example/users.csv", Format::Csv))
            .await?,
        queue
            .enqueue(import("https://flaky.example/orders.json", Format::Json))
            .await?,
        queue.backend().enqueue_batch(vec![invalid]).await?[0],
    ];
    let manager = WorkerManager::builder(queue.clone())
        .data(service)
        .queues(["imports"])
        .build()?;
    manager.run_until_drained().await?;
    let mut jobs = Vec::new();
    for id in ids {
        jobs.extend(queue.get(id).await?);
    }
    Ok(jobs)
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    let queue = jobs::connect("memory://").await?;
    // Refused before anything is stored: the registered handler checks it.
    let refused = queue
        .enqueue_raw(
            "data.import",
            serde_json::json!({ "source_url": "https://x", "format": "xml", "user_id": 7 }),
        )
        .await
        .unwrap_err();
    println!("refused at enqueue: {refused}\n");
    for job in run(&queue, demo_service()).await? {
        let outcome = job.result_data.map(|d| d.to_string());
        println!(
            "{:<11} after {} attempt(s): {}",
            job.status.to_string(),
            job.attempt,
            outcome.or(job.error_message).unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::testing::{drain, perform};
    use std::sync::Arc;

    fn import(url: &str, user_id: u64) -> DataImport {
        DataImport {
            source_url: url.into(),
            format: Format::Csv,
            user_id,
        }
    }

    #[tokio::test]
    async fn an_import_stores_its_rows() {
        let service = Arc::new(demo_service());
        let out = perform::<ImportDataHandler>(import("https://data.example/users.csv", 7))
            .data_arc(service.clone())
            .await;
        assert_eq!(out.result_as::<serde_json::Value>()["records_imported"], 3);
        assert_eq!(service.stored.lock().unwrap()[&7].len(), 3);
    }

    /// `Validate` fails the job for good, though retries were allowed, and
    /// `on_failure` (which cleans up and tells the user) runs.
    #[tokio::test]
    async fn validation_fails_once_without_retry() {
        let service = Arc::new(demo_service());
        let out = perform::<ImportDataHandler>(import("ftp://old.example/x", 7))
            .data_arc(service.clone())
            .await;
        assert_eq!(out.status(), JobStatus::Failed);
        assert!(out
            .error()
            .unwrap()
            .message()
            .contains("source_url must be an http(s) URL"));
        assert_eq!(service.notices.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_flaky_source_is_retried_and_then_imports() {
        let service = Arc::new(demo_service());
        let flaky = || {
            perform::<ImportDataHandler>(DataImport {
                format: Format::Json,
                ..import("https://flaky.example/orders.json", 7)
            })
            .data_arc(service.clone())
        };
        let first = flaky().await;
        assert_eq!(first.status(), JobStatus::Retrying);
        assert!(first
            .error()
            .unwrap()
            .message()
            .contains("connection reset"));
        let second = flaky().retry_count(1).await;
        assert_eq!(
            second.result_as::<serde_json::Value>()["records_imported"],
            2
        );
        assert!(
            service.notices.lock().unwrap().is_empty(),
            "not the last attempt"
        );
    }

    #[tokio::test]
    async fn malformed_payloads_are_refused_at_enqueue_naming_the_field() {
        let queue = jobs::connect("memory://").await.unwrap();
        let err = queue
            .enqueue_raw(
                "data.import",
                serde_json::json!({ "source_url": "https://x", "format": "xml", "user_id": 1 }),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
        let err = queue
            .enqueue_raw(
                "data.import",
                serde_json::json!({ "source_url": "https://x", "user_id": 0 }),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("user_id is required"), "{err}");
    }

    #[test]
    fn validate_in_isolation() {
        let ok = import("https://a", 1);
        assert_eq!(ok.validate(), Ok(()));
        let bad = DataImport {
            source_url: "a".into(),
            ..ok
        };
        assert!(bad.validate().is_err());
    }

    /// The whole queue drained in the test, retries included.
    #[tokio::test(start_paused = true)]
    async fn a_missing_source_dead_letters_and_notifies_the_user_once() {
        let queue = jobs::connect("memory://").await.unwrap();
        let id = queue
            .enqueue(import("https://data.example/gone.csv", 9))
            .await
            .unwrap();
        let service = Arc::new(demo_service());
        let drained = drain(&queue)
            .data_arc(service.clone())
            .with_scheduled(true)
            .await
            .unwrap();
        assert_eq!((drained.retried, drained.dead_lettered), (2, 1));
        let job = queue.get(id).await.unwrap().unwrap();
        assert_eq!((job.status, job.attempt), (JobStatus::DeadLetter, 3));
        let notices = service.notices.lock().unwrap();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("user 9") && notices[0].contains("404"));
    }

    /// What `main` does, with a real manager.
    #[tokio::test]
    async fn the_demo_runs_to_the_end() {
        let queue = jobs::connect("memory://").await.unwrap();
        let jobs = run(&queue, demo_service()).await.unwrap();
        let outcome: Vec<_> = jobs.iter().map(|j| (j.status, j.attempt)).collect();
        assert_eq!(
            outcome,
            [
                (JobStatus::Completed, 1),
                (JobStatus::Completed, 2),
                (JobStatus::Failed, 1)
            ]
        );
    }
}
