use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct Mailer;

impl Mailer {
    #[job_handler("email.send")]
    async fn send_email(&self, _email: SendEmail) {}
}

fn main() {}
