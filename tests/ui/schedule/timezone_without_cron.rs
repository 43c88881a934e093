use jobs::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct DailyReport {}

#[job_handler("report.daily", timezone = "Europe/Berlin")]
async fn daily_report(_r: DailyReport) {}

fn main() {}
