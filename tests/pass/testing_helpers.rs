//! `jobs::testing` against every kind of handler: a generated one (typed
//! payload), a hand-written one, and the payload linked to its handler.
use jobs::prelude::*;
use jobs::testing::{assert_enqueued, drain, perform, perform_with};

#[derive(Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

#[job_handler("email.send", name = Mailer)]
async fn send_email(_email: SendEmail) {}

struct Report;

impl JobHandler for Report {
    fn job_type(&self) -> &str {
        "report.generate"
    }

    async fn handle(&self, _job: &Job) -> Result<JobResult, JobError> {
        Ok(JobResult::success())
    }
}

async fn tests(queue: Queue) -> jobs::Result<()> {
    let done = perform::<Mailer>(SendEmail { to: "a".into() }).await;
    assert_enqueued::<SendEmail>(done.queue()).await;
    let _ = perform_with(Report, serde_json::json!({ "rows": 3 })).await;
    let _ = drain(&queue).handler(Report).with_recursion(true).await?;
    Ok(())
}

fn main() {
    let _ = tests;
}
