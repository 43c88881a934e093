//! The overview: totals, the counts of every queue with its oldest waiting
//! job and paused state, the last hour's throughput, and the running jobs —
//! both refreshing themselves.

use axum::response::{IntoResponse, Response};
use maud::html;

use super::{backend_error, layout};
use crate::dashboard::live;
use crate::dashboard::util::Ctx;

pub(crate) async fn page(ctx: Ctx) -> Response {
    let queue = &ctx.state.queue;
    let (rows, throughput) = match live::overview_data(queue).await {
        Ok(r) => r,
        Err(e) => return backend_error(&ctx, &e),
    };
    let running = match live::running_jobs(queue).await {
        Ok(r) => r,
        Err(e) => return backend_error(&ctx, &e),
    };
    let body = html! {
        (live::overview_fragment(&ctx, &rows, &throughput))
        h2 { "Running now" }
        (live::running_fragment(&ctx, &running))
    };
    layout(&ctx, "Overview", "", body).into_response()
}
