use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

async fn sign_up(queue: &Queue) -> jobs::Result<JobId> {
    let id = queue.enqueue(SendEmail { recipient: "ada@example.com".into() })?;
    Ok(id)
}

fn main() {
    let _ = sign_up;
}
