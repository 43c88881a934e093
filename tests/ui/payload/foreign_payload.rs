use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

#[job_handler("json.any")]
async fn any(_payload: serde_json::Value) {}

fn main() {}
