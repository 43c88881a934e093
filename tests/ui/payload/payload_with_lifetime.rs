use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Greet<'a> {
    name: &'a str,
}

#[job_handler("greet")]
async fn greet(_greet: Greet<'_>) {}

fn main() {}
