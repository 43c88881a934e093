//! The queue backends, and the port they implement.
//!
//! Each backend is a module (`memory` always; `sqlite`, `postgres` and `redis`
//! behind cargo features of the same names), and each implements
//! [`Backend`]. The port's types are re-exported here, so a backend author —
//! or a test that speaks the worker protocol directly — finds everything in
//! one place: `jobs::backend::{Backend, ClaimRequest, Fence, Outcome, ..}`.

pub use jobs_core::backend::*;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

mod finished;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod remote_finish;
mod wait;
