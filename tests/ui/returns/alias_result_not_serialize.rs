use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct Receipt {
    message_id: String,
}

// An alias (`jobs::Result<T>`, `anyhow::Result<T>`) is checked as a whole.
#[job_handler("email.send")]
async fn send_email(email: SendEmail) -> jobs::Result<Receipt> {
    Ok(Receipt {
        message_id: email.recipient,
    })
}

fn main() {}
