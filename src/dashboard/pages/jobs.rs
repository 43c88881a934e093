//! The jobs list: filters by queue, status and type, a text search in
//! payloads and errors, a sort order, and keyset paging through
//! `Queue::list_page` (a `Next` link carrying the cursor; deep pages cost what
//! the first one does). Every choice lives in the URL query, so a link shows
//! the same list to whoever opens it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;

use super::{action_button, backend_error, badge, layout};
use crate::dashboard::util::{ago, truncate, Ctx};
use crate::{JobCursor, JobFilter, JobSort, JobStatus};

/// Jobs per page unless `?limit=` says otherwise (at most 500).
const PAGE: usize = 50;

/// The dashboard's order unless `?sort=` says otherwise: what happened last first.
const SORT: JobSort = JobSort::Newest;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let q = ctx.param("queue").map(str::to_owned);
    let job_type = ctx.param("type").map(str::to_owned);
    let status_text = ctx.param("status").map(str::to_owned);
    let bad_request = |message: String| {
        let body = html! {
            div.error { (message) }
            p { a href=(ctx.url("/jobs")) { "Back to the first page of every job" } }
        };
        (StatusCode::BAD_REQUEST, layout(&ctx, "Jobs", "/jobs", body)).into_response()
    };
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
    let search = ctx.param("q").map(str::to_owned);
    let sort = match ctx.param("sort").map(str::parse::<JobSort>) {
        None => SORT,
        Some(Ok(s)) => s,
        Some(Err(e)) => return bad_request(e.to_string()),
    };
    let after = match ctx.param("after").map(str::parse::<JobCursor>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => return bad_request(e.to_string()),
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
    let mut filter = JobFilter::default().limit(limit).sort(sort);
    if after.is_none() {
        // Older links page by offset; the first page of a cursor walk has none.
        filter.offset = offset;
    }
    filter.after = after;
    filter.queue.clone_from(&q);
    filter.status = status;
    filter.job_type.clone_from(&job_type);
    filter.search.clone_from(&search);
    let page = match queue.list_page(&filter).await {
        Ok(p) => p,
        Err(e @ crate::Error::InvalidFilter(_)) => return bad_request(e.to_string()),
        Err(e) => return backend_error(&ctx, &e),
    };
    let jobs = page.jobs;
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
    let (qs, ts, ss, search_s) = (
        q.as_deref().unwrap_or(""),
        job_type.as_deref().unwrap_or(""),
        status.map(JobStatus::as_str).unwrap_or(""),
        search.as_deref().unwrap_or(""),
    );
    let sort_s = if sort == SORT { "" } else { sort.as_str() };
    let limit_s = if limit == PAGE {
        String::new()
    } else {
        limit.to_string()
    };
    // The same list from another place: after a cursor, or from an offset.
    let page_url = |after: Option<&JobCursor>, offset: usize| {
        let o = offset.to_string();
        let a = after.map(ToString::to_string).unwrap_or_default();
        ctx.list_url(&[
            ("queue", qs),
            ("status", ss),
            ("type", ts),
            ("q", search_s),
            ("sort", sort_s),
            ("limit", &limit_s),
            ("after", &a),
            ("offset", if offset == 0 { "" } else { &o }),
        ])
    };
    let deep = after.is_some() || offset > 0;
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
            label { "Search"
                // Narrows the list as one types (htmx swaps the list in and
                // keeps the URL in step); Enter or the button work without script.
                input #search type="search" name="q" value=(search_s)
                    placeholder="text in payload, errors or type"
                    hx-get=(ctx.url("/jobs")) hx-trigger="input changed delay:400ms, search"
                    hx-include="#filters" hx-target="#jobs-list" hx-select="#jobs-list"
                    hx-swap="outerHTML" hx-push-url="true";
            }
            label { "Sort"
                select name="sort" {
                    @for o in JobSort::ALL { option value=(o.as_str()) selected[sort == o] { (o.label()) } }
                }
            }
            @if limit != PAGE { input type="hidden" name="limit" value=(limit); }
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
        div #jobs-list {
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
            @if offset > 0 && after.is_none() {
                a rel="prev" href=(page_url(None, offset.saturating_sub(limit))) { "← Previous" }
            }
            @if deep { a rel="first" href=(page_url(None, 0)) { "⇤ First page" } }
            span.muted {
                @if deep { (jobs.len()) " jobs" } @else {
                    "Jobs " (if jobs.is_empty() { 0 } else { 1 }) "–" (jobs.len())
                }
            }
            @if let Some(next) = &page.next {
                @if page.scan_limited {
                    span.muted #scan-limited {
                        "Looked at the next " (filter.scan_limit) " jobs in this order: "
                        (jobs.len()) " matched."
                    }
                    a rel="next" href=(page_url(Some(next), 0)) { "Continue searching →" }
                } @else {
                    a rel="next" href=(page_url(Some(next), 0)) { "Next →" }
                }
            }
        }
        }
        p.muted {
            "Sorted " (sort.label()) ". "
            @if search.is_some() {
                "The search matches the job type, the payload's JSON text, the latest error and earlier errors' messages (ASCII letters in any case). "
            }
            "Each page looks at no more than " (filter.scan_limit) " jobs in its order, so a page costs the same however deep it is."
        }
    };
    layout(&ctx, "Jobs", "/jobs", body).into_response()
}
