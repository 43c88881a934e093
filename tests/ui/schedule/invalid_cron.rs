use jobs::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct DailyReport {}

#[job_handler("report.daily", cron = "61 3 * * *")]
async fn daily_report(_r: DailyReport) {}

fn main() {}
