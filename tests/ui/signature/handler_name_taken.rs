use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

// A type of the user's already has the name `#[job_handler]` would generate.
#[derive(Debug, Clone)]
struct SendEmailHandler {
    retries: u32,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

fn main() {
    let _ = SendEmailHandler { retries: 3 }.retries;
}
