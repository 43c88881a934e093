//! The audit log: every operator action, newest first, paged.

use axum::response::{IntoResponse, Response};
use maud::html;

use super::{backend_error, layout};
use crate::dashboard::util::{query_string, time, Ctx};
use crate::AuditFilter;

const PAGE: usize = 100;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let offset: usize = ctx
        .param("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let filter = AuditFilter::default().limit(PAGE + 1).offset(offset);
    let mut entries = match ctx.state.queue.audit_log(&filter).await {
        Ok(e) => e,
        Err(e) => return backend_error(&ctx, &e),
    };
    let more = entries.len() > PAGE;
    entries.truncate(PAGE);
    let page_url = |o: usize| {
        let o = o.to_string();
        let q = query_string(&[("offset", &o)]);
        ctx.url(&format!("/audit?{q}"))
    };
    let body = html! {
        table #audit {
            thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Result" } th { "Detail" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (time(e.at)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td.mono {
                            @if let Ok(id) = e.target.parse::<crate::JobId>() { a href=(ctx.job_url(id)) { (e.target) } }
                            @else { (e.target) }
                        }
                        td { @if e.ok { "ok" } @else { span.badge.s-FAILED { "failed" } } }
                        td { (e.detail) }
                    }
                }
                @if entries.is_empty() { tr { td colspan="6" .muted { "No action recorded." } } }
            }
        }
        div.pager {
            @if offset > 0 { a rel="prev" href=(page_url(offset.saturating_sub(PAGE))) { "← Newer" } }
            @if more { a rel="next" href=(page_url(offset + PAGE)) { "Older →" } }
        }
    };
    layout(&ctx, "Audit log", "/audit", body).into_response()
}
