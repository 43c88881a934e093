use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Render;

#[job_handler("ui.render_root")]
async fn render(_r: Render, total: Parent<u32>) -> Result<String, JobError> {
    Ok(total.to_string())
}

fn main() {
    let mut wf = Workflow::new("report");
    // It takes its parent's result, so it cannot be a root.
    wf.add(Render);
}
