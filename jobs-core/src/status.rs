//! The seven states of a job and the transitions between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life: seven states.
///
/// ```text
/// enqueue ──► PENDING (run_at <= now)        SCHEDULED (run_at > now)
///                  │  claim (lease)                │ time passes
///                  ▼                               ▼
///               RUNNING ── success ──► COMPLETED
///                  ├── permanent failure ──► FAILED
///                  ├── retryable, retries left ──► RETRYING ──► claimable again
///                  └── retryable, none left ──► DEAD_LETTER
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting, and due now.
    Pending,
    /// Waiting for its `run_at` time to come.
    Scheduled,
    /// Claimed by a worker under a lease.
    Running,
    /// Done; `result_data` holds what the handler returned.
    Completed,
    /// Failed without retry (permanent error, failed `JobResult`, bad payload, cancelled).
    Failed,
    /// Failed and waiting for its next attempt at `run_at`.
    Retrying,
    /// Failed on every attempt it was allowed.
    DeadLetter,
}

impl JobStatus {
    /// Every status, in declaration order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Retrying,
        JobStatus::DeadLetter,
    ];

    /// The canonical upper-case name (`"DEAD_LETTER"`), as stored by the backends.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Scheduled => "SCHEDULED",
            JobStatus::Running => "RUNNING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Retrying => "RETRYING",
            JobStatus::DeadLetter => "DEAD_LETTER",
        }
    }

    /// No further transition happens on its own (an operator may requeue FAILED/DEAD_LETTER).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::DeadLetter
        )
    }

    /// Waiting to be claimed once its `run_at` has passed.
    pub const fn is_waiting(self) -> bool {
        matches!(
            self,
            JobStatus::Pending | JobStatus::Scheduled | JobStatus::Retrying
        )
    }

    /// Whether the state machine allows `self → next`. Backends refuse every other move.
    ///
    /// Besides the arrows above: `RUNNING → PENDING` is a graceful release on
    /// shutdown (not a failed attempt), waiting → `FAILED` is a cancel, and
    /// `FAILED`/`DEAD_LETTER → PENDING` is an operator's requeue.
    pub const fn can_transition_to(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Pending | Scheduled | Retrying, Running)
                | (Scheduled, Pending)
                | (Pending | Scheduled | Retrying, Failed)
                | (
                    Running,
                    Completed | Failed | Retrying | DeadLetter | Pending
                )
                | (Failed | DeadLetter, Pending)
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the seven status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status `{0}`; expected one of PENDING, SCHEDULED, RUNNING, COMPLETED, FAILED, RETRYING, DEAD_LETTER")]
pub struct ParseStatusError(pub String);

impl FromStr for JobStatus {
    type Err = ParseStatusError;

    /// Accepts the canonical names in any case, with `-` or `_` (`dead-letter`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == norm)
            .ok_or_else(|| ParseStatusError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::{self, *};

    #[test]
    fn display_and_parse_round_trip() {
        for st in JobStatus::ALL {
            assert_eq!(st.to_string().parse::<JobStatus>().unwrap(), st);
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{st}\""));
        }
        assert_eq!("dead-letter".parse::<JobStatus>().unwrap(), DeadLetter);
        assert!("done".parse::<JobStatus>().is_err());
    }

    #[test]
    fn only_design_transitions_are_allowed() {
        let allowed = [
            (Pending, Running),
            (Scheduled, Running),
            (Retrying, Running),
            (Scheduled, Pending),
            (Pending, Failed),
            (Scheduled, Failed),
            (Retrying, Failed),
            (Running, Completed),
            (Running, Failed),
            (Running, Retrying),
            (Running, DeadLetter),
            (Running, Pending),
            (Failed, Pending),
            (DeadLetter, Pending),
        ];
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Completed.is_terminal() && Failed.is_terminal() && DeadLetter.is_terminal());
        assert!(!Completed.can_transition_to(Pending));
    }
}
