//! Where each queue's next claim starts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A claim's position in a queue's claim order: (-priority, run_at, seq).
pub(super) type Key = (i64, DateTime<Utc>, i64);

/// Where each queue's next claim starts scanning, so it need not step over the
/// index entries of jobs claimed since the last vacuum (they stay in the index,
/// dead, until then, and at thousands of claims a second they would make every
/// claim slower than the last). A hint is the first job this process claimed
/// from the queue; only a job enqueued *ahead* of it afterwards — higher
/// priority, or an explicit run_at further in the past — can sort before it,
/// so a full scan from the start runs at least every [`HINT_TTL`], and whenever
/// a claim comes back short. Such a job may thus wait up to that long behind
/// ones it outranks; everything else is claimed in exact order.
#[derive(Debug, Default)]
pub(super) struct Hints {
    starts: std::sync::Mutex<HashMap<String, (Key, Instant)>>,
    /// Queues whose due jobs had limits of their own at the last limited
    /// claim, and when: their claims go the limited way at once for
    /// [`LIMITED_TTL`], instead of trying the fast path only to be told so.
    limited: std::sync::Mutex<HashMap<String, Instant>>,
}

/// How long a queue seen with limited jobs skips the fast path.
const LIMITED_TTL: Duration = Duration::from_secs(1);

/// How long a hint is trusted before a claim scans its queue from the start.
const HINT_TTL: Duration = Duration::from_millis(100);

impl Hints {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Key, Instant)>> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_limited(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.limited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether one of `queues` had limited jobs due within [`LIMITED_TTL`].
    pub(super) fn limited_recently(&self, queues: &[String]) -> bool {
        let limited = self.lock_limited();
        !limited.is_empty()
            && queues
                .iter()
                .any(|q| limited.get(q).is_some_and(|at| at.elapsed() < LIMITED_TTL))
    }

    /// What a limited claim saw: whether `queue`'s due jobs had limits.
    pub(super) fn saw_limits(&self, queue: &str, limits: bool) {
        let mut limited = self.lock_limited();
        if limits {
            limited.insert(queue.to_owned(), Instant::now());
        } else if !limited.is_empty() {
            limited.remove(queue);
        }
    }

    /// Per queue, the key to start from (`None`: from the start).
    pub(super) fn starts(&self, queues: &[String]) -> Vec<Option<Key>> {
        let hints = self.lock();
        queues
            .iter()
            .map(|q| {
                hints
                    .get(q)
                    .filter(|(_, full_scan_at)| full_scan_at.elapsed() < HINT_TTL)
                    .map(|(key, _)| *key)
            })
            .collect()
    }

    /// Records what a limited claim's scan found: `firsts[i]` is the first
    /// waiting job of `queues[i]` from `used[i]` on (`None`: it has none, so
    /// the next scan starts from the start, for anything enqueued ahead).
    pub(super) fn seen(&self, queues: &[String], used: &[Option<Key>], firsts: &[Option<Key>]) {
        let mut hints = self.lock();
        for ((queue, used), first) in queues.iter().zip(used).zip(firsts) {
            match first {
                None => {
                    hints.remove(queue);
                }
                Some(first) => {
                    let full_scan_at = match (used, hints.get(queue)) {
                        (Some(_), Some((_, at))) => *at,
                        _ => Instant::now(),
                    };
                    hints.insert(queue.clone(), (*first, full_scan_at));
                }
            }
        }
    }

    /// Records what a claim found: `firsts[i]` is the first job claimed from
    /// `queues[i]`; `short` means the claim got fewer jobs than it asked for.
    pub(super) fn update(
        &self,
        queues: &[String],
        used: &[Option<Key>],
        firsts: &[Option<Key>],
        short: bool,
    ) {
        let mut hints = self.lock();
        for ((queue, used), first) in queues.iter().zip(used).zip(firsts) {
            match (first, short) {
                // Ran dry: next time scan from the start, for anything enqueued ahead.
                (_, true) => {
                    hints.remove(queue);
                }
                (Some(first), false) => {
                    // The TTL counts from the last scan from the start.
                    let full_scan_at = match (used, hints.get(queue)) {
                        (Some(_), Some((_, at))) => *at,
                        _ => Instant::now(),
                    };
                    hints.insert(queue.clone(), (*first, full_scan_at));
                }
                // Earlier queues filled the claim: nothing learnt about this one.
                (None, false) => {}
            }
        }
    }
}
