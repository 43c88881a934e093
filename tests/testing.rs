//! `jobs::testing`: `perform`, the enqueue assertions, `drain` and time
//! control — and the papercuts they rest on (the queue extractor, optional
//! services, paging, `build()`'s queue warning).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs::prelude::*;
use jobs::testing::{
    assert_enqueued, capture, drain, enqueued, perform, perform_with, refute_enqueued,
};
use jobs::JobPayload;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

#[derive(Default)]
struct Mailer {
    sent: Mutex<Vec<String>>,
    alerts: AtomicU32,
}

#[job_handler(
    "testing.email",
    queue = "emails",
    max_retries = 3,
    on_failure = email_failed
)]
async fn send_email(email: SendEmail, mailer: Data<Mailer>) -> Result<String, String> {
    if email.to.ends_with("@down.example") {
        return Err(format!("no route to {}", email.to));
    }
    mailer.sent.lock().unwrap().push(email.to.clone());
    Ok(format!("<{}>", email.to))
}

async fn email_failed(job: &Job, _error: &JobError, mailer: Data<Mailer>) {
    if job.is_last_attempt() {
        mailer.alerts.fetch_add(1, Ordering::SeqCst);
    }
}

/// A job that enqueues others through the queue it came from: no
/// `.data(queue.clone())` anywhere.
#[derive(Debug, Serialize, Deserialize)]
struct Fanout {
    recipients: Vec<String>,
}

#[job_handler("testing.fanout", queue = "emails")]
async fn fanout(job: Fanout, queue: Queue) -> Result<usize, jobs::Error> {
    let n = job.recipients.len();
    queue
        .enqueue_batch(job.recipients.into_iter().map(|to| SendEmail { to }))
        .await?;
    Ok(n)
}

/// An optional service: `None` when the manager has none.
#[derive(Debug, Serialize, Deserialize)]
struct Audit {
    what: String,
}

struct AuditLog(Mutex<Vec<String>>);

#[job_handler("testing.audit")]
async fn audit(job: Audit, log: Option<Data<AuditLog>>, queue: &Queue) -> Result<bool, JobError> {
    let _ = queue;
    Ok(match log {
        Some(log) => {
            log.0.lock().unwrap().push(job.what);
            true
        }
        None => false,
    })
}

/// Always fails, retryably: for the time-control proof.
#[derive(Debug, Serialize, Deserialize)]
struct AlwaysDown;

static ALWAYS_DOWN_CALLS: AtomicU32 = AtomicU32::new(0);

#[job_handler("testing.always_down", queue = "flaky")]
async fn always_down(_: AlwaysDown) -> Result<(), std::io::Error> {
    ALWAYS_DOWN_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(std::io::Error::other("still down"))
}

/// A hand-written handler with state of its own.
struct Scale(u64);

impl JobHandler for Scale {
    fn job_type(&self) -> &str {
        "testing.scale"
    }

    async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
        let n = job.payload["n"]
            .as_u64()
            .ok_or_else(|| JobError::permanent("no `n`"))?;
        Ok(JobResult::with_data(json!(n * self.0)))
    }
}

fn mailer() -> Arc<Mailer> {
    Arc::new(Mailer::default())
}

#[tokio::test]
async fn perform_returns_what_the_manager_would_record() {
    let m = mailer();
    let out = perform::<SendEmailHandler>(SendEmail {
        to: "ada@example.com".into(),
    })
    .data_arc(m.clone())
    .await;
    assert_eq!(out.status(), JobStatus::Completed);
    assert_eq!(out.result_as::<String>(), "<ada@example.com>");
    assert_eq!(out.job().max_retries, 3, "the handler's defaults apply");
    assert_eq!(out.job().queue_name, "emails");

    let down = SendEmail {
        to: "bob@down.example".into(),
    };
    let out = perform::<SendEmailHandler>(down.clone())
        .data_arc(m.clone())
        .await;
    assert_eq!(out.status(), JobStatus::Retrying);
    assert!(out.retry_in().unwrap() >= Duration::from_millis(1600));
    assert_eq!(
        out.error().unwrap().message(),
        "no route to bob@down.example"
    );
    assert_eq!(m.alerts.load(Ordering::SeqCst), 0, "not the last attempt");

    let out = perform::<SendEmailHandler>(down)
        .data_arc(m.clone())
        .last_attempt()
        .await;
    assert_eq!(out.status(), JobStatus::DeadLetter);
    assert_eq!(out.job().attempt, 4);
    assert_eq!(
        m.alerts.load(Ordering::SeqCst),
        1,
        "on_failure ran as the manager runs it"
    );
}

