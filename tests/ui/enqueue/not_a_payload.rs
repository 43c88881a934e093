use jobs::prelude::*;

// No `#[job_handler]` takes it: the queue cannot know its job type.
#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

async fn sign_up(queue: &Queue) -> jobs::Result<Enqueued> {
    queue.enqueue(SendEmail { recipient: "ada@example.com".into() }).await
}

fn main() {
    let _ = sign_up;
}
