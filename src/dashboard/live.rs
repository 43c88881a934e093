//! The parts of the overview that refresh themselves (htmx polls them every
//! few seconds): the counts per queue with the last hour's throughput, and
//! the running jobs. A poll of the counts costs one `counts()`, one
//! `paused()`, one `throughput()` and, per queue with waiting jobs, one
//! `list` of a single job (its oldest); a poll of the running jobs one
//! `list` of at most 20.

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::pages::{self, count_cell};
use super::util::{ago, span, Ctx};
use crate::{JobFilter, JobStatus, Queue};

/// The columns of the counts table, in order.
pub(crate) const COLUMNS: [(JobStatus, &str); 7] = [
    (JobStatus::Pending, "Waiting"),
    (JobStatus::Scheduled, "Scheduled"),
    (JobStatus::Running, "Running"),
    (JobStatus::Retrying, "Retrying"),
    (JobStatus::Failed, "Failed"),
    (JobStatus::DeadLetter, "Dead"),
    (JobStatus::Completed, "Completed"),
];

/// One queue: its counts, whether it is paused, its oldest waiting job.
#[derive(Debug, Clone)]
pub(crate) struct QueueRow {
    pub(crate) name: String,
    /// By [`COLUMNS`] order.
    pub(crate) counts: [u64; 7],
    pub(crate) paused: bool,
    /// When the oldest waiting (PENDING) job became due.
    pub(crate) oldest_waiting: Option<DateTime<Utc>>,
}

impl QueueRow {
    pub(crate) fn count(&self, status: JobStatus) -> u64 {
        COLUMNS
            .iter()
            .position(|(s, _)| *s == status)
            .map_or(0, |i| self.counts[i])
    }
}

/// What the overview's live part shows: [`queue_rows`] with the ages, and
/// the last hour's throughput.
pub(crate) async fn overview_data(
    queue: &Queue,
) -> crate::Result<(Vec<QueueRow>, super::chart::Throughput)> {
    let rows = queue_rows(queue, true).await?;
    Ok((rows, super::chart::Throughput::last_hour(queue).await))
}

/// Every queue that has jobs or is paused, by name.
pub(crate) async fn queue_rows(queue: &Queue, with_age: bool) -> crate::Result<Vec<QueueRow>> {
    let counts = queue.counts().await?;
    let paused = queue.paused().await.unwrap_or_default();
    let mut rows: std::collections::BTreeMap<String, QueueRow> = Default::default();
    fn row<'a>(
        rows: &'a mut std::collections::BTreeMap<String, QueueRow>,
        name: &str,
    ) -> &'a mut QueueRow {
        rows.entry(name.to_owned()).or_insert_with(|| QueueRow {
            name: name.to_owned(),
            counts: [0; 7],
            paused: false,
            oldest_waiting: None,
        })
    }
    for c in &counts {
        if let Some(i) = COLUMNS.iter().position(|(s, _)| *s == c.status) {
            row(&mut rows, &c.queue).counts[i] += c.count;
        }
    }
    for p in &paused {
        row(&mut rows, p).paused = true;
    }
    let mut rows: Vec<QueueRow> = rows.into_values().collect();
    if with_age {
        for r in &mut rows {
            if r.count(JobStatus::Pending) > 0 {
                let filter = JobFilter::default()
                    .queue(r.name.clone())
                    .status(JobStatus::Pending)
                    .limit(1);
                if let Some(job) = queue.list(&filter).await?.into_iter().next() {
                    r.oldest_waiting = Some(job.run_at.max(job.created_at));
                }
            }
        }
    }
    Ok(rows)
}

