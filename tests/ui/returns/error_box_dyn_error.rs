use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

// `Box<dyn Error>` is not `Send + Sync`: it cannot leave the worker's thread.
#[job_handler("email.send")]
async fn send_email(_email: SendEmail) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

fn main() {}
