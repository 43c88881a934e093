//! Link-time handler registration: every `#[job_handler]` submits one
//! [`HandlerRegistration`] with `inventory`, and the manager collects them.
//! Also the object-safe [`DynHandler`] form of a handler that a runtime stores.
//!
//! Link-time collection has known gaps (a crate nothing `use`s may be dropped
//! by the linker; some targets have no static constructors), so the builder's
//! explicit `.register(..)`/`.handler(..)` always works too.

use std::sync::Arc;

use serde_json::Value;

pub use crate::handler::DynHandler;
use crate::{JobOptions, ServiceRequirement};

/// One handler, as registered at link time. Made by `#[job_handler]` (its
/// `REGISTRATION` const); pass it to the builder's `.register(..)` to add a
/// handler explicitly.
#[non_exhaustive]
pub struct HandlerRegistration {
    /// The job type it handles.
    pub job_type: &'static str,
    /// The generated handler type, for messages.
    pub handler_name: &'static str,
    /// The payload type, for messages.
    pub payload_type: &'static str,
    /// Where the handler is defined (`file!()`, `line!()`).
    pub file: &'static str,
    /// The line of `file`.
    pub line: u32,
    /// Checks a raw payload against the payload type (for `enqueue_raw`).
    pub check_payload: fn(&Value) -> Result<(), String>,
    /// The services its extractors need.
    pub requirements: fn() -> Vec<ServiceRequirement>,
    /// Makes the handler.
    pub make: fn() -> Arc<dyn DynHandler>,
    /// The defaults of its jobs (queue, priority, max_retries), as
    /// `#[job_handler(queue = .., ..)]` sets them.
    pub options: fn() -> JobOptions,
    /// Its schedule, as `#[job_handler(.., cron = "..")]` declares one.
    pub periodic: Option<fn() -> crate::Periodic>,
}

impl HandlerRegistration {
    /// A registration; `#[job_handler]` writes this call.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        job_type: &'static str,
        handler_name: &'static str,
        payload_type: &'static str,
        file: &'static str,
        line: u32,
        check_payload: fn(&Value) -> Result<(), String>,
        requirements: fn() -> Vec<ServiceRequirement>,
        make: fn() -> Arc<dyn DynHandler>,
    ) -> Self {
        HandlerRegistration {
            job_type,
            handler_name,
            payload_type,
            file,
            line,
            check_payload,
            requirements,
            make,
            options: JobOptions::default,
            periodic: None,
        }
    }

    /// This registration, with the defaults its jobs get (`#[job_handler]`
    /// writes this call).
    pub const fn with_options(mut self, options: fn() -> JobOptions) -> Self {
        self.options = options;
        self
    }

    /// This registration, with a schedule (`#[job_handler(.., cron = "..")]`
    /// writes this call).
    pub const fn with_periodic(mut self, periodic: fn() -> crate::Periodic) -> Self {
        self.periodic = Some(periodic);
        self
    }

    /// The queue its jobs go to unless an enqueue says otherwise.
    pub fn default_queue(&self) -> String {
        (self.options)()
            .queue
            .unwrap_or_else(|| crate::DEFAULT_QUEUE.to_owned())
    }

    /// Whether `other` registers the same handler. A `#[job_handler]`'s
    /// `REGISTRATION` const and its link-time entry are distinct statics, so
    /// they are compared by what they name, not by address.
    pub fn is_same(&self, other: &HandlerRegistration) -> bool {
        std::ptr::eq(self, other)
            || (self.job_type == other.job_type
                && self.handler_name == other.handler_name
                && self.file == other.file
                && self.line == other.line)
    }
}

impl std::fmt::Debug for HandlerRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistration")
            .field("job_type", &self.job_type)
            .field("handler_name", &self.handler_name)
            .field("payload_type", &self.payload_type)
            .field("file", &self.file)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

inventory::collect!(HandlerRegistration);

/// Every handler linked into this binary.
pub fn registered_handlers() -> impl Iterator<Item = &'static HandlerRegistration> {
    inventory::iter::<HandlerRegistration>.into_iter()
}

/// The first handler registered for `job_type`, if any.
pub fn find_registration(job_type: &str) -> Option<&'static HandlerRegistration> {
    registered_handlers().find(|r| r.job_type == job_type)
}
