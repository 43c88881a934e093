use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct MailError;

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) -> Result<(), MailError> {
    Ok(())
}

fn main() {}
