//! Result handles through the facade, with real managers: the type a
//! `#[job_handler]` returns is the type its payload's handle resolves to; a
//! handler that keeps failing resolves to `DeadLettered`; a hand-written
//! handler's job is awaited untyped; and a handle awaited through one client
//! resolves when a manager on another client of the same store runs the job.

use std::time::Duration;

use jobs::prelude::*;
use jobs::WorkerManagerBuilder;
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct GenerateReport {
    region: String,
    rows: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct ReportReady {
    url: String,
    rows: u32,
}

#[job_handler("handles.report")]
async fn generate_report(report: GenerateReport) -> Result<ReportReady, std::io::Error> {
    Ok(ReportReady {
        url: format!("s3://reports/{}.csv", report.region),
        rows: report.rows * 2,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Notify {
    to: String,
}

/// Returns nothing: its handle resolves to `()`.
#[job_handler("handles.notify")]
async fn notify(_n: Notify) {}

#[derive(Debug, Serialize, Deserialize)]
struct Upstream {
    url: String,
}

#[job_handler("handles.upstream", max_retries = 1)]
async fn call_upstream(u: Upstream) -> Result<u32, String> {
    Err(format!("{} answered 503", u.url))
}

/// The seed's style: no typed result, awaited as JSON.
struct Legacy;

impl JobHandler for Legacy {
    fn job_type(&self) -> &str {
        "handles.legacy"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::with_data(json!({ "echo": job.payload["n"] })))
    }
}

const PATIENCE: Duration = Duration::from_secs(60);

fn builder(queue: &Queue) -> WorkerManagerBuilder {
    WorkerManager::builder(queue.clone())
        .queues(["default"])
        .concurrency(4)
        .backoff(Backoff::fixed(Duration::from_millis(10)))
        .handler(Legacy)
}

#[tokio::test]
async fn a_handler_s_return_type_is_its_handle_s_result() {
    let queue = jobs::connect("memory://").await.unwrap();
    let manager = builder(&queue).build().unwrap();
    manager.start().await.unwrap();

    let handle = queue
        .enqueue(GenerateReport {
            region: "emea".into(),
            rows: 21,
        })
        .handle()
        .await
        .unwrap();
    // The type is checked at compile time: `ReportReady`, from the handler.
    let report: ReportReady = handle.result_timeout(PATIENCE).await.unwrap();
    assert_eq!(
        report,
        ReportReady {
            url: "s3://reports/emea.csv".into(),
            rows: 42
        }
    );

    let () = queue
        .enqueue(Notify { to: "ops".into() })
        .handle()
        .await
        .unwrap()
        .result_timeout(PATIENCE)
        .await
        .unwrap();

    let failing = queue
        .enqueue(Upstream {
            url: "https://api.example".into(),
        })
        .handle()
        .await
        .unwrap();
    match failing.result_timeout(PATIENCE).await {
        Err(JobResultError::DeadLettered {
            attempts,
            last_error,
            ..
        }) => {
            assert_eq!(attempts, 2, "one attempt and one retry");
            assert_eq!(last_error, "https://api.example answered 503");
        }
        other => panic!("expected DeadLettered, got {other:?}"),
    }

    let legacy = queue
        .enqueue_raw("handles.legacy", json!({ "n": 7 }))
        .handle()
        .await
        .unwrap();
    assert_eq!(
        legacy.result_timeout(PATIENCE).await.unwrap(),
        json!({ "echo": 7 })
    );
    manager.stop().await.unwrap();
}

/// Two clients of one SQLite file, as two processes would hold them: the
/// job is enqueued and awaited through one, and run by a manager on the
/// other; a third client builds its handle from the id alone.
#[tokio::test]
async fn a_handle_resolves_when_another_client_s_manager_runs_the_job() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("handles")
        .join(format!("{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}", path.display());
    let producer = jobs::connect(&url).await.unwrap();
    let worker_side = jobs::connect(&url).await.unwrap();
    let observer = jobs::connect(&url).await.unwrap();

    let handle = producer
        .enqueue(GenerateReport {
            region: "apac".into(),
            rows: 5,
        })
        .handle()
        .await
        .unwrap();
    let by_id = JobHandle::<GenerateReport>::from_id(&observer, handle.id());
    let waiting = tokio::spawn(async move { by_id.result_timeout(PATIENCE).await });

    let manager = builder(&worker_side).build().unwrap();
    manager.start().await.unwrap();
    let report = handle.result_timeout(PATIENCE).await.unwrap();
    assert_eq!(report.url, "s3://reports/apac.csv");
    assert_eq!(waiting.await.unwrap().unwrap(), report);
    manager.stop().await.unwrap();
}

/// A unique enqueue refused as a duplicate hands back the holder's handle.
#[tokio::test]
async fn a_duplicate_s_handle_awaits_the_job_that_holds_the_key() {
    let queue = jobs::connect("memory://").await.unwrap();
    let first = queue
        .enqueue(Notify { to: "a".into() })
        .unique_key("notify:a")
        .handle()
        .await
        .unwrap();
    let second = queue
        .enqueue(Notify { to: "a".into() })
        .unique_key("notify:a")
        .handle()
        .await
        .unwrap();
    assert!(second.enqueued().unwrap().is_duplicate());
    assert_eq!(second.id(), first.id());
    let manager = builder(&queue).build().unwrap();
    manager.start().await.unwrap();
    second.result_timeout(PATIENCE).await.unwrap();
    manager.stop().await.unwrap();
}

// What each shape of return type makes the payload's `JobOutput::Output`.

type Outcome<T> = Result<T, std::io::Error>;

#[derive(Serialize, Deserialize)]
struct ViaAlias;
#[job_handler("handles.shape.alias")]
async fn via_alias(_p: ViaAlias) -> Outcome<u8> {
    Ok(1)
}

#[derive(Serialize, Deserialize)]
struct ViaJobResult;
#[job_handler("handles.shape.job_result")]
async fn via_job_result(_p: ViaJobResult) -> JobResult {
    JobResult::success()
}

#[derive(Serialize, Deserialize)]
struct Borrowing;
#[job_handler("handles.shape.borrowing")]
async fn borrowing(_p: Borrowing) -> Result<&'static str, String> {
    Ok("static")
}

#[derive(Serialize, Deserialize)]
struct UnitOk;
#[job_handler("handles.shape.unit_ok")]
async fn unit_ok(_p: UnitOk) -> Result<(), JobError> {
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct ExplicitUnit;
#[job_handler("handles.shape.explicit_unit")]
#[allow(clippy::unused_unit)]
async fn explicit_unit(_p: ExplicitUnit) -> () {}

#[derive(Serialize, Deserialize)]
struct Nested;
#[job_handler("handles.shape.nested")]
async fn nested(_p: Nested) -> std::result::Result<Vec<(String, Option<u64>)>, String> {
    Ok(Vec::new())
}

fn output_is<P: JobOutput<H, Output = T>, T, H>() {}

/// Checked by the compiler: a wrong `Output` does not build.
#[test]
fn each_return_shape_has_its_output_type() {
    output_is::<GenerateReport, ReportReady, _>();
    output_is::<Notify, (), _>();
    output_is::<Upstream, u32, _>();
    output_is::<UnitOk, (), _>();
    output_is::<ExplicitUnit, (), _>();
    output_is::<Nested, Vec<(String, Option<u64>)>, _>();
    // Untyped where the type cannot be read off the signature, or borrows.
    output_is::<ViaAlias, serde_json::Value, _>();
    output_is::<ViaJobResult, serde_json::Value, _>();
    output_is::<Borrowing, serde_json::Value, _>();
}
