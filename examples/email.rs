//! Sending email with `#[job_handler]`: the seed's `EmailJobHandler`, with its
//! template branch and its "alert when retries are exhausted" `on_failure`.
//! The mail service is a trait object injected as `Data<dyn EmailService>`, so
//! tests swap in a fake.
//!
//! ```text
//! cargo run --example email
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::prelude::*;

/// The job: a direct email, or a template with variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendEmail {
    pub recipient: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    pub template_id: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// What the handler stores as the job's `result_data`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Sent {
    pub recipient: String,
    pub message_id: String,
    pub templated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
}

/// The mail service the handler needs (SMTP, an HTTP API, a fake in tests).
pub trait EmailService: Send + Sync {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<String, EmailError>;
    fn send_templated(
        &self,
        to: &str,
        template_id: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<String, EmailError>;
    fn alert_admin(&self, message: String);
}

#[job_handler(
    "email.send",
    queue = "emails",
    max_retries = 2,
    timeout = "30s",
    backoff = Backoff::exponential(Duration::from_millis(20)),
    on_failure = email_failed
)]
async fn send_email(
    email: SendEmail,
    mail: Data<dyn EmailService>,
    ctx: JobContext,
) -> Result<Sent, EmailError> {
    tracing::info!(job_id = %ctx.id(), recipient = %email.recipient, "sending email");
    let message_id = match &email.template_id {
        Some(template) => mail.send_templated(&email.recipient, template, &email.variables)?,
        None => mail.send(&email.recipient, &email.subject, &email.body)?,
    };
    Ok(Sent {
        recipient: email.recipient,
        message_id,
        templated: email.template_id.is_some(),
    })
}

/// Runs after every failed attempt; alerts only once no retry follows.
async fn email_failed(job: &Job, error: &JobError, mail: Data<dyn EmailService>) {
    tracing::error!(job_id = %job.id, retry_count = job.retry_count, %error, "email job failed");
    if job.is_last_attempt() {
        mail.alert_admin(format!(
            "email job {} failed after {} retries: {error}",
            job.id, job.max_retries
        ));
    }
}

/// A pretend mail server: addresses at `down.example` never get through.
#[derive(Debug, Default)]
pub struct ConsoleMail {
    pub alerts: Mutex<Vec<String>>,
}

impl EmailService for ConsoleMail {
    fn send(&self, to: &str, subject: &str, _body: &str) -> Result<String, EmailError> {
        if to.ends_with("@down.example") {
            return Err(EmailError::Unavailable(format!("no route to {to}")));
        }
        println!("  mail to {to}: {subject:?}");
        Ok(format!("<{}.{to}>", subject.len()))
    }

