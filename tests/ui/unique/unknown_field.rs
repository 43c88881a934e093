use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send", unique(by = [recipent], for = "10m"))]
async fn send_email(_email: SendEmail) {}

fn main() {}