#[tokio::test]
async fn perform_reports_missing_services_timeouts_and_bad_payloads() {
    let out = perform::<SendEmailHandler>(SendEmail { to: "a@b.c".into() }).await;
    assert_eq!(out.status(), JobStatus::Retrying);
    assert!(out.error().unwrap().message().contains("Mailer"), "{out:?}");

    let out = perform_with(SendEmailHandler, json!({ "to": 7 }))
        .data_arc(mailer())
        .await;
    assert_eq!(
        out.status(),
        JobStatus::Failed,
        "a bad payload is permanent"
    );
    assert!(out.error().unwrap().message().contains("`to`"), "{out:?}");

    let out = perform_with(Scale(3), json!({ "n": 5 })).await;
    assert_eq!(out.result_as::<u64>(), 15);
    let out = perform_with(Scale(3), json!({})).await;
    assert_eq!(out.status(), JobStatus::Failed);

    struct Hang;
    impl JobHandler for Hang {
        fn job_type(&self) -> &str {
            "testing.hang"
        }
        async fn handle(&self, _: &Job) -> Result<JobResult, JobError> {
            std::future::pending().await
        }
    }
    let out = perform_with(Hang, json!({}))
        .timeout(Duration::from_millis(20))
        .await;
    assert_eq!(out.status(), JobStatus::Retrying);
    assert!(out.error().unwrap().message().contains("timed out"));

    let out = perform_with(Hang, json!({}))
        .timeout(Duration::from_millis(20))
        .cancelled(CancelReason::Shutdown)
        .await;
    assert_eq!(
        out.status(),
        JobStatus::Pending,
        "a shutdown releases, it does not fail"
    );
}

#[tokio::test]
async fn a_handler_enqueues_through_its_own_queue_and_the_test_sees_it() {
    let out = perform::<FanoutHandler>(Fanout {
        recipients: vec!["a@x.example".into(), "b@x.example".into()],
    })
    .await;
    assert_eq!(out.result_as::<usize>(), 2);
    let sent = assert_enqueued::<SendEmail>(out.queue())
        .queue("emails")
        .max_retries(3)
        .times(2)
        .await;
    assert_eq!(sent[0].to, "a@x.example");
    assert_enqueued::<SendEmail>(out.queue())
        .with(|e| e.to == "b@x.example")
        .await;
    refute_enqueued::<SendEmail>(out.queue())
        .with(|e| e.to == "c@x.example")
        .await;
    refute_enqueued::<Fanout>(out.queue()).await;
    assert_eq!(enqueued::<SendEmail>(out.queue()).await.len(), 2);
}

#[tokio::test]
async fn assertions_check_options_and_say_what_they_found() {
    let queue = jobs::connect("memory://").await.unwrap();
    let before = jobs::testing::now();
    queue
        .enqueue(SendEmail {
            to: "ada@example.com".into(),
        })
        .priority(5)
        .delay(Duration::from_secs(30))
        .metadata("tenant", 7)
        .await
        .unwrap();
    assert_enqueued::<SendEmail>(&queue)
        .priority(5)
        .metadata("tenant", 7)
        .delayed_between(Duration::from_secs(29), Duration::from_secs(31))
        .run_at_between(
            before + chrono::Duration::seconds(29),
            jobs::testing::now() + chrono::Duration::seconds(31),
        )
        .job(|j| j.status == JobStatus::Scheduled)
        .await;

    let failed = tokio::spawn(async move {
        assert_enqueued::<SendEmail>(&queue)
            .priority(9)
            .queue("emails")
            .await;
    })
    .await
    .unwrap_err();
    let msg = *failed.into_panic().downcast::<String>().unwrap();
    assert!(
        msg.contains("assert_enqueued::<testing::SendEmail>"),
        "{msg}"
    );
    assert!(msg.contains("tests/testing.rs"), "names the caller: {msg}");
    assert!(msg.contains("expected at least one `testing.email` job(s) where priority is 9, queue is \"emails\", found 0"), "{msg}");
    assert!(msg.contains("not so: priority is 9"), "{msg}");
    assert!(msg.contains("ada@example.com"), "{msg}");
}

