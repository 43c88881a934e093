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
#[derive(Debug, Serialize, PartialEq)]
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

/// Enqueues three emails, runs a worker until they are done, returns the jobs.
async fn run(queue: Queue, mail: Arc<dyn EmailService>) -> jobs::Result<Vec<Job>> {
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
    let ids = vec![
        queue.enqueue(welcome).await?,
        queue.enqueue(templated).priority(10).await?,
        queue.enqueue(doomed).await?,
    ];

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

    /// A fake that records what it was asked to do.
    #[derive(Default)]
    struct FakeMail {
        calls: Mutex<Vec<String>>,
    }

    impl EmailService for FakeMail {
        fn send(&self, to: &str, subject: &str, _: &str) -> Result<String, EmailError> {
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

    fn email(template_id: Option<&str>) -> SendEmail {
        SendEmail {
            recipient: "a@example.com".into(),
            subject: "Hi".into(),
            body: "Body".into(),
            template_id: template_id.map(Into::into),
            variables: BTreeMap::new(),
        }
    }

    fn ctx() -> JobContext {
        let job = Job::from_new(NewJob::new("email.send", serde_json::json!({})));
        JobContext::for_job(job, Default::default())
    }

    /// The seed's FAQ: test the handler in isolation, with a fake service and
    /// no queue.
    #[tokio::test]
    async fn template_and_direct_branches() {
        let fake = Arc::new(FakeMail::default());
        let mail: Data<dyn EmailService> = Data::from_arc(fake.clone() as Arc<dyn EmailService>);
        let sent = send_email(email(Some("welcome")), mail.clone(), ctx())
            .await
            .unwrap();
        assert_eq!(
            sent,
            Sent {
                recipient: "a@example.com".into(),
                message_id: "m-2".into(),
                templated: true
            }
        );
        let sent = send_email(email(None), mail, ctx()).await.unwrap();
        assert!(!sent.templated);
        assert_eq!(
            *fake.calls.lock().unwrap(),
            ["template a@example.com welcome", "send a@example.com Hi"]
        );
    }

    #[tokio::test]
    async fn unreachable_recipients_retry_then_alert_once() {
        let queue = jobs::connect("memory://").await.unwrap();
        let mail = Arc::new(ConsoleMail::default());
        let jobs = run(queue, mail.clone()).await.unwrap();
        let statuses: Vec<_> = jobs.iter().map(|j| (j.status, j.attempt)).collect();
        assert_eq!(
            statuses,
            [
                (JobStatus::Completed, 1),
                (JobStatus::Completed, 1),
                (JobStatus::DeadLetter, 3)
            ]
        );
        assert_eq!(jobs[1].result_data.as_ref().unwrap()["templated"], true);
        let alerts = mail.alerts.lock().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].contains("after 2 retries"), "{alerts:?}");
    }
}
