//! `jobs`: the admin command line — inspect, cancel, requeue and prune jobs in
//! any backend.
//!
//! ```text
//! jobs --url sqlite://jobs.db counts
//! jobs --url postgres://localhost/app list --status dead-letter
//! jobs --url redis://localhost requeue 0192b7c4-...
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jobs::{Job, JobFilter, JobId, JobStatus};

#[derive(Parser)]
#[command(name = "jobs", version, about = "Inspect and manage background jobs")]
struct Cli {
    /// Backend URL: memory://, sqlite://PATH, postgres://..., redis://...
    #[arg(long, env = "JOBS_URL")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Jobs by queue and status.
    Counts,
    /// Jobs in enqueue order, filtered.
    List {
        #[arg(long)]
        queue: Option<String>,
        /// PENDING, SCHEDULED, RUNNING, COMPLETED, FAILED, RETRYING or DEAD_LETTER.
        #[arg(long)]
        status: Option<JobStatus>,
        #[arg(long = "type")]
        job_type: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One job, in full (JSON).
    Get { id: JobId },
    /// Cancel a waiting job.
    Cancel { id: JobId },
    /// Put FAILED or DEAD_LETTER jobs back in their queue: by id, or every one matching the filters.
    Requeue {
        id: Option<JobId>,
        /// Requeue every DEAD_LETTER job (of --queue if given).
        #[arg(long, conflicts_with = "id")]
        all_dead: bool,
        #[arg(long)]
        queue: Option<String>,
    },
    /// Delete finished jobs older than a duration (e.g. 7d, 12h, 30m).
    Prune {
        #[arg(long, value_parser = parse_age)]
        older_than: Duration,
    },
}

fn parse_age(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 7d, 12h, 30m, 45s"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n * secs))
}

fn line(job: &Job) -> String {
    format!(
        "{}  {:<11} {:<12} {:<20} retries {}/{}  {}",
        job.id,
        job.status.to_string(),
        job.queue_name,
        job.job_type,
        job.retry_count,
        job.max_retries,
        job.error_message.as_deref().unwrap_or("")
    )
}

async fn run(cli: Cli) -> jobs::Result<()> {
    let queue = jobs::connect(&cli.url).await?;
    match cli.command {
        Command::Counts => {
            for c in queue.counts().await? {
                println!("{:<20} {:<12} {}", c.queue, c.status.to_string(), c.count);
            }
        }
        Command::List {
            queue: q,
            status,
            job_type,
            limit,
            offset,
        } => {
            let mut filter = JobFilter::default().limit(limit).offset(offset);
            filter.queue = q;
            filter.status = status;
            filter.job_type = job_type;
            for job in queue.list(&filter).await? {
                println!("{}", line(&job));
            }
        }
        Command::Get { id } => {
            let job = queue.get(id).await?.ok_or(jobs::Error::NotFound(id))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&job).expect("a job serializes")
            );
        }
        Command::Cancel { id } => println!("{}", line(&queue.cancel(id).await?)),
        Command::Requeue { id: Some(id), .. } => println!("{}", line(&queue.requeue(id).await?)),
        Command::Requeue {
            id: None,
            all_dead: true,
            queue: q,
        } => {
            let mut n = 0;
            loop {
                let mut filter = JobFilter::default()
                    .status(JobStatus::DeadLetter)
                    .limit(500);
                filter.queue.clone_from(&q);
                let batch = queue.list(&filter).await?;
                if batch.is_empty() {
                    break;
                }
                for job in batch {
                    queue.requeue(job.id).await?;
                    n += 1;
                }
            }
            println!("requeued {n} dead-lettered jobs");
        }
        Command::Requeue { .. } => {
            return Err(jobs::Error::Config("give a job id, or --all-dead".into()));
        }
        Command::Prune { older_than } => {
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
            let n = queue.prune(cutoff, 1000).await?;
            println!("pruned {n} finished jobs older than {older_than:?}");
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
