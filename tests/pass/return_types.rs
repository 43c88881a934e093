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
#[derive(Serialize, Deserialize)]
struct G;
#[derive(Serialize, Deserialize)]
struct H;
#[derive(Serialize, Deserialize)]
struct I;
#[derive(Serialize, Deserialize)]
struct J;
#[derive(Serialize, Deserialize)]
struct K;
#[derive(Serialize, Deserialize)]
struct L;
#[derive(Serialize, Deserialize)]
struct M;

/// Like `anyhow::Error`: not a `std::error::Error` itself, but `Into<BoxError>`.
#[derive(Debug)]
struct Anyhow(String);
impl From<Anyhow> for jobs::BoxError {
    fn from(e: Anyhow) -> Self {
        e.0.into()
    }
}

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

#[job_handler("r.box-error")]
async fn box_error(_: G) -> Result<(), jobs::BoxError> {
    Err("boxed".into())
}

#[job_handler("r.box-dyn-error-send-sync")]
async fn box_dyn(_: H) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Ok(1)
}

#[job_handler("r.string-error")]
async fn string_error(_: I) -> Result<(), String> {
    Err(format!("no {}", 1))
}

#[job_handler("r.str-error")]
async fn str_error(_: J) -> Result<(), &'static str> {
    Err("no")
}

#[job_handler("r.anyhow-like")]
async fn anyhow_like(_: K) -> Result<(), Anyhow> {
    Err(Anyhow("no".into()))
}

#[job_handler("r.alias")]
async fn alias(_: L) -> jobs::Result<Vec<String>> {
    Ok(Vec::new())
}

#[job_handler("r.result-job-result-string")]
async fn result_job_result_string(_: M) -> Result<JobResult, String> {
    Ok(JobResult::failure(JobError::permanent("no")))
}

fn main() {}
