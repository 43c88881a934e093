//! The pages, one a file, and what they share: the layout, status badges,
//! action buttons.

pub(crate) mod audit;
pub(crate) mod job;
pub(crate) mod jobs;
pub(crate) mod overview;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod workers;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::assets::VERSION;
use super::auth::AuthMode;
use super::util::Ctx;
use crate::JobStatus;

const NAV: [(&str, &str); 7] = [
    ("", "Overview"),
    ("/jobs", "Jobs"),
    ("/queues", "Queues"),
    ("/workers", "Workers"),
    ("/schedules", "Schedules"),
    ("/audit", "Audit log"),
    ("/metrics", "Metrics"),
];

/// A whole page: header, navigation, the notice of the last action, `body`.
pub(crate) fn layout(ctx: &Ctx, title: &str, active: &str, body: Markup) -> Markup {
    let state = &ctx.state;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No inline styles from htmx (the CSP forbids them), no eval.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                title { (title) " · " (state.title) }
                link rel="stylesheet" href=(ctx.url(&format!("/assets/dashboard.css?v={VERSION}")));
                script src=(ctx.url(&format!("/assets/htmx.min.js?v={VERSION}"))) defer {}
                script src=(ctx.url(&format!("/assets/dashboard.js?v={VERSION}"))) defer {}
            }
            body {
                header {
                    a.brand href=(ctx.url("")) { (state.title) }
                    nav {
                        @for (path, name) in NAV {
                            a href=(ctx.url(path)) class=[(path == active).then_some("active")] { (name) }
                        }
                    }
                    div.right {
                        @if state.read_only { span.badge { "read-only" } }
                        @if let Some(u) = &ctx.user { span { "signed in as " (u) } }
                        @if matches!(state.auth, AuthMode::Token(_)) && active != "login" {
                            form method="post" action=(ctx.url("/logout")) {
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(n) = ctx.param("notice") { div.notice role="status" { (n) } }
                    @if let Some(e) = ctx.param("error") { div.error role="alert" { (e) } }
                    (body)
                }
            }
        }
    }
}

/// A status as a coloured badge.
pub(crate) fn badge(status: JobStatus) -> Markup {
    html! { span class=(format!("badge s-{status}")) { (status) } }
}

/// A button that POSTs `action` with `fields`, the CSRF token and where to
/// come back to, after the browser asks `confirm`.
pub(crate) fn action_button(
    ctx: &Ctx,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    confirm: &str,
    class: &str,
) -> Markup {
    if !ctx.actions() {
        return html! {};
    }
    html! {
        form.inline method="post" action=(ctx.url(&format!("/actions/{action}"))) data-confirm=(confirm) {
            input type="hidden" name="csrf" value=(ctx.state.csrf_secret);
            input type="hidden" name="return_to" value=(ctx.here);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" class=(class) data-action=(action) { (label) }
        }
    }
}

/// A cell with a count, greyed when zero, linking to the jobs it counts.
pub(crate) fn count_cell(ctx: &Ctx, queue: &str, status: JobStatus, n: u64) -> Markup {
    html! {
        @if n == 0 {
            td.num.zero { "0" }
        } @else {
            td.num { a href=(ctx.list_url(&[("queue", queue), ("status", status.as_str())])) { (n) } }
        }
    }
}

/// A page saying the backend failed.
pub(crate) fn backend_error(ctx: &Ctx, e: &crate::Error) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        layout(
            ctx,
            "Error",
            "",
            html! { div.error { "The backend failed: " (e.to_string()) } },
        ),
    )
        .into_response()
}

/// 404.
pub(crate) async fn not_found(ctx: Ctx) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout(&ctx, "Not found", "", html! { p { "No such page." } }),
    )
        .into_response()
}
