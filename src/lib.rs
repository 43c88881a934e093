//! # jobs — background jobs for Rust
//!
//! Write business logic as a handler, enqueue typed jobs, and let a
//! [`WorkerManager`] claim them from ordered queues with bounded concurrency,
//! retry failures with backoff, call `on_failure` after every failed attempt,
//! dead-letter what exhausts its retries, and shut down without losing work.
//! Backends: `memory://`, `sqlite://` (embedded, durable), `postgres://` and
//! `redis://` (many workers on many machines), all behind one
//! [`Backend`](backend::Backend) port.
//!
//! The crate root holds what applications use; [`backend`] holds the backends
//! and the port they implement, for backend authors and protocol-level tests.
//!
//! ```
//! use jobs::prelude::*;
//!
//! struct Greet;
//!
//! impl JobHandler for Greet {
//!     fn job_type(&self) -> &str {
//!         "greet"
//!     }
//!
//!     async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
//!         let name = job.payload["name"].as_str().unwrap_or("world");
//!         Ok(JobResult::with_data(serde_json::json!({ "greeting": format!("hello, {name}") })))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> jobs::Result<()> {
//! let queue = jobs::connect("memory://").await?;
//! let id = queue.enqueue_raw("greet", serde_json::json!({ "name": "Ada" })).await?;
//!
//! let manager = WorkerManager::builder(queue.clone()).handler(Greet).build()?;
//! // A script or a test runs until every job is done; a service runs
//! // `manager.run_until(tokio::signal::ctrl_c())` instead.
//! manager.run_until_drained().await?;
//!
//! let job = queue.get(id).await?.expect("stored");
//! assert_eq!(job.status, JobStatus::Completed);
//! assert_eq!(job.result_data.unwrap()["greeting"], "hello, Ada");
//! # Ok(())
//! # }
//! ```
//!
//! The same handler in a test, without a manager ([`testing`]):
//!
//! ```
//! # use jobs::prelude::*;
//! # struct Greet;
//! # impl JobHandler for Greet {
//! #     fn job_type(&self) -> &str { "greet" }
//! #     async fn handle(&self, job: &Job) -> Result<JobResult, JobError> {
//! #         let name = job.payload["name"].as_str().unwrap_or("world");
//! #         Ok(JobResult::with_data(serde_json::json!({ "greeting": format!("hello, {name}") })))
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let out = jobs::testing::perform_with(Greet, serde_json::json!({ "name": "Ada" })).await;
//! assert_eq!(out.status(), JobStatus::Completed);
//! assert_eq!(out.result().unwrap()["greeting"], "hello, Ada");
//! # }
//! ```
//!
//! New here? The README has the setup line, a tour and a testing section;
//! `#[job_handler]` (feature `macros`, on by default) documents every option.

#![warn(missing_docs)]

#[cfg(feature = "dashboard")]
pub mod dashboard;

/// Enqueue inside your own SQL transaction (the outbox guarantee): SQLite and PostgreSQL only.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use jobs_core::backend::TransactionalEnqueue;
/// Workflows (DAGs of handlers with typed edges) and batches with callbacks.
pub use jobs_core::workflow;
pub use jobs_core::{
    metrics, minute_of, payload, registry, sub_saturating, AttemptError, AuditEntry, AuditFilter,
    BackendError, BackendErrorKind, Backoff, BoxError, BoxFuture, CancelReason, CancelRequest,
    CancellationToken, ClaimLimit, Claimed, ConcurrencyLimit, Data, Enqueue, Enqueued, Error,
    FromJobContext, FromJobContextRef, GeneratedHandler, HandlerRegistration, IntoFailureResult,
    IntoJobError, IntoJobOutput, IntoJobResult, Job, JobContext, JobCursor, JobError, JobFilter,
    JobHandle, JobHandler, JobId, JobLimits, JobOptions, JobOutput, JobPage, JobPages, JobPayload,
    JobResult, JobResultError, JobSort, JobStatus, Leader, MissedRuns, NewJob, OnFailureFn,
    PayloadOf, Periodic, PeriodicBuilder, Progress, PruneRequest, Queue, QueueCount, QueueLimit,
    RateLimit, RequeueFilter, RequeueReport, Result, ScheduleState, ServiceRequirement, Services,
    ThroughputBucket, Timeout, UniqueKey, UniqueStates, Uniqueness, Validate, WorkerInfo,
    MAX_DELAY, MAX_ERROR_HISTORY, THROUGHPUT_RETENTION,
};
pub use jobs_core::{
    Batch, BatchResults, JobInput, OnParentFailure, Parent, Parents, Step, Workflow,
    WorkflowHandle, WorkflowState, WorkflowStatus,
};
/// The `sqlx` this crate is built with, so the connections and transactions
/// you pass to [`TransactionalEnqueue`] (and get from `pool()`) are of the same
/// version: `use jobs::sqlx;` instead of a `sqlx` dependency of your own, or
/// keep yours on the same minor version.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use jobs_runtime::sqlx;
pub use jobs_runtime::{
    backend, connect, describe_cron, parse_cron, testing, tick_key, Health, HealthError,
    HealthState, ManagerStats, Retention, WorkerManager, WorkerManagerBuilder, SCHEMES,
};

