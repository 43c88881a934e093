//! Counters of what a manager did, for tests, dashboards and the quickstart.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) claimed: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) snoozed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) fired: AtomicU64,
    pub(crate) pruned: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ManagerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ManagerStats {
            claimed: get(&self.claimed),
            completed: get(&self.completed),
            failed: get(&self.failed),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            released: get(&self.released),
            lost: get(&self.lost),
            recovered: get(&self.recovered),
            snoozed: get(&self.snoozed),
            cancelled: get(&self.cancelled),
            fired: get(&self.fired),
            pruned: get(&self.pruned),
        }
    }
}

/// What one manager has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerStats {
    /// Jobs claimed from the backend.
    pub claimed: u64,
    /// Attempts recorded as COMPLETED.
    pub completed: u64,
    /// Attempts recorded as FAILED (permanent).
    pub failed: u64,
    /// Attempts recorded as RETRYING.
    pub retried: u64,
    /// Attempts recorded as DEAD_LETTER.
    pub dead_lettered: u64,
    /// Jobs released back to the queue on shutdown.
    pub released: u64,
    /// Outcomes refused because the lease had been lost.
    pub lost: u64,
    /// Expired leases (of any worker) this manager turned into failed attempts.
    pub recovered: u64,
    /// Attempts that snoozed ("not now").
    pub snoozed: u64,
    /// Running jobs stopped because they were cancelled.
    pub cancelled: u64,
    /// Jobs this manager enqueued for periodic schedules' ticks (a tick that
    /// another manager had already fired is not counted).
    pub fired: u64,
    /// Finished jobs this manager deleted under the retention policy.
    pub pruned: u64,
}
