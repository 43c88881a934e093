//! Testing helpers, in the spirit of `Oban.Testing`, `rivertest` and
//! `Sidekiq::Testing`: run one job and get the outcome the manager would
//! record, assert what was enqueued, drain a queue, and control time.
//!
//! Always compiled (they add no dependency): `jobs::testing` works in unit
//! tests, integration tests and dev tools alike. Time control needs tokio's
//! `test-util` feature in your dev-dependencies
//! (`cargo add tokio --dev -F test-util`).
//!
//! * [`perform`] / [`perform_with`] — one attempt of a handler on a typed
//!   payload, with the services you give it, `on_failure` run as the manager
//!   runs it: [`Performed`] is what the manager would record.
//! * [`assert_enqueued`], [`refute_enqueued`], [`enqueued`] — what a queue
//!   holds, checked by typed payload and options; [`capture`] does the same for
//!   only what one piece of code enqueued.
//! * [`drain`] — runs what is waiting (and, `with_recursion`, what those jobs
//!   enqueue; `with_scheduled`, what is scheduled later and every retry) on any
//!   backend, sequentially, and returns a summary by outcome.
//! * Time: the memory backend reads tokio's clock ([`now`]), so under
//!   `tokio::time::pause()` scheduled jobs, retries with backoff and leases
//!   come due as time is advanced — or at once, as tokio auto-advances an idle
//!   runtime. A test of "retries three times, then dead-letters" takes
//!   milliseconds. A [`manager`] for tests runs every loop on the test's
//!   runtime, so a paused clock governs all of them.
//!
//! ```
//! use jobs::prelude::*;
//! use jobs::testing::{assert_enqueued, drain, perform};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendEmail { to: String }
//!
//! #[derive(Serialize, Deserialize)]
//! struct SignUp { email: String }
//!
//! #[job_handler("email.send", max_retries = 3)]
//! async fn send_email(email: SendEmail) -> Result<(), String> {
//!     if email.to.ends_with("@down.example") { Err("no route".into()) } else { Ok(()) }
//! }
//!
//! #[job_handler("user.sign_up")]
//! async fn sign_up(user: SignUp, queue: Queue) -> Result<(), jobs::Error> {
//!     queue.enqueue(SendEmail { to: user.email }).await?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> jobs::Result<()> {
//! // One attempt, as the manager would record it.
//! let done = perform::<SendEmailHandler>(SendEmail { to: "ada@example.com".into() }).await;
//! assert_eq!(done.status(), JobStatus::Completed);
//! let failed = perform::<SendEmailHandler>(SendEmail { to: "bob@down.example".into() }).await;
//! assert_eq!(failed.status(), JobStatus::Retrying);
//!
//! // What a handler enqueued.
//! let out = perform::<SignUpHandler>(SignUp { email: "ada@example.com".into() }).await;
//! assert_enqueued::<SendEmail>(out.queue()).with(|e| e.to == "ada@example.com").await;
//!
//! // Everything, and what it enqueues, to the end.
//! let queue = jobs::connect("memory://").await?;
//! queue.enqueue(SignUp { email: "grace@example.com".into() }).await?;
//! let drained = drain(&queue).with_recursion(true).await?;
//! assert_eq!(drained.completed, 2);
//! # Ok(()) }
//! ```

mod drain;
mod enqueued;
mod perform;

use chrono::{DateTime, Utc};
use jobs_core::Queue;

pub use drain::{drain, Drain, Drained};
pub use enqueued::{assert_enqueued, capture, enqueued, refute_enqueued, AssertEnqueued, Captured};
pub use perform::{perform, perform_with, Perform, Performed};

use crate::{WorkerManager, WorkerManagerBuilder};

/// Now, by the memory backend's clock: the wall clock, following tokio's
/// clock when a test pauses and advances it. Use it to compute times to
/// compare with a memory backend's `run_at`, `created_at`, ...
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let before = jobs::testing::now();
/// tokio::time::advance(std::time::Duration::from_secs(3600)).await;
/// assert_eq!((jobs::testing::now() - before).num_seconds(), 3600);
/// # }
/// ```
pub fn now() -> DateTime<Utc> {
    crate::clock::now()
}

/// A `WorkerManager` builder for tests: its heartbeats, recording and
/// watchdog run on the test's own runtime (`isolate_maintenance(false)`), so
/// `tokio::time::pause()` governs every loop of the manager, and its worker
/// id is `"test"`. Configure the rest as usual.
///
/// ```
/// use jobs::prelude::*;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> jobs::Result<()> {
/// let queue = jobs::connect("memory://").await?;
/// let manager = jobs::testing::manager(queue.clone()).queues(["default"]).build()?;
/// manager.run_until_drained().await?;
/// # Ok(()) }
/// ```
pub fn manager(queue: impl Into<Queue>) -> WorkerManagerBuilder {
    WorkerManager::builder(queue)
        .isolate_maintenance(false)
        .worker_id("test")
}
