use jobs::prelude::*;

#[derive(Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

fn main() {}
