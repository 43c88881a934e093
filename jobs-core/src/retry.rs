//! Retry backoff: how long a failed job waits before its next attempt.

use std::time::Duration;

/// Exponential backoff with a cap and jitter. The default:
/// 2 s doubling per retry, capped at 1 h, ±20 % jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            factor: 2.0,
            max: Duration::from_secs(3600),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// `base`, doubling per retry (cap 1 h, jitter ±20 %).
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            base,
            ..Backoff::default()
        }
    }

    /// The same delay before every retry, without jitter.
    pub fn fixed(delay: Duration) -> Self {
        Backoff {
            base: delay,
            factor: 1.0,
            max: delay,
            jitter: 0.0,
        }
    }

    /// Retry at once.
    pub fn none() -> Self {
        Backoff::fixed(Duration::ZERO)
    }

    /// Growth per retry (2.0 doubles).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    /// The longest delay.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Random spread as a fraction of the delay (0.2 = ±20 %), clamped to 0..=1.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The delay before the retry that follows a failure at `retry_count`
    /// (0 after the first attempt). `sample` is uniform in `[0, 1)` and picks the jitter.
    pub fn delay(&self, retry_count: u32, sample: f64) -> Duration {
        let exp = self.factor.powi(retry_count.min(64) as i32);
        let raw = self.base.as_secs_f64() * exp;
        let capped = raw.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * sample.clamp(0.0, 1.0) - 1.0);
        // Saturates rather than panics for delays no clock can hold.
        Duration::try_from_secs_f64((capped * spread).max(0.0))
            .unwrap_or(Duration::MAX)
            .min(crate::MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_doubles_from_two_seconds_and_caps_at_an_hour() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 0.5), Duration::from_secs(2));
        assert_eq!(b.delay(1, 0.5), Duration::from_secs(4));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(16));
        assert_eq!(b.delay(30, 0.5), Duration::from_secs(3600));
        let lo = b.delay(1, 0.0).as_secs_f64();
        let hi = b.delay(1, 1.0).as_secs_f64();
        assert!(
            (lo - 3.2).abs() < 1e-9 && (hi - 4.8).abs() < 1e-9,
            "{lo} {hi}"
        );
    }

    #[test]
    fn fixed_and_none() {
        assert_eq!(
            Backoff::fixed(Duration::from_millis(5)).delay(9, 0.9),
            Duration::from_millis(5)
        );
        assert_eq!(Backoff::none().delay(3, 0.1), Duration::ZERO);
    }

    #[test]
    fn huge_delays_saturate() {
        assert_eq!(
            Backoff::fixed(Duration::MAX).delay(3, 0.5),
            crate::MAX_DELAY
        );
        let b = Backoff::exponential(Duration::MAX)
            .max(Duration::MAX)
            .jitter(1.0);
        assert_eq!(b.delay(u32::MAX, 1.0), crate::MAX_DELAY);
    }
}
