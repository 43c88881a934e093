//! The queues: counts, paused state, and the queue actions (pause, resume,
//! requeue every dead job). A queue shows here once it has jobs or is paused;
//! the workers' queues are listed too, so an empty queue can be paused.

use axum::response::{IntoResponse, Response};
use maud::html;

use super::{action_button, backend_error, count_cell, layout};
use crate::dashboard::live::{self, QueueRow, COLUMNS};
use crate::dashboard::util::Ctx;
use crate::JobStatus;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let mut rows = match live::queue_rows(queue, false).await {
        Ok(r) => r,
        Err(e) => return backend_error(&ctx, &e),
    };
    // Queues that workers serve but that have no job yet.
    if let Ok(workers) = queue.workers().await {
        for name in workers.iter().flat_map(|w| w.queues.iter()) {
            if !rows.iter().any(|r| &r.name == name) {
                rows.push(QueueRow {
                    name: name.clone(),
                    counts: [0; 7],
                    paused: false,
                    oldest_waiting: None,
                });
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let body = html! {
        table #queues {
            thead { tr {
                th { "Queue" } th { "State" }
                @for (_, label) in COLUMNS { th.num { (label) } }
                @if ctx.actions() { th { "Actions" } }
            } }
            tbody {
                @for r in &rows {
                    tr data-queue=(r.name) {
                        td { a href=(ctx.list_url(&[("queue", &r.name)])) { (r.name) } }
                        td { @if r.paused { span.badge.paused { "paused" } } @else { "active" } }
                        @for (i, (status, _)) in COLUMNS.iter().enumerate() {
                            (count_cell(&ctx, &r.name, *status, r.counts[i]))
                        }
                        @if ctx.actions() {
                            td {
                                @if r.paused {
                                    (action_button(&ctx, "resume", &[("queue", &r.name)], "Resume",
                                        &format!("Resume queue {}?", r.name), "primary"))
                                } @else {
                                    (action_button(&ctx, "pause", &[("queue", &r.name)], "Pause",
                                        &format!("Pause queue {}? Its jobs wait; running ones finish.", r.name), ""))
                                }
                                @if r.count(JobStatus::DeadLetter) > 0 {
                                    (action_button(&ctx, "requeue-dead", &[("queue", &r.name)], "Requeue dead",
                                        &format!("Requeue the {} dead jobs of queue {}?", r.count(JobStatus::DeadLetter), r.name), ""))
                                }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="10" .muted { "No queues yet." } } }
            }
        }
        p.muted { "A paused queue keeps its jobs waiting for every worker (running ones finish) until it is resumed." }
    };
    layout(&ctx, "Queues", "/queues", body).into_response()
}
