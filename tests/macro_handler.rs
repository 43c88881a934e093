//! `#[job_handler]` end to end without a manager: what the generated handler
//! does with a job, its registration, and typed enqueue.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;
use jobs::registry::DynHandler;
use jobs::{HandlerRegistration, NewJob, ServiceRequirement, Services};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
    subject: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Receipt {
    message_id: String,
}

#[derive(Debug)]
struct MailError(&'static str);
impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for MailError {}

#[derive(Default)]
struct Mailer {
    sent: AtomicU32,
    down: bool,
}

#[derive(Default)]
struct Alerts {
    raised: AtomicU32,
}

#[job_handler(
    "email.send",
    queue = "emails",
    max_retries = 5,
    priority = -2,
    timeout = "1m30s",
    backoff = Backoff::fixed(Duration::from_millis(5)),
    on_failure = email_failed
)]
async fn send_email(
    email: SendEmail,
    mailer: Data<Mailer>,
    ctx: JobContext,
    job: &Job,
) -> Result<Receipt, MailError> {
    assert_eq!(ctx.id(), job.id);
    if mailer.down {
        return Err(MailError("smtp down"));
    }
    let n = mailer.sent.fetch_add(1, Ordering::SeqCst);
    Ok(Receipt {
        message_id: format!("{}-{}-{n}", email.recipient, email.subject),
    })
}

async fn email_failed(job: &Job, error: &JobError, alerts: Data<Alerts>) {
    assert_eq!(job.job_type, "email.send");
    assert!(!error.message().is_empty());
    alerts.raised.fetch_add(1, Ordering::SeqCst);
}

#[derive(Debug, Serialize, Deserialize)]
struct Charge {
    amount: i64,
}

impl Validate for Charge {
    fn validate(&self) -> Result<(), String> {
        if self.amount > 0 {
            Ok(())
        } else {
            Err(format!("amount must be positive, got {}", self.amount))
        }
    }
}

static CHARGED: AtomicU32 = AtomicU32::new(0);

/// A custom name, and `crate = ..` spelled out.
#[job_handler("payment.charge", name = ChargeJob, crate = jobs)]
async fn charge(charge: Charge) -> JobResult {
    CHARGED.fetch_add(1, Ordering::SeqCst);
    JobResult::with_data(json!({ "charged": charge.amount }))
}

#[derive(Serialize, Deserialize)]
struct Ping;

#[job_handler("ping")]
async fn ping(_: Ping) {}

#[derive(Serialize, Deserialize)]
struct Refuse {
    permanent: bool,
}

#[job_handler("refuse")]
async fn refuse(r: Refuse) -> Result<(), JobError> {
    if r.permanent {
        Err(JobError::permanent("will never work"))
    } else {
        Err(JobError::msg("try later"))
    }
}

fn job_of<P: JobPayload>(payload: &P) -> Job {
    Job::from_new(NewJob::new(
        P::JOB_TYPE,
        serde_json::to_value(payload).unwrap(),
    ))
}

fn services(mailer: Mailer) -> Services {
    let mut s = Services::new();
    s.insert(mailer);
    s.insert(Alerts::default());
    s
}

/// Runs a handler as the manager does: with the job's context as current.
async fn run(
    handler: &dyn DynHandler,
    job: &Job,
    services: &Services,
) -> Result<JobResult, JobError> {
    let ctx = JobContext::for_job(job.clone(), services.clone());
    ctx.scope(handler.handle(job)).await
}

fn registration(job_type: &str) -> &'static HandlerRegistration {
    jobs::registry::registered_handlers()
        .find(|r| r.job_type == job_type)
        .unwrap_or_else(|| panic!("`{job_type}` is not registered"))
}

#[test]
fn the_handler_is_named_after_the_function_and_knows_its_options() {
    let h = SendEmailHandler;
    assert_eq!(JobHandler::job_type(&h), "email.send");
    assert_eq!(SendEmailHandler::JOB_TYPE, "email.send");
    assert_eq!(
        JobHandler::timeout(&h),
        Some(jobs::Timeout::After(Duration::from_secs(90)))
    );
    assert_eq!(
        JobHandler::backoff(&h),
        Some(Backoff::fixed(Duration::from_millis(5)))
    );
    assert_eq!(JobHandler::job_type(&ChargeJob), "payment.charge");
    assert_eq!(JobHandler::timeout(&ChargeJob), None);
    assert_eq!(format!("{:?}", PingHandler), "PingHandler");
}

