//! One job: its state and actions, payload and result, metadata, progress,
//! the worker that runs or ran it, a timeline and every recorded error.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};

use super::{action_button, backend_error, badge, layout};
use crate::dashboard::util::{ago, pretty, time, time_ago, Ctx};
use crate::{Job, JobId, JobStatus};

pub(crate) async fn page(ctx: Ctx, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<JobId>() else {
        return (
            StatusCode::NOT_FOUND,
            layout(
                &ctx,
                "Job",
                "/jobs",
                html! { div.error { "Not a job id: " (id) } },
            ),
        )
            .into_response();
    };
    let job = match ctx.state.queue.get(id).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                layout(
                    &ctx,
                    "Job",
                    "/jobs",
                    html! { div.error { "No job " (id) " (deleted or pruned?)" } },
                ),
            )
                .into_response()
        }
        Err(e) => return backend_error(&ctx, &e),
    };
    let title = format!("Job {}", job.id);
    layout(&ctx, &title, "/jobs", body(&ctx, &job)).into_response()
}

fn actions(ctx: &Ctx, job: &Job) -> Markup {
    let id = job.id.to_string();
    let fields = [("id", id.as_str())];
    html! {
        div.actions {
            @if matches!(job.status, JobStatus::Failed | JobStatus::DeadLetter) {
                (action_button(ctx, "requeue", &fields, "Requeue",
                    &format!("Requeue job {id} with a fresh retry budget?"), "primary"))
            }
            @if job.status.is_waiting() || job.status == JobStatus::Running {
                @if job.cancelled_at.is_none() {
                    (action_button(ctx, "cancel", &fields, "Cancel",
                        &format!("Cancel job {id}?"), "danger"))
                }
            }
            @if job.status != JobStatus::Running {
                (action_button(ctx, "delete", &fields, "Delete",
                    &format!("Delete job {id} for good?"), "danger"))
            }
        }
    }
}

/// The job's status, actions and progress: while the job is not finished,
/// it polls for itself (`/jobs/ID/live`), so a page left open follows the job.
fn live_part(ctx: &Ctx, job: &Job) -> Markup {
    let now = Utc::now();
    let poll = ctx.state.poll_seconds;
    let follow = poll > 0 && !job.status.is_terminal();
    html! {
        div #job-live
            hx-get=[follow.then(|| ctx.url(&format!("/jobs/{}/live", job.id)))]
            hx-trigger=[follow.then(|| format!("every {poll}s"))]
            hx-swap="outerHTML" {
            p #job-status {
                (badge(job.status))
                @if let Some(at) = job.cancelled_at {
                    " " span.badge.s-FAILED #cancelled { "cancelled " (ago(Some(at), now)) }
                    @if job.status == JobStatus::Running { " " span.muted { "(its worker is stopping it)" } }
                }
            }
            (actions(ctx, job))
            @if let Some(p) = &job.progress {
                h2 { "Progress" }
                p #progress {
                    @if let Some(pc) = p.percent { progress max="100" value=(pc) {} " " (format!("{pc:.0}%")) " " }
                    span.muted { "reported " (ago(Some(p.at), now)) }
                }
                @if let Some(d) = &p.data { pre { (pretty(d)) } }
            }
        }
    }
}

