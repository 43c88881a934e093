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
//! `outcome.rs`, `admin.rs`, `ops.rs`, `payload.rs`, `listener.rs`, `handles.rs`), each a
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
pub mod audit;
pub mod claim;
pub mod control;
pub mod enqueue;
pub mod handles;
pub mod lease;
pub mod limits;
pub mod listener;
pub mod listing;
pub mod ops;
pub mod outcome;
pub mod payload;
mod support;
pub mod unique;
pub mod workflow;

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

            limits::a_concurrency_key_caps_running_jobs,
            limits::a_held_back_job_does_not_block_later_ones,
            limits::concurrency_limits_hold_under_concurrent_claimers,
            limits::a_sequence_runs_in_enqueue_order_through_retries,
            limits::a_requeued_sequence_job_waits_for_the_running_one,
            limits::a_rate_key_caps_starts_per_window,
            limits::a_queue_global_limit_caps_running_jobs,
            limits::jobs_being_recorded_free_their_global_slots,
            limits::a_global_cap_holds_under_concurrent_claimers,
            limits::a_queue_take_and_rate_cap_claims,
            limits::limits_are_stored_with_the_job,

            audit::audit_entries_are_listed_newest_first,
            audit::audit_entries_are_pruned_in_batches,
            audit::delete_removes_a_job_that_is_not_running,

            admin::requeue_revives_failed_and_dead_letter_only,
            admin::cancel_takes_waiting_jobs_at_once,
            admin::get_unknown_is_none,
            admin::list_filters_and_pages_in_enqueue_order,
            admin::counts_by_queue_and_status,
            admin::prune_removes_only_old_terminal_jobs_within_limit,
            admin::cancelled_jobs_are_marked_and_filterable,
            admin::counts_follow_every_change,

            ops::throughput_counts_each_end_of_an_attempt,
            ops::complete_and_delete_leaves_no_job,
            ops::requeue_many_takes_what_the_filter_says,
            ops::requeue_many_skips_jobs_whose_unique_key_is_taken,
            listing::search_hits_payload_errors_and_type_in_any_case,
            listing::each_sort_order_is_right_with_ties_broken,
            listing::a_cursor_walk_returns_each_job_once_while_jobs_arrive,
            listing::a_malformed_cursor_is_a_clear_error,
            listing::filters_combine_and_a_scan_limited_walk_finds_every_match,

            payload::payloads_round_trip_exactly,
            payload::a_nul_in_a_payload_is_refused_and_one_in_a_result_is_stored,

            unique::a_unique_key_admits_one_waiting_or_running_job,
            unique::unique_states_can_keep_the_key_after_the_job_finished,
            unique::a_period_takes_the_key_once_per_period,
            unique::duplicates_in_a_batch_are_reported_each,
            unique::replace_mode_updates_a_waiting_holder,
            unique::a_requeue_refuses_a_job_whose_key_was_taken,
            unique::unique_keys_hold_under_a_hammer,

            control::a_paused_queue_is_not_claimed_until_resumed,
            control::a_running_job_is_cancelled_through_its_worker,
            control::a_listener_hears_cancellations,
            control::a_snooze_waits_without_spending_a_retry,
            control::progress_is_stored_under_its_fence,
            control::prune_honours_statuses_and_queue,
            control::workers_register_refresh_and_expire,
            control::one_leader_at_a_time_and_handover,
            control::schedules_are_saved_by_name,

            listener::listener_wakes_on_enqueue,
            listener::listener_wakes_when_scheduled_job_is_due,

            handles::a_handle_resolves_to_the_typed_result,
            handles::a_failed_job_resolves_to_its_typed_error,
            handles::a_wait_that_times_out_leaves_the_job_untouched,

            workflow::dependencies_settle_once_per_edge,
            workflow::edges_of_many_parents_settle_in_one_call,
            workflow::many_workers_settling_one_child_count_each_edge_once,
            workflow::only_held_steps_are_released,
            workflow::get_many_keeps_order_and_reports_missing,
            workflow::a_workflow_goes_in_as_one_batch_with_its_steps_held,
            workflow::a_batch_with_a_bad_step_stores_nothing,
            workflow::deleting_a_child_forgets_its_settled_edges
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
