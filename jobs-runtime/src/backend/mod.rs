//! Queue backends: one module each, all implementing [`jobs_core::JobQueue`].

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
