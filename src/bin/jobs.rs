//! `jobs`: the admin command line — inspect, cancel, requeue and prune jobs in
//! any backend.
//!
//! ```text
//! jobs --url sqlite://jobs.db counts
//! jobs --url postgres://localhost/app list --status dead-letter
//! jobs --url redis://localhost requeue 0192b7c4-...
//! jobs --url redis://localhost requeue --status dead --queue emails --type email.send
//! jobs --url postgres://localhost/app workers
//! jobs --url postgres://localhost/app schedules
//! jobs --url postgres://localhost/app pause emails
//! jobs --url sqlite://jobs.db dashboard --bind 127.0.0.1:8080
//! ```

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use jobs::{
    CancelRequest, Job, JobCursor, JobFilter, JobId, JobSort, JobStatus, PruneRequest,
    RequeueFilter,
};

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
        /// Case-insensitive text in the payload, the errors or the job type.
        #[arg(long)]
        search: Option<String>,
        /// oldest (enqueue order), newest, due (waiting jobs, soonest first)
        /// or finished (finished jobs, most recent first).
        #[arg(long, default_value = "oldest")]
        sort: JobSort,
        /// Start after this cursor (printed after a full page).
        #[arg(long)]
        after: Option<JobCursor>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One job, in full (JSON).
    Get { id: JobId },
    /// Cancel a job: a waiting one fails at once; a running one is stopped by
    /// its worker (its cancellation token fires) and then fails.
    Cancel {
        id: JobId,
        /// Who cancels (shown in the job's error; default `cli:$USER`).
        #[arg(long)]
        by: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a job that is not running (waiting or finished).
    Delete { id: JobId },
    /// The audit log of operator actions, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Pause a queue for every worker: its jobs wait, running ones finish.
    Pause { queue: String },
    /// Resume a paused queue; idle workers wake at once.
    Resume { queue: String },
    /// The paused queues.
    Paused,
    /// The running workers (host, pid, version, queues, load, health) and
    /// which one is the cluster's maintainer.
    Workers,
    /// The periodic schedules: last tick, its job's status, next tick.
    Schedules,
    /// Put FAILED or DEAD_LETTER jobs back in their queue: by id, or every one
    /// in --status (of --queue and --type if given), in batches the backend
    /// applies atomically; unique jobs whose key is taken stay and are listed.
    Requeue {
        id: Option<JobId>,
        /// Requeue every job in this status: `dead` (DEAD_LETTER) or `failed`.
        #[arg(long, conflicts_with = "id", value_parser = parse_requeue_status)]
        status: Option<JobStatus>,
        /// The same as `--status dead`.
        #[arg(long, conflicts_with_all = ["id", "status"])]
        all_dead: bool,
        #[arg(long, conflicts_with = "id")]
        queue: Option<String>,
        #[arg(long = "type", conflicts_with = "id")]
        job_type: Option<String>,
        /// At most this many jobs.
        #[arg(long, conflicts_with = "id")]
        limit: Option<usize>,
    },
    /// Serve the web dashboard (overview, jobs, queues, workers, schedules,
    /// audit log, actions, /metrics).
    Dashboard {
        /// Address to listen on. Anything but a loopback address needs
        /// --token or --basic-auth (or --insecure).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// Hide and refuse every action.
        #[arg(long)]
        read_only: bool,
        /// Require this token (bearer header, or the login page).
        #[arg(long, env = "JOBS_DASHBOARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Require HTTP basic auth as USER:PASSWORD (actions are audited as dashboard:USER).
        #[arg(
            long,
            env = "JOBS_DASHBOARD_BASIC_AUTH",
            hide_env_values = true,
            conflicts_with = "token"
        )]
        basic_auth: Option<String>,
        /// Serve a non-loopback address without authentication.
        #[arg(long)]
        insecure: bool,
        /// The path a reverse proxy serves the dashboard under (e.g. /jobs),
        /// when it strips it before passing requests on.
        #[arg(long)]
        base_path: Option<String>,
    },
    /// Delete finished jobs older than a duration (e.g. 7d, 12h, 30m).
    Prune {
        #[arg(long, value_parser = parse_age)]
        older_than: Duration,
        /// Only this status (COMPLETED, FAILED or DEAD_LETTER); repeatable.
        #[arg(long)]
        status: Vec<JobStatus>,
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
    },
}

