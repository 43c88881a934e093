use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

struct Receipt {
    message_id: String,
}

#[job_handler("email.send")]
async fn send_email(email: SendEmail) -> Result<Receipt, std::io::Error> {
    Ok(Receipt {
        message_id: email.recipient,
    })
}

fn main() {}
