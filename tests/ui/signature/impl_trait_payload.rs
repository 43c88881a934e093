use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(_email: impl serde::de::DeserializeOwned) {}

fn main() {}
