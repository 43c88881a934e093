//! Timestamps as stored: integer microseconds since the Unix epoch (UTC).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use jobs_core::MAX_DELAY;

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn now_micros() -> i64 {
    micros(Utc::now())
}

/// The current time, but never the same value twice in this process: what a
/// call stamps as `completed_at` identifies the rows it changed.
pub(super) fn unique_now_micros() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = now_micros();
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    now.max(prev.saturating_add(1))
}

/// `t + d`, with `d` cut to [`MAX_DELAY`] (so a `Duration::MAX` retry delay or
/// lease is about a century, as on every backend) and saturating.
pub(super) fn add_micros(t: i64, d: Duration) -> i64 {
    let d = d.min(MAX_DELAY);
    t.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) fn rfc3339(t: i64) -> String {
    from_micros(t).to_rfc3339_opts(SecondsFormat::Micros, true)
}
