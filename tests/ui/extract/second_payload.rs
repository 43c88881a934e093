use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[derive(Serialize, Deserialize)]
struct Attachment {
    path: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail, _attachment: Attachment) {}

fn main() {}
