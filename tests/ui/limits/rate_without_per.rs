use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct CallApi {
    tenant: String,
}

#[job_handler("api.call", rate(by = [tenant], max = 5))]
async fn call_api(_c: CallApi) {}

fn main() {}
