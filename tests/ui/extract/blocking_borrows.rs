use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Resize {
    path: String,
}

#[job_handler("image.resize", blocking = true)]
async fn resize(_job: Resize, _raw: &Job) {}

fn main() {}
