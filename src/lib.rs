//! facade

pub use jobs_core::*;
pub use jobs_runtime::connect;

// ---- `#[job_handler]` support (owned by the macro work; keep this block) ----

#[cfg(feature = "macros")]
pub use jobs_macros::job_handler;

/// Not public API: the paths `#[job_handler]` output names.
#[doc(hidden)]
pub use jobs_core::__private;

/// The names a handler module needs: `use jobs::prelude::*;`.
pub mod prelude {
    // `#[job_handler]` entries
    pub use jobs_core::{Data, Job, JobContext, JobError, JobPayload, JobResult, Validate};
    #[cfg(feature = "macros")]
    pub use jobs_macros::job_handler;
    pub use serde::{Deserialize, Serialize};

    pub use jobs_core::{Backoff, JobHandler, Queue};
}
// ---- end of `#[job_handler]` support ----
