use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

const EMAIL_SEND: &str = "email.send";

#[job_handler(EMAIL_SEND)]
async fn send_email(_email: SendEmail) {}

fn main() {}
