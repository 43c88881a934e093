use jobs::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct DailyReport {}

#[job_handler("report.daily", cron = "0 3 * * *", timezone = "Europe/Berln")]
async fn daily_report(_r: DailyReport) {}

fn main() {}
