use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct Pager;

#[job_handler("email.send", on_failure = email_failed)]
async fn send_email(_email: SendEmail) {}

async fn email_failed(_job: &Job, _error: &JobError, _pager: Pager) {}

fn main() {}
