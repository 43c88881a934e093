use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send", priority = 3000000000)]
async fn send_email(_email: SendEmail) {}

fn main() {}
