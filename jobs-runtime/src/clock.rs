//! The memory backend's clock: wall-clock time that follows tokio's clock,
//! so `tokio::time::pause()` and `advance()` move scheduled jobs, retries
//! with backoff and leases along with every timer.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Utc};

/// The wall clock and the monotonic clock, read together once per process.
static ANCHOR: OnceLock<(DateTime<Utc>, Instant)> = OnceLock::new();

/// Now, by tokio's clock: the wall-clock time of the first call plus however
/// far tokio's clock has moved since. With tokio's clock running normally (or
/// outside a runtime) that is the wall clock; under `tokio::time::pause()`
/// time stands still except as the test advances it (or as tokio
/// auto-advances an idle runtime). Read from one anchor, it never jitters
/// while paused.
pub fn now() -> DateTime<Utc> {
    let (wall, real) = *ANCHOR.get_or_init(|| (Utc::now(), Instant::now()));
    let tokio_now = tokio::time::Instant::now().into_std();
    match tokio_now.checked_duration_since(real) {
        Some(since) => jobs_core::add_saturating(wall, since),
        None => chrono::Duration::from_std(real.duration_since(tokio_now))
            .ok()
            .and_then(|d| wall.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn it_is_the_wall_clock_while_tokio_runs_normally() {
        let skew = (now() - Utc::now()).num_milliseconds().abs();
        assert!(skew < 50, "{skew} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn it_follows_a_paused_and_advanced_tokio_clock() {
        let t0 = now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(now(), t0, "paused: time stands still");
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(now() - t0, chrono::Duration::seconds(3600));
        tokio::time::sleep(Duration::from_secs(60)).await; // auto-advance
        assert_eq!(now() - t0, chrono::Duration::seconds(3660));
    }
}
