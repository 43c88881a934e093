// The lint is a warning by default; denied here so the case fails to compile.
#![deny(unused_must_use)]
use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

async fn sign_up(queue: &Queue) {
    queue.enqueue(SendEmail { recipient: "ada@example.com".into() });
}

fn main() {
    let _ = sign_up;
}
