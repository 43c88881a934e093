use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("email.send")]
async fn send_email(ctx: JobContext, email: SendEmail) {
    let _ = (ctx, email);
}

fn main() {}
