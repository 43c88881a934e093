use jobs::prelude::*;
use std::sync::Arc;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct Mailer;

#[job_handler("email.send")]
async fn send_email(_email: SendEmail, _mailer: Arc<Mailer>) {}

fn main() {}
