use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

// One mistake, one error: the function, the handler type, its constants and
// the typed payload stay usable, so nothing below is reported.
#[job_handler("email.send", retries = 3)]
async fn send_email(email: SendEmail) -> Result<String, JobError> {
    Ok(email.recipient)
}

async fn use_everything(queue: Queue) -> jobs::Result<()> {
    let _ = send_email(SendEmail { recipient: "a".into() }).await;
    let _: &str = SendEmailHandler::JOB_TYPE;
    let _ = WorkerManager::builder(queue.clone())
        .register(&SendEmailHandler::REGISTRATION)
        .handler(SendEmailHandler)
        .build()?;
    queue.enqueue(SendEmail { recipient: "b".into() }).await?;
    Ok(())
}

fn main() {
    let _ = use_everything;
}
