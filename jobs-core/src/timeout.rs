//! `Timeout`: how long one attempt of a job may run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long one attempt may run before it is cut off as a retryable failure.
///
/// Set per job (`.timeout(..)` on an enqueue), per handler
/// (`#[job_handler(.., timeout = "30s")]` or `"none"`, or
/// [`JobHandler::timeout`](crate::JobHandler::timeout)) and per manager
/// (`WorkerManager::builder(..).job_timeout(..)`, default
/// [`Timeout::DEFAULT`]); the most specific one wins. The limit covers the
/// handler and, after a failure, its `on_failure`.
///
/// "No timeout" is an explicit choice, [`Timeout::Never`]: a handler stuck on
/// a socket without a timeout of its own then holds its job RUNNING, its lease
/// renewed, for as long as the worker lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Timeout {
    /// The attempt is cut off after this long.
    After(Duration),
    /// The attempt may run for ever.
    Never,
}

impl Timeout {
    /// The manager's default: 5 minutes.
    pub const DEFAULT: Timeout = Timeout::After(Duration::from_secs(300));

    /// The limit, if there is one.
    pub const fn limit(self) -> Option<Duration> {
        match self {
            Timeout::After(d) => Some(d),
            Timeout::Never => None,
        }
    }

    /// As stored by backends: milliseconds, with 0 meaning [`Timeout::Never`]
    /// (a limit below 1 ms is stored as 1 ms).
    pub fn as_millis(self) -> u64 {
        match self {
            Timeout::Never => 0,
            Timeout::After(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The inverse of [`as_millis`](Timeout::as_millis).
    pub fn from_millis(ms: u64) -> Timeout {
        if ms == 0 {
            Timeout::Never
        } else {
            Timeout::After(Duration::from_millis(ms))
        }
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Self {
        Timeout::After(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_as_millis() {
        for t in [
            Timeout::Never,
            Timeout::After(Duration::from_millis(1)),
            Timeout::After(Duration::from_secs(90)),
        ] {
            assert_eq!(Timeout::from_millis(t.as_millis()), t);
        }
        assert_eq!(Timeout::After(Duration::ZERO).as_millis(), 1);
        assert_eq!(Timeout::After(Duration::MAX).as_millis(), u64::MAX);
    }
}
