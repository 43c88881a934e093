//! How long the manager waits before retrying a backend call that failed.

use std::time::Duration;

/// Delay before retrying a failed backend call: doubling from 50 ms up to 5 s.
pub(crate) fn backend_retry_delay(failures: u32) -> Duration {
    let ms = 50u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(ms.min(5_000))
}
