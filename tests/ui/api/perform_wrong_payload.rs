use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[derive(Serialize, Deserialize)]
struct Report {
    rows: u32,
}

#[job_handler("email.send")]
async fn send_email(_email: SendEmail) {}

#[job_handler("report.generate")]
async fn report(_report: Report) {}

async fn test() {
    let _ = jobs::testing::perform::<SendEmailHandler>(Report { rows: 3 }).await;
}

fn main() {
    let _ = test;
}
