use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

use std::cell::Cell;

#[derive(Serialize, Deserialize)]
struct Counter {
    count: Cell<u32>,
}

#[job_handler("counter.bump")]
async fn bump(_counter: Counter) {}

fn main() {}
