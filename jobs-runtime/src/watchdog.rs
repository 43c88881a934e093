//! Finding handlers that block their thread.
//!
//! An async handler that calls blocking code (`std::thread::sleep`, a
//! synchronous HTTP client, heavy CPU work) holds a runtime thread for the
//! whole call, and every other task on that thread waits. Each attempt's
//! future is wrapped in [`Watched`], which notes the current tick of a coarse
//! clock when a poll starts and clears it when the poll returns; the watchdog
//! loop advances the clock and warns, naming the job, about any poll that has
//! been running for longer than the manager's `blocking_warning`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken as StopToken;
use tracing::warn;

use crate::shared::Shared;

/// How often the clock advances.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// The coarse clock: a counter the watchdog advances every [`TICK`] (so a
/// poll costs two atomic stores, no system call).
#[derive(Debug, Clone)]
pub(crate) struct Ticks(Arc<AtomicU64>);

impl Default for Ticks {
    fn default() -> Self {
        // Zero means "not being polled", so the clock starts at one.
        Ticks(Arc::new(AtomicU64::new(1)))
    }
}

impl Ticks {
    pub(crate) fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where one attempt's poll started (a tick), or 0 between polls.
pub(crate) type PollStart = Arc<AtomicU64>;

/// A future whose polls the watchdog can see (when there is one: an attempt
/// run outside a manager has none).
pub(crate) struct Watched<F> {
    fut: F,
    watch: Option<(Ticks, PollStart)>,
}

impl<F> Watched<F> {
    pub(crate) fn new(fut: F, watch: Option<(Ticks, PollStart)>) -> Self {
        Watched { fut, watch }
    }
}

impl<F: Future + Unpin> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Some((ticks, start)) = &this.watch else {
            return Pin::new(&mut this.fut).poll(cx);
        };
        start.store(ticks.now(), Ordering::Relaxed);
        // Cleared on unwind too, so a panicking poll is not reported as blocked.
        struct Clear<'a>(&'a AtomicU64);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.store(0, Ordering::Relaxed);
            }
        }
        let _clear = Clear(start);
        Pin::new(&mut this.fut).poll(cx)
    }
}

/// How many ticks between checks for leases this worker could not renew.
const LAPSE_CHECK: u64 = 10;

/// Advances the clock and warns about attempts whose current poll has run
/// for longer than `blocking_warning`, once per blocked stretch. Every half
/// second it also cancels, with `LeaseLost`, the running jobs whose lease
/// this worker could not renew before it ran out (cut off from the backend).
pub(crate) async fn watchdog_loop(shared: Arc<Shared>, stop: StopToken) {
    let limit = ticks_for(shared.cfg.blocking_warning);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.ticks.advance();
        if shared.ticks.now().is_multiple_of(LAPSE_CHECK) {
            for job in shared.in_flight.lapsed(Instant::now(), shared.cfg.lease) {
                warn!(
                    job_id = %job.id,
                    job_type = %job.job_type,
                    lease = ?shared.cfg.lease,
                    "could not renew the lease before it ran out; the job is cancelled here (LeaseLost), \
                     since another worker may run it now"
                );
            }
        }
        for blocked in shared.in_flight.blocked(shared.ticks.now(), limit) {
            let job = &blocked.job;
            warn!(
                job_id = %job.id,
                job_type = %job.job_type,
                queue = %job.queue_name,
                blocked_ms = blocked.ticks * TICK.as_millis() as u64,
                "the handler of job {} (`{}`) has blocked its thread for over {:?} without yielding; \
                 other jobs on that thread wait meanwhile. Run blocking code with \
                 `#[job_handler(.., blocking = true)]` or `tokio::task::spawn_blocking`",
                job.id,
                job.job_type,
                shared.cfg.blocking_warning,
            );
        }
    }
}

fn ticks_for(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_future_shows_its_poll_only_while_polling() {
        let ticks = Ticks::default();
        let start = PollStart::default();
        let seen = start.clone();
        let t = ticks.clone();
        let fut = std::future::poll_fn(move |_| {
            // During the poll, the start tick is visible.
            assert_eq!(seen.load(Ordering::Relaxed), t.now());
            Poll::Ready(7)
        });
        let mut watched = Watched::new(Box::pin(fut), Some((ticks.clone(), start.clone())));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert_eq!(Pin::new(&mut watched).poll(&mut cx), Poll::Ready(7));
        assert_eq!(start.load(Ordering::Relaxed), 0);
        assert_eq!(ticks_for(Duration::from_millis(500)), 10);
        assert_eq!(ticks_for(Duration::ZERO), 1);
    }
}
