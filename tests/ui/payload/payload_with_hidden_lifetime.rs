use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Greet<'a> {
    name: &'a str,
}

// The lifetime is elided: `Greet` is `Greet<'_>`.
#[job_handler("greet")]
async fn greet(_greet: Greet) {}

fn main() {}
