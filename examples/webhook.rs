//! Sending webhooks (the seed's `WebhookJobHandler`) to a local HTTP server the
//! example starts itself: a 2xx completes the job, a 5xx or a network error is
//! retried with backoff, a 4xx fails at once (retrying cannot fix it).
//! The HTTP/1.1 client and server are a few lines over tokio's `TcpStream`, to
//! keep the example free of extra dependencies.
//!
//! ```text
//! cargo run --example webhook
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendWebhook {
    pub url: String,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{url} answered {status}")]
    Server { url: String, status: u16 },
    #[error("cannot reach {url}: {source}")]
    Network { url: String, source: std::io::Error },
}

#[job_handler(
    "webhook.send",
    queue = "webhooks",
    max_retries = 3,
    timeout = "10s",
    backoff = Backoff::exponential(Duration::from_millis(10)),
    on_failure = webhook_failed
)]
async fn send_webhook(
    hook: SendWebhook,
    http: Data<HttpClient>,
) -> Result<JobResult, WebhookError> {
    let (status, body) = http
        .post_json(&hook.url, &hook.payload)
        .await
        .map_err(|source| WebhookError::Network {
            url: hook.url.clone(),
            source,
        })?;
    let data =
        json!({ "status_code": status, "response": body.chars().take(1000).collect::<String>() });
    match status {
        200..=399 => Ok(JobResult::with_data(data)),
        // A client error: the request itself is wrong, so do not retry.
        400..=499 => Ok(JobResult::failure(JobError::permanent(format!(
            "{} answered {status}: not retried",
            hook.url
        )))
        .data(data)),
        // A server error: transient, retried with backoff.
        _ => Err(WebhookError::Server {
            url: hook.url,
            status,
        }),
    }
}

async fn webhook_failed(job: &Job, error: &JobError) {
    tracing::error!(
        job_id = %job.id,
        url = job.payload["url"].as_str().unwrap_or_default(),
        retry_count = job.retry_count,
        %error,
        "webhook attempt failed"
    );
}

/// A minimal HTTP/1.1 client: one `POST` per connection.
#[derive(Debug)]
pub struct HttpClient {
    pub timeout: Duration,
}

impl HttpClient {
    /// Posts `body` as JSON to an `http://host:port/path` URL; returns the
    /// status code and the response body.
    pub async fn post_json(&self, url: &str, body: &Value) -> std::io::Result<(u16, String)> {
        let invalid = |what: &str| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {url}"))
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("not an http:// URL"))?;
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let body = body.to_string();
        let exchange = async {
            let mut stream = TcpStream::connect(host).await?;
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))??;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("malformed response"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        Ok((status, body))
    }
}

/// The receiving end: `/ok` → 200, `/flaky` → 503 twice then 200, `/bad` →
/// 400, `/down` → 503 always. It counts hits and keeps the bodies it got.
#[derive(Debug, Default)]
pub struct Receiver {
    pub hits: Mutex<HashMap<String, u32>>,
    pub received: Mutex<Vec<Value>>,
}

pub async fn start_server(receiver: Arc<Receiver>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, receiver.clone()));
        }
    });
    Ok(addr)
}

async fn answer(mut stream: TcpStream, receiver: Arc<Receiver>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the head, then as much body as Content-Length says.
    let (head, mut body) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&buf[..end]).into_owned(),
                buf[end + 4..].to_vec(),
            );
        }
    };
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let hits = {
        let mut hits = receiver.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let (status, reason) = match path.as_str() {
        "/ok" => (200, "OK"),
        "/flaky" if hits > 2 => (200, "OK"),
        "/flaky" | "/down" => (503, "Service Unavailable"),
        "/bad" => (400, "Bad Request"),
        _ => (404, "Not Found"),
    };
    if status == 200 {
        if let Ok(value) = serde_json::from_slice(&body) {
            receiver.received.lock().unwrap().push(value);
        }
    }
    let reply = format!("{{\"status\":{status}}}");
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await
}

/// Enqueues one webhook per path to the server at `addr`; returns (path, id).
pub async fn enqueue_hooks(queue: &Queue, addr: SocketAddr) -> jobs::Result<Vec<(String, JobId)>> {
    let mut ids = Vec::new();
    for path in ["/ok", "/flaky", "/bad", "/down"] {
        let hook = SendWebhook {
            url: format!("http://{addr}{path}"),
            payload: json!({ "event": "order.paid", "path": path }),
        };
        ids.push((path.to_owned(), queue.enqueue(hook).await?.id()));
    }
    Ok(ids)
}

