//! The dashboard's static files, embedded in the crate: htmx (vendored from
//! npm, pinned by `assets/SHA256SUMS`, licence in `assets/htmx.LICENSE`),
//! the dashboard's own script and stylesheet.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// htmx 2.0.4 (`htmx.org` on npm), as published.
pub(crate) const HTMX_JS: &[u8] = include_bytes!("assets/htmx.min.js");
const DASHBOARD_JS: &[u8] = include_bytes!("assets/dashboard.js");
const DASHBOARD_CSS: &[u8] = include_bytes!("assets/dashboard.css");

/// The version in asset addresses, so a new release is not served from a stale cache.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX_JS, "text/javascript; charset=utf-8"),
        "dashboard.js" => (DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "dashboard.css" => (DASHBOARD_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
