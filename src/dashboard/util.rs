//! What every page needs: the request's context (where the dashboard is
//! mounted, the CSRF token, the user, the notice of the last action), URL
//! encoding and times as people read them.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::Uri;
use chrono::{DateTime, Utc};

use super::auth::User;
use super::AppState;

/// The path the dashboard is mounted under (`""` at the root,
/// `/admin/jobs` under `Router::nest("/admin/jobs", ..)`).
fn base_from(state: &AppState, original: Option<&Uri>, uri: &Uri) -> String {
    if let Some(b) = &state.base_path {
        return b.clone();
    }
    let Some(original) = original else {
        return String::new();
    };
    let (full, inner) = (original.path(), uri.path());
    let base = match full.strip_suffix(inner) {
        Some(b) => b,
        // `nest("/x")` serves `/x` as its `/`.
        None if inner == "/" => full,
        None => "",
    };
    base.trim_end_matches('/').to_owned()
}

pub(crate) fn base_of(state: &AppState, req: &Request) -> String {
    let original = req.extensions().get::<OriginalUri>().map(|o| &o.0);
    base_from(state, original, req.uri())
}

/// The context of one request, for rendering.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    /// Where the dashboard is mounted, without a trailing `/`.
    pub(crate) base: String,
    /// The signed-in user (basic auth).
    pub(crate) user: Option<String>,
    /// The query of the request.
    pub(crate) query: HashMap<String, String>,
    /// The request's path and query inside the dashboard, for `return_to`.
    pub(crate) here: String,
}

impl Ctx {
    /// An address inside the dashboard: `url("/jobs")`; `url("")` is the overview.
    pub(crate) fn url(&self, path: &str) -> String {
        if path.is_empty() || path == "/" {
            if self.base.is_empty() {
                "/".to_owned()
            } else {
                self.base.clone()
            }
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The address of a job's page.
    pub(crate) fn job_url(&self, id: impl std::fmt::Display) -> String {
        self.url(&format!("/jobs/{id}"))
    }

    /// The jobs list with these filters.
    pub(crate) fn list_url(&self, params: &[(&str, &str)]) -> String {
        let q = query_string(params);
        if q.is_empty() {
            self.url("/jobs")
        } else {
            self.url(&format!("/jobs?{q}"))
        }
    }

    /// A query parameter, if given and not empty.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether actions are shown and accepted.
    pub(crate) fn actions(&self) -> bool {
        !self.state.read_only
    }

    /// The queue, acting as `dashboard` or `dashboard:USER`.
    pub(crate) fn queue(&self) -> crate::Queue {
        match &self.user {
            Some(u) => self
                .state
                .queue
                .clone()
                .with_actor(format!("{}:{u}", super::ACTOR)),
            None => self.state.queue.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let original = parts.extensions.get::<OriginalUri>().map(|o| &o.0);
        let base = base_from(state, original, &parts.uri);
        let user = parts.extensions.get::<User>().and_then(|u| u.0.clone());
        let query = parse_query(parts.uri.query().unwrap_or(""));
        let here = match parts.uri.query() {
            Some(q) => format!("{}?{q}", parts.uri.path()),
            None => parts.uri.path().to_owned(),
        };
        Ok(Ctx {
            state: state.clone(),
            base,
            user,
            query,
            here,
        })
    }
}

/// `a=1&b=x%20y` as a map (the last of a repeated name wins).
pub(crate) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

/// `a=1&b=x%20y` from pairs, leaving out empty values.
pub(crate) fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub(crate) fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` (as a space); invalid escapes are kept as they are.
pub(crate) fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `3s ago`, `in 2m`, `-`.
pub(crate) fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(t) = t else {
        return "-".to_owned();
    };
    let secs = (now - t).num_seconds();
    if secs >= 0 {
        format!("{} ago", span(secs as u64))
    } else {
        format!("in {}", span(secs.unsigned_abs()))
    }
}

/// `45s`, `3m`, `5h`, `2d`.
pub(crate) fn span(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// `2026-12-03 13:45:07 UTC`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional time, with how long ago.
pub(crate) fn time_ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => format!("{} ({})", time(t), ago(Some(t), now)),
        None => "-".to_owned(),
    }
}

/// JSON, indented, for a `<pre>`.
pub(crate) fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A job id, short: its random tail (a v7 id begins with its time, alike
/// for jobs enqueued together), the whole id in the title.
pub(crate) fn short_id(id: crate::JobId) -> maud::Markup {
    let s = id.to_string();
    maud::html! { span title=(s) { "…" (&s[s.len() - 12..]) } }
}

/// At most `n` characters, with `…` if cut.
pub(crate) fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips() {
        for s in [
            "plain",
            "a b&c=d",
            "\"><img src=x>",
            "ünï/cödé%",
            "%",
            "%4",
            "%zz",
        ] {
            assert_eq!(pct_decode(&pct(s)), s);
        }
        assert_eq!(pct_decode("%41+b%"), "A b%");
    }
}
