use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Rows {
    rows: u32,
}

// A hand-written handler: `perform_with(ReportJobHandler, payload)` runs it.
#[derive(Default)]
struct ReportJobHandler;

impl JobHandler for ReportJobHandler {
    fn job_type(&self) -> &str {
        "report.generate"
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

async fn test() {
    let _ = jobs::testing::perform::<ReportJobHandler>(Rows { rows: 3 }).await;
}

fn main() {
    let _ = test;
}
