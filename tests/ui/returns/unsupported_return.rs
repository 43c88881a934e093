use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) -> u32 {
    1
}

fn main() {}
