use jobs::prelude::*;

struct Mailer;

fn build(queue: Queue) -> jobs::Result<WorkerManager> {
    WorkerManager::builder(queue).handler(Mailer).build()
}

fn main() {
    let _ = build;
}
