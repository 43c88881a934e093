//! The domain model and ports of `jobs`, a background-job framework.
//!
//! Most users depend on the `jobs` facade crate instead; this crate holds what
//! backends and handlers share: [`Job`], [`JobStatus`], [`JobResult`],
//! [`JobError`], the [`JobHandler`] port, the [`Queue`] client handle, typed
//! payloads ([`JobPayload`]), injected arguments ([`FromJobContext`], [`Data`]),
//! link-time handler registration ([`registry`]) and, for backend authors, the
//! [`backend`] port.
//!
//! # Stability
//!
//! The model and request types ([`Job`], [`NewJob`], [`JobFilter`],
//! [`JobOptions`], [`QueueCount`], [`JobResult`], the types of the [`backend`]
//! port, ...) are `#[non_exhaustive]`: a field or variant may be added in a
//! minor release. Build them with their constructors and builder methods, and
//! match their enums with a wildcard arm. [`JobStatus`] is exhaustive on
//! purpose: its seven states are the state machine, and matching all of them
//! is how a program proves it handles each.

#![warn(missing_docs)]

mod admin;
mod audit;
pub mod backend;
mod client;
mod context;
mod error;
mod extract;
mod handle;
mod handler;
mod job;
mod job_error;
mod limits;
pub mod listing;
pub mod metrics;
mod new_job;
mod on_failure;
mod ops;
pub mod payload;
mod periodic;
pub mod registry;
mod requeue;
mod result;
mod retry;
mod status;
mod throughput;
mod timeout;
pub mod trace;
mod unique;
pub mod workflow;

pub use admin::{JobFilter, QueueCount};
pub use audit::{AuditEntry, AuditFilter};
pub use backend::Backend;
pub use client::{Enqueue, JobPages, Queue, DEFAULT_MAX_PAYLOAD_BYTES};
pub use context::{CancelReason, CancellationToken, Cancelled, JobContext, ProgressSink, Scoped};
pub use error::{BackendError, BackendErrorKind, Error, Result};
pub use extract::{Data, FromJobContext, FromJobContextRef, ServiceRequirement, Services};
pub use handle::{JobHandle, JobOutput, JobResultError};
#[doc(hidden)]
pub use handler::HandledBy;
pub use handler::{BoxFuture, GeneratedHandler, JobHandler, PayloadOf};
pub use job::{AttemptError, Job, JobId, MAX_ERROR_HISTORY};
pub use job_error::{BoxError, JobError};
pub use limits::{
    limit_key, queue_rate_key, ClaimLimit, Claimed, ConcurrencyLimit, JobLimits, QueueLimit,
    RateLimit,
};
pub use listing::{JobCursor, JobPage, JobSort};
pub use new_job::{
    add_saturating, sub_saturating, JobOptions, NewJob, DEFAULT_MAX_RETRIES, DEFAULT_QUEUE,
    MAX_DELAY,
};
pub use on_failure::{IntoFailureResult, OnFailureFn};
pub use ops::{CancelRequest, Enqueued, Leader, Progress, PruneRequest, ScheduleState, WorkerInfo};
pub use payload::{JobPayload, Validate};
pub use periodic::{MissedRuns, Periodic, PeriodicBuilder, DEFAULT_GRACE};
pub use registry::HandlerRegistration;
pub use requeue::{RequeueFilter, RequeueReport};
pub use result::{IntoJobError, IntoJobOutput, IntoJobResult, JobResult};
pub use retry::Backoff;
pub use status::{JobStatus, ParseStatusError};
pub use throughput::{minute_of, ThroughputBucket, THROUGHPUT_RETENTION};
pub use timeout::Timeout;
pub use unique::{UniqueKey, UniqueStates, Uniqueness};
pub use workflow::{
    Batch, BatchResults, JobInput, OnParentFailure, Parent, Parents, Step, Workflow,
    WorkflowHandle, WorkflowState, WorkflowStatus,
};

#[doc(hidden)]
pub use inventory;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
