//! The backend contract, written once and run against every backend.
//!
//! A backend test file does:
//!
//! ```ignore
//! mod conformance;
//!
//! async fn backend() -> std::sync::Arc<dyn jobs_core::Backend> {
//!     // a FRESH, isolated backend (own db file / schema / key prefix)
//! }
//!
//! jobs_conformance_suite!(backend);
//! ```
//!
//! and gets one `#[tokio::test]` per rule listed in the macro below. Every rule
//! receives its own backend from the factory, so the tests run in parallel. A
//! backend is done when it passes the suite unchanged.
//!
//! The rules live in one file per family (`enqueue.rs`, `claim.rs`, `lease.rs`,
//! `outcome.rs`, `admin.rs`, `payload.rs`, `listener.rs`), each a
//! `pub async fn rule(q: Backend)`, with the helpers they share in `support.rs`.
//! Adding a rule: write its function in its family's file and add one line,
//! `family::rule`, to the list in `jobs_conformance_suite!`; the generated test
//! is named after the rule alone, so `cargo test rule` runs it.
//!
//! Time-dependent rules (schedules, leases) use sleeps of a few hundred
//! milliseconds with generous margins; they check *what* happens, never how fast.

#![allow(dead_code)]

use std::sync::Arc;

pub mod admin;
pub mod claim;
pub mod enqueue;
pub mod lease;
pub mod listener;
pub mod outcome;
pub mod payload;
mod support;

/// What every factory returns.
pub type Backend = Arc<dyn jobs_core::Backend>;

/// Expands into one `#[tokio::test]` per rule of the contract. `$factory` is an
/// expression callable with no arguments that returns a future of a fresh
/// [`Backend`] (an `async fn` path or a closure returning an async block).
#[macro_export]
macro_rules! jobs_conformance_suite {
    ($factory:expr) => {
        $crate::jobs_conformance_suite!(@rules $factory;
            enqueue::round_trip_with_result_data,
            enqueue::batch_enqueue_is_atomic_and_ordered,
            enqueue::relative_delays_and_timeouts_are_stored,

            claim::claim_order_follows_queue_list_priority_run_at_and_enqueue_order,
            claim::scheduled_jobs_are_not_claimed_early,
            claim::concurrent_claimers_never_share_a_job,

            lease::attempt_increments_per_claim_and_release_is_not_a_failure,
            lease::expired_lease_is_a_failed_attempt,
            lease::heartbeat_keeps_a_lease_and_reports_lost_fences,
            lease::fenced_outcome_refuses_a_superseded_attempt,
            lease::a_stale_lease_token_is_refused_even_under_the_same_attempt,

            outcome::retry_is_scheduled_and_appends_error_history,
            outcome::fail_and_dead_letter_are_terminal,
            outcome::a_failed_outcome_keeps_its_result,
            outcome::the_error_history_keeps_the_last_entries_and_counts_all,
            outcome::huge_delays_saturate,

            admin::requeue_revives_failed_and_dead_letter_only,
            admin::cancel_takes_waiting_jobs_only,
            admin::get_unknown_is_none,
            admin::list_filters_and_pages_in_enqueue_order,
            admin::counts_by_queue_and_status,
            admin::prune_removes_only_old_terminal_jobs_within_limit,
            admin::cancelled_jobs_are_marked_and_filterable,

            payload::payloads_round_trip_exactly,
            payload::a_nul_in_a_payload_is_refused_and_one_in_a_result_is_stored,

            listener::listener_wakes_on_enqueue,
            listener::listener_wakes_when_scheduled_job_is_due
        );
    };
    (@rules $factory:expr; $($family:ident :: $rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let backend: $crate::conformance::Backend = ($factory)().await;
                let rule = $crate::conformance::$family::$rule(backend);
                if tokio::time::timeout(::std::time::Duration::from_secs(120), rule)
                    .await
                    .is_err()
                {
                    panic!("conformance rule `{}` hung for 120 s", stringify!($rule));
                }
            }
        )*
    };
}
