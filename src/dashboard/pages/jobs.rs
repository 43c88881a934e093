//! The jobs list: filters by queue, status and type, paged by offset.
//!
//! `JobFilter` has no text search, so there is none here: search by type,
//! queue and status, and open a job for its payload and errors.

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;

use super::{action_button, backend_error, badge, layout};
use crate::dashboard::util::{ago, truncate, Ctx};
use crate::{JobFilter, JobStatus};

/// Jobs per page unless `?limit=` says otherwise (at most 500).
const PAGE: usize = 50;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let q = ctx.param("queue").map(str::to_owned);
    let job_type = ctx.param("type").map(str::to_owned);
    let status_text = ctx.param("status").map(str::to_owned);
    let status = match status_text.as_deref().map(str::parse::<JobStatus>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            return layout(
                &ctx,
                "Jobs",
                "/jobs",
                html! { div.error { (e.to_string()) } },
            )
            .into_response()
        }
    };
    let limit = ctx
        .param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(PAGE)
        .clamp(1, 500);
    let offset: usize = ctx
        .param("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let mut filter = JobFilter::default().limit(limit + 1).offset(offset);
    filter.queue.clone_from(&q);
    filter.status = status;
    filter.job_type.clone_from(&job_type);
    let mut jobs = match queue.list(&filter).await {
        Ok(j) => j,
        Err(e) => return backend_error(&ctx, &e),
    };
    let more = jobs.len() > limit;
    jobs.truncate(limit);
    // The queues and types to choose from: the queues with jobs.
    let queues: Vec<String> = match queue.counts().await {
        Ok(c) => {
            let mut names: Vec<String> = c.into_iter().map(|c| c.queue).collect();
            names.dedup();
            names.sort();
            names.dedup();
            names
        }
        Err(e) => return backend_error(&ctx, &e),
    };
    let now = Utc::now();
    let (qs, ts, ss) = (
        q.as_deref().unwrap_or(""),
        job_type.as_deref().unwrap_or(""),
        status.map(JobStatus::as_str).unwrap_or(""),
    );
    let limit_s = if limit == PAGE {
        String::new()
    } else {
        limit.to_string()
    };
    let page_url = |offset: usize| {
        let o = offset.to_string();
        ctx.list_url(&[
            ("queue", qs),
            ("status", ss),
            ("type", ts),
            ("limit", &limit_s),
            ("offset", if offset == 0 { "" } else { &o }),
        ])
    };
    let body = html! {
        form.filters #filters method="get" action=(ctx.url("/jobs")) {
            label { "Queue"
                select name="queue" {
                    option value="" { "any" }
                    @for name in &queues { option value=(name) selected[q.as_deref() == Some(name.as_str())] { (name) } }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in JobStatus::ALL { option value=(s.as_str()) selected[status == Some(s)] { (s) } }
                }
            }
            label { "Type" input type="text" name="type" value=(ts) placeholder="exact job type"; }
            button.primary type="submit" { "Filter" }
            a href=(ctx.url("/jobs")) { "Clear" }
        }
        @if status == Some(JobStatus::DeadLetter) {
            @if let Some(qn) = &q {
                div.actions {
                    @if let Some(t) = &job_type {
                        (action_button(&ctx, "requeue-dead", &[("queue", qn), ("type", t)],
                            "Requeue every dead job matching this filter",
                            &format!("Requeue every dead job of type {t} in queue {qn}?"), "primary"))
                    } @else {
                        (action_button(&ctx, "requeue-dead", &[("queue", qn)],
                            "Requeue every dead job of this queue",
                            &format!("Requeue every dead job of queue {qn}?"), "primary"))
                    }
                }
            }
        }
        table #jobs-table {
            thead { tr {
                th { "Job" } th { "Type" } th { "Queue" } th { "Status" } th.num { "Attempt" }
                th { "Enqueued" } th { "Due" } th { "Error" }
            } }
            tbody {
                @for j in &jobs {
                    tr data-job=(j.id) {
                        td.mono { a href=(ctx.job_url(j.id)) { (crate::dashboard::util::short_id(j.id)) } }
                        td { (j.job_type) }
                        td { (j.queue_name) }
                        td { (badge(j.status)) @if j.cancelled_at.is_some() { " " span.badge { "cancelled" } } }
                        td.num { (j.attempt) "/" (j.max_retries + 1) }
                        td { (ago(Some(j.created_at), now)) }
                        td { (ago(Some(j.run_at), now)) }
                        td { (truncate(j.error_message.as_deref().unwrap_or(""), 120)) }
                    }
                }
                @if jobs.is_empty() { tr { td colspan="8" .muted { "No job matches." } } }
            }
        }
        div.pager {
            @if offset > 0 { a rel="prev" href=(page_url(offset.saturating_sub(limit))) { "← Previous" } }
            span.muted { "Jobs " (if jobs.is_empty() { 0 } else { offset + 1 }) "–" (offset + jobs.len()) }
            @if more { a rel="next" href=(page_url(offset + limit)) { "Next →" } }
        }
        p.muted { "In enqueue order. Text search in payloads and errors is not offered: the backends' job filter has none." }
    };
    layout(&ctx, "Jobs", "/jobs", body).into_response()
}
