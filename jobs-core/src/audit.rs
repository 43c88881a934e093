//! The audit trail: every operator action — requeue, cancel, delete,
//! pause, resume, prune — from the API, the CLI or the dashboard, with who,
//! when, what and how it went, stored in the backend.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When it happened (the acting process's clock).
    pub at: DateTime<Utc>,
    /// Who did it (`alice`, `cli:ops`, `dashboard`, `api`).
    pub actor: String,
    /// What: `requeue`, `requeue-many`, `cancel`, `delete`, `pause`, `resume`,
    /// `prune`.
    pub action: String,
    /// On what: a job id, a queue name, or a description of a bulk action.
    pub target: String,
    /// Whether it worked.
    pub ok: bool,
    /// The error, or a summary (`12 jobs`, the cancel reason).
    pub detail: String,
}

impl AuditEntry {
    /// An action by `actor` on `target`, now, that worked.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        AuditEntry {
            at: Utc::now(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            ok: true,
            detail: String::new(),
        }
    }

    /// At `at` instead of now.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }

    /// How it went: `Ok(summary)` or `Err(error)`.
    pub fn result(mut self, result: Result<String, String>) -> Self {
        match result {
            Ok(s) => {
                self.ok = true;
                self.detail = s;
            }
            Err(e) => {
                self.ok = false;
                self.detail = e;
            }
        }
        self
    }
}

/// Which audit entries to list: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditFilter {
    /// Only entries before this time.
    pub before: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: usize,
    /// Skipping this many (after `before`).
    pub offset: usize,
}

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter {
            before: None,
            limit: 100,
            offset: 0,
        }
    }
}

impl AuditFilter {
    /// At most `n` entries.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Skipping the first `n`.
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Only entries before `at`.
    pub fn before(mut self, at: DateTime<Utc>) -> Self {
        self.before = Some(at);
        self
    }
}
