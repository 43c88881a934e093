//! Keeping the manager's background loops alive: a loop that panics is
//! logged, reported in the manager's health, and started again.

use std::future::Future;
use std::time::Duration;

use tracing::error;

use crate::health::HealthBoard;
use crate::panic::CatchUnwind;

/// How long a loop that panicked waits before it runs again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs the loop `make` builds until it returns; if it panics, logs it,
/// reports it on `health` as `part`, and builds and runs it again.
pub(crate) async fn supervise<F, Fut>(health: &HealthBoard, part: &'static str, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        match CatchUnwind(Box::pin(make())).await {
            Ok(()) => return,
            Err(panic) => {
                error!(part, panic = %panic, "a background loop of the worker manager panicked; restarting it");
                health.restarted(part, &panic);
                tokio::time::sleep(RESTART_DELAY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_loop_is_restarted_until_it_returns() {
        let health = HealthBoard::default();
        health.started();
        let runs = AtomicU32::new(0);
        supervise(&health, "claim", || {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        let h = health.snapshot();
        assert_eq!(h.loop_restarts, 2);
        assert!(h.last_error.as_ref().unwrap().message.contains("boom 1"));
        assert!(h.is_ready());
    }
}
