//! Every option at once, and the generated names are usable.
use std::time::Duration;

use jobs::prelude::*;
use jobs::{HandlerRegistration, JobOptions};

#[derive(Serialize, Deserialize)]
pub struct SendEmail {
    pub recipient: String,
}

pub struct Mailer;

async fn email_failed(_job: &Job, _error: &JobError, _mailer: Data<Mailer>, _ctx: JobContext) {}

#[job_handler(
    "email.send",
    queue = "emails",
    max_retries = 5,
    priority = -10,
    timeout = "30s",
    backoff = Backoff::exponential(Duration::from_millis(500)),
    on_failure = email_failed,
    name = EmailJob,
    crate = jobs,
)]
pub async fn send_email(email: SendEmail, mailer: Data<Mailer>) -> Result<String, JobError> {
    let _ = mailer;
    Ok(email.recipient)
}

fn main() {
    let _: EmailJob = EmailJob;
    let _: &'static HandlerRegistration = &EmailJob::REGISTRATION;
    let _: &str = EmailJob::JOB_TYPE;
    let _: JobOptions = SendEmail::options();
}
