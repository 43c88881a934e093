use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct DailyReport {
    day: String,
}

#[job_handler("report.daily", cron = "0 3 * * *")]
async fn daily_report(_r: DailyReport) {}

fn main() {}
