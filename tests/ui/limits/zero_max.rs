use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SyncAccount {
    account_id: u64,
}

#[job_handler("sync.account", concurrency(by = [account_id], max = 0))]
async fn sync_account(_s: SyncAccount) {}

fn main() {}
