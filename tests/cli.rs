//! The admin CLI against a real SQLite file: counts, list, get, requeue,
//! cancel, prune, and clear errors for bad input.

use std::process::Command;

use jobs::{JobStatus, NewJob, Queue, WorkerManager};
use serde_json::json;

fn jobs_cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jobs"))
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .expect("the jobs binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct AlwaysFails;
impl jobs::JobHandler for AlwaysFails {
    fn job_type(&self) -> &str {
        "cli.fails"
    }
    async fn handle(&self, _job: &jobs::Job) -> Result<jobs::JobResult, jobs::JobError> {
        Err(jobs::JobError::msg("upstream down"))
    }
}

async fn setup() -> (String, Queue, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "jobs-cli-{}-{:x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("jobs.db").display());
    let queue = jobs::connect(&url).await.unwrap();
    (url, queue, dir)
}

#[tokio::test]
async fn inspects_requeues_cancels_and_prunes() {
    let (url, queue, dir) = setup().await;
    let dead = queue
        .enqueue_job(
            NewJob::new("cli.fails", json!({}))
                .max_retries(0)
                .queue("ops"),
        )
        .await
        .unwrap();
    let waiting = queue
        .enqueue_job(NewJob::new("cli.other", json!({"n": 1})).queue("later"))
        .await
        .unwrap();
    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .queues(["ops"])
        .handler(AlwaysFails)
        .build()
        .unwrap();
    m.run_until_drained().await.unwrap();
    assert_eq!(
        queue.get(dead).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );

    let (ok, out, _) = jobs_cli(&url, &["counts"]);
    assert!(ok);
    assert!(
        out.contains("ops") && out.contains("DEAD_LETTER") && out.contains("later"),
        "{out}"
    );

    let (ok, out, _) = jobs_cli(&url, &["list", "--status", "dead-letter"]);
    assert!(ok);
    assert!(
        out.contains(&dead.to_string()) && out.contains("upstream down"),
        "{out}"
    );
    assert!(!out.contains(&waiting.to_string()), "{out}");

    // Searched (any case, in errors too), sorted, and paged by cursor.
    let (ok, out, _) = jobs_cli(&url, &["list", "--search", "UPSTREAM"]);
    assert!(ok);
    assert!(out.contains(&dead.to_string()), "{out}");
    assert!(!out.contains(&waiting.to_string()), "{out}");
    let (ok, out, err) = jobs_cli(&url, &["list", "--sort", "newest", "--limit", "1"]);
    assert!(ok, "{err}");
    assert!(out.contains(&waiting.to_string()), "newest first: {out}");
    let cursor = err
        .split("--after ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("a full page prints the next cursor: {err}"));
    let (ok, out, _) = jobs_cli(
        &url,
        &[
            "list", "--sort", "newest", "--limit", "1", "--after", cursor,
        ],
    );
    assert!(ok);
    assert!(out.contains(&dead.to_string()), "the second page: {out}");
    let (ok, _, err) = jobs_cli(&url, &["list", "--sort", "sideways"]);
    assert!(!ok && err.contains("unknown sort order"), "{err}");

    let (ok, out, _) = jobs_cli(&url, &["get", &dead.to_string()]);
    assert!(ok);
    let job: jobs::Job = serde_json::from_str(&out).expect("get prints the job as JSON");
    assert_eq!(job.id, dead.id());

    // Nothing of another type or status is requeued, and a status that
    // cannot be requeued is refused.
    let (ok, out, _) = jobs_cli(
        &url,
        &[
            "requeue",
            "--status",
            "dead",
            "--queue",
            "ops",
            "--type",
            "other.type",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("requeued 0 DEAD_LETTER jobs of queue ops, type other.type"),
        "{out}"
    );
    assert_eq!(
        queue.get(dead).await.unwrap().unwrap().status,
        JobStatus::DeadLetter
    );
    let (ok, _, err) = jobs_cli(&url, &["requeue", "--status", "completed"]);
    assert!(!ok);
    assert!(
        err.contains("only `dead` (DEAD_LETTER) or `failed`"),
        "{err}"
    );

    let (ok, out, _) = jobs_cli(&url, &["requeue", "--all-dead", "--queue", "ops"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("requeued 1 DEAD_LETTER jobs of queue ops"),
        "{out}"
    );
    let audit = queue
        .audit_log(&jobs::AuditFilter::default().limit(1))
        .await
        .unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].detail.as_str()),
        ("requeue-many", "1 jobs requeued")
    );
    let job = queue.get(dead).await.unwrap().unwrap();
    assert_eq!((job.status, job.retry_count), (JobStatus::Pending, 0));

    let (ok, _, _) = jobs_cli(&url, &["cancel", &waiting.to_string()]);
    assert!(ok);
    assert_eq!(
        queue.get(waiting).await.unwrap().unwrap().status,
        JobStatus::Failed
    );

    // Cancelling it again is refused, with a reason, and a failing exit code.
    let (ok, _, err) = jobs_cli(&url, &["cancel", &waiting.to_string()]);
    assert!(!ok);
    assert!(err.contains("cannot be cancelled"), "{err}");

    let (ok, out, _) = jobs_cli(&url, &["prune", "--older-than", "0s"]);
    assert!(ok);
    assert!(out.contains("pruned 1"), "{out}");
    assert!(queue.get(waiting).await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (ok, _, err) = jobs_cli("mysql://localhost/app", &["counts"]);
    assert!(!ok);
    assert!(
        err.contains("unknown scheme `mysql`") && err.contains("sqlite://"),
        "{err}"
    );

    // A password in the URL is never printed, whatever went wrong.
    for url in [
        "mysql://app:s3cret@db/app",
        "postgres://app:s3cret@127.0.0.1:9/app",
        "redis://:s3cret@127.0.0.1:9",
    ] {
        let (ok, _, err) = jobs_cli(url, &["counts"]);
        assert!(!ok, "{url}");
        assert!(!err.contains("s3cret") && err.contains("***"), "{err}");
    }

    let (ok, _, err) = jobs_cli("memory://", &["get", "not-a-uuid"]);
    assert!(!ok);
    assert!(err.contains("invalid value 'not-a-uuid'"), "{err}");

    let (ok, _, err) = jobs_cli("memory://", &["prune", "--older-than", "soon"]);
    assert!(!ok);
    assert!(err.contains("not a duration"), "{err}");

    let (ok, _, err) = jobs_cli("memory://", &["list", "--status", "done"]);
    assert!(!ok);
    assert!(err.contains("unknown job status `done`"), "{err}");
}

struct Quick;
impl jobs::JobHandler for Quick {
    fn job_type(&self) -> &str {
        "cli.tick"
    }
    async fn handle(&self, _job: &jobs::Job) -> Result<jobs::JobResult, jobs::JobError> {
        Ok(jobs::JobResult::success())
    }
}

/// What operators ask a running cluster: who works (and is healthy), which
/// schedules fire, and pausing a queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_workers_and_schedules_and_pauses_queues() {
    let (url, queue, dir) = setup().await;
    let m = WorkerManager::builder(queue.clone())
        .auto_register(false)
        .worker_id("cli-worker")
        .version("1.2.3")
        .lease_duration(std::time::Duration::from_millis(900))
        .heartbeat_interval(std::time::Duration::from_millis(200))
        .handler(Quick)
        .periodic(
            jobs::Periodic::cron("* * * * * *")
                .name("cli-every-second")
                .job(NewJob::new("cli.tick", json!({}))),
        )
        .build()
        .unwrap();
    m.start().await.unwrap();
    let start = std::time::Instant::now();
    while !(m.is_maintainer() && m.stats().fired >= 2) {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let (ok, out, err) = jobs_cli(&url, &["workers"]);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("cli-worker"))
        .expect(&out);
    assert!(line.contains("v1.2.3"), "{line}");
    assert!(line.contains("queues default"), "{line}");
    assert!(line.contains("running"), "{line}");
    assert!(line.contains("[maintainer]"), "{line}");
    assert!(out.contains("maintainer: cli-worker"), "{out}");

    let (ok, out, err) = jobs_cli(&url, &["schedules"]);
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("cli-every-second"))
        .expect(&out);
    assert!(
        line.contains("* * * * * *") && line.contains("UTC"),
        "{line}"
    );
    assert!(line.contains("ago (") && line.contains("next in"), "{line}");

    let (ok, out, err) = jobs_cli(&url, &["pause", "default"]);
    assert!(ok && out.contains("paused `default`"), "{out}{err}");
    assert_eq!(queue.paused().await.unwrap(), vec!["default".to_owned()]);
    let (_, out, _) = jobs_cli(&url, &["paused"]);
    assert_eq!(out.trim(), "default");
    let (ok, _, err) = jobs_cli(&url, &["resume", "default"]);
    assert!(ok, "{err}");
    assert!(queue.paused().await.unwrap().is_empty());

    m.stop().await.unwrap();
    let (_, out, _) = jobs_cli(&url, &["workers"]);
    assert!(
        !out.contains("cli-worker"),
        "a stopped worker leaves the registry: {out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
