//! Awaiting a job's result: enqueue a typed payload, get a `JobHandle`, and
//! await what the handler returns — typed, with a timeout, or from the id
//! alone (as another process would) — and the typed error of a job that
//! failed for good. Runs on the embedded SQLite default.
//!
//! ```text
//! cargo run --example result_handle
//! ```

use std::time::Duration;

use jobs::prelude::*;

#[derive(Debug, Serialize, Deserialize)]
struct GenerateReport {
    region: String,
    quarter: u8,
}

/// What the handler returns, and so what its handle resolves to.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ReportReady {
    url: String,
    rows: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("no sales data for {0}")]
struct NoData(String);

#[job_handler("report.generate", max_retries = 0)]
async fn generate_report(report: GenerateReport) -> Result<ReportReady, JobError> {
    if report.region == "atlantis" {
        // Retrying will not make Atlantis exist: a permanent failure.
        return Err(JobError::permanent(NoData(report.region)));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(ReportReady {
        url: format!("s3://reports/{}-q{}.pdf", report.region, report.quarter),
        rows: 1_000 * u64::from(report.quarter),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::temp_dir().join(format!("jobs-result-{}.db", std::process::id()));
    let queue = jobs::connect(&format!("sqlite://{}", db.display())).await?;
    let manager = WorkerManager::builder(queue.clone()).build()?;
    manager.start().await?;

    // Enqueue, and await the handler's typed result.
    let handle = queue
        .enqueue(GenerateReport {
            region: "emea".into(),
            quarter: 2,
        })
        .handle()
        .await?;
    let report: ReportReady = handle.result_timeout(Duration::from_secs(30)).await?;
    println!("{} -> {} ({} rows)", handle.id(), report.url, report.rows);

    // Another process needs only the id (and the payload type for the result's type).
    let id = queue
        .enqueue(GenerateReport {
            region: "apac".into(),
            quarter: 3,
        })
        .await?
        .id();
    let elsewhere = JobHandle::<GenerateReport>::from_id(&queue, id);
    println!("{id} -> {:?}", elsewhere.result().await?);

    // A job that fails for good resolves to a typed error with its last error.
    let doomed = queue
        .enqueue(GenerateReport {
            region: "atlantis".into(),
            quarter: 1,
        })
        .handle()
        .await?;
    match doomed.result_timeout(Duration::from_secs(30)).await {
        Err(JobResultError::Failed { last_error, .. }) => {
            println!("{} failed: {last_error}", doomed.id());
        }
        other => println!("{} unexpectedly: {other:?}", doomed.id()),
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

    #[tokio::test]
    async fn the_handle_resolves_to_the_report_or_the_failure() {
        let queue = jobs::connect("memory://").await.unwrap();
        let manager = WorkerManager::builder(queue.clone()).build().unwrap();
        manager.start().await.unwrap();
        let ok = queue
            .enqueue(GenerateReport {
                region: "emea".into(),
                quarter: 4,
            })
            .handle()
            .await
            .unwrap();
        let failed = queue
            .enqueue(GenerateReport {
                region: "atlantis".into(),
                quarter: 4,
            })
            .handle()
            .await
            .unwrap();
        assert_eq!(
            ok.result_timeout(Duration::from_secs(60)).await.unwrap(),
            ReportReady {
                url: "s3://reports/emea-q4.pdf".into(),
                rows: 4_000
            }
        );
        let err = failed
            .result_timeout(Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, JobResultError::Failed { last_error, .. } if last_error == "no sales data for atlantis"),
            "{err}"
        );
        manager.stop().await.unwrap();
    }
}
