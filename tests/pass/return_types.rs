//! Every supported return type.
use jobs::prelude::*;

#[derive(Debug)]
struct AppError;
impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("app error")
    }
}
impl std::error::Error for AppError {}

#[derive(Serialize, Deserialize)]
struct A;
#[derive(Serialize, Deserialize)]
struct B;
#[derive(Serialize, Deserialize)]
struct C;
#[derive(Serialize, Deserialize)]
struct D;
#[derive(Serialize, Deserialize)]
struct E;
#[derive(Serialize, Deserialize)]
struct F;

#[job_handler("r.unit")]
async fn unit(_: A) {}

#[job_handler("r.job-result")]
async fn job_result(_: B) -> JobResult {
    JobResult::success()
}

#[job_handler("r.result-job-result")]
async fn result_job_result(_: C) -> Result<JobResult, AppError> {
    Ok(JobResult::success())
}

#[job_handler("r.result-data")]
async fn result_data(_: D) -> Result<Vec<u32>, AppError> {
    Ok(vec![1])
}

#[job_handler("r.result-unit")]
async fn result_unit(_: E) -> Result<(), JobError> {
    Err(JobError::permanent("no"))
}

#[job_handler("r.boxed-error")]
async fn boxed(_: F) -> Result<serde_json::Value, std::io::Error> {
    Ok(serde_json::Value::Null)
}

fn main() {}