/// The counts table, polling for itself.
pub(crate) fn overview_fragment(
    ctx: &Ctx,
    rows: &[QueueRow],
    throughput: &super::chart::Throughput,
) -> Markup {
    let now = Utc::now();
    let poll = ctx.state.poll_seconds;
    let totals: Vec<u64> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|r| r.counts[i]).sum())
        .collect();
    html! {
        div #live-overview
            hx-get=[(poll > 0).then(|| ctx.url("/live/overview"))]
            hx-trigger=[(poll > 0).then(|| format!("every {poll}s"))]
            hx-swap="outerHTML" {
            div.cards {
                @for (i, (status, label)) in COLUMNS.iter().enumerate() {
                    @if *status != JobStatus::Completed {
                        a.card href=(ctx.list_url(&[("status", status.as_str())])) data-total=(status.as_str()) {
                            div.n { (totals[i]) }
                            div.l { (label) }
                        }
                    }
                }
            }
            table #queues-table {
                thead { tr {
                    th { "Queue" }
                    @for (_, label) in COLUMNS { th.num { (label) } }
                    th { "Oldest waiting" }
                    th { "State" }
                } }
                tbody {
                    @for r in rows {
                        tr data-queue=(r.name) {
                            td { a href=(ctx.list_url(&[("queue", &r.name)])) { (r.name) } }
                            @for (i, (status, _)) in COLUMNS.iter().enumerate() {
                                (count_cell(ctx, &r.name, *status, r.counts[i]))
                            }
                            td { @match r.oldest_waiting {
                                Some(t) => { (span((now - t).num_seconds().max(0) as u64)) }
                                None => { span.muted { "-" } }
                            } }
                            td { @if r.paused { span.badge.paused { "paused" } } @else { "active" } }
                        }
                    }
                    @if rows.is_empty() {
                        tr { td colspan="10" .muted { "No jobs yet." } }
                    }
                }
            }
            p.muted { "Updated " (super::util::time(now)) }
            (throughput.chart())
        }
    }
}

/// The running jobs, polling for themselves.
pub(crate) fn running_fragment(ctx: &Ctx, jobs: &[crate::Job]) -> Markup {
    let now = Utc::now();
    let poll = ctx.state.poll_seconds;
    html! {
        div #live-running
            hx-get=[(poll > 0).then(|| ctx.url("/live/running"))]
            hx-trigger=[(poll > 0).then(|| format!("every {poll}s"))]
            hx-swap="outerHTML" {
            table {
                thead { tr {
                    th { "Job" } th { "Type" } th { "Queue" } th { "Worker" }
                    th { "Started" } th { "Attempt" } th { "Progress" }
                } }
                tbody {
                    @for j in jobs {
                        tr {
                            td.mono { a href=(ctx.job_url(j.id)) { (super::util::short_id(j.id)) } }
                            td { (j.job_type) }
                            td { (j.queue_name) }
                            td.mono { (j.locked_by.as_deref().unwrap_or("-")) }
                            td { (ago(j.started_at, now)) }
                            td.num { (j.attempt) }
                            td { @if let Some(p) = &j.progress {
                                @if let Some(pc) = p.percent { progress max="100" value=(pc) {} " " (format!("{pc:.0}%")) }
                            } }
                        }
                    }
                    @if jobs.is_empty() { tr { td colspan="7" .muted { "Nothing running." } } }
                }
            }
            @if jobs.len() >= RUNNING_SHOWN {
                p { a href=(ctx.list_url(&[("status", "RUNNING")])) { "All running jobs" } }
            }
        }
    }
}

/// How many running jobs the overview shows.
pub(crate) const RUNNING_SHOWN: usize = 20;

pub(crate) async fn running_jobs(queue: &Queue) -> crate::Result<Vec<crate::Job>> {
    queue
        .list(
            &JobFilter::default()
                .status(JobStatus::Running)
                .limit(RUNNING_SHOWN),
        )
        .await
}

pub(crate) async fn overview(ctx: Ctx) -> Response {
    match overview_data(&ctx.state.queue).await {
        Ok((rows, throughput)) => overview_fragment(&ctx, &rows, &throughput).into_response(),
        Err(e) => pages::backend_error(&ctx, &e),
    }
}

pub(crate) async fn running(ctx: Ctx) -> Response {
    match running_jobs(&ctx.state.queue).await {
        Ok(jobs) => running_fragment(&ctx, &jobs).into_response(),
        Err(e) => pages::backend_error(&ctx, &e),
    }
}
