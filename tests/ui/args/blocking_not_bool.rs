use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Resize {
    path: String,
}

#[job_handler("image.resize", blocking = "yes")]
async fn resize(_job: Resize) {}

fn main() {}