/// What most programs — and their tests — need: `use jobs::prelude::*;`.
///
/// Its `Serialize` and `Deserialize` are serde's derives, which expand to
/// code naming the `serde` crate: add it to your own dependencies with its
/// `derive` feature (`cargo add serde -F derive`).
pub mod prelude {
    pub use crate::{
        connect, Backoff, Batch, BatchResults, BoxError, CancelReason, CancellationToken, Data,
        Enqueued, Job, JobContext, JobError, JobFilter, JobHandle, JobHandler, JobId, JobOutput,
        JobPayload, JobResult, JobResultError, JobStatus, MissedRuns, NewJob, Parent, Parents,
        Periodic, Queue, Retention, Services, Timeout, WorkerManager, Workflow,
    };
    pub use serde::{Deserialize, Serialize};

    // `#[job_handler]` entries
    #[cfg(feature = "macros")]
    pub use crate::job_handler;
    pub use crate::Validate;
}

/// Declares a workflow's step payloads, so that every `WorkerManager` in
/// this binary checks at `build()` that it has a handler for each step whose
/// queue it works — a step nobody can run is a build error, not a workflow
/// that waits forever:
///
/// ```
/// # use jobs::prelude::*;
/// # #[derive(Serialize, Deserialize)] struct Extract;
/// # #[derive(Serialize, Deserialize)] struct Merge;
/// # #[job_handler("doc.extract")] async fn extract(_e: Extract) {}
/// # #[job_handler("doc.merge")] async fn merge(_m: Merge) {}
/// jobs::workflow_steps!("monthly-report": Extract, Merge);
/// ```
///
/// A manager that should not check (it runs other queues' jobs by design)
/// opts out with `.check_workflows(false)`.
#[macro_export]
macro_rules! workflow_steps {
    ($name:literal : $($step:ty),+ $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::workflow::WorkflowSteps::new($name, || {
                ::std::vec![$($crate::workflow::step_of::<$step>()),+]
            })
        }
    };
}

// ---- `#[job_handler]` support (owned by the macro work; keep this block) ----

#[cfg(feature = "macros")]
#[doc = include_str!("job_handler.md")]
pub use jobs_macros::job_handler;

/// What `#[job_handler]` output refers to (re-exports and helpers, so users
/// never depend on `inventory` or `serde_json` themselves); not a public API.
#[doc(hidden)]
pub mod __private {
    pub use jobs_core::__private::*;

    /// Runs a handler's future on tokio's blocking pool, for
    /// `#[job_handler(.., blocking = true)]`: blocking code in it then holds a
    /// thread of that pool instead of one of the runtime's worker threads.
    /// A panic in it is passed on to the attempt's panic guard.
    pub async fn run_blocking<F>(fut: F) -> F::Output
    where
        F: core::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::runtime::Handle::current();
        match tokio::task::spawn_blocking(move || handle.block_on(fut)).await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the blocking handler's task was cancelled: {e}"),
        }
    }
}

// ---- end of `#[job_handler]` support ----
