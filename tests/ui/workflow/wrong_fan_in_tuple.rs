use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Users;

#[job_handler("ui.users")]
async fn users(_u: Users) -> Result<Vec<String>, JobError> {
    Ok(vec![])
}

#[derive(Serialize, Deserialize)]
struct Orders;

#[job_handler("ui.orders")]
async fn orders(_o: Orders) -> Result<u64, JobError> {
    Ok(0)
}

#[derive(Serialize, Deserialize)]
struct Join;

// The tuple is in the wrong order: the edges are (users, orders).
#[job_handler("ui.join")]
async fn join(_j: Join, parts: Parents<(u64, Vec<String>)>) -> Result<u64, JobError> {
    Ok(parts.0 .0)
}

fn main() {
    let mut wf = Workflow::new("join");
    let u = wf.add(Users);
    let o = wf.add(Orders);
    wf.join2(&u, &o, Join);
}
