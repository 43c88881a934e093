//! The actions: requeue, cancel, delete, pause, resume and a queue's bulk
//! requeue of its dead jobs. Each is a `POST /actions/NAME` carrying the
//! dashboard's CSRF token, from a page of its own origin, confirmed in the
//! browser first; refused in read-only mode; written to the audit log by the
//! queue (actor `dashboard`, or `dashboard:USER`); and answered with a
//! redirect back to the page it came from, with a notice saying how it went.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::auth::{same_origin, same_secret};
use super::util::{pct, Ctx};
use crate::{CancelRequest, JobId, JobStatus, RequeueFilter};

/// What an action form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// A job type, narrowing a bulk requeue.
    #[serde(default, rename = "type")]
    job_type: Option<String>,
    /// The page to go back to (a path inside the dashboard).
    #[serde(default)]
    return_to: Option<String>,
}

/// At most this many dead jobs are requeued by one bulk requeue (the backend
/// applies it in batches, each atomically).
const BULK_MAX: usize = 100_000;

pub(crate) async fn action(
    ctx: Ctx,
    Path(action): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if ctx.state.read_only {
        return (StatusCode::FORBIDDEN, "this dashboard is read-only").into_response();
    }
    if let Err(e) = same_origin(&headers) {
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    if !same_secret(&form.csrf, &ctx.state.csrf_secret) {
        return (
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again",
        )
            .into_response();
    }
    let outcome = run(&ctx, &action, &form).await;
    let (status, back) = match &outcome {
        Outcome::Done { back, .. } | Outcome::Failed { back, .. } => (StatusCode::SEE_OTHER, back),
        Outcome::BadRequest(_) => (StatusCode::BAD_REQUEST, &None),
    };
    let (key, text) = match &outcome {
        Outcome::Done { notice, .. } => ("notice", notice.as_str()),
        Outcome::Failed { error, .. } => ("error", error.as_str()),
        Outcome::BadRequest(e) => return (status, e.clone()).into_response(),
    };
    let target = back
        .clone()
        .or_else(|| form.return_to.as_deref().and_then(safe_return))
        .unwrap_or_else(|| "/".to_owned());
    let sep = if target.contains('?') { '&' } else { '?' };
    let location = format!("{}{sep}{key}={}", ctx.url(&target), pct(text));
    Redirect::to(&location).into_response()
}

enum Outcome {
    /// It worked; `back` overrides where to go (a deleted job has no page).
    Done {
        notice: String,
        back: Option<String>,
    },
    Failed {
        error: String,
        back: Option<String>,
    },
    BadRequest(String),
}

fn done(notice: String) -> Outcome {
    Outcome::Done { notice, back: None }
}

fn failed(error: String) -> Outcome {
    Outcome::Failed { error, back: None }
}

/// A path inside the dashboard to go back to, without the last notice.
fn safe_return(r: &str) -> Option<String> {
    if !r.starts_with('/') || r.starts_with("//") || r.contains('\\') || r.starts_with("/actions/")
    {
        return None;
    }
    let (path, query) = r.split_once('?').unwrap_or((r, ""));
    let query: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("notice=") && !kv.starts_with("error="))
        .collect();
    Some(if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    })
}

async fn run(ctx: &Ctx, action: &str, form: &ActionForm) -> Outcome {
    let queue = ctx.queue();
    let id = || -> Result<JobId, Outcome> {
        form.id
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Outcome::BadRequest("a job id is required".into()))
    };
    let queue_name = || -> Result<&str, Outcome> {
        form.queue
            .as_deref()
            .filter(|q| !q.is_empty())
            .ok_or_else(|| Outcome::BadRequest("a queue name is required".into()))
    };
    match action {
        "requeue" => {
            let id = match id() {
                Ok(id) => id,
                Err(o) => return o,
            };
            match queue.requeue(id).await {
                Ok(job) => done(format!("Requeued job {id}: now {}.", job.status)),
                Err(e) => failed(format!("Could not requeue job {id}: {e}")),
            }
        }
        "cancel" => {
            let id = match id() {
                Ok(id) => id,
                Err(o) => return o,
            };
            let mut request = CancelRequest::by(queue.actor());
            if let Some(r) = form.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                request = request.reason(r.trim());
            }
            match queue.cancel_with(id, &request).await {
                Ok(job) if job.status == JobStatus::Running => done(format!(
                    "Cancelling job {id}: its worker is told to stop it."
                )),
                Ok(job) => done(format!("Cancelled job {id}: now {}.", job.status)),
                Err(e) => failed(format!("Could not cancel job {id}: {e}")),
            }
        }
        "delete" => {
            let id = match id() {
                Ok(id) => id,
                Err(o) => return o,
            };
            let list = Some("/jobs".to_owned());
            match queue.delete(id).await {
                Ok(()) => Outcome::Done {
                    notice: format!("Deleted job {id}."),
                    back: form
                        .return_to
                        .as_deref()
                        .filter(|r| r.starts_with("/jobs/"))
                        .and(list),
                },
                Err(e) => failed(format!("Could not delete job {id}: {e}")),
            }
        }
        "pause" => {
            let q = match queue_name() {
                Ok(q) => q,
                Err(o) => return o,
            };
            match queue.pause(q).await {
                Ok(()) => done(format!("Paused queue {q}.")),
                Err(e) => failed(format!("Could not pause queue {q}: {e}")),
            }
        }
        "resume" => {
            let q = match queue_name() {
                Ok(q) => q,
                Err(o) => return o,
            };
            match queue.resume(q).await {
                Ok(()) => done(format!("Resumed queue {q}.")),
                Err(e) => failed(format!("Could not resume queue {q}: {e}")),
            }
        }
        "requeue-dead" => {
            let q = match queue_name() {
                Ok(q) => q,
                Err(o) => return o,
            };
            let job_type = form.job_type.as_deref().filter(|t| !t.is_empty());
            requeue_dead(&queue, q, job_type).await
        }
        other => Outcome::BadRequest(format!("no action `{other}`")),
    }
}

/// Requeues every DEAD_LETTER job of `q` (of `job_type` only, if given)
/// with the backend's bulk requeue, a batch at a time; the queue handle
/// writes one audit entry for it, with the count.
async fn requeue_dead(queue: &crate::Queue, q: &str, job_type: Option<&str>) -> Outcome {
    let mut filter = RequeueFilter::dead_in(q).limit(BULK_MAX);
    if let Some(t) = job_type {
        filter = filter.job_type(t);
    }
    let what = match job_type {
        Some(t) => format!("dead jobs of queue {q}, type {t}"),
        None => format!("dead jobs of queue {q}"),
    };
    match queue.requeue_many(&filter).await {
        Ok(r) if r.skipped_unique.is_empty() => done(format!("Requeued {} {what}.", r.requeued)),
        Ok(r) => failed(format!(
            "Requeued {} {what}; {} stay dead because another job holds their unique key now.",
            r.requeued,
            r.skipped_unique.len()
        )),
        Err(e) => failed(format!("Could not requeue the {what}: {e}")),
    }
}
