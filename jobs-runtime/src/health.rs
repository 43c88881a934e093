//! Whether a manager works: each of its loops reports how its last backend
//! call went, and [`Health`] sums it up for a program, a readiness probe or
//! the CLI — without needing a `tracing` subscriber to find out.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// What a manager is doing, as [`WorkerManager::health`](crate::WorkerManager::health) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthState {
    /// Built, not started.
    NotStarted,
    /// Every loop's last backend call succeeded.
    Running,
    /// Some loop's last backend call failed (see [`Health::last_error`]); the
    /// manager keeps retrying, and jobs may wait meanwhile.
    Degraded,
    /// Stopped.
    Stopped,
}

/// A failure a loop of the manager reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthError {
    /// Which part failed: `"claim"`, `"heartbeat"`, `"record"`, `"reap"`, or a
    /// loop that panicked and was restarted.
    pub part: &'static str,
    /// The error.
    pub message: String,
    /// When it last failed.
    pub at: DateTime<Utc>,
    /// Since when it has been failing without a success in between.
    pub since: DateTime<Utc>,
}

/// A manager's health: its state, the last error, and how often a loop had to
/// be restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// What it is doing.
    pub state: HealthState,
    /// The most recent failure that has not been followed by a success of the
    /// same part (while [`HealthState::Degraded`]), or the last one seen.
    pub last_error: Option<HealthError>,
    /// How many times a background loop panicked and was restarted.
    pub loop_restarts: u64,
}

impl Health {
    /// Running with every part healthy: what a readiness probe asks.
    pub fn is_ready(&self) -> bool {
        self.state == HealthState::Running
    }
}

#[derive(Debug)]
struct Board {
    state: HealthState,
    /// Parts whose last call failed, with their first failure time.
    failing: Vec<(&'static str, DateTime<Utc>)>,
    last_error: Option<HealthError>,
    loop_restarts: u64,
}

/// Where the loops report.
#[derive(Debug)]
pub(crate) struct HealthBoard(Mutex<Board>);

impl Default for HealthBoard {
    fn default() -> Self {
        HealthBoard(Mutex::new(Board {
            state: HealthState::NotStarted,
            failing: Vec::new(),
            last_error: None,
            loop_restarts: 0,
        }))
    }
}

impl HealthBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn started(&self) {
        let mut b = self.lock();
        b.state = HealthState::Running;
        b.failing.clear();
    }

    pub(crate) fn stopped(&self) {
        self.lock().state = HealthState::Stopped;
    }

    /// `part`'s last call succeeded.
    pub(crate) fn ok(&self, part: &'static str) {
        let mut b = self.lock();
        if b.failing.is_empty() {
            return;
        }
        b.failing.retain(|(p, _)| *p != part);
        if b.failing.is_empty() && b.state == HealthState::Degraded {
            b.state = HealthState::Running;
        }
    }

    /// `part`'s last call failed with `error`.
    pub(crate) fn failed(&self, part: &'static str, error: &dyn std::fmt::Display) {
        let now = Utc::now();
        let mut b = self.lock();
        let since = match b.failing.iter().find(|(p, _)| *p == part) {
            Some((_, since)) => *since,
            None => {
                b.failing.push((part, now));
                now
            }
        };
        b.last_error = Some(HealthError {
            part,
            message: error.to_string(),
            at: now,
            since,
        });
        if b.state == HealthState::Running {
            b.state = HealthState::Degraded;
        }
    }

    /// A loop panicked and is being restarted.
    pub(crate) fn restarted(&self, part: &'static str, panic: &str) {
        self.failed(
            part,
            &format_args!("the {part} loop panicked and was restarted: {panic}"),
        );
        let mut b = self.lock();
        b.loop_restarts += 1;
        // A restart is an event, not a lasting state: the loop reports again.
        b.failing.retain(|(p, _)| *p != part);
        if b.failing.is_empty() && b.state == HealthState::Degraded {
            b.state = HealthState::Running;
        }
    }

    pub(crate) fn snapshot(&self) -> Health {
        let b = self.lock();
        Health {
            state: b.state,
            last_error: b.last_error.clone(),
            loop_restarts: b.loop_restarts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_degrades_until_the_same_part_succeeds() {
        let h = HealthBoard::default();
        assert_eq!(h.snapshot().state, HealthState::NotStarted);
        h.started();
        assert!(h.snapshot().is_ready());
        h.failed("claim", &"connection refused");
        h.failed("record", &"connection refused");
        let s = h.snapshot();
        assert_eq!(s.state, HealthState::Degraded);
        assert_eq!(s.last_error.as_ref().unwrap().part, "record");
        h.ok("claim");
        assert_eq!(
            h.snapshot().state,
            HealthState::Degraded,
            "record still fails"
        );
        h.ok("record");
        let s = h.snapshot();
        assert_eq!(s.state, HealthState::Running);
        assert!(s.last_error.is_some(), "the last error stays visible");
        h.restarted("heartbeat", "boom");
        assert_eq!(h.snapshot().loop_restarts, 1);
        assert!(h.snapshot().is_ready());
        h.stopped();
        assert_eq!(h.snapshot().state, HealthState::Stopped);
    }
}
