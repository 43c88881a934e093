use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SyncAccount {
    account_id: u64,
}

#[job_handler("sync.account", concurrency(by = [acount_id], max = 1))]
async fn sync_account(_s: SyncAccount) {}

fn main() {}
