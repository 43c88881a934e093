//! The domain model and ports of `jobs`, a background-job framework.
//!
//! Most users depend on the `jobs` facade crate instead; this crate holds what
//! backends and handlers share: [`Job`], [`JobStatus`], [`JobResult`],
//! [`JobError`], the [`JobHandler`] port, the [`JobQueue`] backend port, typed
//! payloads ([`JobPayload`]), injected arguments ([`FromJobContext`], [`Data`])
//! and link-time handler registration ([`HandlerRegistration`]).

mod client;
mod context;
mod error;
mod extract;
mod handler;
mod job;
mod job_error;
mod new_job;
mod on_failure;
pub mod payload;
mod queue;
mod registry;
mod result;
mod retry;
mod status;

pub use client::{Enqueue, Queue};
pub use context::{CancelReason, CancellationToken, Cancelled, JobContext, Scoped};
pub use error::{Error, Result};
pub use extract::{Data, FromJobContext, FromJobContextRef, ServiceRequirement, Services};
pub use handler::{BoxFuture, DynHandler, JobHandler};
pub use job::{AttemptError, Job, JobId};
pub use job_error::{BoxError, JobError};
pub use new_job::{JobOptions, NewJob, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE};
pub use payload::{JobPayload, Validate};
pub use queue::{
    AttemptFailure, ClaimRequest, Fence, JobFilter, JobListener, JobQueue, Outcome, OutcomeUpdate,
    QueueCount, Recovered,
};
pub use registry::{find_registration, registered_handlers, HandlerRegistration};
pub use result::{IntoJobResult, JobResult};
pub use retry::Backoff;
pub use status::{JobStatus, ParseStatusError};

#[doc(hidden)]
pub use inventory;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
