//! The workers, as they registered themselves, and the cluster's maintainer.

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;

use super::{backend_error, layout};
use crate::dashboard::util::{ago, Ctx};

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let workers = match queue.workers().await {
        Ok(w) => w,
        Err(e) => return backend_error(&ctx, &e),
    };
    let maintainer = queue.backend().leader("maintainer").await.ok().flatten();
    let now = Utc::now();
    let body = html! {
        table #workers {
            thead { tr {
                th { "Worker" } th { "Host" } th.num { "Pid" } th { "Version" } th { "Queues" }
                th.num { "Running" } th { "Health" } th { "Started" } th { "Last seen" }
            } }
            tbody {
                @for w in &workers {
                    tr {
                        td.mono {
                            (w.id)
                            @if maintainer.as_ref().is_some_and(|l| l.holder == w.id) { " " span.badge { "maintainer" } }
                        }
                        td { (w.host) }
                        td.num { (w.pid) }
                        td { @if w.version.is_empty() { "?" } @else { (w.version) } }
                        td { (w.queues.join(", ")) }
                        td.num { (w.running) " / " (w.concurrency) }
                        td { (w.health) }
                        td { (ago(Some(w.started_at), now)) }
                        td { (ago(Some(w.last_seen), now)) }
                    }
                }
                @if workers.is_empty() { tr { td colspan="9" .muted { "No worker registered." } } }
            }
        }
        p.muted {
            @match &maintainer {
                Some(l) => { "Maintainer: " (l.holder) " (lease " (ago(Some(l.until), now)) ")." }
                None => { "Maintainer: none (no manager holds the role)." }
            }
            " A stopped worker's entry disappears once its lease runs out."
        }
    };
    layout(&ctx, "Workers", "/workers", body).into_response()
}
