//! Wake-ups and cancellations: the signals shared by every handle on one file in this process,
//! and the [`JobListener`] that waits on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs_core::backend::JobListener;
use jobs_core::BoxFuture;
use tokio::sync::watch;

use super::SqliteBackend;
use crate::backend::finished::FinishWaiters;
use crate::backend::wait::{signal_or_due, time_left};

/// The in-process signals of one database file.
pub(super) struct Signals {
    /// Bumped whenever a job may have become claimable.
    pub(super) wake: watch::Sender<u64>,
    /// Bumped whenever a running job's cancellation is requested.
    pub(super) cancels: watch::Sender<u64>,
    /// Who awaits which job's end (`wait_finished`).
    pub(super) finished: FinishWaiters,
}

/// Every handle on one database file in this process shares one set of
/// signals, whether it came from the same `connect` or not.
pub(super) fn shared_signals(key: Option<PathBuf>) -> Arc<Signals> {
    static SIGNALS: OnceLock<Mutex<HashMap<PathBuf, Weak<Signals>>>> = OnceLock::new();
    let fresh = || {
        Arc::new(Signals {
            wake: watch::Sender::new(0),
            cancels: watch::Sender::new(0),
            finished: FinishWaiters::default(),
        })
    };
    let Some(key) = key else {
        return fresh();
    };
    let mut map = SIGNALS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(signals) = map.get(&key).and_then(Weak::upgrade) {
        return signals;
    }
    let signals = fresh();
    map.insert(key, Arc::downgrade(&signals));
    signals
}

pub(super) struct SqliteListener {
    backend: SqliteBackend,
    queues: Vec<String>,
    rx: watch::Receiver<u64>,
    cancels: watch::Receiver<u64>,
    /// A cancellation was requested since the last `take_cancel_signal`.
    cancel_seen: bool,
    /// The earliest future `run_at` of our queues as last read, if still valid.
    /// Re-read only after a local change or once it has passed, so an idle
    /// worker's wait costs no query.
    next_due: Option<Option<DateTime<Utc>>>,
}

impl SqliteListener {
    pub(super) fn new(backend: &SqliteBackend, queues: &[String]) -> Self {
        SqliteListener {
            backend: backend.clone(),
            queues: queues.to_vec(),
            rx: backend.inner.signals.wake.subscribe(),
            cancels: backend.inner.signals.cancels.subscribe(),
            cancel_seen: false,
            next_due: None,
        }
    }
}

impl JobListener for SqliteListener {
    fn wait(&mut self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let now = Utc::now();
            let known = match self.next_due {
                Some(Some(due)) if due <= now => None,
                other => other,
            };
            let next_due = match known {
                Some(due) => due,
                None => match self.backend.next_due(&self.queues).await {
                    Ok(due) => {
                        self.next_due = Some(due);
                        due
                    }
                    Err(e) => {
                        // The plain timeout still bounds the wait.
                        tracing::debug!(error = %e, "sqlite listener could not read the next due time");
                        None
                    }
                },
            };
            let until_due = time_left(next_due, Utc::now());
            let (rx, cancels) = (&mut self.rx, &mut self.cancels);
            let signal = async {
                tokio::select! {
                    _ = rx.changed() => false,
                    _ = cancels.changed() => true,
                }
            };
            match signal_or_due(signal, until_due, timeout).await {
                Some(true) => self.cancel_seen = true,
                // Something was enqueued, rescheduled or resumed here: the
                // next due time may be earlier.
                Some(false) => self.next_due = None,
                None => {}
            }
        })
    }

    fn take_cancel_signal(&mut self) -> bool {
        std::mem::take(&mut self.cancel_seen)
    }
}
