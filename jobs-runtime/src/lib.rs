//! The runtime of `jobs`: the [`WorkerManager`] that claims, runs, retries and
//! dead-letters jobs, and the queue backends (`memory`, and behind cargo
//! features `sqlite`, `postgres`, `redis`), reached through [`connect`].

pub mod backend;
mod connect;
mod lease;
mod manager;
mod outcome;
mod panic;
mod retry;
mod stats;
mod worker;

pub use connect::{connect, SCHEMES};
pub use manager::{WorkerManager, WorkerManagerBuilder};
pub use stats::ManagerStats;
