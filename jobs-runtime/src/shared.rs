//! What the manager's tasks share: its settings, its handlers and services,
//! the table of held jobs and the counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::registry::DynHandler;
use jobs_core::{Backoff, Queue, Services};

use crate::in_flight::InFlight;
use crate::stats::Counters;

/// Settings of a manager; see the builder's methods for defaults.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) poll: Duration,
    pub(crate) reap: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) job_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queues: vec![jobs_core::DEFAULT_QUEUE.to_owned()],
            concurrency: 10,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            reap: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            job_timeout: None,
        }
    }
}

/// What the manager's tasks share.
pub(crate) struct Shared {
    pub(crate) queue: Queue,
    pub(crate) handlers: HashMap<String, Arc<dyn DynHandler>>,
    pub(crate) services: Services,
    pub(crate) cfg: Config,
    pub(crate) worker_id: Arc<str>,
    pub(crate) counters: Counters,
    pub(crate) in_flight: InFlight,
}

impl Shared {
    /// The job types this manager handles, for messages.
    pub(crate) fn handler_names(&self) -> String {
        let mut names: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }
}