/// `dead` or `failed` (any spelling of a status; only these two can be requeued).
fn parse_requeue_status(s: &str) -> Result<JobStatus, String> {
    let status = if s.eq_ignore_ascii_case("dead") {
        JobStatus::DeadLetter
    } else {
        s.parse().map_err(|e| format!("{e}"))?
    };
    match status {
        JobStatus::DeadLetter | JobStatus::Failed => Ok(status),
        other => Err(format!(
            "only `dead` (DEAD_LETTER) or `failed` jobs can be requeued, not {other}"
        )),
    }
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

/// `3s ago`, `in 2m`, `-`.
fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "-".to_owned();
    };
    let since = now - t;
    let secs = since.num_seconds();
    let span = |s: i64| match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    // By the sign of the span itself: a time less than a second ahead has
    // 0 whole seconds, and is still ahead.
    if since >= chrono::Duration::zero() {
        format!("{} ago", span(secs))
    } else {
        format!("in {}", span(-secs))
    }
}

async fn workers(queue: &jobs::Queue) -> jobs::Result<()> {
    let now = Utc::now();
    let maintainer = queue.backend().leader("maintainer").await.ok().flatten();
    let list = queue.workers().await?;
    if list.is_empty() {
        println!("no workers registered");
    }
    for w in &list {
        let lead = if maintainer.as_ref().is_some_and(|l| l.holder == w.id) {
            "  [maintainer]"
        } else {
            ""
        };
        println!(
            "{}  {}:{}  v{}  queues {}  running {}/{}  {}  started {}  seen {}{lead}",
            w.id,
            w.host,
            w.pid,
            if w.version.is_empty() {
                "?"
            } else {
                &w.version
            },
            w.queues.join(","),
            w.running,
            w.concurrency,
            w.health,
            ago(Some(w.started_at), now),
            ago(Some(w.last_seen), now),
        );
    }
    match maintainer {
        Some(l) => println!(
            "maintainer: {} (lease until {})",
            l.holder,
            l.until.to_rfc3339()
        ),
        None => println!("maintainer: none (no manager holds the role)"),
    }
    Ok(())
}

