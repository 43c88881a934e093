//! The memory backend's wake-up signal: in-process, so it hears every change.

use std::time::Duration;

use jobs_core::backend::JobListener;
use jobs_core::BoxFuture;
use tokio::sync::watch;

use super::backend::MemoryBackend;
use crate::backend::wait::{signal_or_due, time_left};
use crate::clock;

pub(super) struct MemoryListener {
    backend: MemoryBackend,
    queues: Vec<String>,
    wake: watch::Receiver<u64>,
    cancels: watch::Receiver<u64>,
    /// A cancellation was requested since the last `take_cancel_signal`.
    cancel_seen: bool,
}

impl MemoryListener {
    pub(super) fn new(backend: &MemoryBackend, queues: &[String]) -> Self {
        let (wake, cancels) = backend.subscribe();
        MemoryListener {
            backend: backend.clone(),
            queues: queues.to_vec(),
            wake,
            cancels,
            cancel_seen: false,
        }
    }
}

impl JobListener for MemoryListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Wake for the earliest scheduled job too, not only for new ones.
            let until_due = time_left(self.backend.next_due(&self.queues), clock::now());
            let (wake, cancels) = (&mut self.wake, &mut self.cancels);
            let signal = async {
                tokio::select! {
                    _ = wake.changed() => false,
                    _ = cancels.changed() => true,
                }
            };
            if signal_or_due(signal, until_due, timeout).await == Some(true) {
                self.cancel_seen = true;
            }
        })
    }

    fn signals_all_work(&self) -> bool {
        // Every job of a memory backend lives in this process, and every change signals.
        true
    }

    fn take_cancel_signal(&mut self) -> bool {
        std::mem::take(&mut self.cancel_seen)
    }
}