/// `GET /jobs/ID/live`: the part of a job's page that changes while it runs.
pub(crate) async fn live(ctx: Ctx, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<JobId>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match ctx.state.queue.get(id).await {
        Ok(Some(job)) => {
            // Actions come back to the job's page, not to this fragment.
            let mut page_ctx = ctx.clone();
            page_ctx.here = format!("/jobs/{id}");
            live_part(&page_ctx, &job).into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such job").into_response(),
        Err(e) => backend_error(&ctx, &e),
    }
}

fn body(ctx: &Ctx, job: &Job) -> Markup {
    let now = Utc::now();
    let limits = serde_json::to_value(&job.limits).unwrap_or_default();
    html! {
        (live_part(ctx, job))
        h2 { "Details" }
        dl.meta #job-meta {
            dt { "Type" } dd.mono #job-type { (job.job_type) }
            dt { "Queue" } dd { a href=(ctx.list_url(&[("queue", &job.queue_name)])) { (job.queue_name) } }
            dt { "Priority" } dd { (job.priority) }
            dt { "Attempts" } dd { (job.attempt) " (retries " (job.retry_count) " of " (job.max_retries) ")" }
            dt { "Worker" } dd.mono {
                @if let Some(w) = &job.locked_by { (w) } @else if let Some(w) = job.errors.last().and_then(|e| e.worker.as_deref()) { (w) " (last failed attempt)" } @else { "-" }
            }
            @if let Some(l) = job.lease_until { dt { "Lease until" } dd { (time_ago(Some(l), now)) } }
            dt { "Enqueued" } dd { (time_ago(Some(job.created_at), now)) }
            dt { "Due" } dd { (time_ago(Some(job.run_at), now)) }
            dt { "Started" } dd { (time_ago(job.started_at, now)) }
            dt { "Finished" } dd { (time_ago(job.completed_at, now)) }
            @if let Some(t) = &job.timeout { dt { "Timeout" } dd { (format!("{t:?}")) } }
            @if job.snoozes > 0 { dt { "Snoozed" } dd { (job.snoozes) " times" } }
            @if let Some(k) = &job.unique_key { dt { "Unique key" } dd.mono { (k) } }
            @if limits.as_object().is_some_and(|o| o.values().any(|v| !v.is_null())) {
                dt { "Limits" } dd.mono { (limits.to_string()) }
            }
        }
        h2 { "Payload" }
        pre #payload { (pretty(&job.payload)) }
        @if let Some(r) = &job.result_data {
            h2 { "Result" }
            pre #result { (pretty(r)) }
        }
        @if !job.metadata.is_empty() {
            h2 { "Metadata" }
            pre #metadata { (pretty(&serde_json::Value::Object(job.metadata.clone()))) }
        }
        h2 { "Timeline" }
        ul.timeline #timeline {
            @for (at, what) in timeline(job) { li { (time(at)) " — " (what) } }
        }
        h2 { "Errors" }
        @if job.errors.is_empty() && job.error_message.is_none() {
            p.muted { "None." }
        } @else {
            @if let Some(m) = &job.error_message { p { "Latest: " } pre #error-message { (m) } }
            @if job.error_count as usize > job.errors.len() {
                p.muted { (job.error_count) " failed attempts in all; the last " (job.errors.len()) " are kept." }
            }
            table #errors {
                thead { tr { th { "Attempt" } th { "At" } th { "Worker" } th { "Retryable" } th { "Error" } } }
                tbody {
                    @for e in job.errors.iter().rev() {
                        tr {
                            td.num { (e.attempt) }
                            td { (time(e.at)) }
                            td.mono { (e.worker.as_deref().unwrap_or("-")) }
                            td { @if e.retryable { "yes" } @else { "no" } }
                            td { pre { (e.message) } }
                        }
                    }
                }
            }
        }
    }
}

/// What happened to the job, oldest first, as far as its record tells.
fn timeline(job: &Job) -> Vec<(chrono::DateTime<Utc>, String)> {
    let mut events = vec![(job.created_at, "enqueued".to_owned())];
    if job.run_at > job.created_at + chrono::Duration::seconds(1) {
        events.push((job.run_at, "due".to_owned()));
    }
    for e in &job.errors {
        let how = if e.retryable { " (retryable)" } else { "" };
        events.push((e.at, format!("attempt {} failed{how}", e.attempt)));
    }
    if let Some(s) = job.started_at {
        events.push((s, format!("attempt {} started (the latest)", job.attempt)));
    }
    if let Some(c) = job.cancelled_at {
        events.push((c, "cancelled".to_owned()));
    }
    if let Some(c) = job.completed_at {
        events.push((c, format!("finished: {}", job.status)));
    }
    // Stable: events of the same instant keep the order above.
    events.sort_by_key(|(at, _)| *at);
    events
}
