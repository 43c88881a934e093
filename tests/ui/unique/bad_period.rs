use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send", unique(by = [recipient], for = "10 minutes"))]
async fn send_email(_email: SendEmail) {}

fn main() {}
