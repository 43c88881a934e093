use jobs::prelude::*;

// A payload enqueued without a `#[job_handler]`: nothing says what its job returns.
#[derive(Serialize, Deserialize)]
struct Resize {
    width: u32,
}

impl JobPayload for Resize {
    const JOB_TYPE: &'static str = "image.resize";
}

async fn demo(queue: Queue) {
    let handle = queue.enqueue(Resize { width: 640 }).handle().await.unwrap();
    let _ = handle.result().await;
}

fn main() {}
