//! Wake-ups: the signal shared by every handle on one file in this process,
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
use crate::backend::wait::{signal_or_due, time_left};

/// Every handle on one database file in this process shares one wake-up signal,
/// whether it came from the same `connect` or not.
pub(super) fn shared_wake(key: Option<PathBuf>) -> Arc<watch::Sender<u64>> {
    static WAKERS: OnceLock<Mutex<HashMap<PathBuf, Weak<watch::Sender<u64>>>>> = OnceLock::new();
    let Some(key) = key else {
        return Arc::new(watch::Sender::new(0));
    };
    let mut map = WAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(tx) = map.get(&key).and_then(Weak::upgrade) {
        return tx;
    }
    let tx = Arc::new(watch::Sender::new(0));
    map.insert(key, Arc::downgrade(&tx));
    tx
}

pub(super) struct SqliteListener {
    backend: SqliteBackend,
    queues: Vec<String>,
    rx: watch::Receiver<u64>,
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
            rx: backend.inner.wake.subscribe(),
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
            if let Some(Ok(())) = signal_or_due(self.rx.changed(), until_due, timeout).await {
                // Something was enqueued or rescheduled here: the next due time may be earlier.
                self.next_due = None;
            }
        })
    }
}