#[tokio::test]
async fn capture_sees_only_what_its_code_enqueued() {
    let queue = jobs::connect("memory://").await.unwrap();
    queue.enqueue(SendEmail { to: "old".into() }).await.unwrap();
    let (id, seen) = capture(&queue, async {
        queue.enqueue(SendEmail { to: "new".into() }).await.unwrap()
    })
    .await;
    assert_eq!(seen.jobs().len(), 1);
    assert_eq!(seen.jobs()[0].id, id.id());
    assert_eq!(
        seen.enqueued::<SendEmail>(),
        [SendEmail { to: "new".into() }]
    );
    seen.assert_enqueued::<SendEmail>().times(1).await;
    seen.refute_enqueued::<SendEmail>()
        .with(|e| e.to == "old")
        .await;
    assert_enqueued::<SendEmail>(&queue).times(2).await;
}

#[tokio::test]
async fn drain_runs_what_is_due_and_with_recursion_what_it_enqueues() {
    let queue = jobs::connect("memory://").await.unwrap();
    let m = mailer();
    queue
        .enqueue(Fanout {
            recipients: vec!["a@x.example".into(), "b@down.example".into()],
        })
        .await
        .unwrap();
    // One pass: only the fan-out job, which was due when it started.
    let once = drain(&queue).data_arc(m.clone()).await.unwrap();
    assert_eq!((once.completed, once.attempts()), (1, 1));
    // With recursion: the two emails it enqueued (one fails; its retry is
    // not due yet, so it waits).
    let more = drain(&queue)
        .data_arc(m.clone())
        .with_recursion(true)
        .await
        .unwrap();
    assert_eq!((more.completed, more.retried), (1, 1));
    assert_eq!(*m.sent.lock().unwrap(), ["a@x.example"]);

    // A limit stops it and says so.
    let queue = jobs::connect("memory://").await.unwrap();
    queue
        .enqueue_batch((0..5).map(|i| SendEmail {
            to: format!("{i}@x.example"),
        }))
        .await
        .unwrap();
    let limited = drain(&queue).data_arc(m).limit(3).await.unwrap();
    assert_eq!(limited.completed, 3);
    assert!(limited.limit_reached);
}

/// The time-control proof: a job that always fails is retried three times
/// with the default backoff (2 s, 4 s, 8 s, with jitter) and dead-lettered —
/// some 14 s of job time — in milliseconds of real time, on the memory
/// backend under `tokio::time::pause()`, both by `drain` and by a manager.
#[tokio::test(start_paused = true)]
async fn retries_three_times_then_dead_letters_in_milliseconds() {
    let started = Instant::now();
    let queue = jobs::connect("memory://").await.unwrap();
    let id = queue.enqueue(AlwaysDown).max_retries(3).await.unwrap();
    let drained = drain(&queue).with_scheduled(true).await.unwrap();
    assert_eq!((drained.retried, drained.dead_lettered), (3, 1));
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.attempt, job.retry_count),
        (JobStatus::DeadLetter, 4, 3)
    );
    let job_time = job.completed_at.unwrap() - job.created_at;
    assert!(job_time >= chrono::Duration::seconds(11), "{job_time}");

    // The same under a manager: its claim loop waits for each retry by
    // tokio's clock, which the paused runtime advances at once.
    let id = queue.enqueue(AlwaysDown).max_retries(3).await.unwrap();
    let manager = jobs::testing::manager(queue.clone())
        .auto_register(false)
        .register(&AlwaysDownHandler::REGISTRATION)
        .queues(["flaky"])
        .build()
        .unwrap();
    manager.run_until_drained().await.unwrap();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempt), (JobStatus::DeadLetter, 4));
    assert_eq!(manager.stats().retried, 3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} of real time",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn scheduled_jobs_and_leases_follow_the_paused_clock() {
    let queue = jobs::connect("memory://").await.unwrap();
    queue
        .enqueue(SendEmail {
            to: "later@x.example".into(),
        })
        .delay(Duration::from_secs(3600))
        .await
        .unwrap();
    let m = mailer();
    let now = drain(&queue).data_arc(m.clone()).await.unwrap();
    assert_eq!(now.attempts(), 0, "not due yet");
    tokio::time::advance(Duration::from_secs(3600)).await;
    let later = drain(&queue).data_arc(m.clone()).await.unwrap();
    assert_eq!(later.completed, 1);

    // A lease taken and never renewed expires after its time, by the same clock.
    use jobs::backend::ClaimRequest;
    let id = queue.enqueue(SendEmail { to: "x".into() }).await.unwrap();
    let queues = ["emails".to_owned()];
    let claimed = queue
        .backend()
        .claim(ClaimRequest::new("w", &queues, 1, Duration::from_secs(30)))
        .await
        .unwrap()
        .jobs;
    assert_eq!(claimed.len(), 1);
    assert!(queue.backend().recover_expired().await.unwrap().is_empty());
    tokio::time::advance(Duration::from_secs(31)).await;
    let recovered = queue.backend().recover_expired().await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(
        queue.get(id).await.unwrap().unwrap().status,
        JobStatus::Retrying
    );
}

