//! The runtime of `jobs`: the [`WorkerManager`] that claims, runs, retries and
//! dead-letters jobs, and the queue backends (`memory`, and behind cargo
//! features `sqlite`, `postgres`, `redis`), reached through [`connect()`].
//!
//! Inside, every module imports only modules below it:
//! `builder → manager → {maintenance → {heartbeat, recorder, watchdog}, claim
//! → slots, reaper, supervise} → attempt → shared → {in_flight, health, stats, failure,
//! limits, backend_retry, panic}`.

#![warn(missing_docs)]

pub mod backend;
mod clock;
mod connect;
pub mod testing;

// The manager and what builds it.
mod builder;
mod manager;

// One background loop a file, and what runs them.
mod claim;
mod heartbeat;
mod maintainer;
mod maintenance;
mod metrics;
mod periodic;
mod reaper;
mod recorder;
mod registry;
mod retention;
mod slots;
mod supervise;
mod watchdog;
pub mod workflow;

// One attempt of one job.
mod attempt;

// What the tasks share, and small leaf helpers.
mod backend_retry;
mod failure;
mod health;
mod id_hash;
mod in_flight;
mod limits;
mod panic;
mod shared;
mod stats;

/// The `sqlx` the SQL backends are built with (their `pool()` and
/// transactional enqueue take its types).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sqlx;

pub use builder::WorkerManagerBuilder;
pub use connect::{connect, SCHEMES};
pub use health::{Health, HealthError, HealthState};
pub use manager::WorkerManager;
pub use periodic::{describe_cron, parse_cron, tick_key};
pub use retention::Retention;
pub use stats::ManagerStats;