async fn schedules(queue: &jobs::Queue) -> jobs::Result<()> {
    let now = Utc::now();
    let list = queue.schedules().await?;
    if list.is_empty() {
        println!("no periodic schedules");
    }
    for s in list {
        let last_status = match s.last_job {
            Some(id) => match queue.get(id).await? {
                Some(job) => job.status.to_string(),
                None => "pruned".to_owned(),
            },
            None => "-".to_owned(),
        };
        // A next tick long past: no running manager declares it any more.
        let overdue = s
            .next_tick
            .is_some_and(|t| now - t > chrono::Duration::minutes(2));
        println!(
            "{:<24} {:<16} {:<16} last {} ({}) next {}{}",
            s.name,
            s.cron,
            s.timezone,
            ago(s.last_tick, now),
            last_status,
            ago(s.next_tick, now),
            if overdue {
                "  [not firing: no running manager declares it?]"
            } else {
                ""
            },
        );
        if let Some(text) = jobs::describe_cron(&s.cron) {
            println!("{:<24} {text}", "");
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> jobs::Result<()> {
    // Operator actions are audited under the user who ran the command.
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let queue = jobs::connect(&cli.url)
        .await?
        .with_actor(format!("cli:{user}"));
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
            search,
            sort,
            after,
            limit,
            offset,
        } => {
            let mut filter = JobFilter::default().limit(limit).offset(offset).sort(sort);
            filter.queue = q;
            filter.status = status;
            filter.job_type = job_type;
            filter.search = search;
            filter.after = after;
            let page = queue.list_page(&filter).await?;
            for job in &page.jobs {
                println!("{}", line(job));
            }
            if let Some(next) = page.next {
                let why = if page.scan_limited {
                    format!("searched {} jobs; more may match", filter.scan_limit)
                } else {
                    "more jobs may follow".to_owned()
                };
                eprintln!("{why}: next page with --after {next}");
            }
        }
        Command::Get { id } => {
            let job = queue.get(id).await?.ok_or(jobs::Error::NotFound(id))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&job).expect("a job serializes")
            );
        }
        Command::Cancel { id, by, reason } => {
            let by = by.unwrap_or_else(|| queue.actor().to_owned());
            let mut request = CancelRequest::by(by);
            if let Some(r) = reason {
                request = request.reason(r);
            }
            let job = queue.cancel_with(id, &request).await?;
            if job.status == JobStatus::Running {
                println!("{}  (stopping: its worker is told)", line(&job));
            } else {
                println!("{}", line(&job));
            }
        }
        Command::Delete { id } => {
            queue.delete(id).await?;
            println!("deleted {id}");
        }
        Command::Audit { limit } => {
            for e in queue
                .audit_log(&jobs::AuditFilter::default().limit(limit))
                .await?
            {
                println!(
                    "{}  {:<16} {:<8} {:<38} {}{}",
                    e.at.to_rfc3339(),
                    e.actor,
                    e.action,
                    e.target,
                    if e.ok { "ok" } else { "FAILED" },
                    if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.detail)
                    }
                );
            }
        }
        Command::Pause { queue: q } => {
            queue.pause(&q).await?;
            println!("paused `{q}`");
        }
        Command::Resume { queue: q } => {
            queue.resume(&q).await?;
            println!("resumed `{q}`");
        }
        Command::Paused => {
            for q in queue.paused().await? {
                println!("{q}");
            }
        }
        Command::Workers => workers(&queue).await?,
        Command::Schedules => schedules(&queue).await?,
        Command::Requeue { id: Some(id), .. } => println!("{}", line(&queue.requeue(id).await?)),
        Command::Requeue {
            id: None,
            status,
            all_dead,
            queue: q,
            job_type,
            limit,
        } => {
            let Some(status) = status.or(all_dead.then_some(JobStatus::DeadLetter)) else {
                return Err(jobs::Error::Config(
                    "give a job id, or --status dead|failed (or --all-dead)".into(),
                ));
            };
            let mut filter = RequeueFilter::new(status).limit(limit.unwrap_or(usize::MAX));
            filter.queue = q;
            filter.job_type = job_type;
            let report = queue.requeue_many(&filter).await?;
            println!("requeued {} {}", report.requeued, filter.describe());
            for id in &report.skipped_unique {
                println!("skipped {id}: another job holds its unique key");
            }
        }
        Command::Dashboard {
            bind,
            read_only,
            token,
            basic_auth,
            insecure,
            base_path,
        } => {
            let mut dashboard = jobs::dashboard::Dashboard::new(queue).read_only(read_only);
            if let Some(p) = base_path {
                dashboard = dashboard.base_path(p);
            }
            if let Some(t) = token {
                dashboard = dashboard.token(t);
            }
            if let Some(pair) = basic_auth {
                let (user, password) = pair.split_once(':').ok_or_else(|| {
                    jobs::Error::Config("--basic-auth takes USER:PASSWORD".into())
                })?;
                dashboard = dashboard.basic_auth(user, password);
            }
            if !bind.ip().is_loopback() && !dashboard.has_auth() && !insecure {
                return Err(jobs::Error::Config(format!(
                    "refusing to serve the dashboard on {bind} without authentication: \
                     give --token or --basic-auth, bind a loopback address, or pass --insecure"
                )));
            }
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| jobs::Error::Config(format!("cannot listen on {bind}: {e}")))?;
            let local = listener.local_addr().unwrap_or(bind);
            println!("dashboard on http://{local}/ (ctrl-c stops it)");
            axum::serve(listener, dashboard.router())
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| jobs::Error::Config(format!("the dashboard server failed: {e}")))?;
        }
        Command::Prune {
            older_than,
            status,
            queue: q,
        } => {
            let cutoff = jobs::sub_saturating(Utc::now(), older_than);
            let mut req = PruneRequest::new(cutoff, 1000);
            if !status.is_empty() {
                if let Some(s) = status.iter().find(|s| !s.is_terminal()) {
                    return Err(jobs::Error::Config(format!(
                        "only finished jobs are pruned: COMPLETED, FAILED or DEAD_LETTER, not {s}"
                    )));
                }
                req = req.statuses(status);
            }
            if let Some(q) = q {
                req = req.queue(q);
            }
            let n = queue.prune_matching(req).await?;
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
