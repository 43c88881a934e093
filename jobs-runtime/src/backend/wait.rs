//! The tail every listener shares: wait for a signal, or until the earliest
//! scheduled job of its queues is due, or the caller's timeout — whichever
//! comes first.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How long from `now` until `due` (zero once it has passed); `None` for no due time.
pub(crate) fn time_left(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    due.map(|due| (due - now).to_std().unwrap_or(Duration::ZERO))
}

/// Waits for `signal`, at most until the next job is due (`until_due`, by the
/// backend's clock) and at most `timeout`. `Some(output)` if the signal came.
pub(crate) async fn signal_or_due<F: Future>(
    signal: F,
    until_due: Option<Duration>,
    timeout: Duration,
) -> Option<F::Output> {
    let limit = until_due.map_or(timeout, |left| left.min(timeout));
    tokio::time::timeout(limit, signal).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_saturates_at_zero() {
        let now = Utc::now();
        assert_eq!(time_left(None, now), None);
        assert_eq!(
            time_left(Some(now - chrono::Duration::seconds(5)), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            time_left(Some(now + chrono::Duration::milliseconds(1500)), now),
            Some(Duration::from_millis(1500))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_of_signal_due_and_timeout_wins() {
        let never = std::future::pending::<()>();
        let t = tokio::time::Instant::now();
        assert_eq!(
            signal_or_due(never, Some(Duration::from_secs(2)), Duration::from_secs(9)).await,
            None
        );
        assert_eq!(t.elapsed(), Duration::from_secs(2));
        let t = tokio::time::Instant::now();
        assert_eq!(
            signal_or_due(std::future::pending::<()>(), None, Duration::from_secs(3)).await,
            None
        );
        assert_eq!(t.elapsed(), Duration::from_secs(3));
        assert_eq!(
            signal_or_due(async { 7 }, None, Duration::from_secs(3)).await,
            Some(7)
        );
    }
}