#[test]
fn the_payload_knows_its_job_type_and_defaults() {
    assert_eq!(<SendEmail as JobPayload>::JOB_TYPE, "email.send");
    let o = SendEmail::options();
    assert_eq!(o.queue.as_deref(), Some("emails"));
    assert_eq!(o.max_retries, Some(5));
    assert_eq!(o.priority, Some(-2));
    assert_eq!(Charge::options(), jobs::JobOptions::default());
}

#[tokio::test]
async fn a_job_runs_through_the_generated_handler() {
    let services = services(Mailer::default());
    let job = job_of(&SendEmail {
        recipient: "ada@example.com".into(),
        subject: "hi".into(),
    });
    let out = run(&SendEmailHandler, &job, &services).await.unwrap();
    assert!(out.success);
    assert_eq!(
        out.result_data,
        Some(json!({ "message_id": "ada@example.com-hi-0" }))
    );
}

#[tokio::test]
async fn an_error_is_retryable_and_on_failure_gets_its_extractors() {
    let services = services(Mailer {
        down: true,
        ..Mailer::default()
    });
    let job = job_of(&SendEmail {
        recipient: "a".into(),
        subject: "b".into(),
    });
    let err = run(&SendEmailHandler, &job, &services).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.to_string(), "smtp down");
    assert!(err.downcast_ref::<MailError>().is_some());
    let ctx = JobContext::for_job(job.clone(), services.clone());
    ctx.scope(DynHandler::on_failure(&SendEmailHandler, &job, &err))
        .await
        .unwrap();
    assert_eq!(
        services
            .get::<Alerts>()
            .unwrap()
            .raised
            .load(Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn a_malformed_payload_fails_permanently_naming_type_and_field() {
    let job = Job::from_new(NewJob::new(
        "email.send",
        json!({ "recipient": "a", "subject": 7 }),
    ));
    let err = run(&SendEmailHandler, &job, &services(Mailer::default()))
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    let msg = err.to_string();
    assert!(
        msg.contains("`email.send`") && msg.contains("subject"),
        "{msg}"
    );
    assert!(msg.contains("invalid type: integer `7`"), "{msg}");
}

#[tokio::test]
async fn validate_runs_before_the_function_and_fails_permanently() {
    let before = CHARGED.load(Ordering::SeqCst);
    let err = run(&ChargeJob, &job_of(&Charge { amount: 0 }), &Services::new())
        .await
        .unwrap_err();
    assert!(err.is_permanent());
    assert!(
        err.to_string()
            .contains("payload of job type `payment.charge` failed validation: amount must be positive, got 0"),
        "{err}"
    );
    assert_eq!(
        CHARGED.load(Ordering::SeqCst),
        before,
        "the function must not run"
    );
    let ok = run(&ChargeJob, &job_of(&Charge { amount: 3 }), &Services::new())
        .await
        .unwrap();
    assert_eq!(ok.result_data, Some(json!({ "charged": 3 })));
}

#[tokio::test]
async fn return_types_map_to_outcomes() {
    let none = Services::new();
    let out = run(&PingHandler, &job_of(&Ping), &none).await.unwrap();
    assert!(out.success && out.result_data.is_none());
    let perm = run(&RefuseHandler, &job_of(&Refuse { permanent: true }), &none)
        .await
        .unwrap_err();
    assert!(perm.is_permanent());
    let retry = run(&RefuseHandler, &job_of(&Refuse { permanent: false }), &none)
        .await
        .unwrap_err();
    assert!(retry.is_retryable());
}

#[tokio::test]
async fn a_missing_service_outside_a_manager_is_an_error_naming_it() {
    // A manager refuses to start without it; called directly, the job says why.
    let job = job_of(&SendEmail {
        recipient: "a".into(),
        subject: "b".into(),
    });
    let err = DynHandler::handle(&SendEmailHandler, &job)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Mailer"), "{err}");
}

#[test]
fn handlers_register_at_link_time_with_their_location_and_needs() {
    let reg = registration("email.send");
    assert_eq!(reg.handler_name, "macro_handler::SendEmailHandler");
    assert_eq!(reg.payload_type, "SendEmail");
    assert!(reg.file.ends_with("macro_handler.rs"), "{}", reg.file);
    let src = include_str!("macro_handler.rs");
    let line = src.lines().nth(reg.line as usize - 1).unwrap();
    assert!(
        line.contains("async fn send_email("),
        "line {}: {line}",
        reg.line
    );
    let needs = (reg.requirements)();
    assert_eq!(
        needs,
        vec![
            ServiceRequirement::of::<Mailer>(),
            ServiceRequirement::of::<Alerts>()
        ]
    );
    assert_eq!((reg.make)().job_type(), "email.send");
    assert!(std::ptr::eq(reg, registration("email.send")));
    assert_eq!(ChargeJob::REGISTRATION.job_type, "payment.charge");
    let by_hand: &'static HandlerRegistration = &ChargeJob::REGISTRATION;
    assert_eq!(by_hand.handler_name, "macro_handler::ChargeJob");
    assert!((registration("ping").requirements)().is_empty());
}

#[test]
fn the_registration_checks_raw_payloads_including_validation() {
    let reg = registration("payment.charge");
    assert_eq!((reg.check_payload)(&json!({ "amount": 5 })), Ok(()));
    let why = (reg.check_payload)(&json!({ "amount": "5" })).unwrap_err();
    assert!(
        why.contains("amount") && why.contains("invalid type"),
        "{why}"
    );
    let why = (reg.check_payload)(&json!({ "amount": -1 })).unwrap_err();
    assert_eq!(why, "failed validation: amount must be positive, got -1");
}

#[tokio::test]
async fn typed_enqueue_uses_the_handler_defaults_and_can_override_them() {
    let queue = jobs::connect("memory://").await.unwrap();
    let id = queue
        .enqueue(SendEmail {
            recipient: "a".into(),
            subject: "b".into(),
        })
        .await
        .unwrap();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (
            job.job_type.as_str(),
            job.queue_name.as_str(),
            job.max_retries,
            job.priority
        ),
        ("email.send", "emails", 5, -2)
    );
    let id = queue
        .enqueue(SendEmail {
            recipient: "a".into(),
            subject: "b".into(),
        })
        .queue("urgent")
        .max_retries(0)
        .priority(9)
        .metadata("tenant", 7)
        .await
        .unwrap();
    let job = queue.get(id).await.unwrap().unwrap();
    assert_eq!(
        (job.queue_name.as_str(), job.max_retries, job.priority),
        ("urgent", 0, 9)
    );
    assert_eq!(job.metadata["tenant"], json!(7));
    let ids = queue
        .enqueue_batch([Charge { amount: 1 }, Charge { amount: 2 }])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn typed_enqueue_runs_validate_before_storing() {
    let queue = jobs::connect("memory://").await.unwrap();
    let err = queue.enqueue(Charge { amount: 0 }).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid payload for job type `payment.charge`: failed validation: amount must be positive, got 0"
    );
    let err = queue
        .enqueue_batch([Charge { amount: 1 }, Charge { amount: -1 }])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got -1"), "{err}");
    assert!(queue.list(&Default::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn raw_enqueue_is_checked_against_the_registered_payload_type() {
    let queue = jobs::connect("memory://").await.unwrap();
    let err = queue
        .enqueue_raw("email.send", json!({ "recipient": "a" }))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`email.send`") && msg.contains("missing field `subject`"),
        "{msg}"
    );
    let err = queue
        .enqueue_raw("payment.charge", json!({ "amount": 0 }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("amount must be positive"), "{err}");
    assert!(queue.list(&Default::default()).await.unwrap().is_empty());
    queue
        .enqueue_raw("email.send", json!({ "recipient": "a", "subject": "b" }))
        .await
        .unwrap();
}

/// The seed's FAQ "how do I test handlers in isolation": the function is a plain
/// function; call it with fake services, no queue involved.
#[tokio::test]
async fn the_function_stays_callable_in_unit_tests() {
    let mailer = Data::new(Mailer::default());
    let job = job_of(&SendEmail {
        recipient: "x".into(),
        subject: "y".into(),
    });
    let ctx = JobContext::for_job(job.clone(), Services::new());
    let receipt = send_email(
        SendEmail {
            recipient: "x".into(),
            subject: "y".into(),
        },
        mailer.clone(),
        ctx,
        &job,
    )
    .await
    .unwrap();
    assert_eq!(receipt.message_id, "x-y-0");
    assert_eq!(mailer.sent.load(Ordering::SeqCst), 1);
    let _ = Arc::new(SendEmailHandler);
}