    fn send_templated(
        &self,
        to: &str,
        template_id: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<String, EmailError> {
        println!("  mail to {to}: template {template_id} with {variables:?}");
        Ok(format!("<{template_id}.{to}>"))
    }

    fn alert_admin(&self, message: String) {
        println!("  ADMIN ALERT: {message}");
        self.alerts.lock().unwrap().push(message);
    }
}

/// Enqueues three emails: a direct one, a templated one, one that cannot be
/// delivered. Returns their ids.
async fn enqueue_demo(queue: &Queue) -> jobs::Result<Vec<JobId>> {
    let welcome = SendEmail {
        recipient: "ada@example.com".into(),
        subject: "Welcome!".into(),
        body: "Glad you are here.".into(),
        template_id: None,
        variables: BTreeMap::new(),
    };
    let templated = SendEmail {
        recipient: "grace@example.com".into(),
        template_id: Some("password-reset".into()),
        variables: BTreeMap::from([("name".into(), "Grace".into())]),
        ..welcome.clone()
    };
    let doomed = SendEmail {
        recipient: "bob@down.example".into(),
        ..welcome.clone()
    };
    Ok(vec![
        queue.enqueue(welcome).await?.id(),
        queue.enqueue(templated).priority(10).await?.id(),
        queue.enqueue(doomed).await?.id(),
    ])
}

/// Enqueues the demo's emails, runs a worker until they are done, returns the jobs.
async fn run(queue: Queue, mail: Arc<dyn EmailService>) -> jobs::Result<Vec<Job>> {
    let ids = enqueue_demo(&queue).await?;
    let manager = WorkerManager::builder(queue.clone())
        .data_arc(mail)
        .queues(["emails"])
        .build()?;
    manager.run_until_drained().await?;
    let mut jobs = Vec::new();
    for id in ids {
        jobs.extend(queue.get(id).await?);
    }
    Ok(jobs)
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    let queue = jobs::connect("memory://").await?;
    for job in run(queue, Arc::new(ConsoleMail::default())).await? {
        let outcome = job.result_data.map(|d| d.to_string());
        println!(
            "{} {:<11} after {} attempt(s): {}",
            job.id,
            job.status,
            job.attempt,
            outcome.or(job.error_message).unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::testing::{drain, perform};

    /// A fake that records what it was asked to do.
    #[derive(Default)]
    struct FakeMail {
        calls: Mutex<Vec<String>>,
    }

    impl EmailService for FakeMail {
        fn send(&self, to: &str, subject: &str, _: &str) -> Result<String, EmailError> {
            if to.ends_with("@down.example") {
                return Err(EmailError::Unavailable(format!("no route to {to}")));
            }
            self.calls
                .lock()
                .unwrap()
                .push(format!("send {to} {subject}"));
            Ok("m-1".into())
        }
        fn send_templated(
            &self,
            to: &str,
            template_id: &str,
            _: &BTreeMap<String, String>,
        ) -> Result<String, EmailError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("template {to} {template_id}"));
            Ok("m-2".into())
        }
        fn alert_admin(&self, message: String) {
            self.calls.lock().unwrap().push(format!("alert {message}"));
        }
    }

    fn email(to: &str, template_id: Option<&str>) -> SendEmail {
        SendEmail {
            recipient: to.into(),
            subject: "Hi".into(),
            body: "Body".into(),
            template_id: template_id.map(Into::into),
            variables: BTreeMap::new(),
        }
    }

    /// The seed's FAQ: test the handler in isolation, with a fake service and
    /// no queue — here run as a worker runs it, `on_failure` included.
    #[tokio::test]
    async fn template_and_direct_branches() {
        let fake = Arc::new(FakeMail::default());
        let out = perform::<SendEmailHandler>(email("a@example.com", Some("welcome")))
            .data_arc(fake.clone() as Arc<dyn EmailService>)
            .await;
        assert_eq!(
            out.result_as::<Sent>(),
            Sent {
                recipient: "a@example.com".into(),
                message_id: "m-2".into(),
                templated: true
            }
        );
        let out = perform::<SendEmailHandler>(email("a@example.com", None))
            .data_arc(fake.clone() as Arc<dyn EmailService>)
            .await;
        assert!(!out.result_as::<Sent>().templated);
        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["template a@example.com welcome", "send a@example.com Hi"]
        );
    }

    #[tokio::test]
    async fn a_failure_is_retried_and_only_the_last_one_alerts() {
        let fake = Arc::new(FakeMail::default());
        let out = perform::<SendEmailHandler>(email("bob@down.example", None))
            .data_arc(fake.clone() as Arc<dyn EmailService>)
            .await;
        assert_eq!(out.status(), JobStatus::Retrying);
        // The handler's backoff: 20 ms, ±20 % jitter.
        let delay = out.retry_in().unwrap();
        assert!(
            delay >= Duration::from_millis(16) && delay <= Duration::from_millis(24),
            "{delay:?}"
        );
        assert!(fake.calls.lock().unwrap().is_empty(), "no alert yet");

        let out = perform::<SendEmailHandler>(email("bob@down.example", None))
            .data_arc(fake.clone() as Arc<dyn EmailService>)
            .last_attempt()
            .await;
        assert_eq!(out.status(), JobStatus::DeadLetter);
        let calls = fake.calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].contains("after 2 retries"), "{calls:?}");
    }

    /// The whole demo, drained in the test: retries wait for their backoff on
    /// a paused clock, so they take no time.
    #[tokio::test(start_paused = true)]
    async fn unreachable_recipients_retry_then_dead_letter_and_alert_once() {
        let queue = jobs::connect("memory://").await.unwrap();
        let ids = enqueue_demo(&queue).await.unwrap();
        let mail = Arc::new(ConsoleMail::default());
        let drained = drain(&queue)
            .data_arc(mail.clone() as Arc<dyn EmailService>)
            .with_scheduled(true)
            .await
            .unwrap();
        assert_eq!(
            (drained.completed, drained.retried, drained.dead_lettered),
            (2, 2, 1)
        );
        let mut statuses = Vec::new();
        for id in &ids {
            let job = queue.get(*id).await.unwrap().unwrap();
            statuses.push((job.status, job.attempt));
        }
        assert_eq!(
            statuses,
            [
                (JobStatus::Completed, 1),
                (JobStatus::Completed, 1),
                (JobStatus::DeadLetter, 3)
            ]
        );
        let alerts = mail.alerts.lock().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].contains("after 2 retries"), "{alerts:?}");
    }
}
