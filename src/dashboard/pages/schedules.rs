//! The periodic schedules: cron, last tick and its job, next tick, and
//! whether one looks stalled (as `jobs schedules` in the CLI).

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;

use super::{backend_error, badge, layout};
use crate::dashboard::util::{time_ago, Ctx};

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let list = match queue.schedules().await {
        Ok(s) => s,
        Err(e) => return backend_error(&ctx, &e),
    };
    let now = Utc::now();
    let mut rows = Vec::with_capacity(list.len());
    for s in list {
        let last = match s.last_job {
            Some(id) => match queue.get(id).await {
                Ok(j) => Some((id, j.map(|j| j.status))),
                Err(e) => return backend_error(&ctx, &e),
            },
            None => None,
        };
        rows.push((s, last));
    }
    let body = html! {
        table #schedules {
            thead { tr {
                th { "Name" } th { "Cron" } th { "Time zone" } th { "Last run" } th { "Its job" } th { "Next run" }
            } }
            tbody {
                @for (s, last) in &rows {
                    tr {
                        td { (s.name) }
                        td {
                            code { (s.cron) }
                            @if let Some(text) = crate::describe_cron(&s.cron) { br; span.muted { (text) } }
                        }
                        td { (s.timezone) }
                        td { (time_ago(s.last_tick, now)) }
                        td {
                            @match last {
                                Some((id, Some(st))) => { a href=(ctx.job_url(id)) { (badge(*st)) } }
                                Some((_, None)) => { span.muted { "pruned" } }
                                None => { "-" }
                            }
                        }
                        td {
                            (time_ago(s.next_tick, now))
                            @if s.next_tick.is_some_and(|t| now - t > chrono::Duration::minutes(2)) {
                                " " span.badge.s-FAILED { "not firing: no running manager declares it?" }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="6" .muted { "No periodic schedule." } } }
            }
        }
    };
    layout(&ctx, "Schedules", "/schedules", body).into_response()
}