#[tokio::test]
async fn an_optional_service_is_none_without_one_and_some_with_it() {
    let out = perform::<AuditHandler>(Audit { what: "x".into() }).await;
    assert!(!out.result_as::<bool>());
    let log = Arc::new(AuditLog(Mutex::new(Vec::new())));
    let out = perform::<AuditHandler>(Audit { what: "y".into() })
        .data_arc(log.clone())
        .await;
    assert!(out.result_as::<bool>());
    assert_eq!(*log.0.lock().unwrap(), ["y"]);
    // And `build()` does not require it.
    let queue = jobs::connect("memory://").await.unwrap();
    jobs::testing::manager(queue)
        .auto_register(false)
        .register(&AuditHandler::REGISTRATION)
        .build()
        .unwrap();
}

#[tokio::test]
async fn list_all_and_pages_walk_past_the_first_hundred() {
    let queue = jobs::connect("memory://").await.unwrap();
    queue
        .enqueue_batch((0..250).map(|i| SendEmail { to: i.to_string() }))
        .await
        .unwrap();
    assert_eq!(queue.list(&JobFilter::default()).await.unwrap().len(), 100);
    assert_eq!(
        queue.list_all(&JobFilter::default()).await.unwrap().len(),
        250
    );
    let mut pages = queue.pages(JobFilter::default().limit(100));
    let mut sizes = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.len());
    }
    assert_eq!(sizes, [100, 100, 50]);
}

#[tokio::test]
async fn build_warns_of_handlers_whose_queue_it_does_not_work_and_strict_refuses() {
    let queue = jobs::connect("memory://").await.unwrap();
    let build = |strict: bool| {
        jobs::testing::manager(queue.clone())
            .auto_register(false)
            .register(&SendEmailHandler::REGISTRATION)
            .data(Mailer::default())
            .strict(strict)
            .build()
    };
    build(false).expect("only a warning");
    let err = build(true).unwrap_err().to_string();
    assert!(
        err.contains("SendEmailHandler")
            && err.contains("`testing.email`")
            && err.contains("queue `emails`")
            && err.contains("[\"default\"]"),
        "{err}"
    );
    jobs::testing::manager(queue.clone())
        .auto_register(false)
        .register(&SendEmailHandler::REGISTRATION)
        .data(Mailer::default())
        .queues(["emails"])
        .strict(true)
        .build()
        .expect("the handler's queue is worked");
    assert_eq!(SendEmail::options().queue.as_deref(), Some("emails"));
}

trait Notifier: Send + Sync {}

#[derive(Debug, Serialize, Deserialize)]
struct Notify;

#[job_handler("testing.notify")]
async fn notify(_: Notify, _n: Data<dyn Notifier>) {}

#[tokio::test]
async fn a_missing_trait_object_service_names_data_arc() {
    let queue = jobs::connect("memory://").await.unwrap();
    let err = jobs::testing::manager(queue)
        .auto_register(false)
        .register(&NotifyHandler::REGISTRATION)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(".data_arc(Arc::new(service) as Arc<dyn testing::Notifier>)"),
        "{err}"
    );
    let out = perform::<NotifyHandler>(Notify).await;
    assert!(
        out.error().unwrap().message().contains(".data_arc("),
        "{out:?}"
    );
}
