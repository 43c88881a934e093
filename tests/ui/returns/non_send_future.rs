use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

use std::rc::Rc;

#[job_handler("email.send")]
async fn send_email(email: SendEmail) {
    let local = Rc::new(email.recipient);
    tokio::task::yield_now().await;
    drop(local);
}

fn main() {}
