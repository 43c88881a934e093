use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

#[job_handler("email.resend")]
async fn resend_email(_email: SendEmail) {}

fn main() {}