/// Sends one webhook per path and runs a worker until all are done.
pub async fn run(receiver: Arc<Receiver>) -> jobs::Result<Vec<(String, Job)>> {
    let addr = start_server(receiver).await.expect("bind 127.0.0.1:0");
    let queue = jobs::connect("memory://").await?;
    let ids = enqueue_hooks(&queue, addr).await?;
    let manager = WorkerManager::builder(queue.clone())
        .data(HttpClient {
            timeout: Duration::from_secs(5),
        })
        .queues(["webhooks"])
        .build()?;
    manager.run_until_drained().await?;
    let mut jobs = Vec::new();
    for (path, id) in ids {
        jobs.push((path, queue.get(id).await?.expect("stored")));
    }
    Ok(jobs)
}

#[tokio::main]
async fn main() -> jobs::Result<()> {
    for (path, job) in run(Arc::default()).await? {
        let outcome = match job.status {
            JobStatus::Completed => job.result_data.map(|d| d.to_string()),
            _ => job.error_message,
        };
        println!(
            "{path:<7} {:<11} after {} attempt(s): {}",
            job.status.to_string(),
            job.attempt,
            outcome.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::testing::{drain, perform};

    fn http() -> HttpClient {
        HttpClient {
            timeout: Duration::from_secs(5),
        }
    }

    /// Every path drained against the local server (real sockets, so real
    /// time: the backoff is a few milliseconds).
    #[tokio::test]
    async fn server_errors_retry_and_client_errors_do_not() {
        let receiver = Arc::new(Receiver::default());
        let addr = start_server(receiver.clone()).await.unwrap();
        let queue = jobs::connect("memory://").await.unwrap();
        let ids = enqueue_hooks(&queue, addr).await.unwrap();
        let drained = drain(&queue)
            .data(http())
            .with_scheduled(true)
            .await
            .unwrap();
        assert_eq!(
            (drained.completed, drained.failed, drained.dead_lettered),
            (2, 1, 1)
        );
        let mut outcome = Vec::new();
        for (path, id) in &ids {
            let job = queue.get(*id).await.unwrap().unwrap();
            outcome.push((path.as_str(), job.status, job.attempt, job));
        }
        let summary: Vec<_> = outcome.iter().map(|(p, s, a, _)| (*p, *s, *a)).collect();
        assert_eq!(
            summary,
            [
                ("/ok", JobStatus::Completed, 1),
                ("/flaky", JobStatus::Completed, 3),
                ("/bad", JobStatus::Failed, 1),
                ("/down", JobStatus::DeadLetter, 4),
            ]
        );
        let bad = &outcome[2].3;
        assert!(bad
            .error_message
            .as_deref()
            .unwrap()
            .contains("answered 400: not retried"));
        assert_eq!(bad.result_data.as_ref().unwrap()["status_code"], 400);
        let hits = receiver.hits.lock().unwrap().clone();
        assert_eq!(
            (hits["/ok"], hits["/flaky"], hits["/bad"], hits["/down"]),
            (1, 3, 1, 4)
        );
        let received = receiver.received.lock().unwrap();
        assert!(received.contains(&json!({ "event": "order.paid", "path": "/flaky" })));
    }

    #[tokio::test]
    async fn a_2xx_completes_with_the_status_code() {
        let receiver = Arc::new(Receiver::default());
        let addr = start_server(receiver).await.unwrap();
        let out = perform::<SendWebhookHandler>(SendWebhook {
            url: format!("http://{addr}/ok"),
            payload: json!({}),
        })
        .data(http())
        .await;
        assert_eq!(out.result_as::<Value>()["status_code"], 200);
    }

    #[tokio::test]
    async fn an_unreachable_host_is_a_retryable_network_error() {
        // Bind then drop a listener: nothing listens on that port any more.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let out = perform::<SendWebhookHandler>(SendWebhook {
            url: format!("http://{addr}/hook"),
            payload: json!({}),
        })
        .data(http())
        .await;
        assert_eq!(out.status(), JobStatus::Retrying);
        assert!(
            out.error().unwrap().message().starts_with("cannot reach"),
            "{out:?}"
        );
    }

    /// What `main` does, with a real manager.
    #[tokio::test]
    async fn the_demo_runs_to_the_end() {
        let jobs = run(Arc::default()).await.unwrap();
        assert_eq!(jobs.len(), 4);
        assert!(jobs.iter().all(|(_, j)| j.status.is_terminal()));
    }
}
