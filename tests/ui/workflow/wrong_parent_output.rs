use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct Extract;

#[derive(Serialize, Deserialize)]
struct Rows(Vec<u32>);

#[job_handler("ui.extract")]
async fn extract(_e: Extract) -> Result<Rows, JobError> {
    Ok(Rows(vec![1]))
}

#[derive(Serialize, Deserialize)]
struct Render;

#[derive(Serialize, Deserialize)]
struct Report {
    total: u32,
}

// Render takes a `Report`, but is wired after `Extract`, which returns `Rows`.
#[job_handler("ui.render")]
async fn render(_r: Render, report: Parent<Report>) -> Result<String, JobError> {
    Ok(report.total.to_string())
}

fn main() {
    let mut wf = Workflow::new("report");
    let rows = wf.add(Extract);
    wf.then(&rows, Render);
}
