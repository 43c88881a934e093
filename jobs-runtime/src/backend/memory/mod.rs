//! The in-memory backend: complete and fast, for tests, demos and the
//! conformance suite's reference. Nothing survives the process.
//!
//! One `std::sync::Mutex` guards the state and is never held across an
//! `.await`. Per queue, due jobs sit in a `BTreeSet` ordered by (priority desc,
//! run_at, enqueue order) and future ones in a second set ordered by run_at, so
//! a claim is O(log n) per job. Unique keys are a map from the stored key to
//! the job holding it, kept in step with every change of status.
//!
//! Its clock is tokio's (see `jobs::testing::now`): under
//! `tokio::time::pause()` scheduled jobs, retries with backoff and leases come
//! due as the test advances time, so a test of a job that retries for an hour
//! takes milliseconds.

mod backend;
mod jobs;
mod listener;
mod listing;
mod state;

pub use backend::MemoryBackend;
